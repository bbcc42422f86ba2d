"""`imagehop copy` before any slow step: finding the image, the checks, the plan, re-runs."""

from __future__ import annotations

import json
import sys

import pytest

from imagehop.transfer.clouds import connect
from imagehop.transfer.copy import CopyError, check_exportable, find_source_image
from imagehop.transfer.glance import GlanceClient, TaskPoll, user_properties
from tests.support import Cloud, Glance, MiB, create_image, disk_bytes, ended_tasks, run


@pytest.fixture(scope="module")
def glance(cloud: Cloud) -> GlanceClient:
    return GlanceClient(connect("imagehop", str(cloud.clouds_yaml)), "ORD", poll_interval=0.1)


def test_find_by_id_name_and_property(cloud: Cloud, glance: GlanceClient) -> None:
    image = create_image(
        cloud, "ORD", "db-slave-3-image", disk_bytes(MiB, seed=1), **{"com.mycompany.image-of": "db-slave-3"}
    )
    assert find_source_image(glance, image["id"])["id"] == image["id"]
    assert find_source_image(glance, "db-slave-3-image")["id"] == image["id"]
    assert find_source_image(glance, "com.mycompany.image-of=db-slave-3")["id"] == image["id"]
    with pytest.raises(CopyError, match="no image named 'nope'"):
        find_source_image(glance, "nope")
    create_image(cloud, "ORD", "twin", b"a" * 512)
    create_image(cloud, "ORD", "twin", b"b" * 512)
    with pytest.raises(CopyError, match=r"2 images named .twin.*name one by id"):
        find_source_image(glance, "twin")


def test_exportable_checks(cloud: Cloud, glance: GlanceClient) -> None:
    image = create_image(cloud, "ORD", "licensed", b"x" * 4096, **{"os_type": "windows"})
    with pytest.raises(CopyError, match="licensing"):
        check_exportable(image, "10000001")
    plain = create_image(cloud, "ORD", "plain", b"x" * 4096)
    check_exportable(plain, "10000001")
    with pytest.raises(CopyError, match="only the owner"):
        check_exportable(plain, "10000002")
    props = user_properties({**plain, "com.mycompany.image-of": "db-slave-3"})
    assert props == {"com.mycompany.image-of": "db-slave-3"}


def test_copy_dry_run_shows_the_plan_and_changes_nothing(cloud: Cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = create_image(cloud, "ORD", "dry", disk_bytes(MiB, seed=1))
    pull = "by glance-download: imagehop/IAD pulls the image from imagehop/ORD itself"
    for method, plan in (("tasks", "by tasks: asked for (Rackspace's export and import tasks"), ("auto", pull)):
        result = run(
            [sys.executable, "-m", "imagehop", "copy", image["id"], "--from", "ORD", "--to", "IAD", "--dry-run",
             "--method", method, "--state", tmp_path / "j.db"],
            env={**cloud.env(), "COLUMNS": "300"},
        )  # fmt: skip
        assert plan in result.stdout.replace("\n", " ")
        assert "(--dry-run: nothing was changed)" in result.stdout
    after = Glance(cloud).image(image["id"])
    assert "imagehop.source" not in after  # nothing was changed
    assert Glance(cloud).get("/v2/tasks").json()["tasks"] == []  # no export was started


def test_copy_of_another_tenants_image_is_refused_before_any_work(cloud: Cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = create_image(cloud, "ORD", "alts", disk_bytes(MiB, seed=1), user="alt")
    result = run(
        [sys.executable, "-m", "imagehop", "copy", image["id"], "--from", "ORD", "--to", "IAD", "--json",
         "--state", tmp_path / "j.db"],
        env=cloud.env(), expect=1,
    )  # fmt: skip
    assert json.loads(result.stdout.splitlines()[0])["error"].startswith(f"no image {image['id']}")


def test_a_target_image_that_stays_saving_is_a_clear_error_not_a_delete(cloud: Cloud, glance: GlanceClient) -> None:
    """A re-run finds its image still receiving an upload (another copy sends it): it neither cuts that
    upload short nor deletes the image, and says what to do."""
    import socket
    import time
    from urllib.parse import urlsplit

    from imagehop.transfer.copy import _until_not_saving

    image = Glance(cloud).create(name="busy", disk_format="raw", container_format="bare")
    url = urlsplit(glance.base)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        head = (f"PUT {url.path}/images/{image['id']}/file HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"X-Auth-Token: {Glance(cloud).token}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {4 * MiB}\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + bytes(MiB))  # the rest never comes while the test runs
        deadline = time.monotonic() + 30
        while (current := glance.get_image(image["id"]))["status"] != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(CopyError, match=r"still receiving an upload .*Run the same command again"):
            _until_not_saving(glance, current, "imagehop/ORD", timeout=1.0)
        assert glance.get_image(image["id"])["status"] == "saving"


def _imported(demo: Glance, name: str, seed: int) -> tuple[dict, dict]:
    """An image imported by glance-direct, once its import task has ended: (image, task)."""
    image = demo.create(name=name, disk_format="raw", container_format="bare")
    staged = demo.put(f"/v2/images/{image['id']}/stage", content=disk_bytes(MiB, seed=seed),
                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert staged.status_code == 204
    assert demo.post(f"/v2/images/{image['id']}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
    [task] = ended_tasks(demo, image["id"])
    assert task["status"] == "success" and demo.image(image["id"])["status"] == "active", task
    return image, task


def test_an_import_seen_finished_after_a_stale_image_read_is_not_waited_a_poll_interval(cloud: Cloud) -> None:
    """The copy reads the image (still importing), then its task list: by then the task succeeded, and a
    finished task's list carries no Retry-After. The copy must read the image again at once, not sleep
    its poll interval (30 s by default) for an import that is over."""
    from imagehop.transfer.copy import _wait_active

    image, _ = _imported(Glance(cloud), "imported", seed=3)

    class StaleFirstRead(GlanceClient):
        reads = 0

        def get_image(self, image_id: str):  # type: ignore[no-untyped-def]
            self.reads += 1
            current = super().get_image(image_id)
            return {**current, "status": "importing"} if self.reads == 1 else current  # read just before the end

    client = StaleFirstRead(connect("imagehop", str(cloud.clouds_yaml)), "ORD", poll_interval=30.0)
    slept: list[float] = []
    task_id = _wait_active(client, image["id"], lambda *_: None, sleep=slept.append)
    assert task_id and client.reads == 2
    assert slept and max(slept) <= 0.2, slept


def test_an_active_image_whose_import_task_has_not_recorded_its_end_is_read_again(cloud: Cloud) -> None:
    """The image is unlocked and active a moment before its task records the outcome (what an
    incremental pull reused): the copy waits for the task's end before it reads the result."""
    from imagehop.transfer.copy import _wait_active

    image, task = _imported(Glance(cloud), "imported-late", seed=4)

    class TaskSeenLate(GlanceClient):
        task_reads = 0

        def import_task(self, image_id: str):  # type: ignore[no-untyped-def]
            self.task_reads += 1
            poll = super().import_task(image_id)
            assert poll is not None
            if self.task_reads == 1:  # read in the moment between the image's end and the task's
                return TaskPoll({**poll.task, "status": "processing", "result": None}, poll.retry_after)
            return poll

    client = TaskSeenLate(connect("imagehop", str(cloud.clouds_yaml)), "ORD", poll_interval=30.0)
    slept: list[float] = []
    assert _wait_active(client, image["id"], lambda *_: None, sleep=slept.append) == task["id"]
    assert client.task_reads == 2 and slept == [0.02]
