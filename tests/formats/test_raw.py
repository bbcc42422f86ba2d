"""Reading raw images (sparse-aware) and writing disks out as raw."""

from __future__ import annotations

import hashlib
import os

from imagehop.formats import (
    BytesSource,
    ContentDigest,
    FileSource,
    RawDisk,
    file_data_extents,
    iter_raw,
    open_file,
    write_raw_sparse,
)
from tests.support import MiB


def test_extents_follow_the_holes_of_a_sparse_file(sample):
    with open_file(sample.path) as disk:
        assert disk.format == "raw"
        assert disk.virtual_size == sample.size
        extents = list(disk.extents())
    covered = sum(length for _, length in extents)
    assert covered < 20 * MiB  # ~14 MiB written into a 100 MiB file
    for offset, length, _kind in [(3 * MiB, 5 * MiB, ""), (sample.size - 234, 234, "")]:
        assert any(s <= offset and offset + length <= s + n for s, n in extents)
    # everything outside the extents reads as zeros
    pos = 0
    for start, length in extents:
        assert sample.data[pos:start].count(0) == start - pos
        pos = start + length
    assert sample.data[pos:].count(0) == sample.size - pos


def test_file_data_extents_of_a_dense_file_and_an_empty_one(tmp_path):
    dense = tmp_path / "dense"
    dense.write_bytes(b"x" * 10000)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with FileSource(dense) as src:
        assert list(file_data_extents(src.fd)) == [(0, 10000)]
    with FileSource(empty) as src:
        assert list(src.extents()) == []


def test_read_pads_zeros_past_the_end():
    disk = RawDisk(BytesSource(b"abc"))
    assert disk.read(1, 5) == b"bc\0\0\0"
    assert disk.read(10, 2) == b"\0\0"
    assert list(disk.extents()) == [(0, 3)]


def test_iter_raw_reproduces_the_disk_byte_for_byte(sample):
    with open_file(sample.path) as disk:
        chunks = list(iter_raw(disk))
    assert max(len(c) for c in chunks) <= 2 * MiB
    assert sum(len(c) for c in chunks) == sample.size
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(sample.data).digest()


def test_write_raw_sparse_leaves_holes_and_feeds_the_digest(sample, tmp_path):
    out = tmp_path / "out.raw"
    out.write_bytes(b"old content that must go" * 1000)
    digest = ContentDigest(sample.size)
    with open_file(sample.path) as disk, open(out, "r+b") as f:
        written = write_raw_sparse(disk, f.fileno(), on_block=digest.update_block)
    assert out.stat().st_size == sample.size
    assert out.read_bytes() == sample.data
    assert digest.hexdigest() == sample.digest
    # only non-zero blocks were written: the explicit 4 MiB zero run and the holes are not
    assert written <= len(sample.nonzero_blocks) * 2 * MiB
    assert out.stat().st_blocks * 512 <= written + MiB
    assert written < 13 * MiB  # ~10 MiB of data: zero runs inside blocks are holes too
    assert os.path.getsize(out) == sample.size


def test_write_raw_sparse_through_many_more_blocks_than_buffers(tmp_path):
    # 40 distinct data blocks through the import's few reused buffers, hashed on threads and
    # written behind: a buffer reused before its hash or write was done would change the digest
    # or the bytes.
    from tests.support import reference_digest

    size = 96 * MiB
    src, out = tmp_path / "in.raw", tmp_path / "out.raw"
    with open(src, "wb") as f:
        for i in range(40):
            f.seek((i * 2 + (i % 3)) * MiB if i * 2 + 3 < 96 else i * MiB)
            f.write(hashlib.sha256(str(i).encode()).digest() * (MiB // 32))
        f.truncate(size)
    data = src.read_bytes()
    digest = ContentDigest(size, threads=2)
    with open_file(src) as disk, open(out, "wb") as f:
        write_raw_sparse(disk, f.fileno(), digest=digest)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert digest.hexdigest() == reference_digest(data, size)


def test_a_buffer_comes_back_only_when_the_work_holding_it_is_done(tmp_path):
    import threading
    from concurrent.futures import Future

    import pytest

    from imagehop.formats.disk import BufferRing, WriteBehind

    ring = BufferRing(count=1, size=4096)
    buf = ring.take()
    pending: Future[int] = Future()
    ring.hold(buf, [pending, None])
    threading.Thread(target=pending.set_result, args=(1,)).start()
    assert ring.take() is buf  # waited for the hash or write that held it
    assert pending.done()
    failed: Future[int] = Future()
    failed.set_exception(OSError("disk full"))
    ring.hold(buf, [failed])
    with pytest.raises(OSError, match="disk full"):
        ring.take()
    # a write that fails behind the reads is raised by finish(), not lost
    path = tmp_path / "read-only"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    try:
        writes = WriteBehind(fd)
        writes.write(b"x" * 4096, 0)
        with pytest.raises(OSError):
            writes.finish()
    finally:
        os.close(fd)
