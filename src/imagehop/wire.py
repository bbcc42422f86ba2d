"""Plain ``http.client`` connections for the bytes of a copy: the hot path without per-chunk objects.

httpx hands a streamed body over as a new ``bytes`` per piece, joined and re-split in its decoders,
and pulls a request body from a generator; for the gigabytes a copy moves, that machinery cost more
CPU than the MD5 beside it. Here a response body is read with ``readinto`` straight into the caller's
buffer and a request body is written from one with ``sendall``: both release the GIL, so the moving
threads run side by side on the cores.

Only the data requests go this way (a ranged GET, a PUT of a known length); everything else stays on
httpx. Connections honour the same settings httpx does: a TLS context, and the ``http_proxy`` /
``https_proxy`` / ``no_proxy`` environment (an HTTPS target is reached through a ``CONNECT`` tunnel).
Shared by the transfer engine (the segment mover) and the server's pulls from another region
(``glance-download``); it knows nothing of either.
"""

from __future__ import annotations

import base64
import http.client
import select
import threading
import urllib.request
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

TIMEOUT = 60.0  # seconds without progress on a socket, as the httpx clients' read timeout
BUFFER = 1 << 20
# A reused connection the server closed meanwhile fails at once, before any answer: try a new one.
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class WireError(Exception):
    """A data request failed; ``status`` is the HTTP status, 0 when no answer came."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Connections:
    """Keep-alive ``http.client`` connections to one host (scheme, host and port of ``base_url``)."""

    def __init__(self, base_url: str, tls: Callable[[], object], limit: int = 16) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._tls = tls  # called once, when the first HTTPS connection opens
        self.limit = limit
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        proxies = urllib.request.getproxies()
        proxy = proxies.get(self.scheme) if not urllib.request.proxy_bypass(parts.netloc) else None
        self.proxy = urlsplit(proxy if "://" in proxy else f"http://{proxy}") if proxy else None
        self.proxy_headers: dict[str, str] = {}  # credentials in the proxy's URL, as httpx sends them
        if self.proxy is not None and self.proxy.username is not None:
            user = f"{unquote(self.proxy.username)}:{unquote(self.proxy.password or '')}"
            self.proxy_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()

    def buffer(self) -> memoryview:
        """This thread's reused body buffer."""
        view = getattr(self._local, "view", None)
        if view is None:
            view = self._local.view = memoryview(bytearray(BUFFER))
        return view

    def target(self, url: str) -> str:
        """The request target for ``url``: its path and query, or the whole URL through a plain HTTP proxy."""
        if self.proxy is not None and self.scheme == "http":
            return url
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _new(self) -> http.client.HTTPConnection:
        host, port = self.host, self.port
        if self.proxy is not None:
            host, port = self.proxy.hostname or "", self.proxy.port or 80
        if self.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT, context=self._tls()
            )  # type: ignore[arg-type]
            if self.proxy is not None:
                conn.set_tunnel(self.host, self.port, headers=self.proxy_headers)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        return conn

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (then it may have been closed by the server)."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                sock = conn.sock
                # readable while idle: the server closed it (or sent junk); either way it is done
                if sock is not None and not select.select([sock], [], [], 0)[0]:
                    return conn, True
                conn.close()
        return self._new(), False

    def give(self, conn: http.client.HTTPConnection, reusable: bool) -> None:
        with self._lock:
            if reusable and conn.sock is not None and len(self._idle) < self.limit:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def send_head(
    pool: Connections, method: str, url: str, headers: dict[str, str], *, body: bool = False
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse | None]:
    """Send a request's line and headers on a pooled connection; without a ``body`` to follow, read
    the answer too. A reused connection that turns out closed is replaced once by a new one."""
    for attempt in (1, 2):
        conn, reused = pool.take()
        try:
            conn.putrequest(method, pool.target(url), skip_accept_encoding=True)
            if pool.scheme == "http":  # through a plain proxy, each request carries its credentials
                headers = {**pool.proxy_headers, **headers}
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            return conn, None if body else conn.getresponse()
        except STALE:
            conn.close()
            if not reused or attempt == 2:
                raise
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable")


def send_body(
    conn: http.client.HTTPConnection,
    read_into: Callable[[memoryview], int],
    length: int,
    buffer: memoryview,
    on_chunk: Callable[[memoryview], object] | None = None,
) -> tuple[http.client.HTTPResponse, bool]:
    """Send ``length`` bytes that ``read_into`` fills into ``buffer`` piece by piece, then read the
    answer; returns it and whether the whole body went out.

    A server that answers before the whole body arrived (an error) is still heard: its answer is
    returned when the connection breaks under the rest of the body.
    """
    left = length
    try:
        while left:
            n = read_into(buffer[: min(left, len(buffer))])
            if n <= 0:
                raise WireError(f"the source ended {left} bytes early")
            chunk = buffer[:n]
            if on_chunk is not None:
                on_chunk(chunk)
            conn.sock.sendall(chunk)  # type: ignore[union-attr]
            left -= n
    except OSError:
        try:
            return conn.getresponse(), False
        except (OSError, http.client.HTTPException):
            pass
        raise
    return conn.getresponse(), True
