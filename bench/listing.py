"""`GET /v2/images?<property>=<value>` at 10,000 and 100,000 images, 1 and 8 clients, SQLite and PostgreSQL.

Targets (issue 15): at 100,000 images, one client p99 < 10 ms; 8 clients p99 < 20 ms and >= 10x the
requests/s of a real Glance 33 measured here by the same clients (``--glance N``); p50 at 100,000
within 1.2x of p50 at 10,000.

The images are written straight into the database before the server starts (setup only: 100,000 API
calls would measure the setup, not the listing); every request goes through the API.

``python -m bench.listing [--counts 10000 100000] [--clients 1 8] [--db sqlite postgresql] [--glance 10000]``
prints the section; ``make bench`` adds it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import sqlalchemy as sa

from bench.harness import Section, machine, start_cloud

if TYPE_CHECKING:
    from tests.peers.openstack import OpenStack

TENANTS = [f"{20000000 + i}" for i in range(50)]
PROPERTY = "com.mycompany.image-of"
GLANCE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # a DATETIME as MariaDB reads it
DEMO = "10000001"  # demo's tenant in a fresh `imagehop serve`
PG_ADMIN_URL = os.environ.get("IMAGEHOP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def rows(count: int, demo: str = DEMO) -> tuple[list[dict], list[dict]]:
    """``count`` images, each property value on 100 of them; a fifth owned by demo, 5% public.

    So every answer holds about the same number of images (20 of demo's, plus the public ones) at
    any ``count``: what changes between sizes is only how many images the database must skip.
    """
    start = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    images, props = [], []
    values = max(1, count // 100)
    for i in range(count):
        image_id = str(uuid.UUID(int=i + 1))
        owner = demo if (i // values) % 5 == 0 else TENANTS[i % len(TENANTS)]
        created = start + timedelta(seconds=i)
        images.append({
            "id": image_id, "name": f"image-{i}", "status": "active",
            "visibility": "public" if (i // values) % 20 == 7 else "private", "protected": False, "os_hidden": False,
            "owner": owner, "size": 1 << 30, "virtual_size": 1 << 30, "container_format": "bare",
            "disk_format": "raw", "min_ram": 0, "min_disk": 0, "created_at": created, "updated_at": created,
        })  # fmt: skip
        for name, value in (
            (PROPERTY, f"db-{i % values}"),
            ("os_distro", "debian"),
            ("com.mycompany.tier", str(i % 3)),
        ):
            props.append({"image_id": image_id, "name": name, "value": value, "value_key": value})
    return images, props


def fill(region_db: str, count: int) -> None:
    """``count`` images in an imagehop region database (see :func:`rows`)."""
    from imagehop import db

    images, props = rows(count)
    engine = db.make_engine(region_db)
    with engine.begin() as conn:
        conn.execute(db.images.insert(), images)
        conn.execute(db.image_properties.insert(), props)
        if conn.dialect.name == "postgresql":
            # What autovacuum does after a load this size (it is off on the test server here): without
            # statistics the planner reads image_properties whole for each page's properties.
            conn.execute(sa.text("ANALYZE images, image_properties"))
    engine.dispose()


def load(url: str, token: str, clients: int, requests_each: int, values: int) -> tuple[list[float], float, int]:
    """Latencies (ms) of ``clients`` threads, each sending ``requests_each`` filtered list requests."""
    latencies: list[float] = []
    lock = threading.Lock()
    matched: list[int] = []

    def worker(n: int) -> None:
        with httpx.Client(headers={"X-Auth-Token": token}) as http:
            mine = []
            for k in range(requests_each):
                value = f"db-{(n * 997 + k * 31) % values}"
                begin = time.perf_counter()
                response = http.get(url, params={PROPERTY: value})
                mine.append((time.perf_counter() - begin) * 1000)
                response.raise_for_status()
                if k == 0:
                    matched.append(len(response.json()["images"]))
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    return latencies, len(latencies) / elapsed, min(matched)


def fill_glance(real: OpenStack, region: str, count: int, project_id: str) -> None:
    """The same images in a real Glance's database (MariaDB), ``project_id`` in demo's place.

    Written while that Glance runs (it keeps no cache of images); the columns are read from its schema.
    """
    images, props = rows(count, project_id)
    image_cols, prop_cols = (
        {line.split("\t")[0] for line in real.glance_sql(region, f"SHOW COLUMNS FROM {table}").splitlines()}
        for table in ("images", "image_properties")
    )
    image_rows = []
    for image in images:
        row = {k: v for k, v in image.items() if k in image_cols}
        row.update(deleted=False, created_at=image["created_at"].strftime(GLANCE_TIME),
                   updated_at=image["updated_at"].strftime(GLANCE_TIME))  # fmt: skip
        image_rows.append(row)
    stamp = images[0]["created_at"].strftime(GLANCE_TIME)
    prop_rows = [{"image_id": p["image_id"], "name": p["name"], "value": p["value"], "deleted": False,
                  "created_at": stamp} for p in props]  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        for table, cols, batch in (("images", image_cols, image_rows), ("image_properties", prop_cols, prop_rows)):
            keys = [k for k in batch[0] if k in cols]
            for at in range(0, len(batch), 1000):
                values = ",".join("(" + ",".join(_sql_value(r[k]) for k in keys) + ")" for r in batch[at : at + 1000])
                script.write(f"INSERT INTO {table} ({', '.join(keys)}) VALUES {values};\n")
        script.flush()
        real.glance_sql(region, script=Path(script.name))


def _sql_value(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _token(identity: str, password: str) -> str:
    return httpx.post(
        identity + "/v2.0/tokens",
        json={"auth": {"passwordCredentials": {"username": "demo", "password": password}}},
    ).json()["access"]["token"]["id"]


def _measure(url: str, token: str, count: int, clients: tuple[int, ...], requests: int) -> list[tuple]:
    """(clients, p50, p99, requests/s, images per answer, requests) per number of clients."""
    out = []
    for n in clients:
        load(url, token, n, 20, count // 100)  # warm-up
        latencies, rate, matched = load(url, token, n, max(1, requests // n), count // 100)
        latencies.sort()
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
        out.append((n, statistics.median(latencies), p99, rate, matched, len(latencies)))
    return out


def run_imagehop(work: Path, count: int, database: str, clients: tuple[int, ...], requests: int) -> list[tuple]:
    """One `imagehop serve` on SQLite or on a new PostgreSQL database (dropped after)."""
    from imagehop.config import schema_url

    data = work / f"listing-{database}-{count}"
    env: dict[str, str] = {}
    pg_name = None
    if database == "postgresql":
        import psycopg

        pg_name = f"imagehop_bench_list_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        env["IMAGEHOP_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + pg_name
    try:
        cloud = start_cloud(data, env)  # migrations and users
        cloud.stop()
        if pg_name:
            fill(schema_url(env["IMAGEHOP_DATABASE_URL"], "region_ord"), count)
        else:
            fill(f"sqlite:///{(data / 'regions' / 'ORD' / 'region.db').resolve()}", count)
        cloud = start_cloud(data, env)
        try:
            token = _token(cloud.endpoints["identity"], cloud.credentials["demo"]["password"])
            return _measure(cloud.endpoints["regions"]["ORD"] + "/image/v2/images", token, count, clients, requests)
        finally:
            cloud.stop()
    finally:
        if pg_name:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def run_glance(work: Path, count: int, clients: tuple[int, ...], requests: int) -> list[tuple]:
    """A real Keystone 30 + Glance 33 (tests/peers/openstack.py: uWSGI, 1 process, 8 threads, MariaDB)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.peers.openstack import OpenStack

    with OpenStack.running(work / f"glance-{count}", regions=("ORD",)) as real:
        user = real.create_user("bench")
        fill_glance(real, "ORD", count, user.project_id)
        return _measure(real.glance_url("ORD") + "/v2/images", real.token(user), count, clients, requests)


def bench_listing(
    work: Path,
    counts: tuple[int, ...],
    clients: tuple[int, ...] = (1, 8),
    databases: tuple[str, ...] = ("sqlite", "postgresql"),
    glance: tuple[int, ...] = (),
    requests: int = 2000,
) -> Section:
    results = []  # (server, images, clients, p50, p99, rate, matched, requests)
    began, load_before = datetime.now(UTC), os.getloadavg()
    for database in databases:
        for count in counts:
            results += [(database, count, *r) for r in run_imagehop(work, count, database, clients, requests)]
    for count in glance:
        results += [("glance", count, *r) for r in run_glance(work, count, clients, requests)]
    ended, load_after = datetime.now(UTC), os.getloadavg()
    return section(results, counts, requests, began, ended, load_before, load_after)


def section(results, counts, requests, began, ended, load_before, load_after) -> Section:
    names = {"sqlite": "imagehop, SQLite", "postgresql": "imagehop, PostgreSQL", "glance": "Glance 33"}
    out = Section("Image list filtered by a property")
    out.lines += [
        f"`GET /v2/images?{PROPERTY}=db-N` as a normal tenant (`demo`; in Glance a member of its own project),"
        f" {requests} requests in all per row, shared among 1 or 8 client threads (httpx, keep-alive), after a"
        " warm-up; one `imagehop serve` (SQLite, or PostgreSQL as one `database_url`), or a real Keystone 30 +"
        " Glance 33 (uWSGI, 1 process, 8 threads, MariaDB; tests/peers/openstack.py) filled with the same rows."
        " Each property value is on 100 images, of which 20 are the caller's and 5 public: every answer is"
        " one page of about 25 images at every size.",
        f"`python -m bench.listing`, {began:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC, load average"
        f" {load_before[0]:.1f} before, {load_after[0]:.1f} after (1-minute; 2 cores shared with other work).",
        "",
        "| server | images | clients | p50 ms | p99 ms | requests/s | images per answer | requests |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {names[s]} | {c:,} | {n} | {p50:.1f} | {p99:.1f} | {rate:.0f} | {m} | {k} |"
            for s, c, n, p50, p99, rate, m, k in results
        ],
        "",
        "Targets at 100,000 images: one client p99 < 10 ms; 8 clients p99 < 20 ms and >= 10x Glance's"
        " requests/s; p50 at 100,000 within 1.2x of p50 at 10,000.",
    ]
    by = {(s, c, n): (p50, p99, rate) for s, c, n, p50, p99, rate, _, _ in results}
    big, small = max(counts), min(counts)
    glance_rate = {n: rate for (s, _, n), (_, _, rate) in by.items() if s == "glance"}
    for server in ("sqlite", "postgresql"):
        checks = []
        if (server, big, 1) in by:
            checks.append(f"1 client p99 {by[server, big, 1][1]:.1f} ms")
        if (server, big, 8) in by:
            checks.append(f"8 clients p99 {by[server, big, 8][1]:.1f} ms")
            if 8 in glance_rate:
                checks.append(f"{by[server, big, 8][2] / glance_rate[8]:.1f}x Glance's requests/s")
        for n in (1, 8):
            if (server, big, n) in by and (server, small, n) in by and big != small:
                checks.append(
                    f"p50 {big:,}/{small:,} with {n} client(s) {by[server, big, n][0] / by[server, small, n][0]:.2f}x"
                )
        if checks:
            out.lines.append(f"{names[server]}: " + "; ".join(checks) + ".")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000], help="images in the region")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="client threads at once")
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--glance", type=int, nargs="*", default=[10_000],
                        help="also measure a real Glance 33 at these sizes (none: skip)")  # fmt: skip
    parser.add_argument("--requests", type=int, default=2000, help="requests per row, shared among the clients")
    args = parser.parse_args()
    print(machine(), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="imagehop-bench-listing-") as work:
        result = bench_listing(Path(work), tuple(args.counts), tuple(args.clients), tuple(args.db),
                               tuple(args.glance), args.requests)  # fmt: skip
    print(result.render())


if __name__ == "__main__":
    main()
