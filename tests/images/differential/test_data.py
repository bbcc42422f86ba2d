"""Image data: upload, download (headers, ranges), wrong content types, states, deactivate/reactivate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.images.differential.sides import OCTET, Differs, Side, Sides
from tests.support import disk_bytes, run

DATA = bytes(range(256)) * 16  # 4 KiB, not all zeros
DATA_HEADERS = ("content-type", "content-length", "content-md5", "content-range", "accept-ranges")


def test_upload_and_download(sides: Sides) -> None:
    def case(s: Side) -> list:
        image_id = s.create(name="data")
        out = [s.obs(s.req("GET", f"/v2/images/{image_id}/file"), *DATA_HEADERS)]
        upload = s.req("PUT", f"/v2/images/{image_id}/file", body=DATA, headers={"Content-Type": OCTET})
        out.append(s.obs(upload, "content-type", "content-length"))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}")))
        download = s.req("GET", f"/v2/images/{image_id}/file", accept=None)
        out.append(s.obs(download, *DATA_HEADERS, body=None))
        out.append({"same bytes": download.content == DATA})
        for who in ("reader", "other", "admin"):
            out.append(s.obs(s.req("GET", f"/v2/images/{image_id}/file", who=who), *DATA_HEADERS, body=None))
        out.append(s.obs(s.req("PUT", f"/v2/images/{image_id}/file", body=DATA, headers={"Content-Type": OCTET})))
        return out

    sides.compare(case)


@pytest.mark.parametrize(
    "header",
    ["bytes=0-9", "bytes=10-", "bytes=-10", "bytes=4000-5000", "bytes=4096-", "bytes=5000-6000", "bytes=-0",
     "bytes=9-0", "bytes=0-1,4-5", "bytes 0-9/4096", "items=0-9", "bytes=x-y", "bytes=0-4095", "bytes=-5000"],
)  # fmt: skip
@pytest.mark.parametrize("name", ["Range", "Content-Range"])
def test_ranges(sides: Sides, name: str, header: str) -> None:
    def case(s: Side) -> list:
        image_id = s.create()
        s.upload(image_id, DATA)
        response = s.req("GET", f"/v2/images/{image_id}/file", headers={name: header}, accept=None)
        seen = s.obs(response, *DATA_HEADERS, body="status")
        if response.status_code < 400:
            first = int(response.headers["content-range"].split()[1].split("-")[0]) if seen["content-range"] else 0
            seen["bytes match"] = response.content == DATA[first : first + len(response.content)]
        return [seen]

    sides.compare(case)


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "text/plain", "application/octet-stream; charset=x", "APPLICATION/OCTET-STREAM"],
)
@pytest.mark.parametrize("target", ["file", "stage"])
def test_data_content_types(sides: Sides, target: str, content_type: str | None) -> None:
    def case(s: Side) -> list:
        image_id = s.create()
        headers = {"Content-Type": content_type} if content_type else {}
        out = [s.obs(s.req("PUT", f"/v2/images/{image_id}/{target}", body=DATA, headers=headers), "content-type")]
        out.append({"status": s.show(image_id)["status"]})
        return out

    sides.compare(case)


@pytest.mark.parametrize("target", ["file", "stage"])
def test_data_states_and_rights(sides: Sides, target: str) -> None:
    def case(s: Side) -> list:
        put = {"body": DATA, "headers": {"Content-Type": OCTET}}
        bare = s.create(disk_format=None, container_format=None)
        out = [s.obs(s.req("PUT", f"/v2/images/{bare}/{target}", **put)), {"status": s.show(bare)["status"]}]
        half = s.create(container_format=None)
        out.append(s.obs(s.req("PUT", f"/v2/images/{half}/{target}", **put)))
        image_id = s.create()
        for who in ("other", "reader", "anon"):
            out.append(s.obs(s.req("PUT", f"/v2/images/{image_id}/{target}", who=who, **put)))
        out.append(s.obs(s.req("PUT", f"/v2/images/{image_id}/{target}", **put)))
        out.append({"status": s.show(image_id)["status"]})
        out.append(s.obs(s.req("PUT", f"/v2/images/{image_id}/{target}", **put)))
        out.append(s.obs(s.req("PUT", f"/v2/images/{image_id}/{'stage' if target == 'file' else 'file'}", **put)))
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}")))
        return out

    sides.compare(case)


def test_empty_upload(sides: Sides) -> None:
    def case(s: Side) -> list:
        image_id = s.create()
        out = [s.obs(s.req("PUT", f"/v2/images/{image_id}/file", body=b"", headers={"Content-Type": OCTET}))]
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}")))
        out.append(s.obs(s.req("GET", f"/v2/images/{image_id}/file"), *DATA_HEADERS))
        return out

    sides.compare(case)


def test_deactivate_and_reactivate(sides: Sides) -> None:
    def case(s: Side) -> list:
        queued = s.create()
        out = [s.obs(s.req("POST", f"/v2/images/{queued}/actions/deactivate"))]
        out.append(s.obs(s.req("POST", f"/v2/images/{queued}/actions/reactivate")))
        image_id = s.create()
        s.upload(image_id, DATA)
        act = f"/v2/images/{image_id}/actions"
        out.append(s.obs(s.req("POST", f"{act}/reactivate"), "content-type", "content-length"))
        for who in ("other", "reader"):
            out.append(s.obs(s.req("POST", f"{act}/deactivate", who=who)))
        out.append(s.obs(s.req("POST", f"{act}/deactivate"), "content-type", "content-length"))
        out.append(s.obs(s.req("POST", f"{act}/deactivate")))
        out.append({"status": s.show(image_id)["status"]})
        for who in ("owner", "reader", "admin"):
            out.append(s.obs(s.req("GET", f"/v2/images/{image_id}/file", who=who), body="status"))
        out.append(s.obs(s.patch(image_id, [{"op": "add", "path": "/q", "value": "v"}])))
        out.append(s.obs(s.req("PUT", f"/v2/images/{image_id}/file", body=DATA, headers={"Content-Type": OCTET})))
        out.append(s.obs(s.req("POST", f"{act}/reactivate", who="reader")))
        out.append(s.obs(s.req("POST", f"{act}/reactivate")))
        out.append({"status": s.show(image_id)["status"]})
        out.append(s.obs(s.req("POST", f"{act}/deactivate", body=b"{}", headers={"Content-Type": "application/json"})))
        out.append(s.obs(s.req("DELETE", f"/v2/images/{image_id}")))
        return out

    sides.compare(case)


def test_upload_disguised_formats(sides: Sides) -> None:
    """A qcow2 header uploaded as raw, and raw bytes uploaded as qcow2 (Glance's format inspector)."""
    qcow2_header = (
        b"QFI\xfb\x00\x00\x00\x03" + b"\x00" * 8 + b"\x00" * 4 + b"\x00\x00\x00\x10" + (1 << 30).to_bytes(8, "big")
    )
    qcow2 = qcow2_header + b"\x00" * (65536 - len(qcow2_header))

    def case(s: Side) -> list:
        out = []
        for disk_format, data in (("raw", qcow2), ("qcow2", DATA), ("vhd", DATA), ("iso", DATA), ("vmdk", DATA)):
            image_id = s.create(disk_format=disk_format)
            response = s.req("PUT", f"/v2/images/{image_id}/file", body=data, headers={"Content-Type": OCTET})
            out.append(s.obs(response, note=disk_format))
            shown = s.show(image_id)
            out.append({"status": shown["status"], "virtual_size": shown["virtual_size"]})
        return out

    sides.compare(case)


FORMATS_WHY = (
    "imagehop measures the virtual size of raw, VHD and qcow2 only; Glance 33's inspectors also read "
    "VMDK, VDI and VHDX headers"
)


def test_upload_real_formats(sides: Sides, tmp_path: Path) -> None:
    """Disks made by qemu-img, uploaded as what they are, as raw, and as another format."""
    raw = tmp_path / "disk.raw"
    raw.write_bytes(disk_bytes(1 << 20, seed=3))
    made = {}
    for name, options in (("vpc", ["-o", "subformat=dynamic"]), ("vmdk", []), ("vdi", []), ("vhdx", []),
                          ("qcow2", [])):  # fmt: skip
        target = tmp_path / f"disk.{name}"
        run(["qemu-img", "convert", "-f", "raw", "-O", name, *options, str(raw), str(target)])
        made["vhd" if name == "vpc" else name] = target.read_bytes()

    def case(s: Side) -> list:
        out = []
        for disk_format, data in made.items():
            for claimed in (disk_format, "raw", "qcow2" if disk_format != "qcow2" else "vmdk"):
                image_id = s.create(disk_format=claimed)
                response = s.req("PUT", f"/v2/images/{image_id}/file", body=data, headers={"Content-Type": OCTET})
                shown = s.show(image_id)
                out.append({**s.obs(response, note=f"{disk_format} as {claimed}"), "image": shown["status"]})
                out.append({"virtual_size": shown["virtual_size"]})
        return out

    # step 2k+1: the virtual size after the k-th upload (vmdk, vdi and vhdx as themselves: 6, 12, 18... )
    unmeasured = [Differs(index * 2 + 1, "virtual_size", None, 1 << 20, FORMATS_WHY) for index in (3, 6, 9)]
    sides.compare(case, *unmeasured)
