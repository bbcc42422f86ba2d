"""What can go wrong in the compute service, as Nova answers it: ``{"<kind>": {code, message}}``."""

from __future__ import annotations


class ComputeError(Exception):
    status = 500
    kind = "computeFault"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ComputeError):
    status, kind = 400, "badRequest"


class Forbidden(ComputeError):
    status, kind = 403, "forbidden"


class NotFound(ComputeError):
    status, kind = 404, "itemNotFound"


class MethodNotAllowed(ComputeError):
    status, kind = 405, "HTTPMethodNotAllowed"  # Nova's key for 405s


class NotAcceptable(ComputeError):
    status, kind = 406, "notAcceptable"  # an unsupported microversion


class Conflict(ComputeError):
    status, kind = 409, "conflictingRequest"


class OverLimit(ComputeError):
    status, kind = 413, "overLimit"
