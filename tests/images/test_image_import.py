"""Interoperable import: glance-direct, web-download, copy-image and glance-download between regions."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagehop.images import imports
from imagehop.images.errors import BadRequest
from tests.conftest import BACKENDS, Cloud, make_cloud
from tests.images.conftest import Glance


@pytest.fixture(scope="module", params=BACKENDS)
def import_cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A cloud whose operator allows web-download from local addresses (our test web server)."""
    running = make_cloud(tmp_path_factory.mktemp(f"import-{request.param}"), request.param)
    running.extra_env = {"IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE": "1"}
    with running:
        yield running


@pytest.fixture(scope="module")
def web_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("web")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def wait_for(glance: Glance, image_id: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image = glance.get(f"/v2/images/{image_id}").json()
        if image["status"] == status and "os_glance_import_task" not in image:
            return image
        time.sleep(0.05)
    raise AssertionError(f"image {image_id} did not become {status}: {image}")


def test_glance_direct(import_cloud: Cloud) -> None:
    demo = Glance(import_cloud)
    image = demo.create(name="direct", disk_format="raw", container_format="bare")
    iid = image["id"]
    assert demo.post(f"/v2/images/{iid}/import", json={"method": {"name": "glance-direct"}}).status_code == 409
    data = os.urandom(100_000)
    staged = demo.put(f"/v2/images/{iid}/stage", content=data, headers={"Content-Type": "application/octet-stream"})
    assert staged.status_code == 204
    assert demo.get(f"/v2/images/{iid}").json()["status"] == "uploading"
    response = demo.post(
        f"/v2/images/{iid}/import", json={"method": {"name": "glance-direct"}, "all_stores_must_succeed": False}
    )
    assert response.status_code == 202, response.text
    done = wait_for(demo, iid, "active")
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest() and done["size"] == len(data)
    assert demo.get(f"/v2/images/{iid}/file").content == data
    tasks = demo.get(f"/v2/images/{iid}/tasks").json()["tasks"]
    assert len(tasks) == 1 and tasks[0]["type"] == "api_image_import" and tasks[0]["status"] == "success"
    assert tasks[0]["request_id"] == response.headers["x-openstack-request-id"]
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"
    copy = demo.post(f"/v2/images/{iid}/import", json={"method": {"name": "copy-image"}, "stores": ["local"]})
    assert copy.status_code == 202
    assert wait_for(demo, iid, "active")["checksum"] == hashlib.md5(data).hexdigest()
    assert Glance(import_cloud, "alt").get(f"/v2/images/{iid}/tasks").status_code == 404


def test_web_download(import_cloud: Cloud, web_root: tuple[str, Path]) -> None:
    base, root = web_root
    data = os.urandom(50_000) + bytes(1 << 20)
    (root / "disk.raw").write_bytes(data)
    demo = Glance(import_cloud)
    image = demo.create(name="web", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": f"{base}/disk.raw"}}
    assert demo.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
    assert demo.post(f"/v2/images/{image['id']}/import", json=body).status_code == 409
    done = wait_for(demo, image["id"], "active")
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    missing = demo.create(name="web-missing", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": f"{base}/nope.raw"}}
    assert demo.post(f"/v2/images/{missing['id']}/import", json=body).status_code == 202
    wait_for(demo, missing["id"], "queued")
    task = demo.get(f"/v2/images/{missing['id']}/tasks").json()["tasks"][0]
    assert task["status"] == "failure" and "404" in task["message"]
    bad = {"method": {"name": "web-download", "uri": "file:///etc/passwd"}}
    assert demo.post(f"/v2/images/{missing['id']}/import", json=bad).status_code == 400
    assert demo.post(f"/v2/images/{missing['id']}/import", json={"method": {"name": "teleport"}}).status_code == 400


def test_web_download_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE", raising=False)
    for uri in ("http://127.0.0.1/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://10.1.2.3/"):
        with pytest.raises(BadRequest):
            imports.check_uri(uri)
    monkeypatch.setenv("IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE", "1")
    imports.check_uri("http://127.0.0.1/x")


def test_glance_download_between_regions(import_cloud: Cloud) -> None:
    ord_, iad = Glance(import_cloud, region="ORD"), Glance(import_cloud, region="IAD")
    source = ord_.create(
        name="src", disk_format="raw", container_format="bare", os_distro="ubuntu", hw_x="1", other="no"
    )
    data = os.urandom(70_000)
    assert ord_.upload(source["id"], data).status_code == 204
    target = iad.create(name="copy", disk_format="raw", container_format="bare")
    body = {"method": {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "ORD"}}
    assert iad.post(f"/v2/images/{target['id']}/import", json=body).status_code == 202
    done = wait_for(iad, target["id"], "active")
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert done["os_distro"] == "ubuntu" and done["hw_x"] == "1" and "other" not in done
    assert done["imagehop.content_digest"] == ord_.get(f"/v2/images/{source['id']}").json()["imagehop.content_digest"]
    bad_uuid = {"method": {"name": "glance-download", "glance_image_id": "foo", "glance_region": "ORD"}}
    other = iad.create(name="copy2", disk_format="raw", container_format="bare")
    assert iad.post(f"/v2/images/{other['id']}/import", json=bad_uuid).status_code == 400
    bad_region = {"method": {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "MARS"}}
    assert iad.post(f"/v2/images/{other['id']}/import", json=bad_region).status_code == 202
    wait_for(iad, other["id"], "queued")


def test_a_sparse_image_is_pulled_without_its_holes(import_cloud: Cloud) -> None:
    """glance-download between imagehop regions asks for the data extents (an imagehop extension)
    and fetches only them; the copy has the source's bytes, hashes and digest."""
    ord_, iad = Glance(import_cloud, region="ORD"), Glance(import_cloud, region="IAD")
    mib = 1 << 20
    data = os.urandom(3 * mib) + bytes(8 * mib) + os.urandom(mib + 123)
    source = ord_.create(name="sparse", disk_format="raw", container_format="bare")
    assert ord_.upload(source["id"], data).status_code == 204
    extents = ord_.get(f"/v2/images/{source['id']}/x-imagehop-extents").json()
    assert extents["size"] == len(data)
    # Most of the 8 MiB zero run is a hole (the upload skips zero pieces of about 1 MiB).
    assert sum(length for _, length in extents["extents"]) <= len(data) - 6 * mib
    assert Glance(import_cloud, user="alt").get(f"/v2/images/{source['id']}/x-imagehop-extents").status_code == 404

    target = iad.create(name="sparse-copy", disk_format="raw", container_format="bare")
    body = {"method": {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "ORD"}}
    assert iad.post(f"/v2/images/{target['id']}/import", json=body).status_code == 202
    done = wait_for(iad, target["id"], "active")
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert iad.get(f"/v2/images/{target['id']}/file").content == data
