"""Export to VHD and import back, through a real `imagehop serve`: the article's curl commands, round trips."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.support import (
    Cloud,
    Glance,
    MiB,
    Swift,
    create_image,
    curl,
    disk_bytes,
    reference_digest,
    run,
    run_task,
    wait_task,
)
from tests.support.cloud import TASK_SEGMENT as SEGMENT

SIZE = 37 * MiB + 3584  # not a whole MiB, not a CHS-exact size: the size must survive exactly


def vhd_kind(vhd: bytes) -> tuple[str, int]:
    """(the dynamic header's cookie, the footer's disk type) read straight from the bytes (VHD spec)."""
    return vhd[512:520].decode("latin-1"), struct.unpack(">I", vhd[-512 + 60 : -512 + 64])[0]


def test_article_export_then_import_round_trip(tcloud: Cloud, tmp_path: Path) -> None:
    ord_glance, iad_glance = Glance(tcloud, region="ORD"), Glance(tcloud, region="IAD")
    ord_swift, iad_swift = Swift(tcloud, region="ORD"), Swift(tcloud, region="IAD")
    data = disk_bytes(SIZE, seed=1)
    image = create_image(tcloud, "ORD", "src", data)
    original_digest = image["imagehop.content_digest"]
    assert original_digest == reference_digest(data)
    ord_swift.put("/exports")

    endpoint, token = f"{tcloud.regions['ORD']}/image", ord_glance.token
    # the article's export command, verbatim but for the ids
    body = json.dumps({"type": "export", "input": {"image_uuid": image["id"], "receiving_swift_container": "exports"}})
    created = curl(f"{endpoint}/v2/tasks", "-X", "POST", "-d", body,
                   "-H", "Content-Type: application/json", "-H", f"X-Auth-Token: {token}")  # fmt: skip
    assert created.status == 201
    task = created.json()
    assert set(task) == {"id", "type", "status", "input", "result", "owner", "message", "expires_at",
                         "created_at", "updated_at", "self", "schema"}  # fmt: skip
    assert task["status"] == "pending" and task["type"] == "export" and task["message"] == ""
    assert task["input"] == {"image_uuid": image["id"], "receiving_swift_container": "exports"}
    assert task["owner"] == ord_glance.tenant and task["self"] == f"/v2/tasks/{task['id']}"
    assert task["schema"] == "/v2/schemas/task" and task["created_at"].endswith("Z")

    done = wait_task(ord_glance, task["id"])
    polled = curl(f"{endpoint}/v2/tasks/{task['id']}", "-H", f"X-Auth-Token: {token}")
    assert polled.status == 200 and polled.json() == done
    assert done["status"] == "success", done
    assert done["result"] == {"export_location": f"exports/{image['id']}.vhd"}
    assert done["expires_at"] and done["expires_at"] > done["updated_at"]

    # the VHD: a dynamic VHD, an SLO of segments of at most SEGMENT bytes
    manifest = ord_swift.get(f"/exports/{image['id']}.vhd", params={"multipart-manifest": "get"}).json()
    assert len(manifest) > 1 and all(s["bytes"] <= SEGMENT for s in manifest)
    vhd = ord_swift.get(f"/exports/{image['id']}.vhd").content
    vhd_path, raw_path = tmp_path / "export.vhd", tmp_path / "original.raw"
    vhd_path.write_bytes(vhd)
    raw_path.write_bytes(data)
    info = json.loads(run(["qemu-img", "info", "-f", "vpc", "--output=json", vhd_path]).stdout)
    assert info["virtual-size"] == SIZE
    assert vhd_kind(vhd) == ("cxsparse", 3)  # a dynamic VHD (disk type 3)
    assert run(["qemu-img", "compare", "-f", "raw", "-F", "vpc", raw_path, vhd_path]).stdout == (
        "Images are identical.\n"
    )

    # a second export of the same image fails: the object exists
    again = run_task(ord_glance, {"type": "export", "input": task["input"]})
    assert again["status"] == "failure" and again["result"] is None
    assert again["message"] == f"Object already exists in user's container. Container/Object: exports/{image['id']}.vhd"

    # move it to the other region as one plain object, and import it with the article's command
    iad_swift.put("/imports")
    iad_swift.put("/imports/moved.vhd", vhd)
    endpoint, token = f"{tcloud.regions['IAD']}/image", iad_glance.token
    body = json.dumps({"type": "import", "input": {"import_from": "imports/moved.vhd", "import_from_format": "vhd",
                                                   "image_properties": {"name": "db-slave-3 copy"}}})  # fmt: skip
    created = curl(f"{endpoint}/v2/tasks", "-X", "POST", "-d", body,
                   "-H", "Content-Type: application/json", "-H", f"X-Auth-Token: {token}")  # fmt: skip
    task = created.json()
    assert created.status == 201 and task["status"] == "pending" and task["type"] == "import"
    done = wait_task(iad_glance, task["id"])
    assert done["status"] == "success", done
    new = iad_glance.get(f"/v2/images/{done['result']['image_id']}").json()
    assert new["status"] == "active" and new["name"] == "db-slave-3 copy"
    assert new["disk_format"] == "raw" and new["virtual_size"] == SIZE and new["size"] == SIZE
    assert new["imagehop.content_digest"] == original_digest
    assert iad_glance.get(f"/v2/images/{new['id']}/file").content == data
    assert new["checksum"] == image["checksum"] and new["os_hash_value"] == image["os_hash_value"]


def test_export_validation_failures(tcloud: Cloud) -> None:
    demo, alt = Glance(tcloud), Glance(tcloud, "alt")
    swift = Swift(tcloud)
    swift.put("/checks")
    image = create_image(tcloud, "ORD", "src", disk_bytes(3 * MiB, seed=2))
    licensed = create_image(tcloud, "ORD", "licensed", disk_bytes(MiB, seed=3), os_type="windows")
    queued = demo.create(name="empty", disk_format="raw", container_format="bare")
    missing = "00000000-0000-4000-8000-000000000000"
    cases = [
        ({"image_uuid": image["id"], "receiving_swift_container": "nope"}, "Container not found. Container: nope"),
        ({"image_uuid": image["id"], "receiving_swift_container": "a.b"}, "must not contain"),
        ({"image_uuid": missing, "receiving_swift_container": "checks"},
         f"Requested image for export was not found: {missing}"),
        ({"image_uuid": licensed["id"], "receiving_swift_container": "checks"},
         "Image cannot be exported due to licensing or billing restrictions"),
        ({"image_uuid": queued["id"], "receiving_swift_container": "checks"}, "only active images"),
        ({"receiving_swift_container": "checks"}, "image_uuid"),
    ]  # fmt: skip
    for task_input, message in cases:
        task = run_task(demo, {"type": "export", "input": task_input})
        assert task["status"] == "failure" and message in task["message"], (task_input, task)
    # another tenant's image: never exported, whatever the container
    Swift(tcloud, "alt").put("/mine")
    task = run_task(alt, {"type": "export", "input": {"image_uuid": image["id"], "receiving_swift_container": "mine"}})
    assert task["status"] == "failure" and "not found" in task["message"]
    assert swift.names("checks") == [] and Swift(tcloud, "alt").names("mine") == []  # nothing written


def test_small_export_is_one_object_and_imports_back(tcloud: Cloud) -> None:
    demo, swift = Glance(tcloud), Swift(tcloud)
    data = disk_bytes(3 * MiB + 512, seed=5)
    image = create_image(tcloud, "ORD", "src", data)
    swift.put("/small")
    export = {"image_uuid": image["id"], "receiving_swift_container": "small"}
    task = run_task(demo, {"type": "export", "input": export})
    assert task["status"] == "success", task
    head = swift.head(f"/small/{image['id']}.vhd")
    assert head.status_code == 200 and "x-static-large-object" not in head.headers
    back = {"import_from": f"small/{image['id']}.vhd", "image_properties": {"name": "back", "os_distro": "debian"}}
    task = run_task(demo, {"type": "import", "input": back})
    assert task["status"] == "success", task
    new = demo.get(f"/v2/images/{task['result']['image_id']}").json()
    assert new["imagehop.content_digest"] == reference_digest(data) and new["os_distro"] == "debian"
    assert new["visibility"] == "private" and new["owner"] == demo.tenant


@pytest.mark.parametrize("fmt", ["vhd", "raw"])
def test_import_reads_slo_and_dlo(tcloud: Cloud, fmt: str, tmp_path: Path) -> None:
    demo, swift = Glance(tcloud), Swift(tcloud)
    data = disk_bytes(5 * MiB, seed=9)
    payload = data
    if fmt == "vhd":  # made by qemu-img, not by our writer
        (tmp_path / "disk.raw").write_bytes(data)
        run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "force_size=on", tmp_path / "disk.raw",
             tmp_path / "disk.vhd"])  # fmt: skip
        payload = (tmp_path / "disk.vhd").read_bytes()
    swift.put(f"/lo-{fmt}")
    half = len(payload) // 2
    swift.put(f"/lo-{fmt}/seg/1", payload[:half])
    swift.put(f"/lo-{fmt}/seg/2", payload[half:])
    swift.put(f"/lo-{fmt}/dlo", headers={"X-Object-Manifest": f"lo-{fmt}/seg/"})
    segments = [{"path": f"/lo-{fmt}/seg/1"}, {"path": f"/lo-{fmt}/seg/2"}]
    swift.put(f"/lo-{fmt}/slo", json.dumps(segments).encode(), params={"multipart-manifest": "put"})
    expected = reference_digest(data)
    for name in ("dlo", "slo"):
        source = {"import_from": f"lo-{fmt}/{name}", "import_from_format": fmt, "image_properties": {"name": name}}
        task = run_task(demo, {"type": "import", "input": source})
        assert task["status"] == "success", task
        assert demo.get(f"/v2/images/{task['result']['image_id']}").json()["imagehop.content_digest"] == expected


def test_an_export_seals_its_hashes_and_only_the_same_content_takes_them(tcloud: Cloud) -> None:
    """The export seals the image's MD5 and SHA-512 on the VHD; an import in another region takes
    them only when the disk it stores has the sealed content digest and size. A seal moved onto
    other content, or one whose hashes were edited, gives the true hashes of what was imported."""
    import hashlib

    ord_glance, iad_glance = Glance(tcloud, region="ORD"), Glance(tcloud, region="IAD")
    ord_swift, iad_swift = Swift(tcloud, region="ORD"), Swift(tcloud, region="IAD")
    first, second = disk_bytes(SIZE, seed=41), disk_bytes(SIZE, seed=42)
    images = [create_image(tcloud, "ORD", f"sealed-{n}", data) for n, data in enumerate((first, second))]
    ord_swift.put("/sealed")
    for image in images:
        task = run_task(ord_glance, {"type": "export", "input": {"image_uuid": image["id"],
                                                                 "receiving_swift_container": "sealed"}})  # fmt: skip
        assert task["status"] == "success", task
    heads = [ord_swift.head(f"/sealed/{image['id']}.vhd").headers for image in images]
    seals = [{k: v for k, v in head.items() if k.startswith("x-object-meta-imagehop-raw-")} for head in heads]
    words = seals[0]["x-object-meta-imagehop-raw-hashes"].split()
    assert words[:4] == ["v1", str(SIZE), images[0]["imagehop.content_digest"], hashlib.md5(first).hexdigest()]
    assert seals[0]["x-object-meta-imagehop-raw-sha512"] == hashlib.sha512(first).hexdigest()
    vhds = [ord_swift.get(f"/sealed/{image['id']}.vhd").content for image in images]
    iad_swift.put("/moved")
    edited = {**seals[0], "x-object-meta-imagehop-raw-sha512": hashlib.sha512(second).hexdigest()}
    cases = [
        ("kept", vhds[0], seals[0], first, "MD5 and SHA-512 taken from the export's sealed hashes"),
        ("moved-onto-other", vhds[1], seals[0], second, "the export's sealed hashes are of other content; hashing it"),
        ("edited", vhds[0], edited, first, None),  # not a seal of ours: ignored
    ]
    for name, vhd, seal, data, logged in cases:
        iad_swift.put(f"/moved/{name}.vhd", vhd, headers=seal)
        task = run_task(iad_glance, {"type": "import", "input": {"import_from": f"moved/{name}.vhd",
                                                                 "image_properties": {"name": name}}})  # fmt: skip
        assert task["status"] == "success", task
        new = iad_glance.get(f"/v2/images/{task['result']['image_id']}").json()
        assert new["checksum"] == hashlib.md5(data).hexdigest(), name
        assert new["os_hash_value"] == hashlib.sha512(data).hexdigest(), name
        assert new["imagehop.content_digest"] == reference_digest(data) and new["size"] == SIZE
        assert hashlib.md5(iad_glance.get(f"/v2/images/{new['id']}/file").content).hexdigest() == new["checksum"]
        # the task's own log line, written before it succeeded, says which way the hashes came
        lines = [line for line in tcloud.logged().splitlines() if f"import of image {new['id']}: " in line]
        assert [line.split(": ", 2)[-1] for line in lines] == ([logged] if logged else []), name
