"""Reader details beyond qemu-made files: size policy by creator, other block sizes, old footers."""

from __future__ import annotations

import random
import struct

import pytest

from imagehop.formats import BytesSource, RawDisk, VhdDisk, content_digest, detect_format, iter_vhd, open_disk
from imagehop.formats.vhd import chs_geometry
from tests.support import MiB, reference_digest
from tests.support.qemu import qemu_virtual_size
from tests.support.vhd import fix_checksum


def fixed_vhd(content: bytes) -> bytearray:
    return bytearray(b"".join(iter_vhd(RawDisk(BytesSource(content)), "fixed")))


@pytest.mark.parametrize(
    ("creator", "uses_chs"), [(b"vpc ", True), (b"qemu", True), (b"win ", False), (b"abcd", False)]
)
def test_size_comes_from_chs_only_for_virtual_pc_and_old_qemu(tmp_path, qemu_img, creator, uses_chs):
    size = 20 * MiB
    content = random.Random(3).randbytes(size)
    buf = fixed_vhd(content)
    footer = len(buf) - 512
    c, h, s = chs_geometry(size)  # rounds down: 20 MiB is not a whole CHS geometry
    chs_size = c * h * s * 512
    assert chs_size < size
    buf[footer + 28 : footer + 32] = creator
    struct.pack_into(">HBB", buf, footer + 56, c, h, s)
    fix_checksum(buf, footer, 512, 64)
    disk = open_disk(BytesSource(bytes(buf)), "vhd")
    expected = chs_size if uses_chs else size
    assert disk.virtual_size == expected
    assert disk.read(0, size) == content[:expected].ljust(size, b"\0")
    path = tmp_path / "patched.vhd"
    path.write_bytes(buf)
    if creator != b"abcd":  # qemu 7.2 sizes unknown creators by CHS; qemu >= 10 agrees with us
        assert qemu_virtual_size(qemu_img, path, "vpc") == expected


def test_dynamic_vhd_with_512k_blocks_built_by_hand():
    # A dynamic VHD as Virtual PC could write it: 512 KiB blocks, BAT not in guest order.
    bs, size = 512 * 1024, 3 * MiB
    rng = random.Random(9)
    blocks = {4: rng.randbytes(bs), 1: rng.randbytes(bs)}
    entries = size // bs
    footer = bytearray(512)
    struct.pack_into(">8sIIQI4sI4sQQHBBII16sB", footer, 0, b"conectix", 2, 0x10000, 512, 0, b"vpc ", 0x50000,
                     b"Wi2k", size, size, 65535, 16, 255, 3, 0, b"\x01" * 16, 0)  # fmt: skip
    fix_checksum(footer, 0, 512, 64)
    header = bytearray(1024)
    struct.pack_into(">8sQQIII", header, 0, b"cxsparse", 2**64 - 1, 1536, 0x10000, entries, bs)
    fix_checksum(header, 0, 1024, 36)
    bat = [0xFFFFFFFF] * entries
    data = bytearray()
    first = 1536 + 512  # BAT of 6 entries padded to 512
    for k, index in enumerate([4, 1]):  # block 4 stored first
        bat[index] = (first + k * (512 + bs)) // 512
        data += b"\xff" * 512 + blocks[index]
    image = bytes(footer + header + struct.pack(f">{entries}I", *bat).ljust(512, b"\xff") + data + footer)
    disk = open_disk(BytesSource(image))
    assert isinstance(disk, VhdDisk)
    assert disk.block_size == bs
    content = bytearray(size)
    for index, block in blocks.items():
        content[index * bs : (index + 1) * bs] = block
    assert list(disk.extents()) == [(bs, bs), (4 * bs, bs)]
    assert disk.read(0, size) == bytes(content)
    assert content_digest(disk) == reference_digest(bytes(content), size)


def test_old_511_byte_footer_is_read():
    content = random.Random(4).randbytes(MiB)
    buf = fixed_vhd(content)
    footer = buf[-512:]
    footer[11] &= ~0x02  # pre-2004 images lack the reserved feature bit and the last byte
    fix_checksum(footer, 0, 512, 64)
    image = bytes(buf[:-512] + footer[:511])
    assert detect_format(BytesSource(image)) == "vhd"
    disk = open_disk(BytesSource(image), "vhd")
    assert disk.virtual_size == MiB
    assert disk.read(0, MiB) == content
