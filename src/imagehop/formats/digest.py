"""The content digest: one fingerprint for a disk's content, whatever its container format.

Definition (v1, see DESIGN.md): split the virtual disk into 2 MiB blocks, the last one
zero-padded; skip blocks that are all zeros; SHA-256 over, for each non-zero block in order, its
8-byte big-endian index followed by the 32-byte SHA-256 of the block; then the 8-byte big-endian
virtual size rounded up to a whole 512-byte sector. Written as ``sha256:<hex>``.

A raw file, a fixed or dynamic VHD and a qcow2 of the same disk give the same digest, because
only the virtual content and the (sector-rounded) size go in.

Hashing the blocks is the expensive part (~1.5 GB/s per core). The per-block hashes are
independent, so ``threads=N`` computes them on N worker threads (hashlib releases the GIL) while
the caller goes on reading and writing; the outer hash is still fed strictly in order.

The same pass yields the *block map*: (index, SHA-256) of every non-zero block, what the digest is
made of. Stored beside an image, it lets another region compare two images block by block without
reading them (incremental copies) and an exporter know the allocated blocks without a scan.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .disk import BLOCK_SIZE, SECTOR, ZERO_BLOCK, VirtualDisk, round_up

DIGEST_BLOCK_SIZE = BLOCK_SIZE
PREFIX = "sha256:"

_INDEX = struct.Struct(">Q")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class BlockMap:
    """The (index, SHA-256) of every non-zero 2 MiB block of a disk, in index order, with the disk's
    virtual size and content digest (which the map determines: :meth:`check` recomputes it)."""

    virtual_size: int
    content_digest: str
    indexes: array  # array("q"), increasing
    hashes: bytes  # 32 bytes per block, in the order of ``indexes``

    def __len__(self) -> int:
        return len(self.indexes)

    @property
    def block_count(self) -> int:
        """Blocks of the whole disk, zeros included."""
        return -(-round_up(self.virtual_size, SECTOR) // BLOCK_SIZE)

    def items(self) -> Iterator[tuple[int, bytes]]:
        hashes = self.hashes
        for n, index in enumerate(self.indexes):
            yield index, hashes[32 * n : 32 * n + 32]

    def by_hash(self) -> dict[bytes, int]:
        """Each block hash and the first index holding it."""
        out: dict[bytes, int] = {}
        for index, sha in self.items():
            out.setdefault(sha, index)
        return out

    def block_length(self, index: int) -> int:
        """The bytes of the disk in block ``index`` (the last block may be short)."""
        return max(0, min(BLOCK_SIZE, self.virtual_size - index * BLOCK_SIZE))

    def check(self) -> None:
        """ValueError unless the entries are in order, inside the disk, and give the content digest."""
        if len(self.hashes) != 32 * len(self.indexes):
            raise ValueError("a block map needs one 32-byte hash per block")
        if digest_of_blocks(self.items(), self.virtual_size) != self.content_digest:
            raise ValueError("the block map does not give the content digest it claims")

    @classmethod
    def from_items(cls, virtual_size: int, items: Iterable[tuple[int, bytes]], content_digest: str = "") -> BlockMap:
        """A map from (index, sha256) pairs in increasing index order; the digest is computed when
        not given (give it to have :meth:`check` compare)."""
        indexes, hashes = array("q"), bytearray()
        last, count = -1, -(-round_up(virtual_size, SECTOR) // BLOCK_SIZE)
        for index, sha in items:
            if not last < index < count or len(sha) != 32:
                raise ValueError(f"block map entry {index} is out of order, outside the disk, or not a SHA-256")
            indexes.append(index)
            hashes += sha
            last = index
        made = cls(virtual_size, content_digest, indexes, bytes(hashes))
        if not content_digest:
            made = cls(virtual_size, digest_of_blocks(made.items(), virtual_size), indexes, made.hashes)
        return made


def digest_of_blocks(items: Iterable[tuple[int, bytes]], virtual_size: int) -> str:
    """The content digest of a disk given the (index, sha256) of its non-zero blocks, in order."""
    outer = hashlib.sha256()
    for index, sha in items:
        outer.update(_INDEX.pack(index) + sha)
    outer.update(_INDEX.pack(round_up(virtual_size, SECTOR)))
    return PREFIX + outer.hexdigest()


class _BlockHasher:
    """The outer hash, fed (index, sha256(block)) in order; block hashes maybe on threads. Keeps
    the block hashes (32 bytes per non-zero block) for the block map."""

    def __init__(self, threads: int) -> None:
        self.outer = hashlib.sha256()
        self.threads = threads
        self.hashes = bytearray()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[int, Future[bytes]]] = deque()

    def _feed(self, index: int, sha: bytes) -> None:
        self.outer.update(_INDEX.pack(index) + sha)
        self.hashes += sha

    def add(self, index: int, block: bytes | bytearray) -> Future[bytes] | None:
        """``block`` must not change until the returned future is done (None: hashed already)."""
        if not self.threads:
            self._feed(index, _sha256(block))
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="content-digest")
        future = self._pool.submit(_sha256, block)
        self._pending.append((index, future))
        while len(self._pending) > 2 * self.threads:  # bounded: a few blocks in flight
            self._drain_one()
        return future

    def _drain_one(self) -> None:
        index, future = self._pending.popleft()
        self._feed(index, future.result())

    def settle(self) -> None:
        """Wait for every block hash and stop the worker threads (they restart if needed)."""
        while self._pending:
            self._drain_one()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class ContentDigest:
    """Incremental content digest, fed one 2 MiB block at a time in increasing index order.

    All-zero blocks may be passed (they are skipped) or left out; the result is the same.
    ``nonzero_blocks`` lists the indexes that went into the digest: an exporter can use it as
    the allocation map of the disk, so it need not read the disk twice. With ``threads`` > 0 the
    block hashes run on worker threads; blocks given as ``bytes`` are not copied, so do not
    reuse a buffer you passed as ``bytes`` (``bytearray``/``memoryview`` input is copied).
    """

    def __init__(self, virtual_size: int, *, threads: int = 0) -> None:
        if virtual_size < 0:
            raise ValueError("virtual size must not be negative")
        self.virtual_size = virtual_size
        self.sector_size = round_up(virtual_size, SECTOR)
        self.block_count = -(-self.sector_size // BLOCK_SIZE)
        self.nonzero_blocks = array("q")
        self._hasher = _BlockHasher(threads)
        self._last = -1

    def update_block(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        """Add block ``index``; return True if it was non-zero (and so went into the digest).

        ``data`` is the block's bytes: exactly 2 MiB, or shorter for the last block (it is
        zero-padded, as the definition says).
        """
        if index <= self._last:
            raise ValueError(f"block {index} fed after block {self._last}; feed in order")
        if not 0 <= index < self.block_count:
            raise ValueError(f"block {index} is outside a disk of {self.block_count} blocks")
        if not isinstance(data, bytes):  # memoryview == bytes is an element-wise crawl
            data = bytes(data)
        n = len(data)
        if n > BLOCK_SIZE:
            raise ValueError(f"block {index} is {n} bytes, more than {BLOCK_SIZE}")
        tail = self.virtual_size - index * BLOCK_SIZE  # bytes of the disk in this block
        if n < BLOCK_SIZE or tail < n:  # the last block: zero-padded from the end of the disk
            data = data[: min(n, tail)] + ZERO_BLOCK[: BLOCK_SIZE - min(n, tail)]
        self._last = index
        if data == ZERO_BLOCK:
            return False
        self.nonzero_blocks.append(index)
        self._hasher.add(index, data)
        return True

    def submit_block(self, index: int, buf: bytearray) -> Future[bytes] | None:
        """``update_block`` without copying a reused buffer: ``buf`` is hashed as it is (on the
        worker threads when there are some), so it must not change until the returned future is
        done (None: nothing in flight). For pipelines over a :class:`~.disk.BufferRing`."""
        n = len(buf)
        if index <= self._last or not 0 <= index < self.block_count or n != BLOCK_SIZE:
            self.update_block(index, bytes(buf))  # the checks, and the zero-padded last block
            return None
        if self.virtual_size - index * BLOCK_SIZE < n:  # the last block, past the disk's end
            self.update_block(index, bytes(buf))
            return None
        self._last = index
        if buf == ZERO_BLOCK:  # bytearray vs bytes: memcmp
            return None
        self.nonzero_blocks.append(index)
        return self._hasher.add(index, buf)

    def hexdigest(self) -> str:
        """``sha256:<hex>``. May be called at any time; feeding can continue afterwards."""
        self._hasher.settle()
        final = self._hasher.outer.copy()
        final.update(_INDEX.pack(self.sector_size))
        return PREFIX + final.hexdigest()

    def block_map(self) -> BlockMap:
        """The blocks fed so far as a :class:`BlockMap` (with the digest of those blocks)."""
        digest = self.hexdigest()
        return BlockMap(self.virtual_size, digest, array("q", self.nonzero_blocks), bytes(self._hasher.hashes))


def content_digest(disk: VirtualDisk, *, threads: int = 1) -> str:
    """The content digest of a disk, reading only blocks that may hold data.

    By default the hashing runs on one worker thread, overlapping with the reads.
    """
    return block_map(disk, threads=threads).content_digest


def block_map(disk: VirtualDisk, *, threads: int = 1) -> BlockMap:
    """The block map (and so the content digest) of a disk, in one read of its possible data."""
    digest = ContentDigest(disk.virtual_size, threads=threads)
    for index, data in disk.iter_blocks(BLOCK_SIZE):
        digest.update_block(index, data)
    return digest.block_map()


class RawStreamDigest:
    """Content digest of a raw disk image arriving as a byte stream in chunks of any size.

    ``feed`` bytes in order (an HTTP upload, a pipe); ``finish()`` returns the digest and the
    virtual size (the number of bytes fed, not rounded). Memory: one 2 MiB buffer, plus a few
    blocks in flight with ``threads`` > 0.
    """

    def __init__(self, *, threads: int = 0) -> None:
        self._buf = bytearray(BLOCK_SIZE)
        self._fill = 0
        self._index = 0
        self._hasher = _BlockHasher(threads)
        self.nonzero_blocks = array("q")
        self.size = 0
        self._result: str | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._result is not None:
            raise ValueError("feed() after finish()")
        view = memoryview(chunk).cast("B")
        total = len(view)
        self.size += total
        pos = 0
        buf = self._buf
        while pos < total:
            take = min(BLOCK_SIZE - self._fill, total - pos)
            buf[self._fill : self._fill + take] = view[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == BLOCK_SIZE:
                self._add_block()
                self._fill = 0

    def _add_block(self) -> None:
        if self._buf != ZERO_BLOCK:  # bytearray vs bytes: memcmp
            self.nonzero_blocks.append(self._index)
            # the buffer is reused: hash it now, or hand a copy to the worker threads
            self._hasher.add(self._index, bytes(self._buf) if self._hasher.threads else self._buf)
        self._index += 1

    def finish(self) -> tuple[str, int]:
        """Return (``sha256:<hex>``, virtual size in bytes)."""
        if self._result is None:
            if self._fill:
                self._buf[self._fill :] = ZERO_BLOCK[: BLOCK_SIZE - self._fill]
                self._add_block()
                self._fill = 0
            self._hasher.settle()
            self._hasher.outer.update(_INDEX.pack(round_up(self.size, SECTOR)))
            self._result = PREFIX + self._hasher.outer.hexdigest()
        return self._result, self.size

    def block_map(self) -> BlockMap:
        """The stream's block map; call after :meth:`finish`."""
        digest, size = self.finish()
        return BlockMap(size, digest, array("q", self.nonzero_blocks), bytes(self._hasher.hashes))
