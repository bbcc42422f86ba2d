"""Scale-out benchmarks: the S3 blob store beside the file store, and listing with 1 vs 2 region processes.

`python -m bench.scaleout [--quick]` prints the sections; `make bench` adds them to docs/benchmarks.md.

- Object PUT/GET throughput (one streamed request each, as in ``bench.objects``) with the region's
  bytes in local files and in a real S3 store (SeaweedFS from tests/peers/seaweedfs.py, on this
  machine), and the whole 2 GiB job ORD -> IAD (``bench.job``) with both regions on S3.
- ``GET /v2/images?<property>=<value>`` with 8 clients against ORD served by one region process and
  by two (``serve --role region --workers 2``) on one PostgreSQL database.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.harness import BIN, MiB, Section, machine, make_image, median, start_cloud
from bench.job import bench_job
from bench.listing import fill, load
from bench.objects import _put_get, _token_v3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
PG_ADMIN_URL = os.environ.get("IMAGEHOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_blob_stores(work: Path, size_mib: int, random_mib: int, zero_mib: int, runs: int) -> list[Section]:
    from tests.peers.seaweedfs import SeaweedFS

    path = work / "blob-object.bin"
    make_image(path, size_mib, 0)
    rates: dict[str, tuple[float, float]] = {}
    sections = []
    with SeaweedFS.start(work / "seaweedfs") as s3:
        for store in ("file", "s3"):
            env: dict[str, str] = {}
            if store == "s3":
                suffix = uuid.uuid4().hex[:8]
                env = {**s3.region_env("ORD", f"ord-{suffix}"), **s3.region_env("IAD", f"iad-{suffix}")}
            cloud = start_cloud(work / f"blob-{store}", env)
            try:
                demo = cloud.credentials["demo"]
                url = f"{cloud.endpoints['regions']['ORD']}/v1/AUTH_{demo['tenant_id']}"
                puts, gets = [], []
                for _ in range(runs):
                    put, get, _ = _put_get(url, _token_v3(cloud.endpoints["identity"], "demo", demo["password"],
                                                       demo["tenant_id"]), path)  # fmt: skip
                    puts.append(size_mib * MiB / 1e6 / put)
                    gets.append(size_mib * MiB / 1e6 / get)
                rates[store] = (median(puts), median(gets))
                if store == "s3":
                    job = bench_job(cloud, work, random_mib, zero_mib, runs)
                    job.title += " - both regions' bytes on S3 (SeaweedFS)"
                    sections.append(job)
            finally:
                cloud.stop()
    path.unlink()
    section = Section("Blob stores: object PUT/GET throughput, file beside S3")
    section.lines += [
        f"One streamed PUT then one GET of a {size_mib} MiB random object through the Swift API of one"
        f" `imagehop serve` (SQLite), medians of {runs} runs; `s3`: `IMAGEHOP_REGION_ORD_BLOB_STORE=s3` on a"
        " SeaweedFS (`weed server -s3`, one process, same machine). `python -m bench.scaleout`.",
        "",
        "| blob store | PUT MB/s | GET MB/s |",
        "| --- | ---: | ---: |",
        *[f"| `{store}` | {put:.1f} | {get:.1f} |" for store, (put, get) in rates.items()],
    ]
    return [section, *sections]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"a process ended with {proc.returncode} before {url} was ready")
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready in {timeout} s")
        time.sleep(0.1)


def bench_listing_processes(work: Path, count: int, clients: int = 8, requests_each: int = 250) -> Section:
    import psycopg

    from imagehop import db
    from imagehop.config import schema_url

    name = f"imagehop_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    ports = {"identity": _free_port(), "ORD": _free_port()}
    config = work / "listing-pg.toml"
    config.write_text(
        f'port = {ports["identity"]}\ndata_dir = "listing-pg"\ndatabase_url = "{database_url}"\n'
        f'[[regions]]\nname = "ORD"\nport = {ports["ORD"]}\n'
    )
    rows = []
    procs: list[subprocess.Popen] = []
    try:
        engine = db.make_engine(schema_url(database_url, "region_ord"))
        db.migrate(engine, "region")
        engine.dispose()
        fill(schema_url(database_url, "region_ord"), count)
        log = open(work / "listing-pg.log", "ab")  # noqa: SIM115
        identity = subprocess.Popen([str(BIN / "imagehop"), "serve", "--role", "identity", "--config", str(config)],
                                    stdout=log, stderr=log)  # fmt: skip
        procs.append(identity)
        _wait_ready(f"http://127.0.0.1:{ports['identity']}", identity)
        listed = subprocess.run([str(BIN / "imagehop"), "credentials", "--json", "--config", str(config)],
                                check=True, capture_output=True, text=True).stdout  # fmt: skip
        password = next(e["password"] for e in json.loads(listed) if e["user"] == "demo")
        token = httpx.post(
            f"http://127.0.0.1:{ports['identity']}/v2.0/tokens",
            json={"auth": {"passwordCredentials": {"username": "demo", "password": password}}},
        ).json()["access"]["token"]["id"]
        for workers in (1, 2):
            region = subprocess.Popen(
                [str(BIN / "imagehop"), "serve", "--role", "region", "--regions", "ORD", "--workers", str(workers),
                 "--config", str(config)], stdout=log, stderr=log,
            )  # fmt: skip
            try:
                url = f"http://127.0.0.1:{ports['ORD']}"
                _wait_ready(url, region)
                load(url + "/image/v2/images", token, clients, 20, count // 100)  # warm-up
                latencies, rate, _ = load(url + "/image/v2/images", token, clients, requests_each, count // 100)
            finally:
                region.terminate()
                region.wait(timeout=30)
            latencies.sort()
            rows.append((workers, statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], rate))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    section = Section("Image list filtered by a property: 1 vs 2 region processes on PostgreSQL")
    section.lines += [
        f"`GET /v2/images?com.mycompany.image-of=db-N` at {count:,} images, {clients} client threads,"
        f" {requests_each} requests each after a warm-up; identity and ORD as separate processes"
        " (`serve --role identity`, `serve --role region --regions ORD --workers N`) on one PostgreSQL database.",
        "",
        "| region processes | p50 ms | p99 ms | requests/s |",
        "| ---: | ---: | ---: | ---: |",
        *[f"| {w} | {p50:.1f} | {p99:.1f} | {rate:.0f} |" for w, p50, p99, rate in rows],
    ]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: checks the harness works")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagehop-bench-scaleout-") as work:
        print(machine())
        if args.quick:
            sections = [*bench_blob_stores(Path(work), 64, 32, 32, 1), bench_listing_processes(Path(work), 2000)]
        else:
            sections = bench_blob_stores(Path(work), 1024, 1024, 1024, 3)
            sections.append(bench_listing_processes(Path(work), 100_000))
        for section in sections:
            print(section.render())


if __name__ == "__main__":
    main()
