"""The common shape of a readable virtual disk.

Every reader (raw, VHD, qcow2) answers the same questions: how big is the disk, which regions may
hold data (``extents``), what bytes are at an offset (``read``), and which fixed-size blocks are
non-zero (``iter_blocks``). Writers and the content digest only use these, so they work for any
input format.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Protocol, Self, runtime_checkable

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


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """``os.pwrite`` until everything is written."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def pwrite_sparse(fd: int, data: bytes, offset: int) -> int:
    """Write ``data`` at ``offset`` but skip 64 KiB-aligned runs of zeros (they stay holes).

    The target range must read as zeros already (a freshly truncated file). Returns the number
    of bytes actually written. ``data`` must be ``bytes`` (slices compare with a memcmp).
    """
    n = len(data)
    view = memoryview(data)
    written = 0
    run_start = -1
    zero = ZERO_BLOCK[:HOLE_GRANULE]
    for start in range(0, n, HOLE_GRANULE):
        end = min(start + HOLE_GRANULE, n)
        if data[start:end] == (zero if end - start == HOLE_GRANULE else zero[: end - start]):
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
