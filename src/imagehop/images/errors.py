"""What can go wrong in the image service, as Glance answers it: a status and a message."""

from __future__ import annotations


class ImageError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ImageError):
    status, title = 400, "Bad Request"


class Forbidden(ImageError):
    status, title = 403, "Forbidden"


class NotFound(ImageError):
    status, title = 404, "Not Found"


class Conflict(ImageError):
    status, title = 409, "Conflict"


class Gone(ImageError):
    status, title = 410, "Gone"


class TooLarge(ImageError):
    status, title = 413, "Request Entity Too Large"


class UnsupportedMediaType(ImageError):
    status, title = 415, "Unsupported Media Type"


class RangeNotSatisfiable(ImageError):
    status, title = 416, "Request Range Not Satisfiable"  # webob's title, as Glance answers


class Unavailable(ImageError):
    status, title = 503, "Service Unavailable"
