"""The raw format: reading a raw image, and writing any disk out as raw bytes.

Raw is how imagehop stores images (sparse on disk: zero blocks are holes), so the writer side
cares about not writing zeros: ``write_raw_sparse`` only writes non-zero blocks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from .digest import ContentDigest
from .disk import BLOCK_SIZE, ZERO_BLOCK, BufferRing, DiskBase, VirtualDisk, WriteBehind, check_limits, iter_blocks_into
from .source import Source, read_into, source_extents


class RawDisk(DiskBase):
    """A raw disk: the source's bytes are the disk. Holes of a sparse file are not read."""

    format = "raw"

    def __init__(
        self,
        source: Source,
        *,
        max_virtual_size: int | None = None,
        max_physical_size: int | None = None,
    ) -> None:
        self.source = source
        self.virtual_size = source.size
        check_limits(source.size, source.size, max_virtual_size, max_physical_size, "raw image")

    def extents(self) -> Iterator[tuple[int, int]]:
        return source_extents(self.source)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        data = self.source.pread(offset, length) if offset < self.virtual_size else b""
        if len(data) < length:
            data += bytes(length - len(data))
        return data

    def read_into(self, offset: int, buf: bytearray) -> None:
        view = memoryview(buf)
        got = read_into(self.source, offset, view) if offset < self.virtual_size else 0
        if got < len(buf):
            view[got:] = ZERO_BLOCK[: len(buf) - got] if len(buf) - got <= BLOCK_SIZE else bytes(len(buf) - got)


def iter_raw(disk: VirtualDisk, chunk_size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """The disk's bytes in order, exactly ``virtual_size`` of them, as chunks of ``chunk_size``.

    For streaming a raw image (an HTTP download). Blocks outside the data extents are not read;
    zero chunks are a shared buffer, so a sparse disk costs little CPU.
    """
    if chunk_size <= 0 or chunk_size % 512:
        raise ValueError("chunk_size must be a positive multiple of 512")
    size = disk.virtual_size
    zero = ZERO_BLOCK if chunk_size == BLOCK_SIZE else bytes(chunk_size)
    nonzero = disk.iter_blocks(chunk_size)
    pending = next(nonzero, None)
    for index in range(-(-size // chunk_size)):
        length = min(chunk_size, size - index * chunk_size)
        if pending is not None and pending[0] == index:
            data = pending[1]
            pending = next(nonzero, None)
            yield data if length == chunk_size else data[:length]
        else:
            yield zero if length == chunk_size else zero[:length]


def write_raw_sparse(
    disk: VirtualDisk,
    fd: int,
    *,
    on_block: Callable[[int, bytes], object] | None = None,
    digest: ContentDigest | None = None,
) -> int:
    """Write ``disk`` as a raw image into the open file ``fd``, leaving zero blocks as holes.

    The file is truncated first and ends exactly ``virtual_size`` bytes long; zero runs inside
    data blocks are skipped too (64 KiB granules), as ``qemu-img convert -S`` does. ``digest`` (a
    ``ContentDigest(disk.virtual_size, threads=2)``) gets every non-zero 2 MiB block in the same
    pass, hashed on its threads beside the reads and the writes; ``on_block`` is called with
    (index, bytes) for every non-zero block, in order, for any other use. The blocks are read into
    a few reused buffers and written on a thread behind the reads, as qemu-img does. Returns
    the number of data bytes written. Does not fsync.
    """
    size = disk.virtual_size
    if os.fstat(fd).st_size:
        os.ftruncate(fd, 0)
    os.ftruncate(fd, size)  # the final length at once: the writes behind land inside the file
    ring = BufferRing()
    writes = WriteBehind(fd)
    try:
        for index, buf in iter_blocks_into(disk, ring):
            hashed = digest.submit_block(index, buf) if digest is not None else None
            if on_block is not None:
                on_block(index, bytes(buf))
            offset = index * BLOCK_SIZE
            data = buf if offset + BLOCK_SIZE <= size else memoryview(buf)[: size - offset].tobytes()
            ring.hold(buf, (hashed, writes.write(data, offset)))
        ring.drain()
    except BaseException:
        writes.close()
        with contextlib.suppress(BaseException):
            ring.drain()
        raise
    return writes.finish()
