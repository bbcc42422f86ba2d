"""The one disk generator, and the content digest computed independently of the code under test.

A disk is described by a layout: ``(offset, length, kind)`` pieces over a zero background, kind
``"random"`` (seeded, so reproducible) or ``"zeros"`` (written zeros: allocated but zero). The
default layout mixes what the formats must get right: data at the start, runs inside and across
2 MiB blocks, whole zero blocks, unaligned pieces, and bytes at the very end.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.sizes import BLOCK, SECTOR, KiB, MiB

Layout = Sequence[tuple[int, int, str]]


def default_layout(size: int) -> list[tuple[int, int, str]]:
    """Random 2 MiB runs every 4 MiB (from 0), plus a 4 KiB piece inside a block and the last 1000 bytes."""
    pieces = [(start, 2 * MiB, "random") for start in range(0, size, 4 * MiB)]
    pieces += [(3 * MiB + 4 * KiB, 4 * KiB, "random"), (max(0, size - 1000), 1000, "random")]
    return [(o, min(n, size - o), k) for o, n, k in pieces if o < size]


def _pieces(size: int, seed: int, layout: Layout | None) -> Iterator[tuple[int, bytes]]:
    rng = random.Random(seed)
    for offset, length, kind in default_layout(size) if layout is None else layout:
        if offset + length > size:
            raise ValueError(f"piece ({offset}, {length}) ends past the disk's {size} bytes")
        yield offset, rng.randbytes(length) if kind == "random" else bytes(length)


def disk_bytes(size: int, seed: int = 0, layout: Layout | None = None) -> bytes:
    """A raw disk of ``size`` bytes in memory."""
    data = bytearray(size)
    for offset, piece in _pieces(size, seed, layout):
        data[offset : offset + len(piece)] = piece
    return bytes(data)


def write_disk(path: Path, size: int, seed: int = 0, layout: Layout | None = None) -> Path:
    """The same disk as ``disk_bytes`` with the same arguments, as a sparse file (holes between pieces)."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, piece in _pieces(size, seed, layout):
            f.seek(offset)
            f.write(piece)
    return path


def reference_digest(data: bytes, virtual_size: int | None = None) -> str:
    """The content digest straight from DESIGN.md's definition, with hashlib only (never our code)."""
    virtual_size = len(data) if virtual_size is None else virtual_size
    sector_size = -(-virtual_size // SECTOR) * SECTOR
    data = data[:virtual_size].ljust(sector_size, b"\0")
    outer = hashlib.sha256()
    for index in range(-(-sector_size // BLOCK)):
        block = data[index * BLOCK : (index + 1) * BLOCK].ljust(BLOCK, b"\0")
        if block.count(0) != BLOCK:
            outer.update(struct.pack(">Q", index) + hashlib.sha256(block).digest())
    outer.update(struct.pack(">Q", sector_size))
    return "sha256:" + outer.hexdigest()
