"""The Tasks API surface: create, show, list (filters, sorting, paging), tenancy, DELETE, schemas, limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cloud
from tests.images.conftest import Glance
from tests.tasks.conftest import create_task, task_cloud, wait_task


def export_body(container: str = "none") -> dict:
    return {"type": "export", "input": {"image_uuid": "00000000-0000-4000-8000-000000000001",
                                        "receiving_swift_container": container}}  # fmt: skip


def test_create_show_list_and_tenancy(tcloud: Cloud) -> None:
    demo, alt = Glance(tcloud), Glance(tcloud, "alt")
    ids = [create_task(demo, export_body(f"c{i}"))["id"] for i in range(3)]
    for task_id in ids:
        wait_task(demo, task_id)
    assert alt.get(f"/v2/tasks/{ids[0]}").status_code == 404
    assert alt.get("/v2/tasks/not-a-uuid").status_code == 404
    deleted = demo.delete(f"/v2/tasks/{ids[0]}")
    assert deleted.status_code == 405 and deleted.headers["allow"] == "GET"
    assert demo.get(f"/v2/tasks/{ids[0]}").status_code == 200

    listing = demo.get("/v2/tasks", params={"type": "export", "limit": 2}).json()
    assert listing["schema"] == "/v2/schemas/tasks" and listing["first"].startswith("/v2/tasks?")
    assert len(listing["tasks"]) == 2 and "next" in listing
    for stub in listing["tasks"]:
        assert not {"input", "result", "message"} & set(stub)
        assert stub["type"] == "export"
    page2 = demo.get("/v2/tasks", params={"type": "export", "limit": 2, "marker": listing["tasks"][-1]["id"]}).json()
    seen = [t["id"] for t in listing["tasks"] + page2["tasks"]]
    assert len(seen) == len(set(seen))
    assert set(ids) <= {t["id"] for t in demo.get("/v2/tasks", params={"limit": 1000}).json()["tasks"]}
    asc = [t["created_at"] for t in demo.get("/v2/tasks", params={"sort_dir": "asc"}).json()["tasks"]]
    assert asc == sorted(asc)
    assert all(t["status"] == "failure" for t in demo.get("/v2/tasks", params={"status": "failure"}).json()["tasks"])
    assert not {t["id"] for t in alt.get("/v2/tasks").json()["tasks"]} & set(ids)
    for bad in ({"status": "nope"}, {"type": "clone"}, {"sort_dir": "up"}, {"limit": "x"}, {"marker": "zzz"}):
        assert demo.get("/v2/tasks", params=bad).status_code == 400, bad
    for body in ({"input": {}}, {"type": "export"}, {"type": "clone", "input": {}}, {"type": "api_image_import",
                                                                                    "input": {}}):  # fmt: skip
        assert demo.post("/v2/tasks", json=body).status_code == 400, body


def test_schemas_allow_export(tcloud: Cloud) -> None:
    demo = Glance(tcloud)
    task = demo.get("/v2/schemas/task").json()
    assert {"import", "export", "api_image_import"} <= set(task["properties"]["type"]["enum"])
    assert task["properties"]["message"]["type"] == "string"
    items = demo.get("/v2/schemas/tasks").json()["properties"]["tasks"]["items"]["properties"]
    assert "input" not in items and "result" not in items and "message" not in items


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    # a worker that never gets to run anything (a long poll) and a tenant limit of 2
    running = task_cloud(tmp_path_factory.mktemp("limited"), "sqlite")
    text = running.config_file.read_text().replace("max_active_per_tenant = 50", "max_active_per_tenant = 2")
    running.config_file.write_text(text.replace("poll_interval = 0.05", "poll_interval = 60") + "concurrency = 1\n")
    with running:
        yield running


def test_per_tenant_limit_answers_413(limited: Cloud) -> None:
    demo, alt = Glance(limited), Glance(limited, "alt")
    # the worker looks once at start-up, then sleeps a minute: these stay pending
    time.sleep(0.2)
    first = [demo.post("/v2/tasks", json=export_body()) for _ in range(3)]
    assert [r.status_code for r in first] == [201, 201, 413]
    assert first[2].headers["retry-after"] == "1" and "Over Limit" in first[2].json()["message"]
    assert alt.post("/v2/tasks", json=export_body()).status_code == 201  # another tenant's count
    shown = demo.get(f"/v2/tasks/{first[0].json()['id']}")
    assert shown.json()["status"] == "pending" and shown.headers["retry-after"] == "1"


def test_bad_config_is_refused(tmp_path: Path) -> None:
    from imagehop.config import ConfigError, load_settings

    path = tmp_path / "c.toml"
    path.write_text("[tasks]\nexport_segment_size = 6000000000\n")
    with pytest.raises(ConfigError, match="5 GiB"):
        load_settings(path, env={})
    path.write_text("[tasks]\nconcurrency = 8\nretry_after = 3\n[images]\nweb_download_allow_private = true\n")
    settings = load_settings(path, env={"IMAGEHOP_TASKS_TIME_TO_LIVE": "2"})
    assert settings.tasks.concurrency == 8 and settings.tasks.retry_after == 3 and settings.tasks.time_to_live == 2
    assert settings.images.web_download_allow_private
