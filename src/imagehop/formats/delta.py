"""The delta stream of an incremental copy: the blocks of a new raw disk that a base does not hold.

``MAGIC``, then one record per non-zero 2 MiB block of the new disk in increasing index order: the
block's 8-byte big-endian index, its 32-byte SHA-256 (of the zero-padded block, as the content
digest hashes it), and one byte: ``0`` when the base holds a block with that hash (nothing follows),
``1`` when the block's bytes follow (2 MiB, or what is left of the disk for the last block).

Written by the client (``imagehop copy``) and read by the ``imagehop-delta`` import method.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from .disk import BLOCK_SIZE
from .errors import CORRUPT, DiskFormatError

MAGIC = b"IHDELTA1"
RECORD = struct.Struct(">Q32sB")
FROM_BASE, DATA = 0, 1

Record = tuple[int, bytes, bytes | None]  # (index, sha256, bytes; None: the base block with that hash)


def encode(records: Iterable[Record]) -> Iterator[bytes]:
    """The delta stream of ``records``, in pieces."""
    yield MAGIC
    for index, sha, block in records:
        yield RECORD.pack(index, sha, FROM_BASE if block is None else DATA)
        if block is not None:
            yield block


def encoded_size(records: Iterable[tuple[int, int | None]]) -> int:
    """Bytes of the stream of records given as (index, data length or None)."""
    return len(MAGIC) + sum(RECORD.size + (n or 0) for _, n in records)


def decode(chunks: Iterator[bytes], size: int) -> Iterator[Record]:
    """The records of a delta stream for a disk of ``size`` bytes; DiskFormatError when malformed."""
    reader = Exact(chunks)
    if reader.read(len(MAGIC)) != MAGIC:
        raise DiskFormatError(CORRUPT, "The staged data is not an imagehop delta stream (it must start with IHDELTA1)")
    while True:
        head = reader.read(RECORD.size, eof_ok=True)
        if not head:
            return
        index, sha, kind = RECORD.unpack(head)
        if kind == FROM_BASE:
            yield index, sha, None
        elif kind == DATA:
            length = min(BLOCK_SIZE, size - index * BLOCK_SIZE)
            if length <= 0:
                raise DiskFormatError(CORRUPT, f"Block {index} is outside a disk of {size} bytes")
            yield index, sha, reader.read(length)
        else:
            raise DiskFormatError(CORRUPT, f"Unknown record kind {kind} for block {index} in the delta stream")


class Exact:
    """Exactly ``n`` bytes at a time from chunks of any size."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = bytearray()

    def read(self, n: int, eof_ok: bool = False) -> bytes:
        while len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                if eof_ok and not self._buf:
                    return b""
                raise DiskFormatError(CORRUPT, "The delta stream ends in the middle of a record")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
