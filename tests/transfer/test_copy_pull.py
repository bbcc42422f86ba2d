"""`imagehop copy --method pull`, `--boot`, batches and bad credentials, against real `imagehop serve`."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import Cloud
from tests.support.sizes import MiB
from tests.transfer.test_copy import TAG, copy, disk, images_with, two_clouds
from tests.transfer.test_copy_plan import create_image


def exported_objects(cloud: Cloud, region: str, user: str = "demo") -> list[str]:
    tenant = cloud.credentials()[user]["tenant_id"]
    listing = httpx.get(
        f"{cloud.regions[region]}/v1/AUTH_{tenant}/imagehop-exports",
        params={"format": "json"}, headers={"X-Auth-Token": cloud.token(user)},
    )  # fmt: skip
    assert listing.status_code in (200, 204, 404), listing.text
    return [o["name"] for o in listing.json()] if listing.status_code == 200 else []


def test_pull_between_regions_moves_no_bytes_through_the_client(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=pulled"
    source = create_image(sqlite_cloud, "ORD", "pulled-image", disk(8, 11), os_distro="debian",
                          **{"com.mycompany.role": "web"})  # fmt: skip
    result = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                  "--method", "pull", state=tmp_path / "j.db")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["method"] == "glance-download"
    assert report["steps"] == ["created", "pulled", "tagged", "verified"]
    # The target fetched the 8 MiB itself: that is what moved, none of it through this client.
    assert report["bytes_moved"] == 8 * MiB and report["move"]["through_client"] == 0
    assert report["verified_by"] == "content digest"
    # The pull's task is named as a task (its own id), not by the image it fills.
    assert report["tasks"]["pull"] and report["tasks"]["pull"] != report["target_image"]
    assert exported_objects(sqlite_cloud, "IAD") == [] and exported_objects(sqlite_cloud, "ORD") == []

    [target] = images_with(sqlite_cloud, "IAD", tag)
    assert target["id"] == report["target_image"] and target["status"] == "active"
    assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
    assert target["name"] == "pulled-image"
    assert target["os_distro"] == "debian" and target["com.mycompany.role"] == "web"

    again = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                 "--method", "pull", state=tmp_path / "j.db")  # fmt: skip
    assert again.returncode == 0 and json.loads(again.stdout)["already_done"] is True
    assert len(images_with(sqlite_cloud, "IAD", tag)) == 1


def test_boot_gives_an_active_server_from_the_copy(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=booted"
    source = create_image(sqlite_cloud, "ORD", "bootable", disk(4, 12))
    result = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                  "--boot", "Slave Database 3", "--flavor", "m1.small", state=tmp_path / "j.db")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["method"] == "glance-download" and report["server"]
    tenant = sqlite_cloud.credentials()["demo"]["tenant_id"]
    server = httpx.get(
        f"{sqlite_cloud.regions['IAD']}/compute/v2.1/{tenant}/servers/{report['server']}",
        headers={"X-Auth-Token": sqlite_cloud.token()},
    ).json()["server"]
    assert server["status"] == "ACTIVE" and server["name"] == "Slave Database 3"
    assert server["image"]["id"] == report["target_image"]


def test_batch_all_with_and_concurrency(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    sources = [create_image(sqlite_cloud, "ORD", f"batch-{i}", disk(4, 20 + i), **{"com.mycompany.batch": "b1"})
               for i in range(3)]  # fmt: skip
    result = copy(sqlite_cloud.env(), "--all-with", "com.mycompany.batch=b1", "--concurrency", "2",
                  "--from", "ORD", "--to", "IAD", state=tmp_path / "j.db")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    document = json.loads(result.stdout)
    assert document["copied"] == 3 and document["failed"] == []
    assert sorted(r["source_image"] for r in document["images"]) == sorted(s["id"] for s in sources)
    for source in sources:
        [target] = images_with(sqlite_cloud, "IAD", f"imagehop.source=ORD/{source['id']}")
        assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
        assert target["com.mycompany.batch"] == "b1"


def test_batch_failure_names_the_image_and_says_rerun_resumes(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    good = create_image(sqlite_cloud, "ORD", "listed-good", disk(2, 30))
    listing = tmp_path / "images.txt"
    listing.write_text(f"# to IAD\n{good['id']}\nno-such-image\n")
    result = copy(sqlite_cloud.env(), "--from-file", str(listing), "--from", "ORD", "--to", "IAD",
                  state=tmp_path / "j.db")  # fmt: skip
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["copied"] == 1 and document["failed"] == ["no-such-image"]
    assert "no-such-image" in result.stderr and "again" in result.stderr
    assert len(images_with(sqlite_cloud, "IAD", f"imagehop.source=ORD/{good['id']}")) == 1


def test_wrong_password_is_a_clear_error_and_creates_nothing(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=locked-out"
    source = create_image(sqlite_cloud, "ORD", "locked-out", disk(2, 40))
    clouds = yaml.safe_load(sqlite_cloud.clouds_yaml.read_text())["clouds"]
    bad = json.loads(json.dumps(clouds["imagehop"]))
    bad["auth"]["password"] = "not-the-password"
    config = tmp_path / "clouds.yaml"
    config.write_text(yaml.safe_dump({"clouds": {**clouds, "bad": bad}}))
    env = {**sqlite_cloud.env(), "OS_CLIENT_CONFIG_FILE": str(config)}
    for args in (["--to-cloud", "bad"], ["--from-cloud", "bad"]):
        result = copy(env, source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, *args, state=tmp_path / "j.db")
        assert result.returncode == 1
        assert "Error: cloud bad refused the credentials (401 from " in result.stderr
        assert "check the user name, password, API key or application credential" in result.stderr
    assert images_with(sqlite_cloud, "IAD", tag) == []
    assert [i for i in images_with(sqlite_cloud, "IAD", "name=locked-out")] == []


def test_pull_between_clouds_with_web_download_of_a_tempurl(tmp_path: Path) -> None:
    # the TempURL is on 127.0.0.1: the target must allow private addresses
    with two_clouds(tmp_path, IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE="1") as (one, two, env):
        source = create_image(one, "ORD", "fetched", disk(6, 50), os_type="linux")
        result = copy(env, "fetched", "--from", "ORD", "--to", "LON", "--to-cloud", "far", "--tag", TAG,
                      state=tmp_path / "j.db")  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout
        report = json.loads(result.stdout)
        assert report["method"] == "web-download" and report["move"]["through_client"] == 0
        assert report["steps"] == ["exported", "created", "pulled", "tagged", "verified", "cleaned"]
        assert any("TempURL key" in n for n in report["notes"])
        [found] = images_with(two, "LON", TAG, user="alt")
        assert found["imagehop.content_digest"] == source["imagehop.content_digest"]
        assert found["os_type"] == "linux" and found["name"] == "fetched"
        assert exported_objects(one, "ORD") == [] and exported_objects(two, "LON", user="alt") == []


def test_a_pull_killed_after_it_started_is_finished_by_the_next_run(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=pull-resumed"
    source = create_image(sqlite_cloud, "ORD", "pull-resumed", disk(96, 13))
    state = tmp_path / "j.db"
    args = [sys.executable, "-m", "imagehop", "copy", source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
            "--method", "pull", "--poll-interval", "1", "--state", str(state), "--json"]  # fmt: skip
    proc = subprocess.Popen(args, env=sqlite_cloud.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    created = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not created:
        if state.exists():
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(state) as db:
                created = any('"created"' in row[0] for row in db.execute("SELECT state FROM jobs"))
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert created, "the pull did not start in time"

    result = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                  "--method", "pull", state=state)  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert "created" not in report["steps"]  # the image the killed run created is the one finished
    [target] = images_with(sqlite_cloud, "IAD", tag)
    assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
    assert len(images_with(sqlite_cloud, "IAD", "name=pull-resumed")) == 1
