"""The Tasks API surface: create, show, list (filters, sorting, paging), tenancy, DELETE, schemas,
limits and expiry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagehop.config import ConfigError, load_settings
from tests.support import Cloud, Glance, MiB, create_image, disk_bytes, make_cloud, run_task, wait_for, wait_image
from tests.support.cloud import task_config
from tests.support.web import web_server


def export_body(container: str = "none") -> dict:
    return {"type": "export", "input": {"image_uuid": "00000000-0000-4000-8000-000000000001",
                                        "receiving_swift_container": container}}  # fmt: skip


def test_create_show_list_and_tenancy(tcloud: Cloud) -> None:
    demo, alt = Glance(tcloud), Glance(tcloud, "alt")
    ids = [run_task(demo, export_body(f"c{i}"))["id"] for i in range(3)]  # each fails: no such image
    assert alt.get(f"/v2/tasks/{ids[0]}").status_code == 404
    assert alt.get("/v2/tasks/not-a-uuid").status_code == 404
    deleted = demo.delete(f"/v2/tasks/{ids[0]}")
    assert deleted.status_code == 405 and deleted.headers["allow"] == "GET"
    assert demo.get(f"/v2/tasks/{ids[0]}").status_code == 200

    # newest first, two a page; page 2 holds exactly the rest and ends the list
    listing = demo.get("/v2/tasks", params={"type": "export", "limit": 2}).json()
    assert listing["schema"] == "/v2/schemas/tasks" and listing["first"].startswith("/v2/tasks?")
    assert [t["id"] for t in listing["tasks"]] == [ids[2], ids[1]] and "next" in listing
    for stub in listing["tasks"]:
        assert not {"input", "result", "message"} & set(stub)
        assert (stub["type"], stub["status"]) == ("export", "failure")
    page2 = demo.get("/v2/tasks", params={"type": "export", "limit": 2, "marker": ids[1]}).json()
    assert [t["id"] for t in page2["tasks"]] == [ids[0]] and "next" not in page2
    asc = [t["id"] for t in demo.get("/v2/tasks", params={"sort_dir": "asc"}).json()["tasks"]]
    assert asc == ids
    assert [t["id"] for t in demo.get("/v2/tasks", params={"status": "failure"}).json()["tasks"]] == ids[::-1]
    assert demo.get("/v2/tasks", params={"status": "pending"}).json()["tasks"] == []
    assert demo.get("/v2/tasks", params={"type": "import"}).json()["tasks"] == []
    assert alt.get("/v2/tasks").json()["tasks"] == []
    for bad in ({"status": "nope"}, {"type": "clone"}, {"sort_dir": "up"}, {"limit": "x"}, {"marker": "zzz"}):
        assert demo.get("/v2/tasks", params=bad).status_code == 400, bad
    for body in ({"input": {}}, {"type": "export"}, {"type": "clone", "input": {}}, {"type": "api_image_import",
                                                                                    "input": {}}):  # fmt: skip
        assert demo.post("/v2/tasks", json=body).status_code == 400, body
    assert [t["id"] for t in demo.get("/v2/tasks", params={"sort_dir": "asc"}).json()["tasks"]] == ids


def test_schemas_allow_export(tcloud: Cloud) -> None:
    demo = Glance(tcloud)
    task = demo.get("/v2/schemas/task").json()
    assert {"import", "export", "api_image_import"} <= set(task["properties"]["type"]["enum"])
    assert task["properties"]["message"]["type"] == "string"
    items = demo.get("/v2/schemas/tasks").json()["properties"]["tasks"]["items"]["properties"]
    assert "input" not in items and "result" not in items and "message" not in items


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """Single-backend (SQLite): the limit is counted by one query the suite runs on both backends
    elsewhere; what matters here is what keeps tasks active."""
    running = make_cloud(tmp_path_factory.mktemp("limited"), "sqlite", config=task_config(max_active_per_tenant=2),
                         env={"IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE": "1"})  # fmt: skip
    with running:
        yield running


def test_per_tenant_limit_answers_413(limited: Cloud) -> None:
    demo, alt = Glance(limited), Glance(limited, "alt")
    with web_server() as web:
        web.files["disk.raw"] = disk_bytes(4 * MiB, seed=1)
        web.hold()  # both downloads stall half-way: two of demo's tasks stay active
        images = [create_image(limited, "ORD", f"held-{i}") for i in range(2)]
        for image in images:
            body = {"method": {"name": "web-download", "uri": f"{web.url}/disk.raw"}}
            assert demo.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
        wait_for(lambda: web.stalled == 2, "both web-downloads are under way")
        held = demo.get(f"/v2/images/{images[0]['id']}/tasks").json()["tasks"][0]
        shown = demo.get(f"/v2/tasks/{held['id']}")
        assert shown.json()["status"] == "processing" and shown.headers["retry-after"] == "1"

        refused = demo.post("/v2/tasks", json=export_body())
        assert refused.status_code == 413 and refused.headers["retry-after"] == "1"
        assert "Over Limit" in refused.json()["message"]
        assert alt.post("/v2/tasks", json=export_body()).status_code == 201  # another tenant's count
        web.release()
        for image in images:
            wait_image(demo, image["id"])
    assert demo.post("/v2/tasks", json=export_body()).status_code == 201


def test_finished_tasks_expire_and_running_ones_do_not(cloud_factory) -> None:  # type: ignore[no-untyped-def]
    """Single-backend (SQLite): expiry is one comparison with expires_at, the same on both."""
    cloud = cloud_factory("expiring", env={"IMAGEHOP_TASKS_TIME_TO_LIVE": "0.001",  # hours: 3.6 s
                                           "IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE": "1"})  # fmt: skip
    cloud.start()
    demo = Glance(cloud)
    with web_server() as web:
        web.files["disk.raw"] = disk_bytes(4 * MiB, seed=2)
        web.hold()
        image = create_image(cloud, "ORD", "held")
        body = {"method": {"name": "web-download", "uri": f"{web.url}/disk.raw"}}
        assert demo.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
        wait_for(lambda: web.stalled == 1, "the web-download is under way")
        [held] = demo.get(f"/v2/images/{image['id']}/tasks").json()["tasks"]

        task = run_task(demo, export_body())
        assert task["status"] == "failure" and task["expires_at"] > task["updated_at"]
        gone = wait_for(lambda: (r := demo.get(f"/v2/tasks/{task['id']}")).status_code == 404 and r, "the task expires")
        assert "not found" in gone.json()["message"]
        assert task["id"] not in [t["id"] for t in demo.get("/v2/tasks").json()["tasks"]]
        # the running task has no expiry yet: it outlives the finished one
        running = demo.get(f"/v2/tasks/{held['id']}").json()
        assert (running["status"], running["expires_at"]) == ("processing", None)
        web.release()
        wait_image(demo, image["id"])


def test_bad_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[tasks]\nexport_segment_size = 6000000000\n")
    with pytest.raises(ConfigError, match="5 GiB"):
        load_settings(path, env={})
    path.write_text("[tasks]\ntime_to_live = 0\n")
    with pytest.raises(ConfigError, match="time_to_live"):
        load_settings(path, env={})
    path.write_text("[tasks]\nconcurrency = 8\nretry_after = 3\n[images]\nweb_download_allow_private = true\n")
    settings = load_settings(path, env={"IMAGEHOP_TASKS_TIME_TO_LIVE": "2"})
    assert settings.tasks.concurrency == 8 and settings.tasks.retry_after == 3 and settings.tasks.time_to_live == 2
    assert settings.images.web_download_allow_private
