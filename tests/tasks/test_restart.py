"""Crashes (SIGKILL of the real server) while tasks run: each task ends resumed and whole, or failed
"interrupted" with nothing half-made visible; never stuck."""

from __future__ import annotations

from pathlib import Path

from tests.support import (
    Cloud,
    Glance,
    MiB,
    Swift,
    create_image,
    create_task,
    disk_bytes,
    run,
    wait_for,
    wait_image,
    wait_task,
    write_disk,
)
from tests.support.cloud import task_config
from tests.support.web import web_server

INTERRUPTED = "Task interrupted: the service stopped while it ran. Start it again."


def export(image_id: str, container: str) -> dict:
    return {"type": "export", "input": {"image_uuid": image_id, "receiving_swift_container": container}}


def export_mid_way(cloud: Cloud, container: str, image_id: str) -> None:
    """Wait until the export has written segments but not yet its manifest, then crash the server."""
    swift = Swift(cloud)

    def mid_way() -> bool:
        names = swift.names(container)
        return f"{image_id}.vhd" not in names and any(n.startswith(f"{image_id}.vhd-") for n in names)

    wait_for(mid_way, f"the export into {container} is half-way")
    cloud.kill()


def test_an_export_killed_mid_way_is_resumed_or_failed_after_three_runs(
    cloud_factory, backend: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cloud: Cloud = cloud_factory("crash", backend, regions=("ORD",), config=task_config())
    cloud.start()
    raw = write_disk(tmp_path / "disk.raw", 384 * MiB, seed=7)  # 192 MiB of data: 24 segments of 8 MiB
    image = create_image(cloud, "ORD", "big", raw)
    Swift(cloud).put("/resumed")
    Swift(cloud).put("/failed")

    # Killed once: resumed after the restart, and the VHD it leaves is the whole disk.
    task = create_task(Glance(cloud), export(image["id"], "resumed"))
    export_mid_way(cloud, "resumed", image["id"])
    cloud.start()
    cloud.wait_log(f"task {task['id']} (export) interrupted; resumed")
    done = wait_task(Glance(cloud), task["id"])
    assert (done["status"], done["result"]) == ("success", {"export_location": f"resumed/{image['id']}.vhd"})
    swift = Swift(cloud)
    vhd = tmp_path / "export.vhd"
    vhd.write_bytes(swift.get(f"/resumed/{image['id']}.vhd").content)
    assert run(["qemu-img", "compare", "-f", "raw", "-F", "vpc", raw, vhd]).stdout == "Images are identical.\n"
    manifest = swift.get(f"/resumed/{image['id']}.vhd", params={"multipart-manifest": "get"}).json()
    assert sorted([f"/resumed/{n}" for n in swift.names("resumed")]) == sorted(
        [f"/resumed/{image['id']}.vhd"] + [s["name"] for s in manifest]
    )  # no segment of the killed run left beside the manifest's

    # Killed in each of its three runs: it fails "interrupted", and no VHD appears.
    task = create_task(Glance(cloud), export(image["id"], "failed"))
    export_mid_way(cloud, "failed", image["id"])
    for attempt in (2, 3):
        # the restart resumes it at once: crash again as soon as its run writes (no request needed);
        # the killed run's partial files stay until housekeeping discards them, so look for new ones
        left = set(cloud.partial_files())
        cloud.start()
        wait_for(lambda left=left: set(cloud.partial_files()) - left, f"run {attempt} of the export writes")
        cloud.kill()
    assert cloud.logged().count(f"task {task['id']} (export) interrupted; resumed") == 2
    cloud.start()
    failed = wait_task(Glance(cloud), task["id"])
    assert (failed["status"], failed["message"], failed["result"]) == ("failure", INTERRUPTED, None)
    assert f"{image['id']}.vhd" not in Swift(cloud).names("failed")


def test_an_interoperable_import_killed_mid_way_fails_and_changes_nothing(cloud_factory, backend: str) -> None:  # type: ignore[no-untyped-def]
    cloud: Cloud = cloud_factory("crash", backend, regions=("ORD",), config=task_config(),
                                 env={"IMAGEHOP_WEB_DOWNLOAD_ALLOW_PRIVATE": "1"})  # fmt: skip
    cloud.start()
    data = disk_bytes(8 * MiB, seed=8)
    with web_server(hold_after=3 * MiB) as web:
        web.files["disk.raw"] = data
        web.hold()
        image = create_image(cloud, "ORD", "fetched")
        body = {"method": {"name": "web-download", "uri": f"{web.url}/disk.raw"}}
        assert Glance(cloud).post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
        wait_for(lambda: web.stalled == 1, "the download is half-way")
        cloud.kill()
        web.release()

        cloud.start()
        glance = Glance(cloud)
        [task] = glance.get(f"/v2/images/{image['id']}/tasks").json()["tasks"]
        task = wait_task(glance, task["id"])
        assert (task["status"], task["message"]) == ("failure", INTERRUPTED)
        after = wait_image(glance, image["id"], "queued")
        assert (after["size"], after["checksum"]) == (None, None)
        assert glance.get(f"/v2/images/{image['id']}/file").status_code == 204  # no data

        # the same import, run again, completes
        assert glance.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
        done = wait_image(glance, image["id"])
        assert done["size"] == len(data)
        assert glance.get(f"/v2/images/{image['id']}/file").content == data
