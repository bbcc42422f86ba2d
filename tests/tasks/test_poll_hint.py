"""The finer poll hint of a running task (``X-Imagehop-Poll-After``) and how the copy engine reads it:
short tasks are polled from 0.1 s, long ones no more often than before; and a new task is started at
once, not at the worker's next poll."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from imagehop.images.service import now
from imagehop.tasks.service import poll_after
from imagehop.transfer.glance import _poll_after
from tests.support import Glance, MiB, Swift, disk_bytes, make_cloud, run_task, wait_image


def test_the_hint_is_a_quarter_of_the_youngest_tasks_age_from_a_tenth_up_to_retry_after() -> None:
    def aged(seconds: float) -> dict:
        return {"created_at": now() - timedelta(seconds=seconds)}

    assert poll_after([aged(0)], 1) == "0.10"
    assert poll_after([aged(2)], 1) == "0.50"
    assert poll_after([aged(600)], 1) == "1.00"
    assert poll_after([aged(600), aged(0.2)], 5) == "0.10"  # the youngest decides
    assert poll_after([aged(60)], 5) == "5.00"


def test_the_client_follows_the_hint_only_within_retry_after() -> None:
    assert _poll_after({"Retry-After": "1", "X-Imagehop-Poll-After": "0.10"}) == 0.1
    assert _poll_after({"Retry-After": "1", "X-Imagehop-Poll-After": "7"}) == 1.0  # never later than asked
    assert _poll_after({"Retry-After": "1", "X-Imagehop-Poll-After": "0.001"}) == 1.0  # nor a flood
    assert _poll_after({"Retry-After": "1", "X-Imagehop-Poll-After": "soon"}) == 1.0
    assert _poll_after({"Retry-After": "30"}) == 30.0  # another cloud: Retry-After alone, as before
    assert _poll_after({}) is None


def test_a_new_task_is_started_at_once_not_at_the_workers_next_poll(tmp_path: Path) -> None:
    """With the worker looking for pending tasks only every 600 s, an import and a Tasks API export are
    still run at once: the request that queues a task wakes its region's worker."""
    with make_cloud(tmp_path, env={"IMAGEHOP_TASKS_POLL_INTERVAL": "600"}) as cloud:
        demo = Glance(cloud)
        image = demo.create(name="woken", disk_format="raw", container_format="bare")
        staged = demo.put(f"/v2/images/{image['id']}/stage", content=disk_bytes(MiB, seed=5),
                          headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert staged.status_code == 204
        started = demo.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}})
        assert started.status_code == 202
        assert wait_image(demo, image["id"], timeout=60)["status"] == "active"
        assert Swift(cloud).put("/exports").status_code in (201, 202)
        body = {"type": "export", "input": {"image_uuid": image["id"], "receiving_swift_container": "exports"}}
        assert run_task(demo, body, timeout=60)["status"] == "success"
