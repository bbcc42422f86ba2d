"""Imports of disks others made (qemu-img VHD and qcow2) and of broken disks, through import tasks."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import time
from pathlib import Path

import pytest

from imagehop import formats
from imagehop.formats.vhd import FOOTER_SIZE, HEADER_SIZE, Footer
from tests.conftest import Cloud
from tests.images.conftest import Glance
from tests.tasks.conftest import Swift, create_task, wait_task
from tests.tasks.test_export_import import MIB, disk_bytes

SIZE = 12 * MIB + 1536


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = disk_bytes(SIZE, seed=3)
    path = tmp_path_factory.mktemp("disks") / "original.raw"
    path.write_bytes(data)
    return path, data


def qemu_convert(src: Path, dst: Path, fmt: str, *options: str) -> bytes:
    args = ["qemu-img", "convert", "-f", "raw", "-O", fmt]
    if options:
        args += ["-o", ",".join(options)]
    subprocess.run([*args, str(src), str(dst)], check=True, capture_output=True)
    return dst.read_bytes()


def run_import(cloud: Cloud, container: str, name: str, payload: bytes, fmt: str) -> dict:
    demo, swift = Glance(cloud), Swift(cloud)
    swift.put(f"/{container}")
    swift.put(f"/{container}/{name}", payload)
    body = {"type": "import", "input": {"import_from": f"{container}/{name}", "import_from_format": fmt,
                                        "image_properties": {"name": name}}}  # fmt: skip
    return wait_task(demo, create_task(demo, body)["id"])


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("vpc", ("subformat=dynamic",)),
        ("vpc", ("subformat=fixed",)),
        ("vpc", ("subformat=dynamic", "force_size=on")),
        ("vpc", ("subformat=fixed", "force_size=on")),
        ("qcow2", ()),
        ("qcow2", ("compat=0.10",)),
    ],
)
def test_qemu_made_disks_import(tcloud: Cloud, original: tuple[Path, bytes], tmp_path: Path, fmt: str,
                                options: tuple[str, ...]) -> None:  # fmt: skip
    path, data = original
    payload = qemu_convert(path, tmp_path / "disk", fmt, *options)
    if fmt == "qcow2":  # compressed clusters too
        payload_c = tmp_path / "c.qcow2"
        subprocess.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(path), str(payload_c)],
                       check=True)  # fmt: skip
    ours = "vhd" if fmt == "vpc" else "qcow2"
    # what the disk holds, as qemu-img itself reads it (old qemu sizes some VHDs by CHS)
    expected_raw = tmp_path / "expected.raw"
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(tmp_path / "disk"), str(expected_raw)],
                   check=True)  # fmt: skip
    with formats.open_disk(formats.BytesSource(payload), ours) as disk:
        expected_digest = formats.content_digest(disk)
        virtual = disk.virtual_size
    assert virtual >= SIZE
    task = run_import(tcloud, "qemu", f"{fmt}-{'-'.join(options) or 'default'}", payload, ours)
    assert task["status"] == "success", task
    image = Glance(tcloud).get(f"/v2/images/{task['result']['image_id']}").json()
    assert image["imagehop.content_digest"] == expected_digest and image["virtual_size"] == virtual
    content = Glance(tcloud).get(f"/v2/images/{image['id']}/file").content
    assert content[:SIZE] == data and not any(content[SIZE:])
    if fmt == "qcow2":
        task = run_import(tcloud, "qemu", "compressed.qcow2", payload_c.read_bytes(), "qcow2")
        assert task["status"] == "success", task
        image = Glance(tcloud).get(f"/v2/images/{task['result']['image_id']}").json()
        assert image["imagehop.content_digest"] == expected_digest


def _patch_footer(vhd: bytes, **fields) -> bytes:
    footer = dataclasses.replace(Footer.parse(vhd[-FOOTER_SIZE:]), **fields).pack()
    return footer + vhd[FOOTER_SIZE:-FOOTER_SIZE] + footer


def broken_disks(data: bytes) -> dict[str, tuple[bytes, str]]:
    vhd = b"".join(formats.iter_vhd(formats.RawDisk(formats.BytesSource(data))))
    bat = FOOTER_SIZE + HEADER_SIZE
    bad_sum = vhd[:-FOOTER_SIZE] + vhd[-FOOTER_SIZE:-440] + bytes([vhd[-440] ^ 0xFF]) + vhd[-439:]
    past_end = vhd[:bat] + struct.pack(">I", 0x7FFFFFF0) + vhd[bat + 4 :]
    return {
        "truncated.vhd": (vhd[: len(vhd) // 2], "111"),
        "checksum.vhd": (bad_sum, "111"),
        "bat-past-end.vhd": (past_end, "111"),
        "differencing.vhd": (_patch_footer(vhd, disk_type=4), "721"),
        "zero-uuid.vhd": (_patch_footer(vhd, unique_id=bytes(16)), "614"),
        "two-tib.vhd": (_patch_footer(vhd, current_size=2 << 40, original_size=2 << 40), "413"),
        "not-a-vhd.vhd": (data, "396"),
    }


def test_broken_disks_fail_with_codes_and_write_nothing(tcloud: Cloud) -> None:
    demo = Glance(tcloud)
    before = set(demo.ids("?limit=1000"))
    data = disk_bytes(6 * MIB, seed=4)
    for name, (payload, code) in broken_disks(data).items():
        started = time.monotonic()
        task = run_import(tcloud, "broken", name, payload, "vhd")
        assert task["status"] == "failure" and task["result"] is None, (name, task)
        assert task["message"] == f"Image cannot be imported. Error code: '{code}'", (name, task)
        assert time.monotonic() - started < 10, name
    assert set(demo.ids("?limit=1000")) == before
    missing = wait_task(
        demo,
        create_task(
            demo,
            {
                "type": "import",
                "input": {
                    "import_from": "broken/nothing.vhd",
                    "import_from_format": "vhd",
                    "image_properties": {"name": "x"},
                },
            },
        )["id"],
    )
    assert missing["message"] == "Error: Swift could not find object broken/nothing.vhd."
    bad_props = wait_task(
        demo,
        create_task(
            demo,
            {
                "type": "import",
                "input": {"import_from": "broken/checksum.vhd", "image_properties": {"name": "x", "status": "active"}},
            },
        )["id"],
    )
    assert bad_props["status"] == "failure" and "image_properties" in bad_props["message"]
