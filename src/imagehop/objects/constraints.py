"""Swift's constraints (``swift/common/constraints.py``) and the request checks built on them.

Every check raises :class:`SwiftError` with Swift's status and wording; the routes render it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import formatdate
from urllib.parse import quote

MAX_FILE_SIZE = 5368709122
MAX_META_NAME_LENGTH = 128
MAX_META_VALUE_LENGTH = 256
MAX_META_COUNT = 90
MAX_META_OVERALL_SIZE = 4096
MAX_HEADER_SIZE = 8192
MAX_OBJECT_NAME_LENGTH = 1024
LISTING_LIMIT = 10000
MAX_ACCOUNT_NAME_LENGTH = 256
MAX_CONTAINER_NAME_LENGTH = 256

SLO_MAX_SEGMENTS = 1000
SLO_MAX_MANIFEST_SIZE = 8 * 1024 * 1024
BULK_MAX_DELETES = 10000
BULK_MAX_FAILED = 1000

SWIFT_VERSION = "2.30.1"

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    416: "Requested Range Not Satisfiable",
    422: "Unprocessable Entity",
    499: "Client Disconnect",
    500: "Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

# Swift's swob.RESPONSE_REASONS: the title and the sentence of a default error page.
RESPONSE_REASONS = {
    200: ("OK", ""),
    201: ("Created", ""),
    202: ("Accepted", "The request is accepted for processing."),
    204: ("No Content", ""),
    206: ("Partial Content", ""),
    301: ("Moved Permanently", "The resource has moved permanently."),
    302: ("Found", "The resource has moved temporarily."),
    303: ("See Other", "The response to the request can be found under a different URI."),
    304: ("Not Modified", ""),
    307: ("Temporary Redirect", "The resource has moved temporarily."),
    400: (
        "Bad Request",
        "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    ),
    401: ("Unauthorized", "This server could not verify that you are authorized to access the document you requested."),
    402: ("Payment Required", "Access was denied for financial reasons."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    405: ("Method Not Allowed", "The method is not allowed for this resource."),
    406: ("Not Acceptable", "The resource is not available in a format acceptable to your browser."),
    408: ("Request Timeout", "The server has waited too long for the request to be sent by the client."),
    409: ("Conflict", "There was a conflict when trying to complete your request."),
    410: ("Gone", "This resource is no longer available."),
    411: ("Length Required", "Content-Length header required."),
    412: ("Precondition Failed", "A precondition for this request was not met."),
    413: ("Request Entity Too Large", "The body of your request was too large for this server."),
    414: ("Request URI Too Long", "The request URI was too long for this server."),
    415: ("Unsupported Media Type", "The request media type is not supported by this server."),
    416: ("Requested Range Not Satisfiable", "The Range requested is not available."),
    417: ("Expectation Failed", "Expectation failed."),
    422: ("Unprocessable Entity", "Unable to process the contained instructions"),
    499: ("Client Disconnect", "The client was disconnected during request."),
    500: ("Internal Error", "The server has either erred or is incapable of performing the requested operation."),
    501: ("Not Implemented", "The requested method is not implemented by this server."),
    502: ("Bad Gateway", "Bad gateway."),
    503: ("Service Unavailable", "The server is currently unavailable. Please try again at a later time."),
    504: ("Gateway Timeout", "A timeout has occurred speaking to a backend server."),
    507: ("Insufficient Storage", "There was not enough space to save the resource. Drive: %(drive)s"),
    529: (
        "Too Many Backend Requests",
        "The server is incapable of performing the requested operation due to too many requests. Slow down.",
    ),
}


class SwiftError(Exception):
    """A refusal with Swift's status code and (plain text) explanation."""

    def __init__(
        self,
        status: int,
        message: str = "",
        headers: Mapping[str, str] | None = None,
        *,
        html: bool = False,
        content_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.html = html  # Swift sends this message as text/html (swob's default), not text/plain
        self.content_type = content_type  # or exactly this type (e.g. "text/plain" without a charset)


def info_document() -> dict:
    """``GET /info``: exactly what this server implements."""
    return {
        "swift": {
            "version": SWIFT_VERSION,
            "max_file_size": MAX_FILE_SIZE,
            "max_meta_name_length": MAX_META_NAME_LENGTH,
            "max_meta_value_length": MAX_META_VALUE_LENGTH,
            "max_meta_count": MAX_META_COUNT,
            "max_meta_overall_size": MAX_META_OVERALL_SIZE,
            "max_header_size": MAX_HEADER_SIZE,
            "max_object_name_length": MAX_OBJECT_NAME_LENGTH,
            "container_listing_limit": LISTING_LIMIT,
            "account_listing_limit": LISTING_LIMIT,
            "max_account_name_length": MAX_ACCOUNT_NAME_LENGTH,
            "max_container_name_length": MAX_CONTAINER_NAME_LENGTH,
            "extra_header_count": 0,
            "strict_cors_mode": True,
            "policies": [{"name": "Policy-0", "default": True, "aliases": "Policy-0"}],
            "allow_account_management": False,
            "account_autocreate": True,
            "allow_open_expired": False,
        },
        "slo": {
            "max_manifest_segments": SLO_MAX_SEGMENTS,
            "max_manifest_size": SLO_MAX_MANIFEST_SIZE,
            "min_segment_size": 1,
        },
        "bulk_delete": {"max_deletes_per_request": BULK_MAX_DELETES, "max_failed_deletes": BULK_MAX_FAILED},
        "tempurl": {
            "methods": ["GET", "HEAD", "PUT"],
            "incoming_remove_headers": ["x-timestamp"],
            "incoming_allow_headers": [],
            "outgoing_remove_headers": ["x-object-meta-*"],
            "outgoing_allow_headers": ["x-object-meta-public-*"],
            "allowed_digests": ["sha256", "sha512"],
        },
    }


def check_container_name(name: str) -> None:
    length = len(quote(name, safe=""))
    if length > MAX_CONTAINER_NAME_LENGTH:
        raise SwiftError(400, f"Container name length of {length} longer than {MAX_CONTAINER_NAME_LENGTH}")


def check_object_name(name: str) -> None:
    length = len(quote(name, safe="/"))
    if length > MAX_OBJECT_NAME_LENGTH:
        raise SwiftError(400, f"Object name length of {length} longer than {MAX_OBJECT_NAME_LENGTH}")


def from_wire(value: str) -> str:
    """A header value as the client meant it: the bytes (which ASGI hands over as latin-1) read as UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def to_wire(value: str) -> str:
    """The reverse of :func:`from_wire`: UTF-8 bytes, as the latin-1 text the server writes out."""
    try:
        return value.encode("utf-8").decode("latin-1")
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8, send what can be sent
        return value.encode("utf-8", "replace").decode("latin-1")


def metadata_updates(headers: Mapping[str, str], kind: str, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """``X-<kind>-Meta-*`` (and the ``extra`` system headers) from a request, checked as Swift does.

    ``X-Remove-<kind>-Meta-Name`` becomes an empty value, which the store reads as "remove".
    """
    prefix = f"x-{kind}-meta-"
    remove = f"x-remove-{kind}-meta-"
    updates: dict[str, str] = {}
    count = size = 0
    for key, wire_value in headers.items():
        key = key.lower()
        value = from_wire(wire_value)
        if key.startswith(remove):
            updates[prefix + key[len(remove) :]] = ""
            continue
        if key in extra:
            updates[key] = value
            continue
        if key.startswith("x-remove-") and "x-" + key[9:] in extra:  # e.g. x-remove-container-read
            updates["x-" + key[9:]] = ""
            continue
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if not name:
            raise SwiftError(400, "Metadata name cannot be empty")
        if len(name) > MAX_META_NAME_LENGTH:
            raise SwiftError(400, f"Metadata name too long: {key}")
        if len(value) > MAX_META_VALUE_LENGTH:
            raise SwiftError(400, f"Metadata value longer than {MAX_META_VALUE_LENGTH}: {key}")
        count += 1
        size += len(name) + len(value)
        updates[key] = value
    if count > MAX_META_COUNT:
        raise SwiftError(400, f"Too many metadata items; max {MAX_META_COUNT}")
    if size > MAX_META_OVERALL_SIZE:
        raise SwiftError(400, f"Total metadata too large; max {MAX_META_OVERALL_SIZE}")
    return updates


def check_total_meta(meta: Mapping[str, str], kind: str) -> None:
    """After merging: the stored metadata as a whole must still fit Swift's limits."""
    prefix = f"x-{kind}-meta-"
    items = [(k[len(prefix) :], v) for k, v in meta.items() if k.startswith(prefix) and v != ""]
    if len(items) > MAX_META_COUNT:
        raise SwiftError(400, f"Too many metadata items; max {MAX_META_COUNT}")
    if sum(len(k) + len(v) for k, v in items) > MAX_META_OVERALL_SIZE:
        raise SwiftError(400, f"Total metadata too large; max {MAX_META_OVERALL_SIZE}")


MAX_DELETE_AT = 9999999999  # Swift's normalize_delete_at_timestamp: ten digits at most


def _clamp_delete_at(value: float) -> int:
    return int(min(max(0, value), MAX_DELETE_AT))


def delete_at(headers: Mapping[str, str]) -> float | None:
    """``X-Delete-At`` / ``X-Delete-After`` as an absolute time, or None; 400 as Swift's check_delete_headers.

    Only integers are read (``inf``, ``1e400``, ``1.5`` and numbers of thousands of digits are not),
    and times are capped at 9999999999 as Swift caps them.
    """
    now = time.time()
    if "x-delete-after" in headers:
        try:
            after = int(headers["x-delete-after"].strip())
        except ValueError:
            raise SwiftError(400, "Non-integer X-Delete-After") from None
        at = _clamp_delete_at(now + after) if after < 10**12 else MAX_DELETE_AT
        if at <= now:
            raise SwiftError(400, "X-Delete-After in past")
        return float(at)
    if "x-delete-at" in headers:
        try:
            at = _clamp_delete_at(int(headers["x-delete-at"].strip()))
        except ValueError:
            raise SwiftError(400, "Non-integer X-Delete-At") from None
        if at <= now:
            raise SwiftError(400, "X-Delete-At in past")
        return float(at)
    return None


def http_date(timestamp: float) -> str:
    """``Last-Modified`` as Swift gives it: the timestamp rounded up to the second."""
    return formatdate(math.ceil(timestamp), usegmt=True)


def x_timestamp(timestamp: float) -> str:
    return f"{timestamp:016.5f}"


def iso_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1e6):06d}"


TRUE_VALUES = {"true", "1", "yes", "on", "t", "y"}
