"""Real clients against a real `imagehop serve`: python-glanceclient's CLI and openstackclient."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Cloud
from tests.images.conftest import Glance

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


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


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture()
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(300_000) + bytes(2 << 20) + b"tail")
    return path


def test_glanceclient_cli(sqlite_cloud: Cloud, payload: Path, tmp_path: Path) -> None:
    env = glance_env(sqlite_cloud)
    glance = [str(VENV_BIN / "glance")]
    out = run([*glance, "image-create", "--name", "gc-image", "--disk-format", "raw", "--container-format", "bare",
                        "--file", str(payload), "--property", "com.mycompany.image-of=gc-db-3"], env)  # fmt: skip
    image_id = next(line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| id "))
    listed = run([*glance, "image-list", "--property-filter", "com.mycompany.image-of=gc-db-3"], env)
    assert image_id in listed
    run([*glance, "image-update", "--property", "os_distro=ubuntu", "--name", "gc-renamed", image_id], env)
    run([*glance, "image-tag-update", image_id, "blue"], env)
    shown = Glance(sqlite_cloud).get(f"/v2/images/{image_id}").json()
    assert shown["os_distro"] == "ubuntu" and shown["name"] == "gc-renamed" and shown["tags"] == ["blue"]
    assert shown["checksum"] == hashlib.md5(payload.read_bytes()).hexdigest()
    target = tmp_path / "out.raw"
    run([*glance, "image-download", "--file", str(target), image_id], env)
    assert target.read_bytes() == payload.read_bytes()
    alt_tenant = sqlite_cloud.credentials()["alt"]["tenant_id"]
    out = run([*glance, "member-create", image_id, alt_tenant], env)
    assert "pending" in out
    run([*glance, "image-delete", image_id], env)
    assert Glance(sqlite_cloud).get(f"/v2/images/{image_id}").status_code == 404


def test_openstackclient(sqlite_cloud: Cloud, payload: Path, tmp_path: Path) -> None:
    env = sqlite_cloud.env()
    osc = [str(VENV_BIN / "openstack")]
    image = json.loads(run([*osc, "image", "create", "--file", str(payload), "-f", "json", "osc-image"], env))
    assert image["status"] == "active"
    run([*osc, "image", "set", "--property", "com.mycompany.image-of=osc-db-3", "osc-image"], env)
    listed = json.loads(
        run([*osc, "image", "list", "--property", "com.mycompany.image-of=osc-db-3", "-f", "json"], env)
    )
    assert [i["ID"] for i in listed] == [image["id"]]
    shown = json.loads(run([*osc, "image", "show", "-f", "json", "osc-image"], env))
    assert shown["properties"]["com.mycompany.image-of"] == "osc-db-3"
    assert shown["checksum"] == hashlib.md5(payload.read_bytes()).hexdigest()
    target = tmp_path / "saved.raw"
    run([*osc, "image", "save", "--file", str(target), "osc-image"], env)
    assert target.read_bytes() == payload.read_bytes()
    run([*osc, "image", "delete", "osc-image"], env)
    assert json.loads(run([*osc, "image", "list", "--name", "osc-image", "-f", "json"], env)) == []


def test_openstackclient_glance_download_import(sqlite_cloud: Cloud, payload: Path, tmp_path: Path) -> None:
    env = sqlite_cloud.env()
    osc = [str(VENV_BIN / "openstack")]
    source = json.loads(run([*osc, "image", "create", "--file", str(payload), "-f", "json", "gd-source"], env))
    # The generated clouds.yaml lists every region: pick IAD as any OpenStack user would.
    iad_env = {**env, "OS_REGION_NAME": "IAD"}
    iad = osc
    # (not `openstack image create`: without --file and without a terminal it uploads stdin)
    Glance(sqlite_cloud, region="IAD").create(name="gd-copy", disk_format="raw", container_format="bare")
    run([*iad, "image", "import", "--method", "glance-download", "--remote-region", "ORD",
         "--remote-image", source["id"], "--remote-service-interface", "public", "gd-copy"], iad_env)  # fmt: skip
    for _ in range(200):
        copy = json.loads(run([*iad, "image", "show", "-f", "json", "gd-copy"], iad_env))
        if copy["status"] == "active":
            break
        time.sleep(0.1)
    assert copy["status"] == "active" and copy["checksum"] == source["checksum"]
