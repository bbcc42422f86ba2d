"""A corpus of broken and refused disks: each raises DiskFormatError with the Rackspace code."""

from __future__ import annotations

import os
import struct

import pytest

from imagehop.formats import BytesSource, DiskFormatError, RawDisk, iter_vhd, open_disk, open_file
from imagehop.formats.errors import CODES
from tests.support import BLOCK, GiB, MiB, run
from tests.support.vhd import fix_checksum, set_footer


def small_disk() -> RawDisk:
    data = bytearray(9 * MiB)
    data[100:200] = b"\x11" * 100  # block 0
    data[5 * MiB : 5 * MiB + 10] = b"\x22" * 10  # block 2
    data[-1] = 0x33  # block 4 (partial)
    return RawDisk(BytesSource(bytes(data)))


def vhd_bytes(subformat: str = "dynamic", disk=None) -> bytearray:
    return bytearray(b"".join(iter_vhd(disk or small_disk(), subformat)))


def bat_offset(index: int) -> int:
    return 1536 + 4 * index


def read_bat(buf: bytearray, index: int) -> int:
    return struct.unpack_from(">I", buf, bat_offset(index))[0]


def expect(code: str, buf, **kwargs) -> DiskFormatError:
    with pytest.raises(DiskFormatError) as info:
        open_disk(BytesSource(bytes(buf)), "vhd", **kwargs)
    err = info.value
    assert err.code == code, str(err)
    assert err.rackspace_message == f"Image cannot be imported. Error code: '{code}'"
    assert str(err)[0].isupper() and str(err).endswith(".")  # a sentence
    return err


def test_the_unbroken_images_open():
    for subformat in ("dynamic", "fixed"):
        disk = open_disk(BytesSource(bytes(vhd_bytes(subformat))), "vhd")
        assert disk.read(100, 100) == b"\x11" * 100


def test_not_a_vhd_when_a_vhd_was_asked():
    err = expect("396", b"\x00" * (4 * MiB))
    assert "not a VHD" in str(err)
    expect("396", b"QFI\xfb" + bytes(4 * MiB))  # a qcow2 is not a VHD either
    expect("396", b"")


