"""Glance's multi-store and quota corners (issue 12, images): ``stores`` on images, import requests
with ``stores``/``all_stores``/``X-Image-Meta-Store`` as a one-store Glance answers them,
``os_glance_importing_to_stores``/``os_glance_failed_import``, ``/v2/info/stores/detail``,
``/v2/info/usage``, per-tenant quotas with Glance's 413, and deleted image ids never reused.
On both databases (usage is counted in SQL)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support import BACKENDS, Cloud, Glance, MiB, make_cloud, wait_for, wait_image

QUOTAS = "[images]\nweb_download_allow_private = true\nimage_count_total = 4\nimage_size_total = 1\n"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module", params=BACKENDS)
def quota_cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    base = tmp_path_factory.mktemp(f"quota-{request.param}")
    with make_cloud(base, request.param, config=QUOTAS) as running:
        yield running


def test_stores_and_import_store_requests(quota_cloud: Cloud) -> None:
    demo = Glance(quota_cloud, "alt")
    image = demo.create(name="stored", disk_format="raw", container_format="bare")
    assert "stores" not in image
    bad = demo.put(f"/v2/images/{image['id']}/file", content=b"x", headers={**OCTET, "X-Image-Meta-Store": "ceph"})
    assert bad.status_code == 400
    assert demo.put(f"/v2/images/{image['id']}/file", content=b"x" * 1000,
                    headers={**OCTET, "X-Image-Meta-Store": "local"}).status_code == 204  # fmt: skip
    assert demo.image(image["id"])["stores"] == "local"
    queued = demo.create(name="import", disk_format="raw", container_format="bare")
    for body, headers in (({"stores": ["ceph"]}, {}), ({}, {"X-Image-Meta-Store": "ceph"})):
        body = {"method": {"name": "web-download", "uri": "http://127.0.0.1:1/x"}, **body}
        response = demo.post(f"/v2/images/{queued['id']}/import", json=body, headers=headers)
        assert response.status_code == 409, response.text
        assert "Store for identifier ceph not found" in response.json()["message"]
    both = {"method": {"name": "web-download", "uri": "http://127.0.0.1:1/x"}, "stores": ["local"], "all_stores": True}
    assert demo.post(f"/v2/images/{queued['id']}/import", json=both).status_code == 400
    after = demo.image(queued["id"])
    assert after["status"] == "queued" and "os_glance_importing_to_stores" not in after
    admin, plain = Glance(quota_cloud, "admin"), Glance(quota_cloud, "demo")
    detail = admin.get("/v2/info/stores/detail")
    assert detail.status_code == 200
    assert detail.json()["stores"][0]["id"] == "local" and detail.json()["stores"][0]["default"] == "true"
    assert plain.get("/v2/info/stores/detail").status_code == 403


def test_a_failed_web_download_lists_the_store_as_failed(quota_cloud: Cloud) -> None:
    demo = Glance(quota_cloud, "demo")
    image = demo.create(name="bad-url", disk_format="raw", container_format="bare")
    body = {"method": {"name": "web-download", "uri": "http://127.0.0.1:1/nothing"}, "all_stores": True,
            "all_stores_must_succeed": False}  # fmt: skip
    assert demo.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
    wait_for(lambda: demo.get(f"/v2/images/{image['id']}/tasks").json()["tasks"][0]["status"] == "failure",
             "the import fails")  # fmt: skip
    after = wait_image(demo, image["id"], "queued")
    assert after["os_glance_failed_import"] == "local"
    assert after["os_glance_importing_to_stores"] == ""


def test_quotas_answer_413_as_glance(quota_cloud: Cloud) -> None:
    """alt: 4 images at most and 1 MiB in total; a new tenant-scoped usage document shows both."""
    alt = Glance(quota_cloud, "alt")
    usage = alt.get("/v2/info/usage").json()["usage"]
    assert set(usage) == {"image_size_total", "image_count_total", "image_stage_total", "image_count_uploading"}
    assert usage["image_count_total"]["limit"] == 4 and usage["image_stage_total"]["limit"] == -1
    while alt.get("/v2/info/usage").json()["usage"]["image_count_total"]["usage"] < 4:
        alt.create(name="filler", disk_format="raw", container_format="bare")
    over = alt.post("/v2/images", json={"name": "one too many"})
    assert over.status_code == 413
    assert "image_count_total is over limit of 4" in over.json()["message"]
    assert alt.ids("?name=one%20too%20many") == []
    # As Glance: whole MiB rounded down (alt's 1000 bytes count 0), and an upload counts its Content-Length (in
    # whole MiB) before its bytes arrive: 1.9 MiB passes (0 + 1 <= 1), then 1 MiB more does not (1 + 1 > 1).
    queued = [i["id"] for i in alt.get("/v2/images?status=queued").json()["images"]]
    assert alt.upload(queued[0], b"y" * (MiB + 900 * 1024)).status_code == 204
    refused = alt.upload(queued[1], b"y" * MiB)
    assert refused.status_code == 413
    assert "image_size_total is over limit of 1 due to current usage 1 and delta 1" in refused.json()["message"]
    assert alt.image(queued[1])["status"] == "queued"


def test_deleted_image_ids_are_never_reused(quota_cloud: Cloud) -> None:
    demo = Glance(quota_cloud, "demo")
    image_id = str(uuid.uuid4())
    demo.create(id=image_id, name="once", disk_format="raw", container_format="bare")
    assert demo.delete(f"/v2/images/{image_id}").status_code == 204
    again = demo.post("/v2/images", json={"id": image_id, "name": "twice"})
    assert again.status_code == 409
    assert demo.get(f"/v2/images/{image_id}").status_code == 404


def test_bytes_kept_by_a_broken_resumable_upload_count_against_the_size_quota(quota_cloud: Cloud) -> None:
    """imagehop's resumable upload keeps what arrived: those bytes are stored, so they count, or a tenant could
    keep any amount by breaking its uploads. Deleting the image gives them back."""
    admin = Glance(quota_cloud, "admin")  # a tenant no other test here fills: its usage starts at 0

    def size_usage() -> int:
        return admin.get("/v2/info/usage").json()["usage"]["image_size_total"]["usage"]

    assert size_usage() == 0
    image = admin.create(name="kept", disk_format="raw", container_format="bare")

    def broken_body() -> Iterator[bytes]:  # 3 MiB, a pause for the region to read them, then the connection breaks
        yield from (bytes([n]) * MiB for n in range(1, 4))
        time.sleep(1)
        raise RuntimeError("the connection breaks")

    with contextlib.suppress(RuntimeError, httpx.HTTPError):
        admin.put(f"/v2/images/{image['id']}/file", content=broken_body(),
                  headers={**OCTET, "X-Imagehop-Resumable": "true"})  # fmt: skip
    kept = int(wait_for(lambda: admin.image(image["id"]).get("imagehop.upload_kept"), "the region keeps the bytes"))
    assert kept >= MiB, "the region kept less than 1 MiB: the test cannot check the quota"
    assert size_usage() == kept // MiB
    other = admin.create(name="over", disk_format="raw", container_format="bare")
    refused = admin.upload(other["id"], b"z" * MiB)
    assert refused.status_code == 413, refused.text
    assert f"image_size_total is over limit of 1 due to current usage {kept // MiB}" in refused.json()["message"]
    assert admin.image(other["id"])["status"] == "queued"
    assert admin.delete(f"/v2/images/{image['id']}").status_code == 204
    assert size_usage() == 0
    assert admin.upload(other["id"], b"z" * MiB).status_code == 204
