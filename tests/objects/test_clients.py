"""openstacksdk's object store proxy and rclone against a real `imagehop serve`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openstack
import pytest
from openstack.config import loader

from tests.support import Cloud, MiB, disk_bytes, run
from tests.support.clients import rclone_env

pytestmark = pytest.mark.e2e


def connect(cloud: Cloud) -> openstack.connection.Connection:
    config = loader.OpenStackConfig(config_files=[str(cloud.clouds_yaml)]).get_one("imagehop")
    return openstack.connection.Connection(config=config)


def test_openstacksdk_objects_and_segmented_upload(cloud: Cloud, tmp_path: Path) -> None:
    conn = connect(cloud)
    conn.object_store.create_container("sdk")
    conn.object_store.create_object("sdk", "small.txt", data=b"from the sdk", metadata={"origin": "test"})
    assert conn.object_store.download_object("small.txt", container="sdk") == b"from the sdk"
    obj = conn.object_store.get_object_metadata("small.txt", container="sdk")
    assert obj.metadata == {"origin": "test"}
    assert obj.etag == hashlib.md5(b"from the sdk").hexdigest()

    source = tmp_path / "big.bin"
    source.write_bytes(disk_bytes(3 * MiB + 7, seed=7))
    conn.create_object("sdk", "big.bin", filename=str(source), segment_size=MiB)
    head = conn.object_store.get_object_metadata("big.bin", container="sdk")
    assert head.is_static_large_object
    assert conn.object_store.download_object("big.bin", container="sdk") == source.read_bytes()
    names = [o.name for o in conn.object_store.objects("sdk")]
    assert names == ["big.bin", *(f"big.bin/{i:06d}" for i in range(4)), "small.txt"]  # the SDK's segment names


def test_rclone_copy_and_check(cloud: Cloud, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for i in range(12):
        path = tree / f"dir{i % 3}" / f"file{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(disk_bytes(1000 * i + 1, seed=i, layout=[(0, 1000 * i + 1, "random")]))
    (tree / "ünïcode name.txt").write_text("utf-8 names\n")
    env = rclone_env(cloud, "ord")
    run(["rclone", "copy", tree, "ord:rclone-tree"], env=env)
    run(["rclone", "check", tree, "ord:rclone-tree"], env=env)
    back = tmp_path / "back"
    run(["rclone", "copy", "ord:rclone-tree", back], env=env)
    run(["rclone", "check", tree, back], env=env)
    assert (back / "ünïcode name.txt").read_text() == "utf-8 names\n"
    assert sorted(p.relative_to(back) for p in back.rglob("*") if p.is_file()) == sorted(
        p.relative_to(tree) for p in tree.rglob("*") if p.is_file()
    )
