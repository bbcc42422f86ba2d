"""TempURL, as Swift 2.38's ``tempurl`` middleware: a signed, expiring URL that grants one method on one object.

``temp_url_sig`` is an HMAC (SHA-1, SHA-256 or SHA-512, as hex or ``<digest>:<base64>``) of
``[ip=<range>\\n]<METHOD>\\n<expires>\\n<path>`` under one of the account's
(``X-Account-Meta-Temp-URL-Key[-2]``) or the container's (``X-Container-Meta-Temp-URL-Key[-2]``) keys.
``path`` is ``/v1/<account>/<container>/<object>``, or ``prefix:/v1/<account>/<container>/<prefix>`` with
``temp_url_prefix`` (any object under the prefix). ``temp_url_expires`` is a Unix time or an ISO 8601
``YYYY-MM-DDTHH:MM:SSZ`` (signed as the integer). ``temp_url_ip_range`` limits the caller's address.

A signature made with a container's key reaches that container only: a large object whose segments live
elsewhere cannot be read through it. A TempURL request may not carry headers that point elsewhere
(``X-Copy-From``, ``X-Object-Manifest``, ``X-Symlink-Target``): 400, as Swift.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

from imagehop.objects.constraints import SwiftError

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
HEX_DIGESTS = {40: "sha1", 64: "sha256", 128: "sha512"}
ALLOWED_DIGESTS = ("sha1", "sha256", "sha512")
KEYS = ("x-account-meta-temp-url-key", "x-account-meta-temp-url-key-2")
CONTAINER_KEYS = ("x-container-meta-temp-url-key", "x-container-meta-temp-url-key-2")
DISALLOWED_HEADERS = ("x-object-manifest", "x-symlink-target", "x-copy-from")
ISO8601 = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Grant:
    """What a valid TempURL allows: the account, and the container if it was signed with a container key."""

    account: str
    container: str | None  # None: an account key (any container of the account)
    expires: int


def is_tempurl(query: Mapping[str, str]) -> bool:
    return "temp_url_sig" in query or "temp_url_expires" in query


def normalize_expires(value: str | None, now: float) -> int | None:
    """The expiry as an int (0 if unreadable or past), as Swift's normalize_temp_url_expires."""
    if value is None:
        return None
    try:
        expires = int(value)
    except ValueError:
        try:
            expires = calendar.timegm(time.strptime(value, ISO8601))
        except ValueError:
            expires = 0
    return 0 if expires < now else expires


def _b64(value: str) -> bytes:
    stripped = value.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError(value)
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(value) from None


def parse_signature(sig: str) -> tuple[str, str]:
    """(digest name, hex signature), as Swift's extract_digest_and_algorithm; ValueError if malformed."""
    if ":" in sig:
        name, _, value = sig.partition(":")
        if ("-" in value or "_" in value) and not ("+" in value or "/" in value):
            value = value.replace("-", "+").replace("_", "/")
        return name, _b64(value).hex()
    bytes.fromhex(sig)
    name = HEX_DIGESTS.get(len(sig))
    if name is None:
        raise ValueError("bad digest length")
    return name, sig.lower()


def invalid(method: str) -> SwiftError:
    return SwiftError(401, "" if method == "HEAD" else "401 Unauthorized: Temp URL invalid\n", html=True)


def authorize(
    method: str,
    account: str,
    container: str,
    obj: str,
    query: Mapping[str, str],
    account_keys: list[str],
    container_keys: list[str],
    client: str | None,
    now: float | None = None,
) -> Grant:
    """Accept the request (what it may reach) or raise 401, following Swift's tempurl step by step."""
    now = time.time() if now is None else now
    sig = query.get("temp_url_sig")
    expires = normalize_expires(query.get("temp_url_expires"), now)
    prefix = query.get("temp_url_prefix")
    ip_range = query.get("temp_url_ip_range")
    if not sig or not expires:
        raise invalid(method)
    try:
        digest, sig_hex = parse_signature(sig)
    except ValueError:
        raise invalid(method) from None
    if digest not in ALLOWED_DIGESTS or method not in METHODS or not obj.strip("/"):
        raise invalid(method)
    if ip_range:
        try:
            if client is None or ipaddress.ip_address(client) not in ipaddress.ip_network(ip_range):
                raise invalid(method)
        except ValueError:
            raise invalid(method) from None
    keys = [(key, None) for key in account_keys] + [(key, container) for key in container_keys]
    if not keys:
        raise invalid(method)
    if prefix is None:
        path = f"/v1/{account}/{container}/{obj}"
    else:
        if not obj.startswith(prefix):
            raise invalid(method)
        path = f"prefix:/v1/{account}/{container}/{prefix}"
    methods = ("HEAD", "GET", "POST", "PUT") if method == "HEAD" else (method,)
    for key, scope in keys:
        for signed in methods:
            expected = sign(key, signed, expires, path, digest, ip_range)
            if hmac.compare_digest(expected, sig_hex):
                return Grant(account, scope, expires)
    raise invalid(method)


def check_headers(method: str, headers: Mapping[str, str]) -> None:
    """A TempURL PUT/POST may not point at other data (X-Copy-From, X-Object-Manifest, ...): 400."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return
    for name in DISALLOWED_HEADERS:
        if name in headers:
            title = "-".join(part.capitalize() for part in name.split("-"))
            raise SwiftError(400, f"The header '{title}' is not allowed in this tempurl", html=True)


def sign(key: str, method: str, expires: int, path: str, digest: str = "sha256", ip_range: str | None = None) -> str:
    """A hex signature, as ``swift tempurl`` makes it (for tests and the CLI)."""
    body = f"{method}\n{expires}\n{path}"
    if ip_range:
        body = f"ip={ip_range}\n{body}"
    return hmac.new(key.encode(), body.encode(), getattr(hashlib, digest)).hexdigest()


def disposition(kind: str, filename: str) -> str:
    return f"{kind}; filename=\"{quote(filename, safe=' /')}\"; filename*=UTF-8''{quote(filename)}"


def outgoing_headers(headers: MutableMapping[str, str], grant: Grant, obj: str, query: Mapping[str, str]) -> None:
    """A successful TempURL GET/HEAD: private metadata removed, Content-Disposition and Expires added."""
    for name in [k for k in headers if k.lower().startswith("x-object-meta-")]:
        if not name.lower().startswith("x-object-meta-public-"):
            del headers[name]
    filename = query.get("filename")
    if "inline" in query:
        value = disposition("inline", filename) if filename else "inline"
    elif filename:
        value = disposition("attachment", filename)
    elif "content-disposition" in headers:
        value = headers["content-disposition"]
    else:
        value = disposition("attachment", obj.rstrip("/").rsplit("/", 1)[-1])
    headers["Content-Disposition"] = value.replace("\n", "%0A")
    headers["Expires"] = formatdate(grant.expires, usegmt=True)
