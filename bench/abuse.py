"""The server under abuse: an authenticated GET's latency while identity is flooded.

`python -m bench.abuse [--tokens N] [--gets N]` prints the figures; `make bench` adds them to
docs/benchmarks.md. Target (PERFORMANCE.md): with 1,000 token requests, oversized bodies and slow
clients, an authenticated GET keeps p99 < 50 ms and the server's RSS stays < 300 MiB.

One server (two regions, SQLite). First the GET alone (`GET <ORD>/image/v2/images?limit=5` with a
valid token, one client, sequential); then the same GETs while, at the same time:

- 1,000 v3 password token requests (half with a wrong password) from 50 client threads;
- 20 chunked 100 MiB bodies sent to `POST /v3/auth/tokens` (the server stops reading at 112 KiB);
- 200 slow clients that send one header byte every 100 ms and never finish.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.harness import Cloud, Section, machine, start_cloud


def _password_body(user: str, password: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain":
            {"id": "default"}, "password": password}}}}}  # fmt: skip


def _token(cloud: Cloud) -> str:
    demo = cloud.credentials["demo"]
    body = _password_body("demo", demo["password"])
    body["auth"]["scope"] = {"project": {"id": demo["tenant_id"]}}
    response = httpx.post(cloud.endpoints["identity"] + "/v3/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def _gets(url: str, token: str, count: int, stop: threading.Event | None = None) -> list[float]:
    """Sequential authenticated GETs on one kept-alive connection; latencies in ms."""
    times = []
    with httpx.Client(headers={"X-Auth-Token": token}, timeout=60) as client:
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _token_storm(cloud: Cloud, count: int) -> Counter:
    url = cloud.endpoints["identity"] + "/v3/auth/tokens"
    password = cloud.credentials["alt"]["password"]
    bodies = [_password_body("alt", password if i % 2 else "wrong") for i in range(count)]
    statuses: Counter = Counter()
    with httpx.Client(limits=httpx.Limits(max_connections=50), timeout=120) as client, \
            concurrent.futures.ThreadPoolExecutor(50) as pool:  # fmt: skip
        for response in pool.map(lambda body: client.post(url, json=body), bodies):
            statuses[response.status_code] += 1
    return statuses


def _oversized(cloud: Cloud, count: int, size: int) -> Counter:
    parts = urlsplit(cloud.endpoints["identity"])
    statuses: Counter = Counter()
    chunk = b"[" * (1 << 20)

    def one() -> int:
        sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
        head = (f"POST /v3/auth/tokens HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode())
        try:
            for _ in range(size >> 20):
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:
            pass  # the server answered 413 and closed
        try:
            data = sock.recv(64)
        except OSError:
            data = b""
        sock.close()
        return int(data.split()[1]) if data.startswith(b"HTTP/") else 0

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        for status in pool.map(lambda _: one(), range(count)):
            statuses[status] += 1
    return statuses


def _slow_clients(cloud: Cloud, count: int, stop: threading.Event) -> None:
    parts = urlsplit(cloud.endpoints["identity"])
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection((parts.hostname, parts.port), timeout=5))
        except OSError:
            break
    line = b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    position = 0
    while not stop.is_set() and position < len(line):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(line[position : position + 1])
        position += 1
        stop.wait(0.1)
    for sock in socks:
        sock.close()


def run(cloud: Cloud, tokens: int, gets: int) -> dict:
    token = _token(cloud)
    url = cloud.endpoints["regions"]["ORD"] + "/image/v2/images?limit=5"
    _gets(url, token, 20)  # warm up
    alone = _gets(url, token, gets)
    stop = threading.Event()
    slow = threading.Thread(target=_slow_clients, args=(cloud, 200, stop), daemon=True)
    slow.start()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        storm = pool.submit(_token_storm, cloud, tokens)
        big = pool.submit(_oversized, cloud, 20, 100 << 20)
        loaded: list[float] = []
        while not (storm.done() and big.done()):
            loaded += _gets(url, token, 10)
        token_statuses, big_statuses = storm.result(), big.result()
    stop.set()
    slow.join(10)
    return {
        "alone": alone, "loaded": loaded, "tokens": token_statuses, "big": big_statuses,
        "rss_mb": cloud.server_rss_mb(),
    }  # fmt: skip


def bench_abuse(work: Path, tokens: int = 1000, gets: int = 300) -> Section:
    cloud = start_cloud(work / "abuse")
    try:
        result = run(cloud, tokens, gets)
    finally:
        cloud.stop()
    alone, loaded = result["alone"], result["loaded"]
    section = Section("Server under abuse")
    section.lines += [
        f"`python -m bench.abuse`: `GET <ORD>/image/v2/images?limit=5` with a valid token, one client. Alone"
        f" ({len(alone)} GETs): p50 {statistics.median(alone):.1f} ms, p99 {_p(alone, 0.99):.1f} ms. While"
        f" {tokens} concurrent password token requests (half wrong), 20 chunked 100 MiB bodies to identity and"
        f" 200 slow clients hit the server ({len(loaded)} GETs): p50 {statistics.median(loaded):.1f} ms,"
        f" p99 {_p(loaded, 0.99):.1f} ms. Server VmHWM {result['rss_mb']:.0f} MiB. Token answers:"
        f" {dict(sorted(result['tokens'].items()))}; oversized bodies: {dict(result['big'])}."
        " Target: p99 < 50 ms, RSS < 300 MiB.",
    ]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagehop-abuse-") as work:
        print(f"machine: {machine()}")
        print(bench_abuse(Path(work), args.tokens, args.gets).render())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
