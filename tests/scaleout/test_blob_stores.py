"""A sparse 2 GiB disk on every blob store: only its data reaches the store, the extents extension and
the download come from the extent map, and glance-download between regions pulls only the data. And
incremental copies on the remote blob stores: the new image refers to its base's blobs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import Glance
from tests.support.cloud import Cloud, make_cloud
from tests.support.disks import disk_bytes
from tests.support.images import create_image, wait_image
from tests.support.sizes import BLOCK, GiB, MiB
from tests.support.transfer import copy_cli

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# 2 GiB with 9 MiB of data in three runs (the start, the middle, the very end), zeros elsewhere.
SIZE = 2 * GiB
DATA = [(0, 4 * MiB), (GiB + 3 * MiB, 4 * MiB), (SIZE - MiB, MiB)]


def piece(offset: int, length: int) -> bytes:
    seed = hashlib.sha512(str(offset).encode()).digest()
    return (seed * (length // len(seed) + 1))[:length]


def disk_chunks() -> Iterator[bytes]:
    """The disk as 8 MiB chunks, zeros included (as a client sends it)."""
    zeros = bytes(8 * MiB)
    pos = 0
    for offset, length in [*DATA, (SIZE, 0)]:
        while pos < offset:
            n = min(len(zeros), offset - pos)
            yield zeros[:n]
            pos += n
        if length:
            yield piece(offset, length)
            pos += length


def store_env(request: pytest.FixtureRequest, store: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for region in ("ORD", "IAD"):
        name = f"{region.lower()}-{uuid.uuid4().hex[:10]}"
        if store == "s3":
            env.update(request.getfixturevalue("seaweedfs").region_env(region, name))
        elif store == "swift":
            swift = request.getfixturevalue("real_swift")
            prefix = f"IMAGEHOP_REGION_{region}_"
            env.update({prefix + "BLOB_STORE": "swift", prefix + "SWIFT_AUTH_URL": swift.auth_url,
                        prefix + "SWIFT_USER": "test:tester", prefix + "SWIFT_KEY": "testing",
                        prefix + "SWIFT_CONTAINER": name})  # fmt: skip
    return env


def stored_bytes(cloud: Cloud, region: str) -> int:
    with sqlite3.connect(cloud.data_dir / "regions" / region / "region.db") as db:
        return db.execute("SELECT coalesce(sum(stored), 0) FROM object_blobs WHERE state = 'live'").fetchone()[0]


@pytest.mark.parametrize("store", ["file", "s3", "swift"])
def test_sparse_two_gib_round_trip_and_extents_pull(request: pytest.FixtureRequest, tmp_path: Path, store: str) -> None:
    cloud = make_cloud(tmp_path / store, env=store_env(request, store))
    with cloud:
        ord_, iad = Glance(cloud), Glance(cloud, region="IAD")
        image = ord_.create(name="sparse", disk_format="raw", container_format="bare")
        response = ord_.http.put(f"/v2/images/{image['id']}/file", content=disk_chunks(),
                                 headers={"Content-Type": "application/octet-stream"}, timeout=600)  # fmt: skip
        assert response.status_code == 204, response.text
        image = ord_.image(image["id"])
        assert image["size"] == SIZE and image["virtual_size"] == SIZE
        assert stored_bytes(cloud, "ORD") == sum(length for _, length in DATA)  # only the data reached the store

        extents = ord_.get(f"/v2/images/{image['id']}/x-imagehop-extents").json()["extents"]
        assert [tuple(e) for e in extents] == DATA
        whole = hashlib.sha256()
        for chunk in disk_chunks():
            whole.update(chunk)
        got = hashlib.sha256()
        with ord_.http.stream("GET", f"/v2/images/{image['id']}/file", timeout=600) as download:
            assert download.status_code == 200
            for chunk in download.iter_raw(8 * MiB):
                got.update(chunk)
        assert got.hexdigest() == whole.hexdigest()
        ranged = ord_.get(
            f"/v2/images/{image['id']}/file", headers={"Range": f"bytes={GiB + 3 * MiB - 2}-{GiB + 3 * MiB + 1}"}
        )
        assert ranged.status_code == 206 and ranged.content == b"\0\0" + piece(GiB + 3 * MiB, 2)

        target = iad.create(name="pulled", disk_format="raw", container_format="bare")
        body = {"method": {"name": "glance-download", "glance_image_id": image["id"], "glance_region": "ORD",
                           "glance_service_interface": "public"}}  # fmt: skip
        assert iad.post(f"/v2/images/{target['id']}/import", json=body).status_code == 202
        pulled = wait_image(iad, target["id"], timeout=600)
        assert pulled["imagehop.content_digest"] == image["imagehop.content_digest"]
        assert (pulled["checksum"], pulled["os_hash_value"]) == (image["checksum"], image["os_hash_value"])
        assert stored_bytes(cloud, "IAD") == sum(length for _, length in DATA)
        assert [tuple(e) for e in iad.get(f"/v2/images/{target['id']}/x-imagehop-extents").json()["extents"]] == DATA
        assert httpx.get(cloud.regions["IAD"] + "/readyz").json()["status"] == "ready"


def _changed(data: bytes, block: int) -> bytes:
    out = bytearray(data)
    out[block * BLOCK + 17] ^= 0xFF
    return bytes(out)


@pytest.mark.parametrize("store", ["s3", "swift"])
def test_incremental_copies_refer_to_the_bases_bytes_in_the_blob_store(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    """`imagehop copy` twice more after a full copy, each time with one block changed, by `pull` and by
    `stream`: one block moves and one block's bytes reach IAD's blob store; the rest is referred to in
    the base's blobs, which outlive the base."""
    tag = "com.mycompany.image-of=inc-" + store
    blocks = 16
    v1_data = disk_bytes(blocks * BLOCK, seed=11, layout=[(0, blocks * BLOCK, "random")])
    cloud = make_cloud(tmp_path / store, env=store_env(request, store))
    with cloud:
        iad = Glance(cloud, region="IAD")

        def copy(image_id: str, method: str) -> dict:
            args = [image_id, "--from", "ORD", "--to", "IAD", "--tag", tag, "--method", method]
            return json.loads(copy_cli(cloud.env(), *args, state=tmp_path / "journal.db").stdout)

        first = copy(create_image(cloud, "ORD", "inc", v1_data)["id"], "pull")
        assert first["base"] is None and first["bytes_moved"] == len(v1_data)
        stored = stored_bytes(cloud, "IAD")
        data = v1_data
        for method, block in (("pull", 5), ("stream", 12)):
            data = _changed(data, block)
            report = copy(create_image(cloud, "ORD", "inc", data)["id"], method)
            assert report["base"] is not None and report["bytes_moved"] == BLOCK, report
            assert (report["blocks_reused"], report["blocks_sent"]) == (blocks - 1, 1)
            assert stored_bytes(cloud, "IAD") - stored == BLOCK  # only the changed block was written
            stored += BLOCK
            new = iad.image(report["target_image"])
            assert new["os_hash_value"] == hashlib.sha512(data).hexdigest()
            assert new["checksum"] == hashlib.md5(data).hexdigest()
        assert iad.delete(f"/v2/images/{first['target_image']}").status_code == 204
        assert iad.get(f"/v2/images/{report['target_image']}/file", timeout=120).content == data
