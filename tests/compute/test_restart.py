"""A boot whose process died is run again by the next worker (its task row is recovered), never left stuck."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import httpx

from tests.compute.helpers import make_image, sparse_disk, wait_for
from tests.conftest import make_cloud


def test_build_is_resumed_after_restart(tmp_path: Path) -> None:
    cloud = make_cloud(tmp_path / "restart", regions=("ORD",))
    cloud.start()
    try:
        region, token = cloud.regions["ORD"], cloud.token()
        image = make_image(region, token, "cirros", sparse_disk())
        base = f"{region}/compute/v2.1/10000001"
        headers = {"X-Auth-Token": token}
        body = {"server": {"name": "resumed", "imageRef": image["id"], "flavorRef": "1"}}
        server_id = httpx.post(f"{base}/servers", json=body, headers=headers).json()["server"]["id"]
        wait_for(
            lambda: httpx.get(f"{base}/servers/{server_id}", headers=headers).json()["server"]["status"] == "ACTIVE"
        )
    finally:
        cloud.stop()
    # As if the process had died mid-boot: the server in BUILD, its build task held by a dead process.
    dead = f"{socket.gethostname()}:{2**22 + 4321}:x"
    with sqlite3.connect(cloud.data_dir / "regions" / "ORD" / "region.db") as db:
        db.execute("UPDATE servers SET status = 'BUILD', task_state = 'spawning' WHERE id = ?", (server_id,))
        updated = db.execute(
            "UPDATE tasks SET status = 'processing', worker_id = ?, attempts = 1, expires_at = NULL"
            " WHERE type = 'compute_build'",
            (dead,),
        ).rowcount
    assert updated == 1
    cloud.start()
    try:
        region, token = cloud.regions["ORD"], cloud.token()
        base, headers = f"{region}/compute/v2.1/10000001", {"X-Auth-Token": token}
        server = wait_for(
            lambda: (
                (s := httpx.get(f"{base}/servers/{server_id}", headers=headers).json()["server"])["status"] != "BUILD"
                and s
            )
        )
        assert server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None
    finally:
        cloud.stop()
