"""Our VHD writer, checked by qemu-img (the oracle), by the layout rules, and by our reader."""

from __future__ import annotations

import hashlib
import struct
import uuid

import pytest

from imagehop.formats import (
    BytesSource,
    RawDisk,
    VhdWriter,
    content_digest,
    dynamic_vhd_size,
    extent_blocks,
    fixed_vhd_size,
    iter_vhd,
    open_file,
    write_vhd,
)
from imagehop.formats.vhd import MAX_CHS, chs_geometry, writer_geometry
from tests.support import BLOCK, MiB, reference_digest, write_disk
from tests.support.qemu import IDENTICAL, qemu_compare, qemu_virtual_size


def byte_sum_checksum(data: bytes, field: int) -> int:
    return ~(sum(data[:field]) + sum(data[field + 4 :])) & 0xFFFFFFFF


def write_stream(disk, path, subformat, **options):
    largest = 0
    with open(path, "wb") as f:
        for chunk in iter_vhd(disk, subformat, **options):
            largest = max(largest, len(chunk))
            f.write(chunk)
    return largest


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
@pytest.mark.parametrize("how", ["stream", "seekable"])
def test_qemu_reads_our_vhd_as_the_original_disk(sample, sample_padded, qemu_img, tmp_path, subformat, how):
    out = tmp_path / f"out-{subformat}.vhd"
    with open_file(sample.path) as disk:
        writer = VhdWriter(disk, subformat=subformat)
        if how == "stream":
            largest = write_stream(disk, out, subformat)
            assert largest <= BLOCK  # bounded memory: chunks are at most one block
            assert out.stat().st_size == writer.size
        else:
            with open(out, "wb") as f:
                assert write_vhd(disk, f.fileno(), subformat) == out.stat().st_size
    sector_size = -(-sample.size // 512) * 512
    assert qemu_virtual_size(qemu_img, out, "vpc") == sector_size
    # the raw file is 1234 bytes past a sector boundary: qemu sees it padded, as we do
    assert qemu_compare(qemu_img, sample.path, out, "vpc") == IDENTICAL
    # same size too, once the raw side is padded to the same whole sector: no size warning
    assert qemu_compare(qemu_img, sample_padded, out, "vpc") == IDENTICAL
    with open_file(out, "vhd") as vhd:
        assert vhd.virtual_size == sector_size
        assert content_digest(vhd) == sample.digest
    if subformat == "fixed":
        assert out.stat().st_size == fixed_vhd_size(sample.size)
    if how == "seekable":  # zero blocks, and 64 KiB zero runs inside data blocks, stay holes
        assert out.stat().st_blocks * 512 < 13 * MiB  # ~10 MiB of data in 9 non-zero blocks


def test_dynamic_layout_follows_the_spec(sample, tmp_path):
    out = tmp_path / "layout.vhd"
    unique = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with open_file(sample.path) as disk:
        write_stream(disk, out, "dynamic", unique_id=unique, timestamp=123)
    data = out.read_bytes()
    footer, copy = data[-512:], data[:512]
    assert footer == copy
    assert footer[:8] == b"conectix"
    (features, version, data_offset, timestamp, creator, _cv, host_os, original, current) = struct.unpack(
        ">IIQI4sI4sQQ", footer[8:56]
    )
    c, h, s, disk_type, csum = struct.unpack(">HBBII", footer[56:68])
    assert (features, version, data_offset, timestamp) == (2, 0x00010000, 512, 123)
    assert (creator, host_os) == (b"ihop", b"Wi2k")
    sector_size = -(-sample.size // 512) * 512
    assert original == current == sector_size
    assert (c, h, s) == MAX_CHS  # 100 MiB + 1.5 KiB has no exact CHS: qemu then uses current_size
    assert disk_type == 3
    assert csum == byte_sum_checksum(footer, 64)
    assert footer[68:84] == unique.bytes
    assert footer[84:] == bytes(428)

    header = data[512:1536]
    assert header[:8] == b"cxsparse"
    h_data_offset, table_offset, h_version, entries, block_size, h_csum = struct.unpack(">QQIIII", header[8:40])
    assert (h_data_offset, table_offset, h_version, block_size) == (2**64 - 1, 1536, 0x00010000, BLOCK)
    assert entries == -(-sector_size // BLOCK)  # exactly enough, never one extra (Azure)
    assert h_csum == byte_sum_checksum(header, 36)
    assert header[40:] == bytes(1024 - 40)

    bat_len = -(-entries * 4 // 512) * 512
    bat = struct.unpack(f">{entries}I", data[1536 : 1536 + entries * 4])
    assert data[1536 + entries * 4 : 1536 + bat_len] == b"\xff" * (bat_len - entries * 4)
    allocated = [i for i, e in enumerate(bat) if e != 0xFFFFFFFF]
    assert allocated == sample.nonzero_blocks  # the explicitly written zeros are not stored
    first = 1536 + bat_len
    for k, index in enumerate(allocated):  # contiguous, in guest order, bitmap all ones
        start = first + k * (512 + BLOCK)
        assert bat[index] * 512 == start
        assert data[start : start + 512] == b"\xff" * 512
        block = data[start + 512 : start + 512 + BLOCK]
        assert block == sample.data[index * BLOCK : (index + 1) * BLOCK].ljust(BLOCK, b"\0")
    assert len(data) == first + len(allocated) * (512 + BLOCK) + 512
    assert len(data) == dynamic_vhd_size(sample.size, len(allocated))


def test_known_allocation_skips_the_scan_and_may_over_allocate(sample, qemu_img, tmp_path):
    out = tmp_path / "extents.vhd"
    with open_file(sample.path) as disk:
        blocks = extent_blocks(disk)  # from SEEK_DATA: includes the explicit zero run
        assert set(sample.nonzero_blocks) < set(blocks)
        writer = VhdWriter(disk, allocated_blocks=blocks)
        assert writer.size == dynamic_vhd_size(sample.size, len(blocks))
        with open(out, "wb") as f:
            for chunk in writer:
                f.write(chunk)
    assert out.stat().st_size == writer.size
    assert qemu_compare(qemu_img, sample.path, out, "vpc") == IDENTICAL
    with open_file(out) as vhd:
        assert content_digest(vhd) == sample.digest


def test_an_allocation_missing_a_data_block_fails_instead_of_losing_data(sample):
    with open_file(sample.path) as disk:
        blocks = sample.nonzero_blocks[:1] + sample.nonzero_blocks[2:]
        with pytest.raises(ValueError, match=f"block {sample.nonzero_blocks[1]} holds data"):
            for _ in iter_vhd(disk, allocated_blocks=blocks):
                pass


def test_chs_geometry_matches_the_spec_examples():
    assert chs_geometry(2 * 1024**3) == (4161, 16, 63)  # 8 KiB short of 2 GiB, as the spec rounds down
    assert writer_geometry(2 * 1024**3) == MAX_CHS
    exact = 4161 * 16 * 63 * 512
    assert writer_geometry(exact) == (4161, 16, 63)
    assert chs_geometry(200 * 1024**3) == MAX_CHS


def test_a_chs_exact_size_gets_the_spec_geometry_and_qemu_agrees(qemu_img, tmp_path):
    c, h, s = chs_geometry(20 * MiB)
    size = c * h * s * 512
    assert writer_geometry(size) == (c, h, s) != MAX_CHS
    raw = tmp_path / "chs.raw"
    write_disk(raw, size, 1234, [(MiB + 3, 5000, "random"), (size - 512, 512, "random")])
    for subformat in ("dynamic", "fixed"):
        out = tmp_path / f"chs-{subformat}.vhd"
        with open_file(raw) as disk:
            write_stream(disk, out, subformat)
        assert qemu_virtual_size(qemu_img, out, "vpc") == size
        assert qemu_compare(qemu_img, raw, out, "vpc") == IDENTICAL


def test_tiny_and_empty_disks(qemu_img, tmp_path):
    for content in (b"", b"\x07" * 700, bytes(3 * MiB)):
        disk = RawDisk(BytesSource(content))
        for subformat in ("dynamic", "fixed"):
            out = tmp_path / f"tiny-{subformat}-{len(content)}.vhd"
            write_stream(disk, out, subformat)
            with open_file(out, "vhd") as vhd:
                assert vhd.virtual_size == -(-len(content) // 512) * 512
                assert vhd.read(0, len(content)) == content
                assert content_digest(vhd) == reference_digest(content, len(content))
            if content:
                assert qemu_virtual_size(qemu_img, out, "vpc") == vhd.virtual_size


def test_streamed_and_seekable_outputs_are_identical(sample, tmp_path):
    options = {"unique_id": uuid.UUID(int=1), "timestamp": 1}
    for subformat in ("dynamic", "fixed"):
        a, b = tmp_path / f"a-{subformat}", tmp_path / f"b-{subformat}"
        with open_file(sample.path) as disk:
            write_stream(disk, a, subformat, **options)
            with open(b, "wb") as f:
                write_vhd(disk, f.fileno(), subformat, **options)
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
