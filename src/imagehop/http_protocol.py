"""uvicorn's httptools protocol: raw UTF-8 request lines as Swift's eventlet server takes them, and
large request bodies read straight from the socket.

Clients (and Swift's own tests) may send an object name as raw UTF-8 in the request line
(``PUT /v1/AUTH_x/c/café HTTP/1.1``); the llhttp parser refuses any byte above 0x7F there with a 400.
Before a request's first line reaches the parser, each such byte is percent-encoded, which is what a
careful client would have sent: the Swift routes then decode the path as UTF-8, and invalid UTF-8
answers 412 as in Swift. Nothing else of the request is touched; one ``find`` per request is the cost.
A request that begins in the same read as the end of the one before reaches the parser as it came.

A large upload through the parser costs, for every 64-256 KiB that arrive, an event-loop turn, a
pause and a resume of the socket, and three copies (the parser's, uvicorn's buffer, the ASGI message)
made while holding the GIL that the hashing and writing threads need. :class:`DirectBody` (in the
scope's ``extensions`` under :data:`DIRECT_BODY`) lets a route take the rest of a ``Content-Length``
body off the parser and read it itself, with ``readv`` into its own buffers in a worker thread (see
``streams.receive_body``); the parser is given a fresh start for the next request on the
connection afterwards.

A client that stops sending in the middle of a request (a slow-loris header or upload, a dead peer
behind a proxy that keeps the connection) would otherwise hold the connection, and for a body a
writer and its blob intent, for ever: after ``body_timeout`` seconds with no bytes (Swift's proxy
``client_timeout``, 60 by default) the request is answered ``408 Request Timeout`` and the
connection is closed, so the application sees the client as gone and aborts the write. Time when
the server itself is not reading (flow control, a 100-continue not yet sent) does not count; a body
read through :class:`DirectBody` is watched by its reader (``streams.receive_body``).

A large download costs, the other way round, a ``pread`` into a new 1 MiB ``bytes`` in a worker
thread, a hop to the loop and a ``send`` from it for every MiB. Over plain TCP the protocol offers
ASGI's zero-copy send extension (``http.response.zerocopy`` in ``extensions``; the message has
``file``, ``offset``, ``count``, ``more_body``): the kernel copies the bytes from the page cache to the
socket (``sendfile``), in a worker thread, so a file not in the page cache never blocks the loop.
A GET's client that takes no bytes of the answer for the same ``body_timeout`` is dropped (the
connection aborted), so it holds neither the object's file nor the request for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import select
from typing import Any

import httptools
from starlette.concurrency import run_in_threadpool
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from imagehop.streams import Turn, fd_ready

BODY_TIMEOUT = 60.0  # seconds without body bytes before a request is answered 408 (Swift's client_timeout)
MAX_REQUEST_LINE = 65536  # longer lines go to the parser as they are (it refuses them)
_HIGH = re.compile(rb"[\x80-\xff]")
DIRECT_BODY = "imagehop.direct_body"  # the scope extension holding a request's DirectBody
ZEROCOPY = "http.response.zerocopy"  # ASGI's zero-copy send extension (and its message type)


log = logging.getLogger(__name__)
_TIMEOUT_BODY = (
    b"<html><h1>Request Timeout</h1><p>The server has waited too long for the request to be sent by the client."
    b"</p></html>"
)
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class Utf8RequestLineProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, body_timeout: float = BODY_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._line_start = True  # the next bytes begin a request
        self._pending = b""
        self._body_seen = 0  # body bytes the parser has passed on for the current request
        self.body_timeout = body_timeout
        self._request_due = False  # a request has begun and is still to come through the parser
        self._heard = 0.0  # loop time bytes last arrived
        self._request_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        self._heard = self.loop.time()
        self._receive(data)
        if self._request_due and self._request_timer is None:
            self._request_timer = self.loop.call_later(self.body_timeout, self._check_request)

    def _receive(self, data: bytes) -> None:
        if self._line_start:
            data = self._pending + data
            end = data.find(b"\r\n")
            if end < 0 and len(data) < MAX_REQUEST_LINE:
                self._pending = data  # wait for the whole request line
                self._request_due = True
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
        if cycle is None or cycle.scope is not self.scope:
            return
        zerocopy = False
        if self.scope["method"] in ("PUT", "POST"):
            self.scope.setdefault("extensions", {})[DIRECT_BODY] = DirectBody(self, cycle)  # type: ignore[index]
        elif self.scope["method"] == "GET" and self.transport.get_extra_info("sslcontext") is None:
            self.scope.setdefault("extensions", {})[ZEROCOPY] = {}  # type: ignore[index]
            zerocopy = True
        http10_alive = self.scope["http_version"] == "1.0" and self.parser.should_keep_alive()
        if zerocopy or http10_alive:
            cycle.send = CycleSend(cycle, cycle.send, self.body_timeout, http10_alive)  # type: ignore[method-assign]

    def send_400_response(self, msg: str) -> None:
        """The parser refused the request. A transfer coding other than chunked gets Swift's answer;
        the connection still closes (where such a body ends cannot be told)."""
        if any(name.lower() == b"transfer-encoding" for name, _ in self.headers or ()):
            body = b"Invalid Transfer-Encoding header value"
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n"
                b"\r\n%s" % (len(body), body)
            )
            self.transport.close()
            return
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_due = True
        # The parser found the next request in bytes it already had (pipelined, or sent right behind
        # the end of the previous one): its request line is past, so what arrives next is its body,
        # never a request line to wait for.
        self._line_start = False

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._line_start = True
        self._request_due = False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None
        super().connection_lost(exc)

    def _check_request(self) -> None:
        """The watchdog of a begun request: 408 and close once the client has sent nothing for ``body_timeout``."""
        self._request_timer = None
        transport, cycle = self.transport, self.cycle
        if not self._request_due or transport is None or transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            self._heard = now  # we are the ones not reading
        idle = now - self._heard
        if idle < self.body_timeout:
            self._request_timer = self.loop.call_later(self.body_timeout - idle, self._check_request)
            return
        log.info("no bytes of a begun request for %.0f s from %s: 408, connection closed", idle, self.client)
        if cycle is None or cycle.response_complete or not cycle.response_started:  # nothing of an answer sent yet
            if cycle is not None:
                cycle.response_started = True
            transport.write(REQUEST_TIMEOUT)
        transport.close()  # the application's receive() now reports a disconnect; its response goes nowhere


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
        protocol._request_due = False  # the reader of the descriptor watches for a stalled body now
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


class CycleSend:
    """A request cycle's ``send`` with what the protocol adds to uvicorn's, one wrapper for all of it:

    - ``http.response.zerocopy`` messages (response body bytes straight from a file to the socket by
      ``sendfile``, in a worker thread), once what was written before them (the head) has gone out;
    - HTTP/1.0 with ``Connection: keep-alive`` (``http10_alive``): the connection stays open after the
      answer, as Swift's eventlet server keeps it (uvicorn closes every HTTP/1.0 connection) - when the
      answer has a ``Content-Length``, the only way an HTTP/1.0 client can tell where it ends;
    - a write timeout: a client that takes no bytes for ``timeout`` seconds (``client_timeout``) while
      the answer waits for it is dropped, so it holds no file, thread or task for ever.

    Every other message goes on to uvicorn's ``send`` as it was.
    """

    def __init__(self, cycle: RequestResponseCycle, send: Any, timeout: float, http10_alive: bool = False) -> None:
        self.cycle = cycle
        self.send = send
        self.timeout = timeout
        self.http10_alive = http10_alive
        if http10_alive:
            cycle.keep_alive = True

    async def __call__(self, message: Any) -> None:
        cycle = self.cycle
        if message["type"] == ZEROCOPY:
            await self._zerocopy(message)
            return
        if self.http10_alive and message["type"] == "http.response.start" and cycle.scope["method"] != "HEAD":
            sized = any(name.lower() == b"content-length" for name, _ in message.get("headers", []))
            if not sized and message["status"] not in (204, 304):
                cycle.keep_alive = False
        if cycle.flow.write_paused and not cycle.disconnected:
            await self._drain()
        await self.send(message)

    async def _drain(self) -> None:
        """Wait until the transport takes writes again; drop the client if it takes nothing for ``timeout``."""
        try:
            await asyncio.wait_for(self.cycle.flow.drain(), self.timeout)
        except TimeoutError:
            self._drop()

    async def _flushed(self) -> None:
        """Wait until the transport's write buffer is empty (what was written before goes out first):
        with its high-water mark at 0 for the while, the protocol is paused until the buffer is empty."""
        transport = self.cycle.transport
        if not transport.get_write_buffer_size():
            return
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0)
        try:
            await self._drain()
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=high, low=low)

    def _drop(self) -> None:
        cycle = self.cycle
        log.info("a client took no bytes of the answer for %.0f s: connection dropped (%s)", self.timeout,
                 cycle.scope.get("client"))  # fmt: skip
        cycle.disconnected = True  # nothing more is sent
        cycle.transport.abort()  # what is buffered will never go out: drop it

    async def _zerocopy(self, message: Any) -> None:
        cycle = self.cycle
        file = message["file"]
        fd = file if isinstance(file, int) else file.fileno()
        offset, count = message.get("offset") or 0, message.get("count")
        if count is None:
            count = os.fstat(fd).st_size - offset
        more_body = message.get("more_body", False)
        if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding is not False:
            raise RuntimeError("a zero-copy body needs a started response with a Content-Length")
        if count > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        transport = cycle.transport
        sock = transport.get_extra_info("socket")
        if not cycle.disconnected and not transport.is_closing():
            await self._flushed()
        if cycle.disconnected or transport.is_closing() or sock is None:
            return
        out = os.dup(sock.fileno())
        try:
            sent = 0
            while sent < count:
                sent += await run_in_threadpool(_sendfile, out, fd, offset + sent, count - sent)
                if sent < count:
                    try:
                        await fd_ready(out, write=True, timeout=self.timeout)
                    except TimeoutError:
                        self._drop()
                        return
        except (BrokenPipeError, ConnectionError):
            transport.close()  # the client went away: as uvicorn's send, nothing more is sent
            return
        except BaseException:
            transport.close()  # part of the body went out: the connection cannot go on
            raise
        finally:
            os.close(out)
        cycle.expected_content_length -= count
        if not more_body:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})


def _sendfile(out: int, fd: int, offset: int, count: int) -> int:
    """``sendfile`` while the socket takes bytes (for at most :data:`streams.TURN`); how many were sent."""
    sent = 0
    turn = Turn(out, select.POLLOUT)
    while sent < count:
        try:
            n = os.sendfile(out, fd, offset + sent, count - sent)
        except BlockingIOError:
            if not turn.wait():
                return sent
            continue
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                raise ConnectionError(str(exc)) from exc
            raise
        if n == 0:
            raise OSError(errno.EIO, "the file is shorter than the response says")
        sent += n
    return sent
