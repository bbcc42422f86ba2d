"""Crash consistency of image upload and staging (issue 10, item 11): a server SIGKILLed in the
middle of ``PUT /file`` or ``PUT /stage`` is restarted; the image is back to ``queued`` with its
partial data gone, a new upload or stage works, and no answer or task message names an internal
account or path. On both databases (the recovery is a conditional update of the image row).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support import BACKENDS, Cloud, Glance, MiB, ended_tasks, wait_for, wait_image

GLANCE_DIRECT = {"method": {"name": "glance-direct"}}
INTERNAL = (".imagehop-images", "staging/", "regions/")


def killed_mid_write(cloud: Cloud, image_id: str, what: str, status: str) -> None:
    """Stream a body to ``what`` (file or stage), kill the server once the image is ``status`` and
    4 MiB have gone, then restart it."""
    glance = Glance(cloud)
    sent_enough, release = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        for index in range(64):
            if index == 4:
                sent_enough.set()
                release.wait(60)
            yield os.urandom(MiB)

    def upload() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server dies under it
            httpx.put(f"{glance.url}/v2/images/{image_id}/{what}", content=body(), timeout=60,
                      headers={"X-Auth-Token": glance.token, "Content-Type": "application/octet-stream"})  # fmt: skip

    client = threading.Thread(target=upload)
    client.start()
    assert sent_enough.wait(60)
    wait_for(lambda: glance.image(image_id)["status"] == status, f"the image is {status}")
    cloud.kill()
    release.set()
    client.join(60)
    cloud.start()


def assert_nothing_internal(text: str, cloud: Cloud) -> None:
    for word in (*INTERNAL, str(cloud.data_dir)):
        assert word not in text, (word, text)


@pytest.fixture(params=BACKENDS)
def crashing_cloud(request: pytest.FixtureRequest, cloud_factory: Callable[..., Cloud]) -> Cloud:
    cloud = cloud_factory("crash", request.param)
    cloud.start()
    return cloud


def test_an_upload_killed_midway_goes_back_to_queued(crashing_cloud: Cloud) -> None:
    glance = Glance(crashing_cloud)
    image = glance.create(name="killed", disk_format="raw", container_format="bare")
    killed_mid_write(crashing_cloud, image["id"], "file", "saving")
    glance = Glance(crashing_cloud)
    after = wait_image(glance, image["id"], "queued")
    assert (after["size"], after["checksum"], after["os_hash_value"]) == (None, None, None)
    assert "os_glance_upload_writer" not in after
    data = os.urandom(3 * MiB)
    response = glance.upload(image["id"], data)
    assert response.status_code == 204, response.text
    done = glance.image(image["id"])
    assert (done["status"], done["size"]) == ("active", len(data))
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert glance.get(f"/v2/images/{image['id']}/file").content == data


def test_a_stage_killed_midway_goes_back_to_queued(crashing_cloud: Cloud) -> None:
    glance = Glance(crashing_cloud)
    image = glance.create(name="staged", disk_format="raw", container_format="bare")
    killed_mid_write(crashing_cloud, image["id"], "stage", "uploading")
    glance = Glance(crashing_cloud)
    wait_image(glance, image["id"], "queued")
    # glance-direct now says what to do, naming nothing internal.
    refused = glance.post(f"/v2/images/{image['id']}/import", json=GLANCE_DIRECT)
    assert refused.status_code == 409
    assert_nothing_internal(refused.text, crashing_cloud)
    data = os.urandom(2 * MiB)
    staged = glance.put(f"/v2/images/{image['id']}/stage", content=data,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert staged.status_code == 204
    assert (
        glance.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
    )
    done = wait_image(glance, image["id"])
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    for task in ended_tasks(glance, image["id"]):
        assert_nothing_internal(task["message"], crashing_cloud)


def test_a_finished_stage_survives_a_restart(crashing_cloud: Cloud) -> None:
    """Only interrupted stages are undone: staged data waiting for its import stays."""
    glance = Glance(crashing_cloud)
    image = glance.create(name="kept", disk_format="raw", container_format="bare")
    data = os.urandom(MiB)
    staged = glance.put(f"/v2/images/{image['id']}/stage", content=data,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert staged.status_code == 204
    crashing_cloud.kill()
    crashing_cloud.start()
    glance = Glance(crashing_cloud)
    assert glance.image(image["id"])["status"] == "uploading"
    assert (
        glance.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
    )
    assert wait_image(glance, image["id"])["os_hash_value"] == hashlib.sha512(data).hexdigest()
