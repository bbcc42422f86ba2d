"""The one image-create helper, and waiting on images and tasks through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.clients import Glance
from tests.support.cloud import Cloud
from tests.support.wait import wait_for


def create_image(
    cloud: Cloud, region: str = "ORD", name: str = "image", data: bytes | Path | None = None, user: str = "demo",
    **attrs: Any,
) -> dict:  # fmt: skip
    """An image made with ``POST /v2/images`` (raw/bare unless ``attrs`` say otherwise) and, with
    ``data`` (bytes, or a file streamed from disk), uploaded with ``PUT /file``; returns the image as
    ``GET`` shows it afterwards."""
    glance = Glance(cloud, user, region)
    image = glance.create(**{"name": name, "disk_format": "raw", "container_format": "bare", **attrs})
    if isinstance(data, Path):
        with open(data, "rb") as f:
            chunks = iter(lambda: f.read(1 << 20), b"")
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(data.stat().st_size)}
            response = glance.put(f"/v2/images/{image['id']}/file", content=chunks, headers=headers)
        assert response.status_code == 204, response.text
    elif data is not None:
        response = glance.upload(image["id"], data)
        assert response.status_code == 204, response.text
    return glance.image(image["id"])


def wait_image(glance: Glance, image_id: str, status: str = "active", timeout: float = 120) -> dict:
    """Wait until the image has ``status`` and no import holds it (``os_glance_import_task`` gone)."""

    def check() -> dict | None:
        image = glance.image(image_id)
        return image if image["status"] == status and "os_glance_import_task" not in image else None

    return wait_for(check, f"image {image_id} is {status} with no import running", timeout=timeout)


def ended_tasks(glance: Glance, image_id: str, timeout: float = 120) -> list[dict]:
    """The image's tasks once every one has ended. The image is unlocked (active, or queued again) a
    moment before its task records the outcome, as in Glance: a client waits for the task."""

    def check() -> list[dict] | None:
        tasks = glance.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        return tasks if tasks and all(t["status"] in ("success", "failure") for t in tasks) else None

    return wait_for(check, f"the tasks of image {image_id} end", timeout=timeout)


def create_task(glance: Glance, body: dict) -> dict:
    """``POST /v2/tasks`` that must be accepted (201, with its Location)."""
    response = glance.post("/v2/tasks", json=body)
    assert response.status_code == 201, response.text
    task = response.json()
    assert response.headers["location"] == f"/v2/tasks/{task['id']}"
    return task


def wait_task(glance: Glance, task_id: str, timeout: float = 120) -> dict:
    """Wait until a task ends (success or failure); while it runs, every GET carries Retry-After."""

    def check() -> dict | None:
        response = glance.get(f"/v2/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task = response.json()
        if task["status"] in ("success", "failure"):
            assert "retry-after" not in response.headers, task
            return task
        assert response.headers["retry-after"].isdigit(), response.headers
        # imagehop's finer hint: from 0.1 s, growing with the task's age, never past Retry-After
        assert 0.1 <= float(response.headers["x-imagehop-poll-after"]) <= int(response.headers["retry-after"])
        return None

    return wait_for(check, f"task {task_id} ends", timeout=timeout)


def run_task(glance: Glance, body: dict, timeout: float = 120) -> dict:
    """Create a task and wait for its end."""
    return wait_task(glance, create_task(glance, body)["id"], timeout)
