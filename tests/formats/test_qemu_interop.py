"""Our readers on images made by qemu-img: same bytes and same content digest as the raw original."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from imagehop.formats import content_digest, detect_format, iter_raw, open_file
from imagehop.formats.vhd import chs_geometry
from tests.support import MiB, reference_digest
from tests.support.qemu import qemu_virtual_size


def whole_disk_sha256(disk) -> str:
    h = hashlib.sha256()
    for chunk in iter_raw(disk):
        h.update(chunk)
    return h.hexdigest()


def check_same_disk(disk, content: bytes, virtual_size: int) -> None:
    """``disk`` holds ``content`` followed by zeros up to ``virtual_size``."""
    assert disk.virtual_size == virtual_size
    padded = content.ljust(virtual_size, b"\0")
    assert whole_disk_sha256(disk) == hashlib.sha256(padded).hexdigest()
    assert content_digest(disk) == reference_digest(padded, virtual_size)
    # every byte outside the extents is zero
    pos = 0
    for start, length in disk.extents():
        assert start >= pos
        assert padded[pos:start].count(0) == start - pos
        pos = start + length
    assert padded[pos:].count(0) == len(padded) - pos
    # unaligned reads across block/cluster boundaries and past the end
    for offset, length in [(3 * MiB - 5, 10), (20 * MiB + 700, 3 * MiB), (virtual_size - 100, 300)]:
        assert disk.read(offset, length) == padded[offset : offset + length].ljust(length, b"\0")


@pytest.mark.parametrize("name", ["vpc-dynamic-force", "vpc-fixed-force"])
def test_vpc_with_force_size_is_the_same_disk_and_digest(sample, qemu_images, qemu_img, name):
    path = qemu_images[name]
    sector_size = -(-sample.size // 512) * 512
    assert qemu_virtual_size(qemu_img, path, "vpc") == sector_size
    with open_file(path, "vhd") as disk:
        assert disk.footer.creator_app == b"qem2"
        check_same_disk(disk, sample.data, sector_size)
        assert content_digest(disk) == sample.digest


@pytest.mark.parametrize("name", ["vpc-dynamic", "vpc-fixed"])
def test_vpc_without_force_size_is_a_larger_disk(sample, qemu_images, qemu_img, name):
    # qemu rounds the size *up* to a whole CHS geometry and stores that as current_size: the
    # disk really is bigger (trailing zeros), so its digest is that of the padded disk.
    path = qemu_images[name]
    qemu_size = qemu_virtual_size(qemu_img, path, "vpc")
    assert qemu_size > sample.size
    c, h, s = chs_geometry(qemu_size)
    assert c * h * s * 512 == qemu_size
    with open_file(path, "vhd") as disk:
        assert disk.footer.creator_app == b"qemu"
        assert disk.footer.current_size == qemu_size
        check_same_disk(disk, sample.data, qemu_size)
        assert content_digest(disk) != sample.digest


@pytest.mark.parametrize(
    "name",
    ["qcow2", "qcow2-v2", "qcow2-compressed", "qcow2-4k-clusters", "qcow2-2m-clusters-compressed"],
)
def test_qcow2_is_the_same_disk_and_digest(sample, qemu_images, qemu_img, name):
    path = qemu_images[name]
    sector_size = -(-sample.size // 512) * 512
    assert qemu_virtual_size(qemu_img, path, "qcow2") == sector_size
    with open_file(path, "qcow2") as disk:
        assert disk.format == "qcow2"
        check_same_disk(disk, sample.data, sector_size)
        assert content_digest(disk) == sample.digest
        # holes stay holes: extents cover about the written data, not the whole disk
        assert sum(n for _, n in disk.extents()) < 24 * MiB


def test_qcow2_zero_clusters_read_as_zeros(sample, qemu_images, qemu_img):
    path = qemu_images["qcow2-zero-clusters"]
    mapping = subprocess.run(
        [qemu_img, "map", "-f", "qcow2", "--output=json", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert '"zero": true, "data": false' in mapping.replace("\n", "")
    expected = bytearray(sample.data)
    expected[4 * MiB : 5 * MiB] = bytes(MiB)
    expected[80 * MiB : 82 * MiB] = bytes(2 * MiB)
    with open_file(path) as disk:
        assert detect_format(disk.source) == "qcow2"
        check_same_disk(disk, bytes(expected), -(-sample.size // 512) * 512)


@pytest.mark.parametrize("name", ["vpc-dynamic-force", "vpc-fixed-force", "qcow2", "qcow2-zero-clusters"])
@pytest.mark.parametrize("threads", [0, 2])
def test_pipelined_import_writes_the_same_disk_and_digest(sample, sample_padded, qemu_images, qemu_img, tmp_path,
                                                           name, threads):  # fmt: skip
    # The import's pass: reused buffers, hashes on threads, writes behind the reads. The output is
    # compared with qemu-img's own conversion of the same file, and the digest with the reference.
    from imagehop.formats import ContentDigest, write_raw_sparse

    path = qemu_images[name]
    fmt = "vhd" if name.startswith("vpc") else "qcow2"
    ours, theirs = tmp_path / "ours.raw", tmp_path / "theirs.raw"
    ours.write_bytes(b"stale bytes that must go" * 50000)
    with open_file(path, fmt) as disk, open(ours, "r+b") as out:
        digest = ContentDigest(disk.virtual_size, threads=threads)
        written = write_raw_sparse(disk, out.fileno(), digest=digest)
        size = disk.virtual_size
    subprocess.run([qemu_img, "convert", "-f", "vpc" if fmt == "vhd" else fmt, "-O", "raw", str(path), str(theirs)],
                   check=True)  # fmt: skip
    content = theirs.read_bytes()
    assert ours.stat().st_size == size == len(content)
    assert hashlib.sha256(ours.read_bytes()).digest() == hashlib.sha256(content).digest()
    assert digest.hexdigest() == reference_digest(content, size)
    blocks = digest.block_map()
    block = 2 * MiB
    nonzero = [
        i
        for i in range(-(-size // block))
        if content[i * block : (i + 1) * block].count(0) != len(content[i * block : (i + 1) * block])
    ]
    assert list(blocks.indexes) == nonzero
    blocks.check()
    assert ours.stat().st_blocks * 512 <= written + MiB < 16 * MiB  # holes stay holes
