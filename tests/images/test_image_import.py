"""Interoperable import: glance-direct, web-download, copy-image and glance-download between regions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.support import BACKENDS, Cloud, Glance, MiB, disk_bytes, ended_tasks, make_cloud, wait_image
from tests.support.web import WebServer, web_server


@pytest.fixture(scope="module", params=BACKENDS)
def import_cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A cloud whose operator allows web-download from local addresses (our test web server)."""
    running = make_cloud(tmp_path_factory.mktemp(f"import-{request.param}"), request.param,
                         env={"IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE": "1"})  # fmt: skip
    with running:
        yield running


@pytest.fixture(scope="module")
def web() -> Iterator[WebServer]:
    with web_server() as server:
        yield server


def test_glance_direct_and_copy_image(import_cloud: Cloud) -> None:
    demo = Glance(import_cloud)
    image = demo.create(name="direct", disk_format="raw", container_format="bare")
    iid = image["id"]
    assert demo.post(f"/v2/images/{iid}/import", json={"method": {"name": "glance-direct"}}).status_code == 409
    data = disk_bytes(100_000, seed=1)
    staged = demo.put(f"/v2/images/{iid}/stage", content=data, headers={"Content-Type": "application/octet-stream"})
    assert staged.status_code == 204
    assert demo.image(iid)["status"] == "uploading"
    response = demo.post(
        f"/v2/images/{iid}/import", json={"method": {"name": "glance-direct"}, "all_stores_must_succeed": False}
    )
    assert response.status_code == 202, response.text
    done = wait_image(demo, iid)
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest() and done["size"] == len(data)
    assert demo.get(f"/v2/images/{iid}/file").content == data
    tasks = demo.get(f"/v2/images/{iid}/tasks").json()["tasks"]
    assert len(tasks) == 1 and tasks[0]["type"] == "api_image_import" and tasks[0]["status"] == "success"
    assert tasks[0]["request_id"] == response.headers["x-openstack-request-id"]
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"

    # copy-image, as a one-store Glance answers it: an admin's only (403 for the owner), and the image is
    # already in the region's one store (400; with all_stores nothing is left to copy: 202, no task)
    copy = {"method": {"name": "copy-image"}, "stores": ["local"]}
    assert demo.post(f"/v2/images/{iid}/import", json=copy).status_code == 403
    admin = Glance(import_cloud, "admin")
    refused = admin.post(f"/v2/images/{iid}/import", json=copy)
    assert refused.status_code == 400 and "already present at store 'local'" in refused.json()["message"]
    everywhere = admin.post(f"/v2/images/{iid}/import", json={"method": {"name": "copy-image"}, "all_stores": True})
    assert everywhere.status_code == 202, everywhere.text
    assert len(demo.get(f"/v2/images/{iid}/tasks").json()["tasks"]) == 1
    assert demo.get(f"/v2/images/{iid}/file").content == data
    assert Glance(import_cloud, "alt").get(f"/v2/images/{iid}/tasks").status_code == 404


def test_web_download(import_cloud: Cloud, web: WebServer) -> None:
    data = disk_bytes(50_000 + MiB, seed=2, layout=[(0, 50_000, "random")])
    web.files["disk.raw"] = data
    demo = Glance(import_cloud)
    image = demo.create(name="web", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": f"{web.url}/disk.raw"}}
    assert demo.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
    assert demo.post(f"/v2/images/{image['id']}/import", json=body).status_code == 409
    done = wait_image(demo, image["id"])
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    missing = demo.create(name="web-missing", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": f"{web.url}/nope.raw"}}
    assert demo.post(f"/v2/images/{missing['id']}/import", json=body).status_code == 202
    wait_image(demo, missing["id"], "queued")
    [task] = ended_tasks(demo, missing["id"])
    assert task["status"] == "failure" and "404" in task["message"]
    bad = {"method": {"name": "web-download", "uri": "file:///etc/passwd"}}
    assert demo.post(f"/v2/images/{missing['id']}/import", json=bad).status_code == 400
    assert demo.post(f"/v2/images/{missing['id']}/import", json={"method": {"name": "teleport"}}).status_code == 400


def test_glance_download_between_regions(import_cloud: Cloud) -> None:
    ord_, iad = Glance(import_cloud, region="ORD"), Glance(import_cloud, region="IAD")
    source = ord_.create(
        name="src", disk_format="raw", container_format="bare", os_distro="ubuntu", hw_x="1", other="no"
    )
    data = disk_bytes(70_000, seed=3)
    assert ord_.upload(source["id"], data).status_code == 204
    target = iad.create(name="copy", disk_format="raw", container_format="bare")
    body = {"method": {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "ORD"}}
    assert iad.post(f"/v2/images/{target['id']}/import", json=body).status_code == 202
    done = wait_image(iad, target["id"])
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert done["os_distro"] == "ubuntu" and done["hw_x"] == "1" and "other" not in done
    assert done["imagehop.content_digest"] == ord_.image(source["id"])["imagehop.content_digest"]
    bad_uuid = {"method": {"name": "glance-download", "glance_image_id": "foo", "glance_region": "ORD"}}
    other = iad.create(name="copy2", disk_format="raw", container_format="bare")
    assert iad.post(f"/v2/images/{other['id']}/import", json=bad_uuid).status_code == 400
    bad_region = {"method": {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "MARS"}}
    assert iad.post(f"/v2/images/{other['id']}/import", json=bad_region).status_code == 202
    wait_image(iad, other["id"], "queued")
    [failed] = ended_tasks(iad, other["id"])
    assert failed["status"] == "failure" and "MARS" in failed["message"]


def test_a_sparse_image_is_pulled_without_its_holes(import_cloud: Cloud) -> None:
    """glance-download between imagehop regions asks for the data extents (an imagehop extension)
    and fetches only them; the copy has the source's bytes, hashes and digest."""
    ord_, iad = Glance(import_cloud, region="ORD"), Glance(import_cloud, region="IAD")
    size = 12 * MiB + 123
    data = disk_bytes(size, seed=4, layout=[(0, 3 * MiB, "random"), (11 * MiB, MiB + 123, "random")])
    source = ord_.create(name="sparse", disk_format="raw", container_format="bare")
    assert ord_.upload(source["id"], data).status_code == 204
    extents = ord_.get(f"/v2/images/{source['id']}/x-imagehop-extents").json()
    assert extents["size"] == len(data)
    # Most of the 8 MiB zero run is a hole (the upload skips zero pieces of about 1 MiB).
    assert sum(length for _, length in extents["extents"]) <= len(data) - 6 * MiB
    assert Glance(import_cloud, user="alt").get(f"/v2/images/{source['id']}/x-imagehop-extents").status_code == 404

    target = iad.create(name="sparse-copy", disk_format="raw", container_format="bare")
    body = {"method": {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "ORD"}}
    assert iad.post(f"/v2/images/{target['id']}/import", json=body).status_code == 202
    done = wait_image(iad, target["id"])
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert iad.get(f"/v2/images/{target['id']}/file").content == data
