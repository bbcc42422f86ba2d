"""Real clients against a real `imagehop serve`: `openstack server ...` and openstacksdk."""

from __future__ import annotations

import openstack as sdk

from tests.support import Cloud, Glance, MiB, create_image, disk_bytes, openstack


def test_openstack_cli_server_lifecycle(cloud: Cloud) -> None:
    env = cloud.env()
    base = create_image(cloud, "ORD", "cli-cirros", disk_bytes(16 * MiB, seed=2))

    flavors = openstack(env, "flavor", "list")
    assert "m1.tiny" in [f["Name"] for f in flavors]
    server = openstack(
        env, "server", "create", "--image", "cli-cirros", "--flavor", "m1.tiny", "--property", "role=db",
        "--wait", "Slave Database 3",
    )  # fmt: skip
    assert server["status"] == "ACTIVE" and server["name"] == "Slave Database 3"
    listed = openstack(env, "server", "list")
    assert [s["Status"] for s in listed if s["ID"] == server["id"]] == ["ACTIVE"]
    shown = openstack(env, "server", "show", server["id"])
    assert shown["properties"] == {"role": "db"}

    image = openstack(
        env, "server", "image", "create", "--name", "db-slave-3", "--property",
        "com.mycompany.image-of=db-slave-3", "--wait", server["id"],
    )  # fmt: skip
    assert image["status"] == "active"
    stored = Glance(cloud).image(image["id"])
    assert stored["imagehop.content_digest"] == base["imagehop.content_digest"]
    assert stored["instance_uuid"] == server["id"] and stored["com.mycompany.image-of"] == "db-slave-3"

    openstack(env, "server", "delete", "--wait", server["id"], json_out=False)
    assert server["id"] not in [s["ID"] for s in openstack(env, "server", "list")]


def test_openstacksdk_create_server_and_image(cloud: Cloud) -> None:
    base = create_image(cloud, "ORD", "sdk-cirros", disk_bytes(16 * MiB, seed=3))
    loader = sdk.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    conn = sdk.connection.Connection(config=loader.get_one(cloud="imagehop"))

    server = conn.create_server("sdk-server", image="sdk-cirros", flavor="m1.tiny", wait=True, timeout=120)
    assert server.status == "ACTIVE"
    image = conn.compute.create_server_image(server, "sdk-snapshot", metadata={"k": "v"}, wait=True, timeout=120)
    assert image.status == "active" and image.properties["k"] == "v"
    assert image.properties["imagehop.content_digest"] == base["imagehop.content_digest"]
    snapshot = conn.create_image_snapshot("sdk-snapshot-2", server, wait=True, timeout=120)
    assert snapshot.status == "active"
    assert Glance(cloud).image(snapshot.id)["imagehop.content_digest"] == base["imagehop.content_digest"]

    assert conn.delete_server(server.id, wait=True, timeout=120)
    assert conn.compute.find_server(server.id) is None
