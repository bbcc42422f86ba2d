"""`imagehop copy` before any slow step: finding the image, the checks, the plan, re-runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from imagehop.transfer.clouds import connect
from imagehop.transfer.copy import CopyError, check_exportable, find_source_image
from imagehop.transfer.glance import GlanceClient, user_properties
from tests.conftest import Cloud

MiB = 1 << 20


def create_image(cloud: Cloud, region: str, name: str, data: bytes, user: str = "demo", **props: str) -> dict:
    base = cloud.regions[region] + "/image/v2"
    headers = {"X-Auth-Token": cloud.token(user)}
    body = {"name": name, "disk_format": "raw", "container_format": "bare", **props}
    image = httpx.post(base + "/images", json=body, headers=headers).json()
    upload = httpx.put(
        f"{base}/images/{image['id']}/file",
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204, upload.text
    return httpx.get(f"{base}/images/{image['id']}", headers=headers).json()


@pytest.fixture(scope="module")
def glance(sqlite_cloud: Cloud) -> GlanceClient:
    return GlanceClient(connect("imagehop", str(sqlite_cloud.clouds_yaml)), "ORD", poll_interval=0.1)


def test_find_by_id_name_and_property(sqlite_cloud: Cloud, glance: GlanceClient) -> None:
    image = create_image(
        sqlite_cloud, "ORD", "db-slave-3-image", os.urandom(MiB), **{"com.mycompany.image-of": "db-slave-3"}
    )
    assert find_source_image(glance, image["id"])["id"] == image["id"]
    assert find_source_image(glance, "db-slave-3-image")["id"] == image["id"]
    assert find_source_image(glance, "com.mycompany.image-of=db-slave-3")["id"] == image["id"]
    with pytest.raises(CopyError, match="no image named 'nope'"):
        find_source_image(glance, "nope")
    create_image(sqlite_cloud, "ORD", "twin", b"a" * 512)
    create_image(sqlite_cloud, "ORD", "twin", b"b" * 512)
    with pytest.raises(CopyError, match=r"2 images named .twin.*name one by id"):
        find_source_image(glance, "twin")


def test_exportable_checks(sqlite_cloud: Cloud, glance: GlanceClient) -> None:
    image = create_image(sqlite_cloud, "ORD", "licensed", b"x" * 4096, **{"os_type": "windows"})
    with pytest.raises(CopyError, match="licensing"):
        check_exportable(image, "10000001")
    plain = create_image(sqlite_cloud, "ORD", "plain", b"x" * 4096)
    check_exportable(plain, "10000001")
    with pytest.raises(CopyError, match="only the owner"):
        check_exportable(plain, "10000002")
    props = user_properties({**plain, "com.mycompany.image-of": "db-slave-3"})
    assert props == {"com.mycompany.image-of": "db-slave-3"}


def test_copy_dry_run_shows_the_plan_and_changes_nothing(sqlite_cloud: Cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = create_image(sqlite_cloud, "ORD", "dry", os.urandom(MiB))
    pull = "by glance-download: imagehop/IAD pulls the image from imagehop/ORD itself"
    for method, plan in (("tasks", "by tasks: asked for (Rackspace's export and import tasks"), ("auto", pull)):
        result = subprocess.run(
            [sys.executable, "-m", "imagehop", "copy", image["id"], "--from", "ORD", "--to", "IAD", "--dry-run",
             "--method", method, "--state", str(tmp_path / "j.db")],
            env={**sqlite_cloud.env(), "COLUMNS": "300"}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert plan in result.stdout.replace("\n", " ")
        assert "(--dry-run: nothing was changed)" in result.stdout
    after = httpx.get(
        f"{sqlite_cloud.regions['ORD']}/image/v2/images/{image['id']}",
        headers={"X-Auth-Token": sqlite_cloud.token()},
    ).json()
    assert "imagehop.source" not in after  # nothing was changed


def test_copy_of_another_tenants_image_is_refused_before_any_work(sqlite_cloud: Cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = create_image(sqlite_cloud, "ORD", "alts", os.urandom(MiB), user="alt")
    result = subprocess.run(
        [sys.executable, "-m", "imagehop", "copy", image["id"], "--from", "ORD", "--to", "IAD", "--json",
         "--state", str(tmp_path / "j.db")],
        env=sqlite_cloud.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[0])["error"].startswith(f"no image {image['id']}")
