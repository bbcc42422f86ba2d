"""Real clients against a real `imagehop serve`: python-glanceclient's CLI and openstackclient."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.support import Cloud, Glance, create_image, disk_bytes, openstack, run, tool, wait_for


def glance_env(cloud: Cloud, user: str = "demo") -> dict[str, str]:
    """glanceclient's CLI reads OS_* variables, not clouds.yaml."""
    entry = cloud.credentials()[user]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        OS_AUTH_URL=cloud.identity_url + "/v3", OS_USERNAME=user, OS_PASSWORD=entry["password"],
        OS_PROJECT_ID=entry["tenant_id"], OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
        OS_REGION_NAME="ORD", OS_IDENTITY_API_VERSION="3", OS_IMAGE_API_VERSION="2",
    )  # fmt: skip
    return env


@pytest.fixture()
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    size = 300_000 + (2 << 20) + 4  # data, a zero run, and 4 bytes at the end
    path.write_bytes(disk_bytes(size, seed=5, layout=[(0, 300_000, "random"), (size - 4, 4, "random")]))
    return path


def test_glanceclient_cli(cloud: Cloud, payload: Path, tmp_path: Path) -> None:
    env = glance_env(cloud)
    glance = [tool("glance")]
    out = run([*glance, "image-create", "--name", "gc-image", "--disk-format", "raw", "--container-format", "bare",
               "--file", payload, "--property", "com.mycompany.image-of=gc-db-3"], env=env).stdout  # fmt: skip
    image_id = next(line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| id "))
    listed = run([*glance, "image-list", "--property-filter", "com.mycompany.image-of=gc-db-3"], env=env).stdout
    assert image_id in listed
    run([*glance, "image-update", "--property", "os_distro=ubuntu", "--name", "gc-renamed", image_id], env=env)
    run([*glance, "image-tag-update", image_id, "blue"], env=env)
    shown = Glance(cloud).image(image_id)
    assert shown["os_distro"] == "ubuntu" and shown["name"] == "gc-renamed" and shown["tags"] == ["blue"]
    assert shown["checksum"] == hashlib.md5(payload.read_bytes()).hexdigest()
    target = tmp_path / "out.raw"
    run([*glance, "image-download", "--file", target, image_id], env=env)
    assert target.read_bytes() == payload.read_bytes()
    alt_tenant = cloud.tenant("alt")
    out = run([*glance, "member-create", image_id, alt_tenant], env=env).stdout
    assert "pending" in out
    assert [m["member_id"] for m in Glance(cloud).get(f"/v2/images/{image_id}/members").json()["members"]] == [
        alt_tenant
    ]
    run([*glance, "image-delete", image_id], env=env)
    assert Glance(cloud).get(f"/v2/images/{image_id}").status_code == 404


def test_openstackclient(cloud: Cloud, payload: Path, tmp_path: Path) -> None:
    env = cloud.env()
    image = openstack(env, "image", "create", "--file", str(payload), "osc-image")
    assert image["status"] == "active"
    openstack(env, "image", "set", "--property", "com.mycompany.image-of=osc-db-3", "osc-image", json_out=False)
    listed = openstack(env, "image", "list", "--property", "com.mycompany.image-of=osc-db-3")
    assert [i["ID"] for i in listed] == [image["id"]]
    shown = openstack(env, "image", "show", "osc-image")
    assert shown["properties"]["com.mycompany.image-of"] == "osc-db-3"
    assert shown["checksum"] == hashlib.md5(payload.read_bytes()).hexdigest()
    target = tmp_path / "saved.raw"
    openstack(env, "image", "save", "--file", str(target), "osc-image", json_out=False)
    assert target.read_bytes() == payload.read_bytes()
    openstack(env, "image", "delete", "osc-image", json_out=False)
    assert openstack(env, "image", "list", "--name", "osc-image") == []


def test_openstackclient_glance_download_import(cloud: Cloud, payload: Path) -> None:
    env = cloud.env()
    source = openstack(env, "image", "create", "--file", str(payload), "gd-source")
    # The generated clouds.yaml lists every region: pick IAD as any OpenStack user would.
    iad_env = {**env, "OS_REGION_NAME": "IAD"}
    # (not `openstack image create`: without --file and without a terminal it uploads stdin)
    create_image(cloud, "IAD", "gd-copy")
    openstack(iad_env, "image", "import", "--method", "glance-download", "--remote-region", "ORD", "--remote-image",
              source["id"], "--remote-service-interface", "public", "gd-copy", json_out=False)  # fmt: skip
    copy = wait_for(
        lambda: (i := openstack(iad_env, "image", "show", "gd-copy"))["status"] == "active" and i,
        "the glance-download copy is active",
    )
    assert copy["checksum"] == source["checksum"]
