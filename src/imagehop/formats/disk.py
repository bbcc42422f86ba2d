"""The common shape of a readable virtual disk.

Every reader (raw, VHD, qcow2) answers the same questions: how big is the disk, which regions may
hold data (``extents``), what bytes are at an offset (``read``), and which fixed-size blocks are
non-zero (``iter_blocks``). Writers and the content digest only use these, so they work for any
input format.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, Self, runtime_checkable

from .errors import PHYSICAL_SIZE_TOO_LARGE, VIRTUAL_SIZE_TOO_LARGE, DiskFormatError
from .source import Source

SECTOR = 512
BLOCK_SIZE = 2 * 1024 * 1024  # the unit of the content digest and of VHD blocks we write
ZERO_BLOCK = bytes(BLOCK_SIZE)  # compare against this (bytes == bytes is a memcmp)
HOLE_GRANULE = 64 * 1024  # zero runs this size and aligned are left as holes when writing sparse


@runtime_checkable
class VirtualDisk(Protocol):
    """A virtual disk, whatever the container format.

    ``extents()`` yields sorted, non-overlapping (virtual offset, length) ranges; everything
    outside them reads as zeros. ``read`` returns exactly ``length`` bytes (zeros past the end of
    the disk). ``iter_blocks`` yields (block index, block bytes) in increasing index order for
    blocks that may be non-zero; block bytes are always ``block_size`` long, the last block
    zero-padded.
    """

    format: str
    virtual_size: int

    def extents(self) -> Iterator[tuple[int, int]]: ...

    def read(self, offset: int, length: int) -> bytes: ...

    def iter_blocks(self, block_size: int = BLOCK_SIZE) -> Iterator[tuple[int, bytes]]: ...


def iter_blocks_into(disk: VirtualDisk, ring: BufferRing) -> Iterator[tuple[int, bytearray]]:
    """``disk.iter_blocks_into(ring)`` for a reader that has it, else its blocks copied into the ring."""
    own = getattr(disk, "iter_blocks_into", None)
    if own is not None:
        yield from own(ring)
        return
    for index, data in disk.iter_blocks(ring.size):
        buf = ring.take()
        buf[:] = data
        yield index, buf


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def zeros(length: int) -> bytes:
    """``length`` zero bytes, without allocating for the common block-sized case."""
    return ZERO_BLOCK if length == BLOCK_SIZE else bytes(length)


def is_zero(data: bytes | bytearray) -> bool:
    """True if ``data`` is all zero bytes (a memcmp; never pass a memoryview)."""
    n = len(data)
    if n == BLOCK_SIZE:
        return data == ZERO_BLOCK
    if n < BLOCK_SIZE:
        return data == ZERO_BLOCK[:n] if n > 4096 else not any(data)
    return all(data[i : i + BLOCK_SIZE] == ZERO_BLOCK[: min(BLOCK_SIZE, n - i)] for i in range(0, n, BLOCK_SIZE))


def block_indexes(extents: Iterable[tuple[int, int]], block_size: int) -> Iterator[int]:
    """Indexes of the ``block_size`` blocks touched by sorted extents, each once, in order."""
    last = -1
    for offset, length in extents:
        if length <= 0:
            continue
        first = max(offset // block_size, last + 1)
        end = (offset + length - 1) // block_size
        yield from range(first, end + 1)
        last = max(last, end)


def merge_extents(extents: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Join touching ranges of a sorted extent list."""
    cur_start = cur_end = -1
    for offset, length in extents:
        if length <= 0:
            continue
        if offset <= cur_end:
            cur_end = max(cur_end, offset + length)
            continue
        if cur_end > cur_start:
            yield (cur_start, cur_end - cur_start)
        cur_start, cur_end = offset, offset + length
    if cur_end > cur_start:
        yield (cur_start, cur_end - cur_start)


def check_limits(
    virtual_size: int,
    physical_size: int,
    max_virtual_size: int | None,
    max_physical_size: int | None,
    what: str,
) -> None:
    if max_physical_size is not None and physical_size > max_physical_size:
        raise DiskFormatError(
            PHYSICAL_SIZE_TOO_LARGE,
            f"The {what} file is {physical_size} bytes, more than the limit of {max_physical_size}",
        )
    if max_virtual_size is not None and virtual_size > max_virtual_size:
        raise DiskFormatError(
            VIRTUAL_SIZE_TOO_LARGE,
            f"The {what} virtual size is {virtual_size} bytes, more than the limit of {max_virtual_size}",
        )


