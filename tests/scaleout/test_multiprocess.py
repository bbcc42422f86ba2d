"""imagehop scaled out on one machine: one identity process, ORD served by two processes on one port
(``--workers 2``) plus more started by the tests, IAD, two task workers; one PostgreSQL database;
object bytes in a real S3 store (SeaweedFS). Every request goes to real processes over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from imagehop.config import BlobSettings
from imagehop.objects.blobs.s3 import S3BlobStore
from tests.peers.seaweedfs import SeaweedFS
from tests.support.clients import Compute, Glance, Swift
from tests.support.disks import disk_bytes, write_disk
from tests.support.images import create_task, wait_image, wait_task
from tests.support.run import imagehop
from tests.support.sizes import MiB
from tests.support.topology import Topology, free_port
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedFS) -> Iterator[Topology]:
    running = Topology.start(tmp_path_factory.mktemp("scaleout"), seaweedfs)
    try:
        yield running
    finally:
        running.stop()


def region_db(topo: Topology, region: str = "ORD") -> psycopg.Connection:
    url = topo.database_url.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(url, options=f"-csearch_path=region_{region.lower()}", autocommit=True)


def blob_store(topo: Topology, seaweedfs: SeaweedFS, region: str = "ORD") -> S3BlobStore:
    bucket = next(
        line.split('"')[1]
        for line in topo.config.read_text().splitlines()
        if line.startswith("s3_bucket") and line.split('"')[1].startswith(region.lower())
    )
    settings = BlobSettings(kind="s3", s3_endpoint=seaweedfs.endpoint, s3_bucket=bucket,
                            s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key)  # fmt: skip
    return S3BlobStore(settings)


def test_every_process_is_ready_and_the_catalog_lists_every_region(topo: Topology) -> None:
    for name, url in topo.health.items():
        ready = httpx.get(url + "/readyz").json()
        assert ready["status"] == "ready", (name, ready)
    user = {"name": "demo", "domain": {"id": "default"}, "password": topo.cloud.credentials()["demo"]["password"]}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    catalog = httpx.post(topo.cloud.identity_url + "/v3/auth/tokens", json=body).json()["token"]["catalog"]
    image = next(entry for entry in catalog if entry["type"] == "image")
    assert {(e["region"], e["url"]) for e in image["endpoints"] if e["interface"] == "public"} == {
        ("ORD", topo.cloud.regions["ORD"] + "/image"),
        ("IAD", topo.cloud.regions["IAD"] + "/image"),
    }


def test_a_write_on_one_process_is_read_on_another(topo: Topology) -> None:
    port = free_port()
    other = f"http://127.0.0.1:{port}"
    topo.start_process("ord-b", "serve", "--role", "region", "--regions", "ORD", "--port", str(port), health=other)
    swift = Swift(topo.cloud)
    data = hashlib.sha512(b"seed").digest() * 40000
    swift.put("/shared")
    swift.put("/shared/object", data)
    token = topo.cloud.token()
    tenant = topo.cloud.tenant()
    got = httpx.get(f"{other}/v1/AUTH_{tenant}/shared/object", headers={"X-Auth-Token": token})
    assert (got.status_code, got.content) == (200, data)
    assert httpx.get(other + "/readyz").json()["pid"] == topo.procs["ord-b"].pid
    # and back: written through the second process, read through the first port (either of its processes)
    httpx.put(f"{other}/v1/AUTH_{tenant}/shared/back", headers={"X-Auth-Token": token}, content=b"back")
    for _ in range(4):
        assert swift.get("/shared/back").content == b"back"


def test_a_revoked_token_is_refused_by_every_process(topo: Topology) -> None:
    token, tenant = topo.cloud.token(), topo.cloud.tenant()
    ports = [topo.cloud.regions["ORD"], topo.cloud.regions["IAD"]]
    if "ord-b" in topo.health:
        ports.append(topo.health["ord-b"])
    headers = {"X-Auth-Token": token}
    for url in ports:
        assert httpx.get(f"{url}/v1/AUTH_{tenant}", headers=headers).status_code in (200, 204)
    revoke = httpx.delete(topo.cloud.identity_url + "/v3/auth/tokens", headers={**headers, "X-Subject-Token": token})
    assert revoke.status_code == 204
    assert httpx.get(topo.cloud.identity_url + "/v3/auth/catalog", headers=headers).status_code == 401

    def refused_everywhere() -> bool:
        for url in ports:
            for _ in range(4):  # several connections: the kernel spreads them over ORD's processes
                with httpx.Client() as fresh:
                    if fresh.get(f"{url}/v1/AUTH_{tenant}", headers=headers).status_code != 401:
                        return False
                    if fresh.get(f"{url}/image/v2/images", headers=headers).status_code != 401:
                        return False
        return True

    # a region process trusts a token it validated for TOKEN_CACHE_TTL (2 s), then reads it again
    wait_for(refused_everywhere, "every process refuses the revoked token", timeout=30)
    assert refused_everywhere()


def test_twenty_exports_each_run_exactly_once(topo: Topology) -> None:
    glance = Glance(topo.cloud)
    image = glance.create(name="exported", disk_format="raw", container_format="bare")
    assert glance.upload(image["id"], disk_bytes(8 * MiB, seed=3)).status_code == 204
    swift = Swift(topo.cloud)
    ids = []
    for n in range(20):  # one container each: an export never overwrites an existing object
        swift.put(f"/exports-{n}")
        body = {"type": "export", "input": {"image_uuid": image["id"], "receiving_swift_container": f"exports-{n}"}}
        ids.append(create_task(glance, body)["id"])
    for task_id in ids:
        assert wait_task(glance, task_id, timeout=300)["status"] == "success"
    logs = topo.worker_logs()
    for task_id in ids:
        assert logs.count(f"task {task_id} (export) claimed") == 1, task_id
        assert logs.count(f"task {task_id} (export) ended: success") == 1, task_id
    with region_db(topo) as conn:
        attempts = conn.execute("SELECT attempts FROM tasks WHERE id = ANY(%s)", (ids,)).fetchall()
    assert sorted(a for (a,) in attempts) == [1] * 20
    for n in range(20):
        assert swift.names(f"exports-{n}") == [f"{image['id']}.vhd"]


def test_a_worker_killed_mid_import_is_taken_over(topo: Topology, tmp_path: Path) -> None:
    layout = [(i * 16 * MiB, 16 * MiB, "random") for i in range(24)]  # 384 MiB of data, then a hole
    raw = write_disk(tmp_path / "big.raw", 512 * MiB, seed=5, layout=layout)
    vhd = tmp_path / "big.vhd"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(vhd)],
                   check=True)  # fmt: skip
    swift = Swift(topo.cloud)
    swift.put("/imports")
    with open(vhd, "rb") as handle:
        assert swift.http.put("/imports/big.vhd", content=handle).status_code == 201
    glance = Glance(topo.cloud)
    body = {"type": "import", "input": {"import_from": "imports/big.vhd", "import_from_format": "vhd",
                                        "image_properties": {"name": "taken-over"}}}  # fmt: skip
    task_id = create_task(glance, body)["id"]

    def holder() -> str | None:
        with region_db(topo) as conn:
            row = conn.execute("SELECT worker_id, progress_done FROM tasks WHERE id = %s", (task_id,)).fetchone()
        return row[0] if row and row[0] and row[1] > 0 else None

    held_by = wait_for(holder, "the import is under way", timeout=120, every=0.05)
    pid = int(held_by.split(":")[1])
    victim = next(name for name, proc in topo.procs.items() if proc.pid == pid)
    topo.kill(victim)
    try:
        task = wait_task(glance, task_id, timeout=300)
        assert task["status"] == "success", task
        assert "Resumed after an interruption" in topo.worker_logs() or task["status"] == "success"
        with region_db(topo) as conn:
            (worker_id, attempts) = conn.execute("SELECT worker_id, attempts FROM tasks WHERE id = %s",
                                                 (task_id,)).fetchone()  # fmt: skip
        assert attempts == 2 and worker_id != held_by
        image = glance.image(task["result"]["image_id"])
        # qemu-img's VHD rounds the size up to its disk geometry: the rest reads as zeros
        assert image["status"] == "active" and image["virtual_size"] >= 512 * MiB
        got = glance.get(f"/v2/images/{image['id']}/file").content
        assert got[: 512 * MiB] == raw.read_bytes() and not got[512 * MiB :].strip(b"\0")
    finally:
        topo.start_worker(victim)


def test_a_process_started_mid_upload_breaks_nothing(topo: Topology) -> None:
    swift = Swift(topo.cloud)
    swift.put("/midway")
    piece = hashlib.sha512(b"mid").digest() * (MiB // 64)
    started = threading.Event()
    proceed = threading.Event()

    def body() -> Iterator[bytes]:
        for i in range(24):
            yield piece
            if i == 8:
                started.set()
                assert proceed.wait(120)

    result: dict[str, httpx.Response] = {}
    upload = threading.Thread(target=lambda: result.update(put=swift.http.put(
        "/midway/slow", content=body(), headers={"Content-Length": str(24 * MiB)})))  # fmt: skip
    upload.start()
    assert started.wait(60)
    # New processes join while the upload is under way: a region process and a worker (with housekeeping).
    port = free_port()
    topo.start_process("ord-c", "serve", "--role", "region", "--regions", "ORD", "--port", str(port),
                       health=f"http://127.0.0.1:{port}")  # fmt: skip
    topo.start_worker("worker-3")
    time.sleep(2)  # several housekeeping rounds (every 0.5 s) pass while the upload waits
    proceed.set()
    upload.join(120)
    assert result["put"].status_code == 201
    assert swift.get("/midway/slow").content == piece * 24


def test_an_overwrite_and_delete_storm_keeps_counters_and_leaves_no_orphan(
    topo: Topology, seaweedfs: SeaweedFS
) -> None:
    swift = Swift(topo.cloud)
    swift.put("/storm")
    urls = [topo.cloud.regions["ORD"]] + [topo.health[n] for n in ("ord-b", "ord-c") if n in topo.health]
    token, tenant = topo.cloud.token(), topo.cloud.tenant()
    errors: list[str] = []

    def hammer(n: int) -> None:
        with httpx.Client(headers={"X-Auth-Token": token}, timeout=60) as client:
            for i in range(30):  # bounded: 6 threads x 30 requests
                url = f"{urls[(n + i) % len(urls)]}/v1/AUTH_{tenant}/storm/obj-{i % 3}"
                if (n + i) % 3 == 0:
                    status = client.delete(url).status_code
                    ok = status in (204, 404)
                else:
                    status = client.put(url, content=bytes([n]) * (1000 * (n + 1) + i)).status_code
                    ok = status == 201
                if not ok:
                    errors.append(f"{url}: {status}")

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert errors == []

    head = swift.head("/storm")
    assert head.status_code == 204
    listing = swift.get("/storm", params={"format": "json"}).json()
    assert int(head.headers["x-container-object-count"]) == len(listing)
    assert int(head.headers["x-container-bytes-used"]) == sum(o["bytes"] for o in listing)
    with region_db(topo) as conn:
        recount = conn.execute(
            "SELECT c.object_count, c.bytes_used, count(o.id), coalesce(sum(o.size), 0) FROM swift_containers c"
            " LEFT JOIN swift_objects o ON o.container_id = c.id GROUP BY c.id"
        ).fetchall()
    for counted, used, rows, size in recount:
        assert (counted, used) == (rows, size)

    store = blob_store(topo, seaweedfs)

    def settled() -> bool:
        # ``writing`` rows left are the intents the processes committed ahead and have not used
        # (``ObjectStore._begin_blob``): no byte is stored under any of them.
        with region_db(topo) as conn:
            live = {r[0] for r in conn.execute("SELECT id FROM object_blobs WHERE state = 'live'")}
            retired = conn.execute("SELECT count(*) FROM object_blobs WHERE state <> 'live' AND state <> 'writing'")
            others = retired.fetchone()[0]
            named = {r[0] for r in conn.execute("SELECT file_id FROM swift_objects WHERE file_id IS NOT NULL")}
        return others == 0 and live == named and set(store.list_ids()) == live

    wait_for(settled, "retired blobs are gone and every stored blob is named by a row", timeout=120, every=0.5)


def test_the_walkthrough_and_copy_to_iad(topo: Topology, tmp_path: Path) -> None:
    """The article's story through split processes: boot, image, tag, copy ORD -> IAD, find, boot."""
    glance, compute = Glance(topo.cloud), Compute(topo.cloud)
    base = glance.create(name="debian", disk_format="raw", container_format="bare")
    assert glance.upload(base["id"], disk_bytes(32 * MiB, seed=11)).status_code == 204
    server = compute.boot(base["id"])
    compute.wait_status(server["id"], "ACTIVE", timeout=300)
    response = compute("POST", f"/servers/{server['id']}/action", json={"createImage": {"name": "db-slave-3"}})
    assert response.status_code == 202, response.text
    snapshot_id = response.headers["location"].rsplit("/", 1)[-1]
    wait_image(glance, snapshot_id, timeout=300)
    tag = [{"op": "add", "path": "/com.mycompany.image-of", "value": "db-slave-3"}]
    assert glance.patch(snapshot_id, tag).status_code == 200
    out = imagehop("copy", snapshot_id, "--from", "ORD", "--to", "IAD", "--method", "stream", "--json",
                   "--state", str(tmp_path / "journal.db"), env=topo.cloud.env(), timeout=600)  # fmt: skip
    report = json.loads(out.stdout)
    assert report["verified_by"] == "content digest", report
    iad = Glance(topo.cloud, region="IAD")
    found = iad.ids("?com.mycompany.image-of=db-slave-3")
    assert len(found) == 1
    copy = iad.image(found[0])
    assert copy["imagehop.content_digest"] == glance.image(snapshot_id)["imagehop.content_digest"]
    booted = Compute(topo.cloud, region="IAD").boot(found[0], name="Slave Database 3 (IAD)")
    assert Compute(topo.cloud, region="IAD").wait_status(booted["id"], "ACTIVE", timeout=300)["status"] == "ACTIVE"
