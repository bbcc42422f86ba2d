"""TempURL: a signed, expiring URL that grants one method on one object without a token.

``temp_url_sig`` is an HMAC (SHA-256 or SHA-512) of ``"<METHOD>\\n<expires>\\n<path>"`` under one of
the account's (``X-Account-Meta-Temp-URL-Key[-2]``) or the container's
(``X-Container-Meta-Temp-URL-Key[-2]``) keys, as hex or as ``<digest>:<urlsafe base64>``.
HEAD is allowed by a signature for HEAD, GET or PUT, as in Swift.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping

from imagehop.objects.constraints import SwiftError

METHODS = ("GET", "HEAD", "PUT")
HEX_DIGESTS = {64: "sha256", 128: "sha512"}
KEYS = ("x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2")
CONTAINER_KEYS = ("x-container-meta-temp-url-key", "x-container-meta-temp-url-key-2")


def is_tempurl(query: Mapping[str, str]) -> bool:
    return "temp_url_sig" in query or "temp_url_expires" in query


def parse_expires(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise SwiftError(401, "Invalid temp_url_expires") from None


def parse_signature(sig: str) -> tuple[str, bytes]:
    """(digest name, raw signature bytes); only SHA-256 and SHA-512 are accepted."""
    if ":" in sig:
        name, _, b64 = sig.partition(":")
        if name not in ("sha256", "sha512"):
            raise SwiftError(401, "Unsupported temp_url_sig digest")
        try:
            return name, base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            raise SwiftError(401, "Invalid temp_url_sig") from None
    name = HEX_DIGESTS.get(len(sig))
    if name is None:
        raise SwiftError(401, "Unsupported temp_url_sig digest")
    try:
        return name, bytes.fromhex(sig)
    except ValueError:
        raise SwiftError(401, "Invalid temp_url_sig") from None


def authorize(method: str, path: str, query: Mapping[str, str], keys: list[str], now: float | None = None) -> None:
    """Accept the request or raise 401; ``path`` is ``/v1/<account>/<container>/<object>``."""
    if method not in METHODS:
        raise SwiftError(401, "Temp URLs allow only GET, HEAD and PUT")
    if "temp_url_sig" not in query or "temp_url_expires" not in query:
        raise SwiftError(401, "temp_url_sig and temp_url_expires are both required")
    expires = parse_expires(query["temp_url_expires"])
    if expires < (now or time.time()):
        raise SwiftError(401, "Temp URL expired")
    digest, signature = parse_signature(query["temp_url_sig"])
    methods = ("HEAD", "GET", "PUT") if method == "HEAD" else (method,)
    for key in keys:
        for signed in methods:
            body = f"{signed}\n{query['temp_url_expires']}\n{path}".encode()
            expected = hmac.new(key.encode(), body, getattr(hashlib, digest)).digest()
            if hmac.compare_digest(expected, signature):
                return
    raise SwiftError(401, "Temp URL invalid")


def sign(key: str, method: str, expires: int, path: str, digest: str = "sha256") -> str:
    """A hex signature, as ``swift tempurl`` makes it (for tests and the CLI)."""
    return hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), getattr(hashlib, digest)).hexdigest()
