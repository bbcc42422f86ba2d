"""Hostile image contents (issue 10, item 9): qcow2 bombs (cross-linked clusters, tables inside
metadata, a decompression bomb) fail an import task with Rackspace's code 111; a qcow2 with a backing
or external data file, or a VMDK with a parent or other extents, is refused on upload and on stage
(400, the image stays queued with no data), as Glance's format inspector does since CVE-2024-32498.

Images are made by qemu-img and qemu-io, then edited as an attacker would. On both databases: a
refused upload must leave the image row as it was.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Cloud, Glance, Swift, run, run_task

CLUSTER = 65536


def qcow2_header(path: Path) -> dict[str, int]:
    raw = path.read_bytes()[:72]
    fields = struct.unpack(">4sIQIIQIIQQIIQ", raw)
    return {"l1_size": fields[7], "l1_offset": fields[8], "refcount_offset": fields[9]}


def first_l2(path: Path) -> tuple[int, bytes]:
    """(offset of the first L2 table, its first entry)."""
    header = qcow2_header(path)
    data = path.read_bytes()
    l2 = struct.unpack(">Q", data[header["l1_offset"] : header["l1_offset"] + 8])[0] & 0x00FFFFFFFFFFFE00
    return l2, data[l2 : l2 + 8]


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def written_qcow2(tmp: Path, name: str, *, compressed: bool = False) -> Path:
    """A 1 GiB qcow2 whose first 64 KiB cluster holds data (compressed, with ``compressed``)."""
    path = tmp / name
    if compressed:
        raw = tmp / f"{name}.raw"
        raw.write_bytes((b"imagehop" * 8192) + bytes(CLUSTER))
        run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(path)])
        run(["qemu-img", "resize", "-f", "qcow2", str(path), "1G"])
    else:
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"cluster_size={CLUSTER}", str(path), "1G"])
        run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0xab 0 {CLUSTER}", str(path)])
    return path


def cross_linked(tmp: Path) -> Path:
    """Every entry of the L2 table maps the one written cluster: 512 MiB of 0xab from ~320 KiB."""
    path = written_qcow2(tmp, "cross.qcow2")
    l2, entry = first_l2(path)
    patch(path, l2, entry * (CLUSTER // 8))
    return path


def l2_in_metadata(tmp: Path) -> Path:
    """The L1 table's entry points at the L1 table itself as if it were an L2 table."""
    path = written_qcow2(tmp, "meta.qcow2")
    header = qcow2_header(path)
    patch(path, header["l1_offset"], struct.pack(">Q", (1 << 63) | header["l1_offset"]))
    return path


def data_in_metadata(tmp: Path) -> Path:
    """A data cluster that is the refcount table."""
    path = written_qcow2(tmp, "data-meta.qcow2")
    l2, _ = first_l2(path)
    patch(path, l2 + 8, struct.pack(">Q", (1 << 63) | qcow2_header(path)["refcount_offset"]))
    return path


def deflate_bomb(tmp: Path) -> Path:
    """One compressed cluster mapped 8192 times: far more than 100 times the file's size."""
    path = written_qcow2(tmp, "bomb.qcow2", compressed=True)
    l2, entry = first_l2(path)
    patch(path, l2, entry * (CLUSTER // 8))
    return path


def with_backing(tmp: Path) -> Path:
    base = tmp / "base.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"])
    path = tmp / "child.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(path)])
    return path


def with_data_file(tmp: Path) -> Path:
    path = tmp / "external.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={tmp / 'external.raw'}", str(path), "1M"])
    return path


def vmdk_with_parent(tmp: Path) -> Path:
    base = tmp / "base.vmdk"
    run(["qemu-img", "create", "-q", "-f", "vmdk", str(base), "1M"])
    path = tmp / "child.vmdk"
    run(["qemu-img", "create", "-q", "-f", "vmdk", "-b", str(base), "-F", "vmdk", str(path)])
    return path


def vmdk_descriptor(tmp: Path) -> Path:
    path = tmp / "flat.vmdk"
    run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(path), "1M"])
    return path


UNSAFE: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "cross-linked": ("qcow2", cross_linked),
    "L2 table in the L1 table": ("qcow2", l2_in_metadata),
    "data cluster in the refcount table": ("qcow2", data_in_metadata),
    "deflate bomb": ("qcow2", deflate_bomb),
    "backing file": ("qcow2", with_backing),
    "external data file": ("qcow2", with_data_file),
    "vmdk parent": ("vmdk", vmdk_with_parent),
    "vmdk descriptor file": ("vmdk", vmdk_descriptor),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes]]:
    tmp = tmp_path_factory.mktemp("hostile-images")
    return {name: (fmt, make(tmp).read_bytes()) for name, (fmt, make) in UNSAFE.items()}


def test_unsafe_images_are_refused_on_upload_and_stage(cloud: Cloud, images: dict[str, tuple[str, bytes]]) -> None:
    glance = Glance(cloud)
    octet = {"Content-Type": "application/octet-stream"}
    for name, (fmt, data) in images.items():
        assert len(data) < 1 << 20, name
        for path in ("file", "stage"):
            image = glance.create(name=name, disk_format=fmt, container_format="bare")
            response = glance.put(f"/v2/images/{image['id']}/{path}", content=data, headers=octet)
            assert response.status_code == 400, (name, path, response.text)
            assert "not acceptable" in response.json()["message"], response.text
            after = glance.image(image["id"])
            assert (after["status"], after["size"], after["checksum"]) == ("queued", None, None), (name, path)
            # Nothing was kept: the image can take good data afterwards (zeros are raw: Glance 33, and so
            # imagehop, refuse bytes that are not the disk_format the image claims).
            raw = [{"op": "replace", "path": "/disk_format", "value": "raw"}]
            assert glance.patch(image["id"], raw).status_code == 200
            assert glance.upload(image["id"], b"\0" * 1024).status_code == 204


def test_safe_qcow2_and_vmdk_still_upload(cloud: Cloud, tmp_path: Path) -> None:
    glance = Glance(cloud)
    qcow2 = written_qcow2(tmp_path, "good.qcow2")
    vmdk = tmp_path / "good.vmdk"
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "vmdk", "-o", "subformat=streamOptimized", str(qcow2), str(vmdk)])
    for fmt, path in (("qcow2", qcow2), ("vmdk", vmdk)):
        image = glance.create(name=f"good-{fmt}", disk_format=fmt, container_format="bare")
        assert glance.upload(image["id"], path.read_bytes()).status_code == 204, fmt
        assert glance.image(image["id"])["status"] == "active"


@pytest.mark.parametrize("name", ["cross-linked", "L2 table in the L1 table", "data cluster in the refcount table",
                                  "deflate bomb"])  # fmt: skip
def test_qcow2_bombs_fail_the_import_task_with_code_111(
    cloud: Cloud, images: dict[str, tuple[str, bytes]], name: str
) -> None:
    glance, swift = Glance(cloud), Swift(cloud)
    swift.put("/bombs")
    swift.put(f"/bombs/{name}.qcow2", images[name][1])
    before = glance.ids()
    body = {"type": "import", "input": {"import_from": f"bombs/{name}.qcow2", "import_from_format": "qcow2",
            "image_properties": {"name": name}}}  # fmt: skip
    task = run_task(glance, body)
    assert task["status"] == "failure"
    assert "Error code: '111'" in task["message"], task["message"]
    assert glance.ids() == before
