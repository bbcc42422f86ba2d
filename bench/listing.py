"""`GET /v2/images?<property>=<value>` at 10,000 and 100,000 images, 8 clients at once.

PERFORMANCE.md: real Glance 33 on this kind of machine at 10,000 images: p50 65 ms, p99 116 ms,
19-25 requests/s with 8 clients, growing with the image count. Target: p99 < 20 ms at 100,000
images, cost per page independent of the number of images, >= 10x Glance's requests/s.

The images are written straight into the region database before the server starts (setup only:
100,000 API calls would measure the setup, not the listing); every request goes through the API.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.harness import Section, start_cloud

TENANTS = [f"{20000000 + i}" for i in range(50)]
PROPERTY = "com.mycompany.image-of"


def fill(region_db: str, count: int) -> None:
    """``count`` images, each property value on 100 of them; a fifth owned by demo, 5% public.

    So every answer holds about the same number of images (20 of demo's, plus the public ones) at
    any ``count``: what changes between sizes is only how many images the database must skip.
    """
    from imagehop import db

    engine = db.make_engine(region_db)
    start = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    images, props = [], []
    values = max(1, count // 100)
    for i in range(count):
        image_id = str(uuid.UUID(int=i + 1))
        owner = "10000001" if (i // values) % 5 == 0 else TENANTS[i % len(TENANTS)]
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
    with engine.begin() as conn:
        conn.execute(db.images.insert(), images)
        conn.execute(db.image_properties.insert(), props)
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


def bench_listing(work: Path, counts: tuple[int, ...], clients: int = 8, requests_each: int = 250) -> Section:
    rows = []
    for count in counts:
        data = work / f"listing-{count}"
        cloud = start_cloud(data)  # migrations and users
        cloud.stop()
        fill(f"sqlite:///{(data / 'regions' / 'ORD' / 'region.db').resolve()}", count)
        cloud = start_cloud(data)
        try:
            token = httpx.post(
                cloud.endpoints["identity"] + "/v2.0/tokens",
                json={"auth": {"passwordCredentials": {"username": "demo",
                                                       "password": cloud.credentials["demo"]["password"]}}},
            ).json()["access"]["token"]["id"]  # fmt: skip
            url = cloud.endpoints["regions"]["ORD"] + "/image/v2/images"
            load(url, token, clients, 20, count // 100)  # warm-up
            latencies, rate, matched = load(url, token, clients, requests_each, count // 100)
        finally:
            cloud.stop()
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        rows.append((count, p50, p99, rate, matched, len(latencies)))

    section = Section("Image list filtered by a property")
    section.lines += [
        f"`GET /v2/images?{PROPERTY}=db-N` as `demo`, {clients} client threads at once, {requests_each} requests"
        " each, after a warm-up; one `imagehop serve` (SQLite). Each property value is on 100 images, of which"
        " 20 are demo's and 5 public: every answer is one page of about 25 images at every size.",
        "",
        "| images in the region | p50 ms | p99 ms | requests/s | images per answer | requests |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {c:,} | {p50:.1f} | {p99:.1f} | {rate:.0f} | {m} | {n} |" for c, p50, p99, rate, m, n in rows],
        "",
        "Anchor (a real Glance 33 measured on this kind of machine, not run side by side here): 10,000"
        " images, p50 65 ms, p99 116 ms, 19-25 requests/s with 8 clients.",
    ]
    return section
