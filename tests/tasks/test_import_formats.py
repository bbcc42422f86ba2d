"""Imports of disks others made (qemu-img VHD and qcow2) and of broken disks, through import tasks.

The expected content is what qemu-img reads from the same file (``qemu-img convert -O raw``), and the
expected digest is computed here from those raw bytes: nothing expected comes from our own parsers.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.support import Cloud, Glance, MiB, Swift, disk_bytes, reference_digest, run, run_task
from tests.support.vhd import CURRENT_SIZE, DISK_TYPE, ORIGINAL_SIZE, UNIQUE_ID, set_footer

SIZE = 12 * MiB + 1536


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = disk_bytes(SIZE, seed=3)
    path = tmp_path_factory.mktemp("disks") / "original.raw"
    path.write_bytes(data)
    return path, data


def qemu_convert(src: Path, dst: Path, src_fmt: str, dst_fmt: str, *options: str) -> bytes:
    run(["qemu-img", "convert", "-f", src_fmt, "-O", dst_fmt, *options, src, dst])
    return dst.read_bytes()


def run_import(cloud: Cloud, container: str, name: str, payload: bytes, fmt: str) -> dict:
    swift = Swift(cloud)
    swift.put(f"/{container}")
    swift.put(f"/{container}/{name}", payload)
    source = {"import_from": f"{container}/{name}", "import_from_format": fmt, "image_properties": {"name": name}}
    return run_task(Glance(cloud), {"type": "import", "input": source})


@pytest.mark.parametrize(
    "options",
    [
        ("-O", "vpc", "-o", "subformat=dynamic"),
        ("-O", "vpc", "-o", "subformat=fixed"),
        ("-O", "vpc", "-o", "subformat=dynamic,force_size=on"),
        ("-O", "vpc", "-o", "subformat=fixed,force_size=on"),
        ("-O", "qcow2"),
        ("-O", "qcow2", "-o", "compat=0.10"),
        ("-c", "-O", "qcow2"),  # compressed clusters
    ],
)
def test_qemu_made_disks_import(
    tcloud: Cloud, original: tuple[Path, bytes], tmp_path: Path, options: tuple[str, ...]
) -> None:
    path, data = original
    qemu_fmt = options[options.index("-O") + 1]
    disk = tmp_path / "disk"
    run(["qemu-img", "convert", "-f", "raw", *options, path, disk])
    # what the disk holds, as qemu-img itself reads it (qemu sizes some VHDs up to a whole CHS geometry)
    expected = qemu_convert(disk, tmp_path / "expected.raw", qemu_fmt, "raw")
    assert expected[:SIZE] == data and not any(expected[SIZE:])
    name = "-".join(o.replace("=", "_").replace(",", "_") for o in options if not o.startswith("-"))
    task = run_import(tcloud, "qemu", name, disk.read_bytes(), "vhd" if qemu_fmt == "vpc" else "qcow2")
    assert task["status"] == "success", task
    glance = Glance(tcloud)
    image = glance.image(task["result"]["image_id"])
    assert image["virtual_size"] == len(expected)
    assert image["imagehop.content_digest"] == reference_digest(expected)
    assert glance.get(f"/v2/images/{image['id']}/file").content == expected


def broken_disks(data: bytes, tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    """VHDs made by qemu-img and broken by hand, each with the Rackspace code its import must end in."""
    (tmp_path / "broken.raw").write_bytes(data)
    # force_size: qemu writes the exact size and creator "qem2", so readers size it by current_size (not CHS)
    vhd = bytearray(qemu_convert(tmp_path / "broken.raw", tmp_path / "broken.vhd", "raw", "vpc", "-o", "force_size=on"))
    bat = 512 + 1024

    def patched(*changes: tuple[tuple[int, str], object]) -> bytes:
        copy = bytearray(vhd)
        for field, value in changes:
            set_footer(copy, field, value)
        return bytes(copy)

    bad_sum = bytearray(vhd)
    bad_sum[-512 + 72] ^= 0xFF  # a byte of the unique id, checksum left as it was
    # a fixed VHD has one footer only: nothing but its checksum tells that a byte changed
    fixed = bytearray(qemu_convert(tmp_path / "broken.raw", tmp_path / "fixed.vhd", "raw", "vpc", "-o",
                                   "subformat=fixed,force_size=on"))  # fmt: skip
    fixed[-512 + 72] ^= 0xFF
    past_end = bytearray(vhd)
    struct.pack_into(">I", past_end, bat, 0x7FFFFFF0)
    return {
        "truncated.vhd": (bytes(vhd[: len(vhd) // 2]), "111"),
        "checksum.vhd": (bytes(bad_sum), "111"),
        "checksum-fixed.vhd": (bytes(fixed), "111"),
        "bat-past-end.vhd": (bytes(past_end), "111"),
        "differencing.vhd": (patched((DISK_TYPE, 4)), "721"),
        "zero-uuid.vhd": (patched((UNIQUE_ID, bytes(16))), "614"),
        "two-tib.vhd": (patched((CURRENT_SIZE, 2 << 40), (ORIGINAL_SIZE, 2 << 40)), "413"),
        "not-a-vhd.vhd": (data, "396"),
    }


def test_broken_disks_fail_with_codes_and_write_nothing(tcloud: Cloud, tmp_path: Path) -> None:
    demo = Glance(tcloud)
    before = set(demo.ids("?limit=1000"))
    for name, (payload, code) in broken_disks(disk_bytes(6 * MiB, seed=4), tmp_path).items():
        task = run_import(tcloud, "broken", name, payload, "vhd")
        assert task["status"] == "failure" and task["result"] is None, (name, task)
        assert task["message"] == f"Image cannot be imported. Error code: '{code}'", (name, task)
    assert set(demo.ids("?limit=1000")) == before
    missing = {"import_from": "broken/nothing.vhd", "import_from_format": "vhd", "image_properties": {"name": "x"}}
    task = run_task(demo, {"type": "import", "input": missing})
    assert (task["status"], task["message"]) == ("failure", "Error: Swift could not find object broken/nothing.vhd.")
    bad_props = {"import_from": "broken/checksum.vhd", "image_properties": {"name": "x", "status": "active"}}
    task = run_task(demo, {"type": "import", "input": bad_props})
    assert task["status"] == "failure" and "image_properties" in task["message"]
    assert set(demo.ids("?limit=1000")) == before
