"""`imagehop copy --method pull`, `--boot`, batches and bad credentials, against real `imagehop serve`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml

from tests.support import Cloud, MiB, Swift, create_image, disk_bytes
from tests.support.transfer import copy_cli, copy_killed_when, images_with, journal_says, two_clouds

TAG = "com.mycompany.image-of=db-slave-3"


def exported_objects(cloud: Cloud, region: str, user: str = "demo") -> list[str]:
    return Swift(cloud, user, region).names("imagehop-exports")


def disk(size_mib: int, seed: int) -> bytes:
    return disk_bytes(size_mib * MiB, seed=seed)


def test_pull_between_regions_moves_no_bytes_through_the_client(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=pulled"
    source = create_image(cloud, "ORD", "pulled-image", disk(8, 11), os_distro="debian",
                          **{"com.mycompany.role": "web"})  # fmt: skip
    result = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                  "--method", "pull", state=tmp_path / "j.db")  # fmt: skip
    report = json.loads(result.stdout)
    assert report["method"] == "glance-download"
    assert report["steps"] == ["created", "pulled", "tagged", "verified"]
    # The target fetched the 8 MiB itself: that is what moved, none of it through this client.
    assert report["bytes_moved"] == 8 * MiB and report["move"]["through_client"] == 0
    assert report["verified_by"] == "content digest"
    # The pull's task is named as a task (its own id), not by the image it fills.
    assert report["tasks"]["pull"] and report["tasks"]["pull"] != report["target_image"]
    assert exported_objects(cloud, "IAD") == [] and exported_objects(cloud, "ORD") == []

    [target] = images_with(cloud, "IAD", tag)
    assert target["id"] == report["target_image"] and target["status"] == "active"
    assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
    assert target["name"] == "pulled-image"
    assert target["os_distro"] == "debian" and target["com.mycompany.role"] == "web"

    again = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                 "--method", "pull", state=tmp_path / "j.db")  # fmt: skip
    assert json.loads(again.stdout)["already_done"] is True
    assert len(images_with(cloud, "IAD", tag)) == 1


def test_boot_gives_an_active_server_from_the_copy(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=booted"
    source = create_image(cloud, "ORD", "bootable", disk(4, 12))
    result = copy_cli(cloud.env(), source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag,
                  "--boot", "Slave Database 3", "--flavor", "m1.small", state=tmp_path / "j.db")  # fmt: skip
    report = json.loads(result.stdout)
    assert report["method"] == "glance-download" and report["server"]
    tenant = cloud.credentials()["demo"]["tenant_id"]
    server = httpx.get(
        f"{cloud.regions['IAD']}/compute/v2.1/{tenant}/servers/{report['server']}",
        headers={"X-Auth-Token": cloud.token()},
    ).json()["server"]
    assert server["status"] == "ACTIVE" and server["name"] == "Slave Database 3"
    assert server["image"]["id"] == report["target_image"]


def test_batch_all_with_and_concurrency(cloud: Cloud, tmp_path: Path) -> None:
    sources = [create_image(cloud, "ORD", f"batch-{i}", disk(4, 20 + i), **{"com.mycompany.batch": "b1"})
               for i in range(3)]  # fmt: skip
    result = copy_cli(cloud.env(), "--all-with", "com.mycompany.batch=b1", "--concurrency", "2",
                  "--from", "ORD", "--to", "IAD", state=tmp_path / "j.db")  # fmt: skip
    document = json.loads(result.stdout)
    assert document["copied"] == 3 and document["failed"] == []
    assert sorted(r["source_image"] for r in document["images"]) == sorted(s["id"] for s in sources)
    for source in sources:
        [target] = images_with(cloud, "IAD", f"imagehop.source=ORD/{source['id']}")
        assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
        assert target["com.mycompany.batch"] == "b1"


def test_batch_failure_names_the_image_and_says_rerun_resumes(cloud: Cloud, tmp_path: Path) -> None:
    good = create_image(cloud, "ORD", "listed-good", disk(2, 30))
    listing = tmp_path / "images.txt"
    listing.write_text(f"# to IAD\n{good['id']}\nno-such-image\n")
    result = copy_cli(cloud.env(), "--from-file", str(listing), "--from", "ORD", "--to", "IAD",
                      state=tmp_path / "j.db", expect=1)  # fmt: skip
    document = json.loads(result.stdout)
    assert document["copied"] == 1 and document["failed"] == ["no-such-image"]
    assert "no-such-image" in result.stderr and "again" in result.stderr
    assert len(images_with(cloud, "IAD", f"imagehop.source=ORD/{good['id']}")) == 1


def test_wrong_password_is_a_clear_error_and_creates_nothing(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=locked-out"
    source = create_image(cloud, "ORD", "locked-out", disk(2, 40))
    clouds = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]
    bad = json.loads(json.dumps(clouds["imagehop"]))
    bad["auth"]["password"] = "not-the-password"
    config = tmp_path / "clouds.yaml"
    config.write_text(yaml.safe_dump({"clouds": {**clouds, "bad": bad}}))
    env = {**cloud.env(), "OS_CLIENT_CONFIG_FILE": str(config)}
    for args in (["--to-cloud", "bad"], ["--from-cloud", "bad"]):
        result = copy_cli(env, source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, *args,
                          state=tmp_path / "j.db", expect=1)  # fmt: skip
        assert "Error: cloud bad refused the credentials (401 from " in result.stderr
        assert "check the user name, password, API key or application credential" in result.stderr
    assert images_with(cloud, "IAD", tag) == []
    assert [i for i in images_with(cloud, "IAD", "name=locked-out")] == []


def test_pull_between_clouds_with_web_download_of_a_tempurl(tmp_path: Path) -> None:
    # the TempURL is on 127.0.0.1: the target must allow private addresses
    with two_clouds(tmp_path, IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE="1") as (one, two, env):
        source = create_image(one, "ORD", "fetched", disk(6, 50), os_type="linux")
        result = copy_cli(env, "fetched", "--from", "ORD", "--to", "LON", "--to-cloud", "far", "--tag", TAG,
                      state=tmp_path / "j.db")  # fmt: skip
        report = json.loads(result.stdout)
        assert report["method"] == "web-download" and report["move"]["through_client"] == 0
        assert report["steps"] == ["exported", "created", "pulled", "tagged", "verified", "cleaned"]
        assert any("set a TempURL key (X-Account-Meta-Temp-URL-Key-2)" in n for n in report["notes"])
        [found] = images_with(two, "LON", TAG, user="alt")
        assert found["imagehop.content_digest"] == source["imagehop.content_digest"]
        assert found["os_type"] == "linux" and found["name"] == "fetched"
        assert exported_objects(one, "ORD") == [] and exported_objects(two, "LON", user="alt") == []
        # The key the copy set on the source account (it had none) is gone once the target has fetched the image.
        account = Swift(one, "demo", "ORD")
        keys = {k: v for k, v in account.head("").headers.items() if "temp-url-key" in k}
        assert keys == {}

        # A key the user had stays as it was, and the copy signs with it: nothing set, nothing removed.
        assert account.http.post("", headers={"X-Account-Meta-Temp-URL-Key": "the-users-key"}).status_code == 204
        create_image(one, "ORD", "fetched-again", disk(6, 51))
        again = json.loads(copy_cli(env, "fetched-again", "--from", "ORD", "--to", "LON", "--to-cloud", "far",
                                    "--tag", "k=again", state=tmp_path / "j.db").stdout)  # fmt: skip
        assert again["method"] == "web-download" and not any("TempURL" in n for n in again["notes"])
        keys = {k: v for k, v in account.head("").headers.items() if "temp-url-key" in k}
        assert keys == {"x-account-meta-temp-url-key": "the-users-key"}
        assert len(images_with(two, "LON", "k=again", user="alt")) == 1


def test_a_pull_killed_after_it_started_is_finished_by_the_next_run(cloud: Cloud, tmp_path: Path) -> None:
    tag = "com.mycompany.image-of=pull-resumed"
    source = create_image(cloud, "ORD", "pull-resumed", disk(96, 13))
    state = tmp_path / "j.db"
    args = [source["id"], "--from", "ORD", "--to", "IAD", "--tag", tag, "--method", "pull"]
    # the journal says when the target image is created; the client then waits for the pull
    copy_killed_when(
        cloud.env(),
        *args,
        state=state,
        what="the pull has created its target image",
        ready=lambda: journal_says(state, "created"),
    )
    # killed mid-way: the copy was not yet tagged (that comes after the pull)
    assert images_with(cloud, "IAD", tag) == []

    result = copy_cli(cloud.env(), *args, state=state)
    report = json.loads(result.stdout)
    assert report["already_done"] is False
    assert report["steps"] == ["pulled", "tagged", "verified"]  # the killed run's image is the one finished
    [target] = images_with(cloud, "IAD", tag)
    assert target["imagehop.content_digest"] == source["imagehop.content_digest"]
    assert len(images_with(cloud, "IAD", "name=pull-resumed")) == 1
