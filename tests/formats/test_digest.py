"""The content digest against its definition (computed here by hand with hashlib)."""

from __future__ import annotations

import hashlib
import random
import struct

import pytest

from imagehop.formats import BytesSource, ContentDigest, RawDisk, RawStreamDigest, content_digest
from tests.support import BLOCK, MiB


def test_tiny_disk_matches_the_definition_by_hand():
    # 5 MiB + 100 bytes: block 0 has one byte set, block 1 is zeros, block 2 is partial.
    size = 5 * MiB + 100
    disk = bytearray(size)
    disk[10] = 0x01
    disk[size - 1] = 0xFF
    block0 = bytes(disk[0:BLOCK])
    block2 = bytes(disk[2 * BLOCK :]) + bytes(3 * BLOCK - size)  # zero-padded to 2 MiB
    assert len(block2) == BLOCK
    expected = hashlib.sha256(
        (0).to_bytes(8, "big")
        + hashlib.sha256(block0).digest()
        + (2).to_bytes(8, "big")
        + hashlib.sha256(block2).digest()
        + (5 * MiB + 512).to_bytes(8, "big")  # size rounded up to a whole sector
    ).hexdigest()

    assert content_digest(RawDisk(BytesSource(disk))) == "sha256:" + expected

    incremental = ContentDigest(size)
    assert incremental.update_block(0, block0) is True
    assert incremental.update_block(1, bytes(BLOCK)) is False
    assert incremental.update_block(2, bytes(disk[2 * BLOCK :])) is True  # short last block
    assert incremental.hexdigest() == "sha256:" + expected
    assert list(incremental.nonzero_blocks) == [0, 2]

    # bytes past the end of the disk never count, even if a caller passes a dirty full block
    dirty = ContentDigest(size)
    dirty.update_block(0, block0)
    dirty.update_block(2, bytes(disk[2 * BLOCK :]) + b"\xee" * (3 * BLOCK - size))
    assert dirty.hexdigest() == "sha256:" + expected

    stream = RawStreamDigest()
    rng = random.Random(5)
    view = memoryview(bytes(disk))
    pos = 0
    while pos < size:
        n = rng.choice([1, 7, 511, 4096, 65536, 3 * MiB])
        stream.feed(view[pos : pos + n])
        pos += n
    assert stream.finish() == ("sha256:" + expected, size)
    assert list(stream.nonzero_blocks) == [0, 2]


def test_empty_and_all_zero_disks_hash_only_their_size():
    assert content_digest(RawDisk(BytesSource(b""))) == "sha256:" + hashlib.sha256(bytes(8)).hexdigest()
    four = struct.pack(">Q", 4 * MiB)
    assert ContentDigest(4 * MiB).hexdigest() == "sha256:" + hashlib.sha256(four).hexdigest()
    stream = RawStreamDigest()
    stream.feed(bytes(4 * MiB))
    assert stream.finish() == ("sha256:" + hashlib.sha256(four).hexdigest(), 4 * MiB)


def test_unaligned_size_is_rounded_up_to_a_sector():
    data = b"\x01" * 1000
    assert content_digest(RawDisk(BytesSource(data))) == content_digest(RawDisk(BytesSource(data + bytes(24))))
    assert content_digest(RawDisk(BytesSource(data))) != content_digest(RawDisk(BytesSource(data + bytes(512))))


def test_content_digest_rejects_out_of_order_and_out_of_range_blocks():
    digest = ContentDigest(10 * MiB)
    digest.update_block(1, b"\x01" * BLOCK)
    with pytest.raises(ValueError):
        digest.update_block(1, b"\x01" * BLOCK)
    with pytest.raises(ValueError):
        digest.update_block(0, b"\x01" * BLOCK)
    with pytest.raises(ValueError):
        digest.update_block(5, b"\x01" * BLOCK)  # a 10 MiB disk has blocks 0-4
    with pytest.raises(ValueError):
        digest.update_block(3, b"\x01" * (BLOCK + 1))


def test_memoryview_blocks_give_the_same_digest():
    block = random.Random(1).randbytes(BLOCK)
    a, b = ContentDigest(BLOCK), ContentDigest(BLOCK)
    a.update_block(0, block)
    b.update_block(0, memoryview(block))
    assert a.hexdigest() == b.hexdigest()


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_sample_disk_digest_and_stream_digest(sample, threads):
    from imagehop.formats import open_file

    with open_file(sample.path) as disk:
        assert content_digest(disk, threads=threads) == sample.digest
    stream = RawStreamDigest(threads=threads)
    rng = random.Random(7)
    with open(sample.path, "rb") as f:
        while chunk := f.read(rng.randint(1, 5 * MiB)):
            stream.feed(chunk)
    assert stream.finish() == (sample.digest, sample.size)
    assert list(stream.nonzero_blocks) == sample.nonzero_blocks


@pytest.mark.parametrize("threads", [0, 2])
def test_the_block_map_comes_from_the_same_pass(threads):
    """(index, sha256) of each non-zero block, by hand; it gives back the digest; bad maps are refused."""
    from imagehop.formats import BlockMap, block_map, digest_of_blocks

    rng = random.Random(11)
    size = 7 * MiB + 512
    data = bytearray(size)
    data[0:100] = rng.randbytes(100)
    data[5 * MiB : 5 * MiB + 3] = b"\x07\x07\x07"
    data[-1] = 1
    expected = []
    for index in range(4):
        block = bytes(data[index * BLOCK : (index + 1) * BLOCK]).ljust(BLOCK, b"\0")
        if any(block):
            expected.append((index, hashlib.sha256(block).digest()))
    assert [i for i, _ in expected] == [0, 2, 3]

    made = block_map(RawDisk(BytesSource(bytes(data))), threads=threads)
    assert list(made.items()) == expected and len(made) == 3 and made.block_count == 4
    assert made.content_digest == content_digest(RawDisk(BytesSource(bytes(data))))
    assert digest_of_blocks(expected, size) == made.content_digest
    made.check()
    assert made.block_length(3) == size - 3 * BLOCK and made.block_length(9) == 0

    stream = RawStreamDigest(threads=threads)
    stream.feed(bytes(data))
    assert list(stream.block_map().items()) == expected

    assert BlockMap.from_items(size, expected).content_digest == made.content_digest
    assert BlockMap.from_items(size, expected).by_hash() == {sha: index for index, sha in expected}
    with pytest.raises(ValueError):
        BlockMap.from_items(size, [expected[1], expected[0]])  # out of order
    with pytest.raises(ValueError):
        BlockMap.from_items(size, [(4, expected[0][1])])  # outside a 4-block disk
    with pytest.raises(ValueError):
        BlockMap.from_items(size, expected[:2], made.content_digest).check()  # not the digest it claims
