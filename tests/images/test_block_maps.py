"""The block map of every image (`GET /v2/images/{id}/x-imagehop-blocks`, an imagehop extension):
(index, SHA-256) of each non-zero 2 MiB block, stored at upload, import and snapshot.

The expected map is computed here with hashlib from the bytes a test made (DESIGN.md's definition),
never by our own code; disks in other formats are made by qemu-img.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.support import (
    BLOCK,
    Cloud,
    Compute,
    Glance,
    MiB,
    Swift,
    create_image,
    disk_bytes,
    reference_digest,
    run,
    run_task,
    wait_image,
)

SIZE = 9 * MiB + 1024  # five blocks, the last one short (whole sectors: qcow2 and VHD keep the size)


def reference_map(data: bytes) -> list[list]:
    """[[index, sha256 hex], ...] of the non-zero 2 MiB blocks (the last one zero-padded)."""
    out = []
    for index in range(-(-len(data) // BLOCK)):
        block = data[index * BLOCK : (index + 1) * BLOCK].ljust(BLOCK, b"\0")
        if block.count(0) != BLOCK:
            out.append([index, hashlib.sha256(block).hexdigest()])
    return out


def read_map(glance: Glance, image_id: str, limit: int | None = None) -> dict:
    """The whole map, following ``next`` from page to page."""
    path = f"/v2/images/{image_id}/x-imagehop-blocks" + (f"?limit={limit}" if limit else "")
    first = None
    blocks: list[list] = []
    pages = 0
    while path:
        response = glance.get(path)
        assert response.status_code == 200, response.text
        page = response.json()
        first = first or page
        blocks += page["blocks"]
        pages += 1
        path = page.get("next")
    return {**first, "blocks": blocks, "pages": pages}  # type: ignore[dict-item]


def test_every_way_of_storing_bytes_stores_the_same_map(cloud: Cloud, tmp_path: Path) -> None:
    data = disk_bytes(SIZE, seed=61)
    expected = reference_map(data)
    assert [index for index, _ in expected] == [0, 1, 2, 4]  # the default layout leaves block 3 all zeros
    digest = reference_digest(data)
    ord_ = Glance(cloud)

    def check(glance: Glance, image_id: str, how: str) -> None:
        blocks = read_map(glance, image_id)
        assert blocks["blocks"] == expected, how
        assert (blocks["block_size"], blocks["virtual_size"], blocks["block_count"]) == (BLOCK, SIZE, 4), how
        assert blocks["content_digest"] == digest == glance.image(image_id)["imagehop.content_digest"], how

    # PUT /file, raw
    uploaded = create_image(cloud, "ORD", "blocks-raw", data)
    check(ord_, uploaded["id"], "raw upload")

    # PUT /file, qcow2 made by qemu-img: the map is the virtual disk's, whatever the container
    raw = tmp_path / "disk.raw"
    raw.write_bytes(data)
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, tmp_path / "disk.qcow2"])
    qcow2 = create_image(cloud, "ORD", "blocks-qcow2", tmp_path / "disk.qcow2", disk_format="qcow2")
    check(ord_, qcow2["id"], "qcow2 upload")

    # an import task from a dynamic VHD (the article's way)
    vhd = tmp_path / "disk.vhd"
    run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", raw, vhd])
    swift = Swift(cloud)
    swift.put("/blocks-in")
    swift.put("/blocks-in/disk.vhd", vhd.read_bytes())
    task = run_task(ord_, {"type": "import", "input": {"import_from": "blocks-in/disk.vhd",
                                                       "image_properties": {"name": "blocks-task"}}})  # fmt: skip
    assert task["status"] == "success", task
    check(ord_, task["result"]["image_id"], "import task")

    # interoperable import: stage + glance-direct
    staged = ord_.create(name="blocks-staged", disk_format="raw", container_format="bare")
    response = ord_.put(f"/v2/images/{staged['id']}/stage", content=data,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert response.status_code == 204, response.text
    assert ord_.post(f"/v2/images/{staged['id']}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
    wait_image(ord_, staged["id"])
    check(ord_, staged["id"], "glance-direct")

    # glance-download into another region (the sparse pull)
    iad = Glance(cloud, region="IAD")
    pulled = iad.create(name="blocks-pulled", disk_format="raw", container_format="bare")
    body = {"method": {"name": "glance-download", "glance_image_id": uploaded["id"], "glance_region": "ORD"}}
    assert iad.post(f"/v2/images/{pulled['id']}/import", json=body).status_code == 202
    wait_image(iad, pulled["id"])
    check(iad, pulled["id"], "glance-download")

    # a server's snapshot (createImage)
    compute = Compute(cloud)
    server = compute.boot(uploaded["id"], name="blocks-server")
    compute.wait_status(server["id"], "ACTIVE")
    action = compute("POST", f"/servers/{server['id']}/action", json={"createImage": {"name": "blocks-snap"}})
    assert action.status_code == 202, action.text
    snapshot = wait_image(ord_, action.json()["image_id"])
    check(ord_, snapshot["id"], "snapshot")
    assert compute("DELETE", f"/servers/{server['id']}").status_code == 204

    # deleting an image deletes its map: the id answers 404 like the image
    assert ord_.delete(f"/v2/images/{staged['id']}").status_code == 204
    assert ord_.get(f"/v2/images/{staged['id']}/x-imagehop-blocks").status_code == 404


def test_pages_follow_next_and_bad_parameters_are_400(cloud: Cloud) -> None:
    data = disk_bytes(SIZE, seed=62)
    image = create_image(cloud, "ORD", "blocks-paged", data)
    glance = Glance(cloud)
    paged = read_map(glance, image["id"], limit=3)
    assert paged["blocks"] == reference_map(data) and paged["pages"] == 2
    first = glance.get(f"/v2/images/{image['id']}/x-imagehop-blocks?limit=3").json()
    assert first["next"] == f"/v2/images/{image['id']}/x-imagehop-blocks?marker=2&limit=3"
    after = glance.get(f"/v2/images/{image['id']}/x-imagehop-blocks?marker=2").json()
    assert [i for i, _ in after["blocks"]] == [4] and "next" not in after
    assert glance.get(f"/v2/images/{image['id']}/x-imagehop-blocks?marker=99").json()["blocks"] == []
    for query in ("limit=0", "limit=x", "limit=1000000", "marker=-2", "marker=1.5"):
        response = glance.get(f"/v2/images/{image['id']}/x-imagehop-blocks?{query}")
        assert response.status_code == 400, (query, response.text)
        assert query.split("=")[0] in response.text

    # an empty disk has a map with no block; an image without data has none
    empty = create_image(cloud, "ORD", "blocks-empty", bytes(3 * MiB))
    assert read_map(glance, empty["id"])["blocks"] == [] and read_map(glance, empty["id"])["block_count"] == 0
    queued = glance.create(name="blocks-none", disk_format="raw", container_format="bare")
    missing = glance.get(f"/v2/images/{queued['id']}/x-imagehop-blocks")
    assert missing.status_code == 404 and "no block map" in missing.text


def test_only_the_owner_members_and_admins_read_a_map(cloud: Cloud) -> None:
    data = disk_bytes(3 * MiB, seed=63)
    image = create_image(cloud, "ORD", "blocks-private", data, visibility="private")
    path = f"/v2/images/{image['id']}/x-imagehop-blocks"
    demo, alt, admin = Glance(cloud), Glance(cloud, "alt"), Glance(cloud, "admin")
    assert alt.get(path).status_code == 404  # invisible: not found, never forbidden
    assert admin.get(path).status_code == 200

    # a member (even before accepting) reads it
    shared = create_image(cloud, "ORD", "blocks-shared", data, visibility="shared")
    shared_path = f"/v2/images/{shared['id']}/x-imagehop-blocks"
    assert alt.get(shared_path).status_code == 404
    member = demo.post(f"/v2/images/{shared['id']}/members", json={"member": cloud.tenant("alt")})
    assert member.status_code == 200, member.text
    assert alt.get(shared_path).json()["blocks"] == reference_map(data)

    # a public image of another project is visible and downloadable, but its map is not for others
    assert admin.patch(image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}]).status_code == 200
    assert alt.get(f"/v2/images/{image['id']}").status_code == 200
    refused = alt.get(path)
    assert refused.status_code == 403 and "owner and the members" in refused.text
    # a deactivated image's map, like its data, only for admins
    assert admin.post(f"/v2/images/{image['id']}/actions/deactivate").status_code == 204
    assert demo.get(path).status_code == 403 and admin.get(path).status_code == 200
    # no token, no map
    assert httpx.get(cloud.regions["ORD"] + "/image" + path).status_code == 401
