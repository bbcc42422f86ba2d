"""Format detection by content, never by name, and open_disk's handling of a stated format."""

from __future__ import annotations

import shutil

import pytest

from imagehop.formats import (
    BytesSource,
    DiskFormatError,
    FileSource,
    Qcow2Disk,
    RawDisk,
    VhdDisk,
    detect_format,
    iter_vhd,
    open_disk,
    open_file,
)
from tests.support import MiB


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vpc-dynamic", "vhd"),
        ("vpc-fixed", "vhd"),  # footer only at the end (qemu itself probes this as raw)
        ("vpc-fixed-force", "vhd"),
        ("qcow2", "qcow2"),
        ("qcow2-compressed", "qcow2"),
    ],
)
def test_qemu_made_images_are_detected_by_content(qemu_images, tmp_path, name, expected):
    misleading = tmp_path / "image.raw"  # the name says raw; only the content counts
    shutil.copyfile(qemu_images[name], misleading)
    with FileSource(misleading) as source:
        assert detect_format(source) == expected
        disk = open_disk(source)
        assert disk.format == expected


def test_raw_is_the_default(sample):
    with FileSource(sample.path) as source:
        assert detect_format(source) == "raw"
        assert isinstance(open_disk(source), RawDisk)
    assert detect_format(BytesSource(b"")) == "raw"
    assert detect_format(BytesSource(b"conecti")) == "raw"


def test_our_vhds_are_detected_and_a_truncated_one_fails_validation():
    disk = RawDisk(BytesSource(b"\x01" * MiB))
    for subformat in ("dynamic", "fixed"):
        data = b"".join(iter_vhd(disk, subformat))
        assert detect_format(BytesSource(data)) == "vhd"
        assert isinstance(open_disk(BytesSource(data)), VhdDisk)
    dynamic = b"".join(iter_vhd(disk))
    truncated = BytesSource(dynamic[: len(dynamic) // 2])
    assert detect_format(truncated) == "vhd"  # by the footer copy at offset 0
    with pytest.raises(DiskFormatError) as info:
        open_disk(truncated)
    assert info.value.code == "111"


def test_a_stated_format_must_match_the_content(qemu_images, sample):
    with pytest.raises(DiskFormatError) as info:
        open_file(qemu_images["qcow2"], "vhd")
    assert info.value.code == "396"
    with pytest.raises(DiskFormatError) as info:
        open_file(qemu_images["vpc-dynamic"], "qcow2")
    assert info.value.code == "396"
    with open_file(qemu_images["vpc-fixed-force"], "vhd") as disk:
        assert isinstance(disk, VhdDisk)
    with open_file(qemu_images["qcow2"], "qcow2") as disk:
        assert isinstance(disk, Qcow2Disk)
    # raw takes any bytes as they are: a raw disk may hold anything
    with open_file(qemu_images["qcow2"], "raw") as disk:
        assert isinstance(disk, RawDisk)
    with pytest.raises(ValueError):
        open_file(sample.path, "vmdk")