class DiskBase:
    """Shared behaviour: ``iter_blocks`` from ``extents`` + ``read``, and closing the source."""

    format: str = ""
    virtual_size: int = 0
    source: Source

    def extents(self) -> Iterator[tuple[int, int]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def read(self, offset: int, length: int) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def iter_blocks(self, block_size: int = BLOCK_SIZE) -> Iterator[tuple[int, bytes]]:
        """Yield (index, block) for blocks inside the data extents that are not all zeros."""
        if block_size <= 0 or block_size % SECTOR:
            raise ValueError("block_size must be a positive multiple of 512")
        for index in block_indexes(self.extents(), block_size):
            data = self.read(index * block_size, block_size)
            if not is_zero(data):
                yield index, data

    def read_into(self, offset: int, buf: bytearray) -> None:
        """Fill ``buf`` with the disk's bytes at ``offset`` (zeros past the end). Readers that can
        read straight into the buffer override this; the default copies what ``read`` returns."""
        buf[:] = self.read(offset, len(buf))

    def iter_blocks_into(self, ring: BufferRing) -> Iterator[tuple[int, bytearray]]:
        """``iter_blocks`` into reused buffers of ``ring`` (each ``ring.size`` long): no fresh 2 MiB
        allocation per block, whose page faults cost as much as the copy. The consumer hands each
        yielded buffer back with ``ring.hold(buf, futures)`` (or ``ring.release(buf)``) before the
        next one; it is reused once those futures are done."""
        block_size = ring.size
        for index in block_indexes(self.extents(), block_size):
            buf = ring.take()
            try:
                self.read_into(index * block_size, buf)
            except BaseException:
                ring.release(buf)
                raise
            if buf == ZERO_BLOCK if block_size == BLOCK_SIZE else is_zero(buf):
                ring.release(buf)
                continue
            yield index, buf

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.format} virtual_size={self.virtual_size}>"


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    """``os.pwrite`` until everything is written."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _zero_granule(data: bytes | bytearray, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` is all zeros: the first and last bytes answer for almost every
    granule of real data without a copy; only a granule that starts and ends with zeros is compared."""
    if data[start] or data[end - 1]:
        return False
    return data[start:end] == ZERO_BLOCK[: end - start]


def pwrite_sparse(fd: int, data: bytes | bytearray, offset: int) -> int:
    """Write ``data`` at ``offset`` but skip 64 KiB-aligned runs of zeros (they stay holes).

    The target range must read as zeros already (a freshly truncated file). Returns the number
    of bytes actually written. ``data`` must be ``bytes`` or ``bytearray`` (slices compare with a
    memcmp; a memoryview's would crawl).
    """
    n = len(data)
    view = memoryview(data)
    written = 0
    run_start = -1
    for start in range(0, n, HOLE_GRANULE):
        end = min(start + HOLE_GRANULE, n)
        if _zero_granule(data, start, end):
            if run_start >= 0:
                pwrite_all(fd, view[run_start:start], offset + run_start)
                written += start - run_start
                run_start = -1
        elif run_start < 0:
            run_start = start
    if run_start >= 0:
        pwrite_all(fd, view[run_start:], offset + run_start)
        written += n - run_start
    return written


class BufferRing:
    """A few reusable block buffers for a pipeline: read into one, hand it to threads (hashing,
    writing), and it comes back for reuse once their futures are done. Bounds the memory of the
    pipeline at ``count`` blocks, and its work in flight with it."""

    def __init__(self, count: int = 8, size: int = BLOCK_SIZE) -> None:
        self.size = size
        self._free: deque[bytearray] = deque(bytearray(size) for _ in range(count))
        self._held: deque[tuple[bytearray, list[Future[Any]]]] = deque()

    def take(self) -> bytearray:
        if self._free:
            return self._free.popleft()
        buf, futures = self._held.popleft()
        try:
            for future in futures:
                future.result()
        except BaseException:
            self._free.append(buf)
            raise
        return buf

    def hold(self, buf: bytearray, futures: Iterable[Future[Any] | None]) -> None:
        self._held.append((buf, [f for f in futures if f is not None]))

    def release(self, buf: bytearray) -> None:
        self._free.append(buf)

    def drain(self) -> None:
        """Wait for all work on the buffers; the first error is raised (after waiting for all)."""
        error: BaseException | None = None
        while self._held:
            buf, futures = self._held.popleft()
            for future in futures:
                exc = future.exception()
                error = error or exc
            self._free.append(buf)
        if error is not None:
            raise error


class WriteBehind:
    """``pwrite_sparse`` on a worker thread, so the kernel's copy into the page cache overlaps the
    next read and the hashing (``os.pwrite`` releases the GIL), as qemu-img moves its writes off its
    main loop. One thread by default: the file system takes the inode lock for each buffered write
    anyway, so a second writer would only wait for it. ``write`` returns the write's future (hold
    the buffer until it is done, see :class:`BufferRing`); ``finish()`` waits for every write and
    returns the bytes written, raising the error of any failed write."""

    def __init__(self, fd: int, *, threads: int = 1) -> None:
        self.fd = fd
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="write-behind")
        self._pending: deque[Future[int]] = deque()
        self._written = 0

    def write(self, data: bytes | bytearray | memoryview, offset: int, *, sparse: bool = True) -> Future[int]:
        while self._pending and self._pending[0].done():
            self._written += self._pending.popleft().result()
        future = self._pool.submit(pwrite_sparse if sparse else _pwrite_counted, self.fd, data, offset)
        self._pending.append(future)
        return future

    def finish(self) -> int:
        try:
            while self._pending:
                self._written += self._pending.popleft().result()
        finally:
            self.close()
        return self._written

    def close(self) -> None:
        """Wait for the writes in flight (errors dropped: ``finish`` raises them) and stop the threads."""
        for future in self._pending:
            future.exception()
        self._pending.clear()
        self._pool.shutdown()


def _pwrite_counted(fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
    pwrite_all(fd, data, offset)
    return len(data)
