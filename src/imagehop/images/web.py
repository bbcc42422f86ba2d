"""web-download's HTTP client: which addresses it may reach, and a fetch that goes only there.

A URL is checked by resolving its host once and checking *every* address it resolves to; the fetch
then connects to a checked address only (the host name still goes in ``Host``, SNI and the TLS
certificate check), so a DNS answer that changes between the check and the connection (rebinding)
reaches nothing new. Redirects are not followed. Unless the operator sets
``[images] web_download_allow_private``, only globally routable unicast addresses pass: not
loopback, private, link-local, shared (100.64.0.0/10), multicast, reserved, documentation or
benchmarking ranges, and no IPv6 address that embeds an IPv4 one (IPv4-mapped and -compatible,
NAT64, 6to4, Teredo), since that could reach the IPv4 ranges refused above.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from imagehop.images.errors import BadRequest, ImageError

CHUNK = 1 << 20
TIMEOUT = 60.0
SCHEMES = {"http": 80, "https": 443}
MAX_URI = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes that carry an IPv4 address (or are not unicast on the internet at all).
REFUSED_V6 = tuple(
    ipaddress.ip_network(net)
    for net in ("::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "fec0::/10")
)
REFUSED_V4 = tuple(ipaddress.ip_network(net) for net in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24"))


def allow_private_from_env() -> bool:
    """The environment's say (``IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE``) when no setting is given."""
    return os.environ.get("IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE", "").strip().lower() in ("1", "true", "yes", "on")


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address that embeds no IPv4 one."""
    if address.is_multicast or address.is_reserved or address.is_unspecified or not address.is_global:
        return False
    refused = REFUSED_V6 if address.version == 6 else REFUSED_V4
    return not any(address in net for net in refused)


@dataclass(frozen=True)
class Target:
    """A checked URL: where it points and the addresses it may be fetched from."""

    uri: str
    scheme: str
    host: str  # as written (brackets stripped), for Host, SNI and the certificate
    port: int
    addresses: tuple[str, ...]


def parse(uri: Any) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or BadRequest naming what is wrong with it."""
    if not isinstance(uri, str) or not uri:
        raise BadRequest(f"URI for web-download does not pass filtering: {uri}")  # Glance 33's words
    if len(uri) > MAX_URI or not uri.isascii() or any(c.isspace() or ord(c) < 32 for c in uri):
        raise BadRequest(f"URI is not allowed: it must be at most {MAX_URI} printable ASCII characters.")
    try:
        parts = urlsplit(uri)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise BadRequest(f"URI {uri!r} is not a valid URL: {exc}.") from None
    if parts.scheme not in SCHEMES:
        raise BadRequest(f"URI for web-download does not pass filtering: {uri}")  # Glance 33's words
    if not host:
        raise BadRequest(f"URI {uri!r} has no host.")
    if port == 0:
        raise BadRequest(f"URI {uri!r}: port 0 cannot be connected to.")
    if parts.username is not None or parts.password is not None:
        raise BadRequest(f"URI {uri!r} is not allowed: credentials in the URL are not accepted.")
    return parts.scheme, host, port or SCHEMES[parts.scheme]


def check(uri: Any, allow_private: bool | None = None) -> Target:
    """Resolve the URL's host once and check every address; the checked target, or BadRequest.

    ``allow_private`` is the operator's ``[images] web_download_allow_private``; None reads the
    environment.
    """
    scheme, host, port = parse(uri)
    if allow_private is None:
        allow_private = allow_private_from_env()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise BadRequest(f"URI {uri!r}: host {host} does not resolve.") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if not allow_private and not is_public(address):
            raise BadRequest(f"URI {uri!r} is not allowed: {host} resolves to {address}, which is not public.")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise BadRequest(f"URI {uri!r}: host {host} does not resolve.")
    return Target(uri, scheme, host, port, tuple(addresses))


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to the checked addresses only, whatever host name a request names."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:  # fmt: skip
        if host.strip("[]").lower() != self.target.host.lower() or port != self.target.port:
            raise httpcore.ConnectError(f"refusing to connect to {host}:{port}")
        last: Exception | None = None
        for address in self.target.addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}")


def fetch(uri: str, allow_private: bool | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
    """The body of a GET of ``uri`` (checked again now), streamed; a redirect or non-200 is an error."""
    target = check(uri, allow_private)
    context: ssl.SSLContext = httpx.create_ssl_context()
    pool = httpcore.ConnectionPool(ssl_context=context, network_backend=_PinnedBackend(target), retries=0)
    host = target.host if ":" not in target.host else f"[{target.host}]"
    default = SCHEMES[target.scheme] == target.port
    headers = [(b"Host", (host if default else f"{host}:{target.port}").encode()), (b"User-Agent", b"imagehop"),
               (b"Accept", b"*/*")]  # fmt: skip
    timeouts = {"connect": TIMEOUT, "read": TIMEOUT, "write": TIMEOUT, "pool": TIMEOUT}
    try:
        with pool, pool.stream("GET", uri, headers=headers, extensions={"timeout": timeouts}) as response:
            if 300 <= response.status < 400:
                raise ImageError(f"Downloading {uri} failed: HTTP {response.status} (redirects are not followed).")
            if response.status != 200:
                raise ImageError(f"Downloading {uri} failed: HTTP {response.status}.")
            buffer = bytearray()
            for piece in response.iter_stream():
                buffer += piece
                if len(buffer) >= chunk:
                    yield bytes(buffer)
                    buffer.clear()
            if buffer:
                yield bytes(buffer)
    except httpcore.TimeoutException:
        raise ImageError(f"Downloading {uri} failed: the server did not answer in time.") from None
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise ImageError(f"Downloading {uri} failed: {exc or exc.__class__.__name__}.") from None
