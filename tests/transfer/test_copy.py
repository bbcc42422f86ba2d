"""`imagehop copy` end to end between real `imagehop serve` regions and clouds."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.support import Cloud, Glance, MiB, Swift, create_image, disk_bytes, run
from tests.support.transfer import copy_cli, copy_killed_when, images_with, journal_rows, two_clouds

TAG = "com.mycompany.image-of=db-slave-3"


def task_ids(cloud: Cloud, region: str) -> set[str]:
    response = Glance(cloud, region=region).get("/v2/tasks", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {t["id"] for t in response.json()["tasks"]}


def test_copy_between_regions_keeps_properties_and_content(cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(
        cloud, "ORD", "db-slave-3-image", disk_bytes(24 * MiB, seed=1), os_distro="debian",
        **{"com.mycompany.role": "db"},
    )  # fmt: skip
    result = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", TAG,
                      "--method", "tasks", state=tmp_path / "j.db")  # fmt: skip
    report = json.loads(result.stdout)
    assert report["verified_by"] == "content digest" and report["method"] == "tasks"
    assert report["steps"] == ["exported", "moved", "imported", "tagged", "verified", "cleaned"]

    found = images_with(cloud, "IAD", TAG)
    assert [image["id"] for image in found] == [report["target_image"]]
    target = found[0]
    assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
    assert target["virtual_size"] == source["virtual_size"]
    assert target["os_distro"] == "debian" and target["com.mycompany.role"] == "db"
    assert target["name"] == "db-slave-3-image"
    assert Glance(cloud, region="IAD").get(f"/v2/images/{target['id']}/file").content == disk_bytes(24 * MiB, seed=1)

    # The exported VHD is gone from both regions (no --keep-exported).
    for region in ("ORD", "IAD"):
        assert Swift(cloud, region=region).names("imagehop-exports") == []

    # Running it again changes nothing and says so.
    again = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", TAG, state=tmp_path / "j.db")
    assert json.loads(again.stdout)["already_done"] is True
    assert [i["id"] for i in images_with(cloud, "IAD", TAG)] == [report["target_image"]]


def test_keep_exported_in_a_container_of_ones_choice(cloud: Cloud, tmp_path: Path) -> None:
    data = disk_bytes(6 * MiB, seed=5)
    source = create_image(cloud, "ORD", "kept", data)
    tag = "com.mycompany.image-of=kept"
    result = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "tasks",
                      "--container", "my-vhds", "--keep-exported", state=tmp_path / "j.db")  # fmt: skip
    report = json.loads(result.stdout)
    assert "cleaned" not in report["steps"]
    name = f"{source['id']}.vhd"
    vhds = []
    for region in ("ORD", "IAD"):
        swift = Swift(cloud, region=region)
        assert swift.names("imagehop-exports") == []
        assert name in swift.names("my-vhds")
        vhds.append(swift.get(f"/my-vhds/{name}").content)
    assert vhds[0] == vhds[1]  # the moved VHD is the exported one, byte for byte
    (tmp_path / "kept.vhd").write_bytes(vhds[0])
    (tmp_path / "kept.raw").write_bytes(data)
    compare = run(["qemu-img", "compare", "-f", "raw", "-F", "vpc", tmp_path / "kept.raw", tmp_path / "kept.vhd"])
    assert compare.stdout == "Images are identical.\n"

    # A container name the export refuses: a clear error, and no image in the target.
    bad = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", "com.mycompany.bad=1",
                   "--method", "tasks", "--container", "bad.name", state=tmp_path / "k.db", expect=1)  # fmt: skip
    error = json.loads(bad.stdout.splitlines()[0])["error"]
    assert "export task" in error and "must not contain" in error
    assert images_with(cloud, "IAD", "com.mycompany.bad=1") == []


def test_copy_killed_mid_move_resumes_without_resending(cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(cloud, "ORD", "resumable", disk_bytes(48 * MiB, seed=2))
    state = tmp_path / "j.db"
    args = [source["id"], "--from", "ORD", "--to", "IAD", "--segment-size", "1", "--parallel", "1",
            "--method", "tasks"]  # fmt: skip

    # the journal records each segment once the target has it: kill after the third
    def segments_done() -> int:
        rows = journal_rows(state, "SELECT count(*) FROM segments")
        return rows[0][0] if rows else 0

    sent_before = copy_killed_when(cloud.env(), *args, state=state, what="the copy has moved 3 segments",
                                   ready=lambda: (n := segments_done()) >= 3 and n, timeout=180)  # fmt: skip
    assert images_with(cloud, "IAD", f"imagehop.source=ORD/{source['id']}") == []

    result = copy_cli(cloud.env(), *args, state=state)
    report = json.loads(result.stdout)
    assert report["already_done"] is False and report["steps"][-1] == "cleaned"
    assert report["move"]["sent"] <= report["move"]["segments"] - sent_before
    assert report["bytes_moved"] < report["move"]["size"]
    target = images_with(cloud, "IAD", f"imagehop.source=ORD/{source['id']}")
    assert [t["imagehop.content_digest"] for t in target] == [source["imagehop.content_digest"]]


def test_copy_between_two_clouds(tmp_path: Path) -> None:
    with two_clouds(tmp_path) as (one, two, env):
        source = create_image(one, "ORD", "travelling", disk_bytes(8 * MiB, seed=3), os_type="linux")
        result = copy_cli(env, "travelling", "--from", "ORD", "--to", "LON", "--to-cloud", "far", "--tag", TAG,
                          state=tmp_path / "j.db")  # fmt: skip
        report = json.loads(result.stdout)
        # auto: LON offers web-download but refuses loopback URLs (the default), so the bytes are streamed.
        assert report["method"] == "stream" and any("web-download" in n for n in report["notes"])
        found = images_with(two, "LON", TAG, user="alt")
        assert len(found) == 1 and found[0]["owner"] == "10000002"
        assert found[0]["imagehop.content_digest"] == source["imagehop.content_digest"]
        assert found[0]["os_type"] == "linux"


def test_a_failing_import_is_reported_and_leaves_no_image(cloud_factory, backend: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cloud = cloud_factory("small-imports", backend, env={"IMAGEHOP_TASKS_IMPORT_MAX_VIRTUAL_SIZE": str(4 * MiB)})
    cloud.start()
    source = create_image(cloud, "ORD", "too-big", disk_bytes(8 * MiB, seed=4))
    result = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", TAG, "--method", "tasks",
                      state=tmp_path / "j.db", expect=1)  # fmt: skip
    error = json.loads(result.stdout.splitlines()[0])["error"]
    assert "import task" in error and "413" in error
    assert images_with(cloud, "IAD", TAG) == []


@pytest.mark.parametrize("prop", [{"os_type": "windows"}, {"com.rackspace__1__options": "1"}])
def test_unexportable_image_is_refused_before_any_task(cloud: Cloud, tmp_path: Path, prop: dict) -> None:
    source = create_image(cloud, "ORD", "licensed", b"x" * 4096, **prop)
    before = task_ids(cloud, "ORD")
    # Licensing restricts the export task (Rackspace's rule), so the way that exports is asked for.
    result = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--method", "tasks",
                      state=tmp_path / "j.db", expect=1)  # fmt: skip
    assert "licensing" in json.loads(result.stdout.splitlines()[0])["error"]
    assert task_ids(cloud, "ORD") == before  # no export task was made


def test_unreachable_region_is_a_clear_error(cloud: Cloud, tmp_path: Path) -> None:
    source = create_image(cloud, "ORD", "nowhere", b"y" * 4096)
    result = run(
        [sys.executable, "-m", "imagehop", "copy", source["id"], "--from", "ORD", "--to", "SYD",
         "--state", tmp_path / "j.db"],
        env={**cloud.env(), "PATH": os.environ["PATH"]}, expect=1,
    )  # fmt: skip
    assert "SYD" in result.stderr
