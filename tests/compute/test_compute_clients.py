"""Real clients against a real `imagehop serve`: `openstack server ...` and openstacksdk."""

from __future__ import annotations

import json
import subprocess
import sys

import openstack

from tests.compute.helpers import get_image, make_image, sparse_disk
from tests.conftest import Cloud


def _openstack(cloud: Cloud, *args: str, json_out: bool = True) -> object:
    result = subprocess.run(
        [sys.executable, "-m", "openstackclient.shell", *args, *(["-f", "json"] if json_out else [])],
        env=cloud.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if json_out else result.stdout


def test_openstack_cli_server_lifecycle(sqlite_cloud: Cloud) -> None:
    cloud = sqlite_cloud
    region = cloud.regions["ORD"]
    token = cloud.token()
    base = make_image(region, token, "cli-cirros", sparse_disk())

    flavors = _openstack(cloud, "flavor", "list")
    assert "m1.tiny" in [f["Name"] for f in flavors]
    server = _openstack(
        cloud, "server", "create", "--image", "cli-cirros", "--flavor", "m1.tiny", "--property", "role=db",
        "--wait", "Slave Database 3",
    )  # fmt: skip
    assert server["status"] == "ACTIVE" and server["name"] == "Slave Database 3"
    listed = _openstack(cloud, "server", "list")
    assert [s["Status"] for s in listed if s["ID"] == server["id"]] == ["ACTIVE"]
    shown = _openstack(cloud, "server", "show", server["id"])
    assert shown["properties"] == {"role": "db"}

    image = _openstack(
        cloud, "server", "image", "create", "--name", "db-slave-3", "--property",
        "com.mycompany.image-of=db-slave-3", "--wait", server["id"],
    )  # fmt: skip
    assert image["status"] == "active"
    stored = get_image(region, token, image["id"])
    assert stored["imagehop.content_digest"] == base["imagehop.content_digest"]
    assert stored["instance_uuid"] == server["id"] and stored["com.mycompany.image-of"] == "db-slave-3"

    _openstack(cloud, "server", "delete", "--wait", server["id"], json_out=False)
    assert server["id"] not in [s["ID"] for s in _openstack(cloud, "server", "list")]


def test_openstacksdk_create_server_and_image(sqlite_cloud: Cloud) -> None:
    cloud = sqlite_cloud
    base = make_image(cloud.regions["ORD"], cloud.token(), "sdk-cirros", sparse_disk())
    loader = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    conn = openstack.connection.Connection(config=loader.get_one(cloud="imagehop"))

    server = conn.create_server("sdk-server", image="sdk-cirros", flavor="m1.tiny", wait=True, timeout=60)
    assert server.status == "ACTIVE"
    image = conn.compute.create_server_image(server, "sdk-snapshot", metadata={"k": "v"}, wait=True, timeout=60)
    assert image.status == "active" and image.properties["k"] == "v"
    assert image.properties["imagehop.content_digest"] == base["imagehop.content_digest"]
    snapshot = conn.create_image_snapshot("sdk-snapshot-2", server, wait=True, timeout=60)
    assert snapshot.status == "active"

    assert conn.delete_server(server.id, wait=True, timeout=60)
    assert conn.compute.find_server(server.id) is None
