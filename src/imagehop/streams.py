"""Request bodies into blocking writers: the one bridge from the event loop to the disk.

Object and image uploads arrive as many small chunks on the event loop, while writing and hashing
are blocking work. Gathering the chunks into ~1 MiB pieces and handing each piece to a worker
thread keeps the loop free and the per-call overhead small; memory stays at one piece per upload.

:func:`receive_body` does better where the server lets it (``http_protocol.DirectBody``: a
``Content-Length`` body over plain TCP): the loop only waits for the socket to be readable, and a
worker thread reads the bytes with ``readv`` straight into two reused 1 MiB buffers and hands each
full one to the writer in the same call, so the bytes are copied once (kernel to buffer) and no
per-chunk Python object is made; the hashing of one buffer overlaps the filling of the other.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

PIECE = 1 << 20
DIRECT_MIN = 256 << 10  # smaller bodies are not worth a descriptor and a thread hop
STALL = 0.005  # seconds a reading thread waits for more bytes before handing the wait back to the loop
TURN = 0.25  # seconds at most one thread call keeps reading a trickling client


class Turn:
    """One worker-thread call's time with a non-blocking descriptor: when it is not ready, a wait of
    at most :data:`STALL`, and at most :data:`TURN` in all, then the caller hands the wait to the loop."""

    def __init__(self, fd: int, event: int) -> None:
        self.fd, self.event = fd, event
        self.deadline = time.monotonic() + TURN
        self.poller: select.poll | None = None

    def wait(self) -> bool:
        """Whether the descriptor became ready soon enough to go on in this call."""
        if self.poller is None:
            self.poller = select.poll()
            self.poller.register(self.fd, self.event)
        return bool(self.poller.poll(STALL * 1000)) and time.monotonic() <= self.deadline


class BodyTimeout(Exception):
    """The client sent no bytes of the body for ``seconds``: answer 408 (the connection then closes)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no body bytes arrived for {seconds:g} seconds")
        self.seconds = seconds


class BodyTooLarge(Exception):
    """More than ``limit`` bytes arrived; nothing past the limit was written."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes")
        self.limit = limit


async def pump(chunks: AsyncIterator[bytes], write: Callable[[bytes], None], *, limit: int, piece: int = PIECE) -> int:
    """Feed ``chunks`` to ``write`` (in a worker thread) in ``piece``-byte pieces; the byte count."""
    received = 0
    buffer = bytearray()
    async for chunk in chunks:
        if not chunk:
            continue
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(limit)
        buffer += chunk
        if len(buffer) >= piece:
            data = bytes(buffer)
            buffer.clear()
            await run_in_threadpool(write, data)
    if buffer:
        await run_in_threadpool(write, bytes(buffer))
    return received


async def receive_body(request: Request, write: Callable[[bytearray | bytes], None], *, length: int | None,
                       limit: int) -> int:  # fmt: skip
    """The whole body of ``request`` fed to ``write`` in pieces; the byte count.

    ``write`` gets pieces aligned on the body's 1 MiB offsets. A piece may be a buffer that is
    reused: it must not be kept, and whatever ``write`` started over it (hashing in another thread)
    must be done by the time the next ``write`` call returns. A body with a declared ``length`` is
    read from the socket directly when the server allows it, else through :func:`pump`.
    """
    from imagehop.http_protocol import DIRECT_BODY

    direct = request.scope.get("extensions", {}).get(DIRECT_BODY)
    taken = direct.take(length) if direct is not None and length is not None and DIRECT_MIN <= length <= limit else None
    if taken is None:
        return await pump(request.stream(), write, limit=limit)
    buffered, left, fd = taken
    try:
        received = 0
        buffers = [bytearray(PIECE), bytearray(PIECE)]
        turn = 0
        filled = 0
        if len(buffered) >= PIECE:  # not with uvicorn's 64 KiB high-water mark; kept correct anyway
            await run_in_threadpool(write, buffered)
            received = len(buffered)
        elif buffered:  # the start of the first piece
            buffers[0][: len(buffered)] = buffered
            filled = len(buffered)
            left += filled
        while left:
            want = min(left, PIECE - received % PIECE)  # up to the next 1 MiB offset of the body
            filled = await run_in_threadpool(_fill_and_write, fd, buffers[turn], filled, want, write)
            if filled == want:
                received += want
                left -= want
                filled = 0
                turn ^= 1
            else:
                try:
                    await fd_ready(fd, timeout=direct.protocol.body_timeout)
                except TimeoutError:
                    raise BodyTimeout(direct.protocol.body_timeout) from None
        direct.finish()
        return received
    except BaseException:
        direct.fail()
        raise


def _fill_and_write(fd: int, buffer: bytearray, filled: int, want: int, write: Callable[[bytearray | bytes], None]
                    ) -> int:  # fmt: skip
    """Read into ``buffer[filled:want]`` while bytes keep coming; once it holds ``want`` bytes, write them.
    Returns how many bytes it holds (a short count: the caller waits for the socket, then calls again)."""
    view = memoryview(buffer)
    try:
        turn = Turn(fd, select.POLLIN)
        while filled < want:
            try:
                n = os.readv(fd, [view[filled:want]])
            except BlockingIOError:
                if not turn.wait():
                    return filled
                continue
            except OSError as exc:  # reset by the peer
                raise ClientDisconnect() from exc
            if n == 0:
                raise ClientDisconnect()
            filled += n
        # a whole buffer as it is; a short piece (the body's last, or its first up to a 1 MiB
        # offset when uvicorn had buffered more than that) as a copy
        write(buffer if want == len(buffer) else view[:want].tobytes())
    finally:
        view.release()
    return want


async def fd_ready(fd: int, *, write: bool = False, timeout: float | None = None) -> None:
    """Wait on the event loop, not in a thread, until ``fd`` has bytes (or an end) to read, or with
    ``write`` room to write; :class:`TimeoutError` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    add, remove = (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)
    add(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        remove(fd)
