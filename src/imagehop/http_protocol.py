"""uvicorn's httptools protocol: raw UTF-8 request lines as Swift's eventlet server takes them, and
large request bodies read straight from the socket.

Clients (and Swift's own tests) may send an object name as raw UTF-8 in the request line
(``PUT /v1/AUTH_x/c/café HTTP/1.1``); the llhttp parser refuses any byte above 0x7F there with a 400.
Before a request's first line reaches the parser, each such byte is percent-encoded, which is what a
careful client would have sent: the Swift routes then decode the path as UTF-8, and invalid UTF-8
answers 412 as in Swift. Nothing else of the request is touched; one ``find`` per request is the cost.

A large upload through the parser costs, for every 64-256 KiB that arrive, an event-loop turn, a
pause and a resume of the socket, and three copies (the parser's, uvicorn's buffer, the ASGI message)
made while holding the GIL that the hashing and writing threads need. :class:`DirectBody` (in the
scope's ``extensions`` under :data:`DIRECT_BODY`) lets a route take the rest of a ``Content-Length``
body off the parser and read it itself, with ``readv`` into its own buffers in a worker thread (see
``streams.receive_body``); the parser is given a fresh start for the next request on the
connection afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

MAX_REQUEST_LINE = 65536  # longer lines go to the parser as they are (it refuses them)
_HIGH = re.compile(rb"[\x80-\xff]")
DIRECT_BODY = "imagehop.direct_body"  # the scope extension holding a request's DirectBody


class Utf8RequestLineProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._line_start = True  # the next bytes begin a request
        self._pending = b""
        self._body_seen = 0  # body bytes the parser has passed on for the current request

    def data_received(self, data: bytes) -> None:
        if self._line_start:
            data = self._pending + data
            end = data.find(b"\r\n")
            if end < 0 and len(data) < MAX_REQUEST_LINE:
                self._pending = data  # wait for the whole request line
                return
            self._pending = b""
            self._line_start = False
            line = data[:end] if end >= 0 else data
            if _HIGH.search(line):
                data = _HIGH.sub(lambda m: b"%%%02X" % m.group()[0], line) + (data[end:] if end >= 0 else b"")
        super().data_received(data)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._body_seen = 0
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and self.scope["method"] in ("PUT", "POST"):
            self.scope.setdefault("extensions", {})[DIRECT_BODY] = DirectBody(self, cycle)  # type: ignore[index]

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._line_start = True


class DirectBody:
    """The rest of one request's ``Content-Length`` body, read from the socket by the application.

    Used on the event loop: :meth:`take` stops the parser reading and hands over what it buffered,
    the number of bytes still to come and a duplicate of the socket's descriptor (non-blocking; the
    reads may run in any thread, and the duplicate stays valid whatever happens to the transport);
    then exactly one of :meth:`finish` (every byte was read: the connection goes on as after any
    request) or :meth:`fail` (it was not: the connection closes after the response).
    """

    def __init__(self, protocol: Utf8RequestLineProtocol, cycle: RequestResponseCycle) -> None:
        self.protocol = protocol
        self.cycle = cycle
        self.fd: int | None = None

    def take(self, length: int) -> tuple[bytes, int, int] | None:
        """``(buffered body bytes, bytes left on the socket, descriptor)``, or None when this body
        cannot be read directly (TLS, chunked, already complete or being read, pipelined)."""
        protocol, cycle = self.protocol, self.cycle
        transport = protocol.transport
        if (
            self.fd is not None
            or protocol.cycle is not cycle
            or not cycle.more_body
            or cycle.disconnected
            or cycle.response_complete
            or transport is None
            or transport.is_closing()
            or transport.get_extra_info("sslcontext") is not None
            or any(name == b"transfer-encoding" for name, _ in cycle.scope["headers"])
        ):
            return None
        sock = transport.get_extra_info("socket")
        left = length - protocol._body_seen
        if sock is None or left <= 0:
            return None
        if cycle.waiting_for_100_continue:  # as uvicorn's receive() does before the first read
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        protocol.flow.pause_reading()
        self.fd = os.dup(sock.fileno())
        buffered = bytes(cycle.body)
        cycle.body = bytearray()
        return buffered, left, self.fd

    def finish(self) -> None:
        """Every byte of the body was read: a new parser for the next request, reading resumed."""
        protocol = self.protocol
        self._close()
        if protocol.parser is None:  # the connection was lost meanwhile
            return
        protocol.parser = httptools.HttpRequestParser(protocol)
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3 has no leniencies
            protocol.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        protocol.on_message_complete()
        if not protocol.transport.is_closing():
            protocol.flow.resume_reading()

    def fail(self) -> None:
        """The body was not read to its end: the parser cannot go on, so the connection closes
        after the response (reading stays paused until then)."""
        self._close()
        self.cycle.keep_alive = False

    def _close(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1  # taken once only
