"""A restart while tasks run: each ends resumed (and succeeds) or failed "interrupted", never stuck."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from imagehop.db import make_engine, tasks
from tests.conftest import Cloud
from tests.images.conftest import Glance
from tests.tasks.conftest import Swift, create_task, task_cloud, wait_task
from tests.tasks.test_export_import import MIB, disk_bytes, upload_raw


def test_tasks_left_processing_are_resumed_or_failed(tmp_path: Path) -> None:
    cloud: Cloud = task_cloud(tmp_path, "sqlite")
    cloud.start()
    demo, swift = Glance(cloud), Swift(cloud)
    image = upload_raw(demo, disk_bytes(20 * MIB, seed=7))
    swift.put("/restart")
    # a finished export whose row we turn back into "processing, held by a dead process"
    body = {"type": "export", "input": {"image_uuid": image["id"], "receiving_swift_container": "restart"}}
    resumed = wait_task(demo, create_task(demo, body)["id"])
    assert resumed["status"] == "success"
    swift.http.delete(f"/restart/{image['id']}.vhd", params={"multipart-manifest": "delete"})
    gone = wait_task(demo, create_task(demo, {"type": "import", "input": {"import_from": "x/y"}})["id"])
    dead_pid = cloud.proc.pid
    cloud.stop(signal.SIGKILL)  # a crash: the process that held the tasks is gone

    engine = make_engine(f"sqlite:///{cloud.data_dir / 'regions' / 'ORD' / 'region.db'}")
    with engine.begin() as conn:
        holder = f"{socket.gethostname()}:{dead_pid}:x"
        held = {"status": "processing", "worker_id": holder, "result": None, "expires_at": None}
        conn.execute(tasks.update().where(tasks.c.id == resumed["id"]).values(attempts=1, **held))
        conn.execute(tasks.update().where(tasks.c.id == gone["id"]).values(attempts=3, **held))
    engine.dispose()

    cloud.start()
    demo = Glance(cloud)
    again = wait_task(demo, resumed["id"])
    assert again["status"] == "success" and again["result"] == {"export_location": f"restart/{image['id']}.vhd"}
    assert Swift(cloud).http.head(f"/restart/{image['id']}.vhd").status_code == 200
    failed = wait_task(demo, gone["id"])
    assert failed["status"] == "failure" and "interrupted" in failed["message"]
    cloud.stop()
