"""A crash (SIGKILL) while boots, a deletion and a snapshot are under way: after the restart each
one is finished or cleanly undone, and the disks hold exactly the images' content."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support import Cloud, Compute, Glance, MiB, create_image, disk_bytes, wait_for, wait_image, write_disk

BOOTS = 4  # as many as the region's compute job threads: a job queued behind them has not started


def snapshot_digest(compute: Compute, glance: Glance, server_id: str) -> str:
    response = compute("POST", f"/servers/{server_id}/action", json={"createImage": {"name": f"of-{server_id}"}})
    assert response.status_code == 202, response.text
    return wait_image(glance, response.json()["image_id"])["imagehop.content_digest"]


def test_boots_deletion_and_snapshot_survive_a_crash(cloud_factory, backend: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cloud: Cloud = cloud_factory("crash", backend, regions=("ORD",))
    cloud.start()
    small = create_image(cloud, "ORD", "small", disk_bytes(8 * MiB, seed=4))
    # 512 MiB with 256 MiB of data: four boots of it take a while to write their disks (with 128 MiB of
    # data, a quiet machine once finished three of them before the crash)
    big = create_image(cloud, "ORD", "big", write_disk(tmp_path / "big.raw", 512 * MiB, seed=5))
    compute, glance = Compute(cloud), Glance(cloud)
    to_image, to_delete = (compute.boot(small["id"], name=n)["id"] for n in ("to-image", "to-delete"))
    for sid in (to_image, to_delete):
        compute.wait_status(sid, "ACTIVE")

    booting = [compute.boot(big["id"], name=f"big-{i}")["id"] for i in range(BOOTS)]
    writes = wait_for(
        lambda: len(files := cloud.partial_files()) == BOOTS and all(f.stat().st_blocks for f in files) and files,
        f"the {BOOTS} boots are writing their disks",
    )
    snapshot = compute("POST", f"/servers/{to_image}/action", json={"createImage": {"name": "interrupted"}})
    assert snapshot.status_code == 202, snapshot.text
    assert compute("DELETE", f"/servers/{to_delete}").status_code == 204

    def being_deleted() -> list[str]:
        return [s["id"] for s in compute("GET", "/servers", params={"status": "DELETED"}).json()["servers"]]

    # Freeze the process, check that the boots are still mid-way (so the snapshot and the deletion,
    # queued behind them, have not started), then crash it.
    os.kill(cloud.proc.pid, signal.SIGSTOP)
    assert [f for f in writes if f.exists()] == writes, "a boot finished before the crash: use a larger image"
    cloud.kill()

    cloud.start()
    compute, glance = Compute(cloud), Glance(cloud)
    for sid in booting:  # booted again from the start
        server = compute.wait_status(sid, "ACTIVE", "ERROR")
        assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None), server
    assert snapshot_digest(compute, glance, booting[0]) == big["imagehop.content_digest"]
    # the deletion is finished
    assert compute("GET", f"/servers/{to_delete}").status_code == 404  # deleted, as Nova shows it
    wait_for(lambda: being_deleted() == [], "the deleted server's disk and row are gone")
    # The snapshot, a task row that had not started, is run after the restart (a started one that
    # was cut short would be undone: its image deleted); either way the server ends free, and its
    # image, if any, is whole, as is a new snapshot.
    image_id = snapshot.json()["image_id"]

    def snapshot_settled() -> bool:
        status = glance.get(f"/v2/images/{image_id}")
        return status.status_code == 404 or status.json()["status"] == "active"

    wait_for(snapshot_settled, "the queued snapshot is done or undone")
    kept = glance.get(f"/v2/images/{image_id}")
    if kept.status_code == 200:
        assert kept.json()["imagehop.content_digest"] == small["imagehop.content_digest"]
    wait_for(lambda: compute.server(to_image)["OS-EXT-STS:task_state"] is None, "the server is free")
    assert snapshot_digest(compute, glance, to_image) == small["imagehop.content_digest"]
    # the crashed writes were discarded (their intents' holder is gone)
    wait_for(lambda: cloud.partial_files() == [], "the crashed writes are discarded")
