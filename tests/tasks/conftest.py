"""Helpers for task tests: a cloud with small export segments and fast polling, Swift and Glance clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, Cloud, make_cloud
from tests.images.conftest import Glance

SEGMENT = 8 << 20  # exported VHDs over 8 MiB become SLOs: the tests see both shapes
TASK_SETTINGS = f"""
[tasks]
export_segment_size = {SEGMENT}
retry_after = 1
poll_interval = 0.05
max_active_per_tenant = 50
import_max_virtual_size = {1 << 40}
"""


def task_cloud(base: Path, backend: str, extra: str = "") -> Cloud:
    """A cloud (not started) whose config file carries TASK_SETTINGS (+ ``extra``)."""
    cloud = make_cloud(base, backend)
    if cloud.config_file is None:
        cloud.config_file = base / "imagehop.toml"
        cloud.config_file.write_text("")
    cloud.config_file.write_text(cloud.config_file.read_text() + TASK_SETTINGS + extra)
    return cloud


@pytest.fixture(scope="module", params=BACKENDS)
def tcloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with task_cloud(tmp_path_factory.mktemp(f"tasks-{request.param}"), request.param) as running:
        yield running


class Swift:
    """``httpx`` against one region's object storage as one user."""

    def __init__(self, cloud: Cloud, user: str = "demo", region: str = "ORD") -> None:
        tenant = cloud.credentials()[user]["tenant_id"]
        self.url = f"{cloud.regions[region]}/v1/AUTH_{tenant}"
        self.http = httpx.Client(base_url=self.url, headers={"X-Auth-Token": cloud.token(user)}, timeout=60)

    def put(self, path: str, data: bytes = b"", **kw) -> httpx.Response:
        response = self.http.put(path, content=data, **kw)
        assert response.status_code in (201, 202), response.text
        return response

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)


def wait_task(glance: Glance, task_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = glance.get(f"/v2/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task = response.json()
        if task["status"] in ("success", "failure"):
            assert "retry-after" not in response.headers
            return task
        assert response.headers["retry-after"] == "1"
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish: {task}")


def create_task(glance: Glance, body: dict) -> dict:
    response = glance.post("/v2/tasks", json=body)
    assert response.status_code == 201, response.text
    task = response.json()
    assert response.headers["location"] == f"/v2/tasks/{task['id']}"
    return task