def test_truncated_dynamic_vhd():
    buf = vhd_bytes()
    expect("111", buf[: len(buf) // 2])  # footer copy at 0, trailing footer gone
    expect("111", buf[:-512])
    # the trailing footer kept, a block cut away
    expect("111", buf[: 1536 + 512 + 512 + BLOCK] + buf[-512:])


def test_wrong_footer_checksum():
    buf = vhd_bytes()
    buf[-512 + 24] ^= 0x01  # the timestamp, in the trailing footer only
    assert "footer checksum" in str(expect("111", buf))
    fixed = vhd_bytes("fixed")
    fixed[-1 - 200] ^= 0xFF  # a reserved byte of the footer
    expect("111", fixed)


def test_footer_copy_differs():
    buf = vhd_bytes()
    struct.pack_into(">I", buf, 24, 7)  # timestamp of the copy only, checksum fixed
    fix_checksum(buf, 0, 512, 64)
    assert "copy" in str(expect("111", buf))


def test_wrong_dynamic_header_checksum_and_cookie():
    buf = vhd_bytes()
    buf[512 + 28] ^= 0x01  # max_table_entries
    assert "header checksum" in str(expect("111", buf))
    buf = vhd_bytes()
    buf[512:520] = b"cxsparsX"
    fix_checksum(buf, 512, 1024, 36)
    expect("111", buf)


def test_bat_entry_pointing_past_the_end():
    buf = vhd_bytes()
    struct.pack_into(">I", buf, bat_offset(2), len(buf) // 512 + 10)
    assert "past the end" in str(expect("111", buf))
    buf = vhd_bytes()
    struct.pack_into(">I", buf, bat_offset(4), (len(buf) - 512) // 512 - 1)  # overlaps the footer
    expect("111", buf)


def test_overlapping_blocks():
    buf = vhd_bytes()
    struct.pack_into(">I", buf, bat_offset(2), read_bat(buf, 0) + 8)  # into block 0
    assert "overlaps" in str(expect("111", buf))
    buf = vhd_bytes()
    struct.pack_into(">I", buf, bat_offset(1), 1)  # a block over the dynamic header
    expect("111", buf)


def test_fixed_vhd_whose_size_lies():
    buf = vhd_bytes("fixed")
    set_footer(buf, (48, ">Q"), 10 * MiB, dynamic=False)  # current size bigger than the data
    expect("111", buf)
    expect("111", bytes(512) + buf)  # or data longer than the footer says


def test_differencing_disk():
    buf = vhd_bytes()
    set_footer(buf, (60, ">I"), 4)
    assert "differencing" in str(expect("721", buf))


def test_neither_fixed_nor_dynamic():
    for disk_type in (0, 1, 5, 6, 99):
        buf = vhd_bytes()
        set_footer(buf, (60, ">I"), disk_type)
        expect("523", buf)


def test_zero_uuid():
    buf = vhd_bytes()
    set_footer(buf, (68, ">16s"), bytes(16))
    expect("614", buf)
    buf = vhd_bytes("fixed")
    set_footer(buf, (68, ">16s"), bytes(16), dynamic=False)
    expect("614", buf)


def test_virtual_and_physical_size_limits():
    # A real dynamic VHD of a 2000 GiB disk holding 4 MiB of data: a 4 MiB file (its BAT).
    class Big:
        format, virtual_size = "raw", 2000 * GiB

        def extents(self):
            return iter([(0, 100)])

        def read(self, offset, length):
            return (b"\x01" * 100).ljust(length, b"\0")

        def iter_blocks(self, block_size=BLOCK):
            yield 0, self.read(0, block_size)

    buf = vhd_bytes(disk=Big())
    assert len(buf) < 8 * MiB
    limit = 160 * 10**9
    disk = open_disk(BytesSource(bytes(buf)), "vhd")
    assert disk.virtual_size == 2000 * GiB
    expect("413", buf, max_virtual_size=limit)
    # claiming 2 TiB in the footer: over the limit, and over the format's 2040 GiB maximum too
    set_footer(buf, (48, ">Q"), 2 * 1024 * GiB)
    expect("413", buf, max_virtual_size=limit)
    expect("413", buf)
    expect("609", vhd_bytes(), max_physical_size=MiB)
    expect("609", vhd_bytes("fixed"), max_physical_size=MiB)


def test_raw_limits():
    with pytest.raises(DiskFormatError) as info:
        open_disk(BytesSource(bytes(3 * MiB)), "raw", max_virtual_size=2 * MiB)
    assert info.value.code == "413"


def test_codes_and_messages():
    for code in CODES:
        err = DiskFormatError(code, "Something specific is wrong.")
        assert err.code == code
        assert str(err) == "Something specific is wrong."
    assert str(DiskFormatError("111", "No period")) == "No period."
    with pytest.raises(ValueError):
        DiskFormatError("999", "no such code")


# -- qcow2 ---------------------------------------------------------------------------------------


@pytest.fixture
def qcow2(tmp_path, qemu_img):
    path = tmp_path / "base.qcow2"
    run([qemu_img, "create", "-q", "-f", "qcow2", str(path), "16M"])
    return path


def qcow2_error(path, fmt="qcow2") -> DiskFormatError:
    with pytest.raises(DiskFormatError) as info:
        open_file(path, fmt)
    assert str(info.value)[0].isupper() and str(info.value).endswith(".")
    return info.value


def patch(path, offset: int, fmt: str, value) -> None:
    buf = bytearray(path.read_bytes())
    struct.pack_into(fmt, buf, offset, value)
    path.write_bytes(bytes(buf))


def test_qcow2_with_a_backing_file_is_refused(tmp_path, qemu_img, qcow2):
    child = tmp_path / "child.qcow2"
    run([qemu_img, "create", "-q", "-f", "qcow2", "-b", str(qcow2), "-F", "qcow2", str(child)])
    err = qcow2_error(child)
    assert err.code == "721"
    assert "backing file" in str(err)
    assert qcow2_error(child, None).code == "721"  # detected as qcow2, refused the same way


def test_qcow2_refusals_and_corruption(qcow2):
    with open_file(qcow2) as disk:
        assert disk.virtual_size == 16 * MiB
    cases = [
        (32, ">I", 2, "523"),  # crypt_method LUKS
        (72, ">Q", 1 << 2, "523"),  # external data file
        (72, ">Q", 1 << 4, "523"),  # extended L2
        (72, ">Q", 1 << 9, "523"),  # unknown incompatible feature
        (72, ">Q", 1 << 1, "111"),  # marked corrupt
        (4, ">I", 4, "523"),  # unknown version
        (20, ">I", 30, "111"),  # absurd cluster size
        (40, ">Q", 10 * MiB, "111"),  # L1 table past the end of the file
    ]
    original = qcow2.read_bytes()
    for offset, fmt, value, code in cases:
        qcow2.write_bytes(original)
        patch(qcow2, offset, fmt, value)
        assert qcow2_error(qcow2).code == code, (offset, value)


def test_qcow2_l2_table_past_the_end(tmp_path, qemu_img, qemu_io):
    path = tmp_path / "data.qcow2"
    run([qemu_img, "create", "-q", "-f", "qcow2", str(path), "16M"])
    run([qemu_io, "-f", "qcow2", "-c", "write -P 0x5a 0 64k", str(path)])
    l1_offset = struct.unpack_from(">Q", path.read_bytes(), 40)[0]
    patch(path, l1_offset, ">Q", (1 << 63) | (64 * MiB))
    assert qcow2_error(path).code == "111"


def test_qcow2_asked_for_but_not_given(tmp_path):
    path = tmp_path / "raw.img"
    path.write_bytes(bytes(MiB))
    err = qcow2_error(path)
    assert err.code == "396"
    assert "qcow2" in str(err)


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
def test_a_vhd_cut_short_while_it_is_imported_fails_instead_of_reading_zeros(tmp_path, subformat):
    # Validated when opened, then the file loses its data (another writer truncates it): the
    # import's straight-into-buffer reads come back short and it fails with 111, never writing zeros.
    from imagehop.formats import ContentDigest, write_raw_sparse

    path = tmp_path / "disk.vhd"
    path.write_bytes(vhd_bytes(subformat))
    with open_file(path, "vhd") as disk, open(tmp_path / "out.raw", "wb") as out:
        os.truncate(path, 1536 + 512)  # the headers stay, every data block is gone
        with pytest.raises(DiskFormatError) as info:
            write_raw_sparse(disk, out.fileno(), digest=ContentDigest(disk.virtual_size, threads=2))
    assert info.value.code == "111"
