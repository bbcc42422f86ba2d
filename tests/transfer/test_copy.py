"""`imagehop copy` end to end between real `imagehop serve` regions and clouds."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import Cloud, make_cloud
from tests.transfer.test_copy_plan import create_image

MiB = 1 << 20
TAG = "com.mycompany.image-of=db-slave-3"


def disk(size_mib: int, seed: int) -> bytes:
    """A disk with random regions and zero regions."""
    rnd = random.Random(seed)
    data = bytearray(size_mib * MiB)
    for start in range(0, size_mib, 4):
        data[start * MiB : (start + 2) * MiB] = rnd.randbytes(2 * MiB)
    return bytes(data)


def copy(env: dict[str, str], *args: str, state: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagehop", "copy", *args, "--state", str(state), "--json", "--poll-interval", "1"],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def images_with(cloud: Cloud, region: str, key_value: str, user: str = "demo") -> list[dict]:
    key, value = key_value.split("=", 1)
    response = httpx.get(
        cloud.regions[region] + "/image/v2/images", params={key: value}, headers={"X-Auth-Token": cloud.token(user)}
    )
    response.raise_for_status()
    return response.json()["images"]


def test_copy_between_regions_keeps_properties_and_content(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(
        sqlite_cloud, "ORD", "db-slave-3-image", disk(24, 1), os_distro="debian", **{"com.mycompany.role": "db"}
    )
    result = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", TAG,
                  "--method", "tasks", state=tmp_path / "j.db")  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["verified_by"] == "content digest" and report["method"] == "tasks"
    assert report["steps"] == ["exported", "moved", "imported", "tagged", "verified", "cleaned"]

    found = images_with(sqlite_cloud, "IAD", TAG)
    assert [image["id"] for image in found] == [report["target_image"]]
    target = found[0]
    assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
    assert target["virtual_size"] == source["virtual_size"]
    assert target["os_distro"] == "debian" and target["com.mycompany.role"] == "db"
    assert target["name"] == "db-slave-3-image"

    # The exported VHD is gone from both regions (no --keep-exported).
    token = sqlite_cloud.token()
    for region in ("ORD", "IAD"):
        listing = httpx.get(
            f"{sqlite_cloud.regions[region]}/v1/AUTH_10000001/imagehop-exports",
            params={"format": "json"}, headers={"X-Auth-Token": token},
        )  # fmt: skip
        assert listing.status_code in (200, 204)
        assert listing.status_code == 204 or listing.json() == []

    # Running it again changes nothing and says so.
    again = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", TAG,
                 state=tmp_path / "j.db")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_done"] is True
    assert [i["id"] for i in images_with(sqlite_cloud, "IAD", TAG)] == [report["target_image"]]


def test_copy_killed_mid_move_resumes_without_resending(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(sqlite_cloud, "ORD", "resumable", disk(48, 2))
    state = tmp_path / "j.db"
    args = [
        sys.executable,
        "-m",
        "imagehop",
        "copy",
        source["id"],
        "--from",
        "ORD",
        "--to",
        "IAD",
        "--segment-size",
        "1",
        "--parallel",
        "1",
        "--method",
        "tasks",
        "--poll-interval",
        "1",
        "--state",
        str(state),
        "--json",
    ]
    proc = subprocess.Popen(args, env=sqlite_cloud.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    sent_before = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists():
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(state) as db:
                sent_before = db.execute("SELECT count(*) FROM segments").fetchone()[0]
            if sent_before >= 3:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out, err = proc.communicate()
    assert sent_before >= 3, f"the copy did not reach the move step in time: {out.decode()} {err.decode()[-2000:]}"
    assert images_with(sqlite_cloud, "IAD", f"imagehop.source=ORD/{source['id']}") == []

    result = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--segment-size", "1",
                  "--method", "tasks", state=state)  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["move"]["sent"] <= report["move"]["segments"] - sent_before
    assert report["bytes_moved"] < report["move"]["size"]
    target = images_with(sqlite_cloud, "IAD", f"imagehop.source=ORD/{source['id']}")
    assert [t["imagehop.content_digest"] for t in target] == [source["imagehop.content_digest"]]


@contextlib.contextmanager
def two_clouds(tmp_path: Path, **target_env: str) -> Iterator[tuple[Cloud, Cloud, dict[str, str]]]:
    """Two separate deployments (ORD; LON) and a client environment whose clouds.yaml names both:
    ``imagehop`` (demo in the first) and ``far`` (alt in the second, other credentials)."""
    one, two = make_cloud(tmp_path / "one", regions=("ORD",)), make_cloud(tmp_path / "two", regions=("LON",))
    two.extra_env.update(target_env)
    with one, two:
        clouds = yaml.safe_load(one.clouds_yaml.read_text())["clouds"]
        clouds["far"] = yaml.safe_load(two.clouds_yaml.read_text())["clouds"]["imagehop-alt"]
        config = tmp_path / "clouds.yaml"
        config.write_text(yaml.safe_dump({"clouds": clouds}))
        yield one, two, {**one.env(), "OS_CLIENT_CONFIG_FILE": str(config)}


def test_copy_between_two_clouds(tmp_path: Path) -> None:
    with two_clouds(tmp_path) as (one, two, env):
        source = create_image(one, "ORD", "travelling", disk(8, 3), os_type="linux")
        result = copy(env, "travelling", "--from", "ORD", "--to", "LON", "--to-cloud", "far", "--tag", TAG,
                      state=tmp_path / "j.db")  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout
        report = json.loads(result.stdout)
        # auto: LON offers web-download but refuses loopback URLs (the default), so the bytes are streamed.
        assert report["method"] == "stream" and any("web-download" in n for n in report["notes"])
        found = images_with(two, "LON", TAG, user="alt")
        assert len(found) == 1 and found[0]["owner"] == "10000002"
        assert found[0]["imagehop.content_digest"] == source["imagehop.content_digest"]
        assert found[0]["os_type"] == "linux"


def test_a_failing_import_is_reported_and_leaves_no_image(tmp_path: Path) -> None:
    cloud = make_cloud(tmp_path)
    cloud.extra_env["IMAGEHOP_TASKS_IMPORT_MAX_VIRTUAL_SIZE"] = str(4 * MiB)
    cloud.start()
    try:
        source = create_image(cloud, "ORD", "too-big", disk(8, 4))
        result = copy(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", TAG, "--method", "tasks",
                      state=tmp_path / "j.db")  # fmt: skip
        assert result.returncode == 1
        error = json.loads(result.stdout.splitlines()[0])["error"]
        assert "import task" in error and "413" in error
        assert images_with(cloud, "IAD", TAG) == []
    finally:
        cloud.stop()


@pytest.mark.parametrize("prop", [{"os_type": "windows"}, {"com.rackspace__1__options": "1"}])
def test_unexportable_image_is_refused_before_any_task(sqlite_cloud: Cloud, tmp_path: Path, prop: dict) -> None:
    source = create_image(sqlite_cloud, "ORD", "licensed", b"x" * 4096, **prop)
    # Licensing restricts the export task (Rackspace's rule), so the way that exports is asked for.
    result = copy(sqlite_cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--method", "tasks",
                  state=tmp_path / "j.db")  # fmt: skip
    assert result.returncode == 1
    assert "licensing" in json.loads(result.stdout.splitlines()[0])["error"]
    tasks = httpx.get(sqlite_cloud.regions["ORD"] + "/image/v2/tasks", headers={"X-Auth-Token": sqlite_cloud.token()})
    assert all(t.get("input", {}).get("image_uuid") != source["id"] for t in tasks.json().get("tasks", []))


def test_unreachable_region_is_a_clear_error(sqlite_cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(sqlite_cloud, "ORD", "nowhere", b"y" * 4096)
    result = subprocess.run(
        [sys.executable, "-m", "imagehop", "copy", source["id"], "--from", "ORD", "--to", "SYD",
         "--state", str(tmp_path / "j.db")],
        env={**sqlite_cloud.env(), "PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "SYD" in result.stderr
