"""Request bodies into blocking writers: the one bridge from the event loop to the disk.

Object and image uploads arrive as many small chunks on the event loop, while writing and hashing
are blocking work. Gathering the chunks into ~1 MiB pieces and handing each piece to a worker
thread keeps the loop free and the per-call overhead small; memory stays at one piece per upload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool

PIECE = 1 << 20


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
