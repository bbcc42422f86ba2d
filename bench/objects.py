"""Object PUT/GET throughput and small-request rate, imagehop beside a real Swift 2.38 on this machine.

`python -m bench.objects [--size-mib N] [--runs R] [--small N] [--no-swift]` prints the figures; `make bench`
adds them to docs/benchmarks.md. `--baseline-src DIR` compares this checkout's imagehop with another
checkout's (``DIR`` is its ``src`` folder, e.g. of ``git worktree add ../before <commit>``) instead of with
Swift: both servers up at once, runs interleaved. Each side gets the same client work:

- one streamed PUT then one GET of an N MiB random object (httpx, 1 MiB pieces), MB/s; and the GET again
  by ``curl -o /dev/null``: httpx reads at about 400 MB/s here, so its GET measures the client, curl's the server;
- ``swift upload --use-slo --segment-size`` and ``swift download`` of the same file (the CLI, 4 threads);
- N small (4 KiB) PUTs then GETs on one kept-alive connection, requests/s (the HTTP layer's cost).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from bench.harness import BIN, MiB, Section, machine, median, start_cloud

SWIFT_CLI = [str(BIN / "python"), "-m", "swiftclient.shell"]


def _token_v3(identity: str, user: str, password: str, project: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"id": project}},
        }
    }
    response = httpx.post(f"{identity}/v3/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def _pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(MiB):
            yield chunk


def _put_get(url: str, token: str, path: Path) -> tuple[float, float, float]:
    """Seconds for one streamed PUT and one GET (read to the end) of ``path``, and for curl's GET of it."""
    headers = {"X-Auth-Token": token, "Content-Length": str(path.stat().st_size)}
    with httpx.Client(timeout=300) as client:
        client.put(f"{url}/bench", headers={"X-Auth-Token": token}).raise_for_status()
        start = time.perf_counter()
        client.put(f"{url}/bench/big", headers=headers, content=_pieces(path)).raise_for_status()
        put = time.perf_counter() - start
        start = time.perf_counter()
        with client.stream("GET", f"{url}/bench/big", headers={"X-Auth-Token": token}) as response:
            response.raise_for_status()
            for _ in response.iter_raw(MiB):
                pass
        get = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-H", f"X-Auth-Token: {token}", f"{url}/bench/big"],
                   check=True)  # fmt: skip
    curl_get = time.perf_counter() - start
    return put, get, curl_get


def _small(url: str, token: str, count: int) -> tuple[float, float]:
    """Requests/s of ``count`` 4 KiB PUTs, then of ``count`` GETs, on one kept-alive connection."""
    body = os.urandom(4096)
    with httpx.Client(timeout=60, headers={"X-Auth-Token": token}) as client:
        client.put(f"{url}/bench-small").raise_for_status()
        start = time.perf_counter()
        for i in range(count):
            client.put(f"{url}/bench-small/o{i}", content=body).raise_for_status()
        puts = count / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(count):
            client.get(f"{url}/bench-small/o{i}").raise_for_status()
        gets = count / (time.perf_counter() - start)
    return puts, gets


def _cli(env: dict[str, str], path: Path, work: Path, segment_mib: int) -> tuple[float, float]:
    segment = str(segment_mib * MiB)
    start = time.perf_counter()
    subprocess.run([*SWIFT_CLI, "upload", "--use-slo", "--segment-size", segment, "--object-name", "cli", "bench-cli",
                    str(path)], env=env, check=True, capture_output=True)  # fmt: skip
    up = time.perf_counter() - start
    out = work / "download.bin"
    start = time.perf_counter()
    subprocess.run([*SWIFT_CLI, "download", "bench-cli", "cli", "-o", str(out)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    down = time.perf_counter() - start
    out.unlink()
    return up, down


def _segment_mib(size_mib: int) -> int:
    """PERFORMANCE.md's 256 MiB segments, smaller for small test files (four segments at least)."""
    return max(1, min(256, size_mib // 4))


def _run_once(url: str, token: Callable[[], str], env: dict[str, str], path: Path, work: Path, small: int
              ) -> dict[str, float]:  # fmt: skip
    size_mb = path.stat().st_size / 1e6
    put, get, curl_get = _put_get(url, token(), path)
    up, down = _cli(env, path, work, _segment_mib(path.stat().st_size // MiB))
    small_put, small_get = _small(url, token(), small)
    return {"put": size_mb / put, "get": size_mb / get, "curl_get": size_mb / curl_get, "cli_up": size_mb / up,
            "cli_down": size_mb / down, "small_put": small_put, "small_get": small_get}  # fmt: skip


def bench_objects(work: Path, size_mib: int, runs: int, small: int, with_swift: bool = True) -> Section:
    """Both servers up at once and the runs interleaved (imagehop, Swift, imagehop, ...), so that the
    noise of a shared machine falls on both sides alike; medians of each figure."""
    path = work / "object.bin"
    with open(path, "wb") as handle:
        block = os.urandom(MiB)
        for i in range(size_mib):
            handle.write(block[i % 7 :] + block[: i % 7])
    runs_of: dict[str, list[dict[str, float]]] = {"imagehop": [], "swift": []}
    cloud = start_cloud(work / "objects-cloud")
    try:
        demo = cloud.credentials["demo"]
        identity = cloud.endpoints["identity"]
        url = f"{cloud.endpoints['regions']['ORD']}/v1/AUTH_{demo['tenant_id']}"

        def token() -> str:
            return _token_v3(identity, "demo", demo["password"], demo["tenant_id"])

        with contextlib.ExitStack() as stack:
            peer = None
            if with_swift:
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
                from tests.peers import swift as swift_peer

                peer = stack.enter_context(swift_peer.running_swift(work / "real-swift"))
            for _ in range(runs):
                runs_of["imagehop"].append(_run_once(url, token, cloud.swift_env("ORD"), path, work, small))
                if peer is not None:
                    runs_of["swift"].append(
                        _run_once(peer.storage_url(), lambda: peer.token()[1], peer.cli_env(), path, work, small)
                    )
        server_rss = cloud.server_rss_mb()
    finally:
        cloud.stop()
    results = {side: {key: median([r[key] for r in done]) for key in done[0]} for side, done in runs_of.items() if done}
    for side, figures in results.items():
        print(side, {k: round(v, 1) for k, v in figures.items()}, file=sys.stderr)
    rows = _rows(size_mib, small)
    section = Section("Object storage: PUT/GET throughput")
    section.lines.append(
        f"A {size_mib} MiB random object, medians of {runs} runs, the two servers up at once and their runs"
        " interleaved; the real Swift is 2.38.3 all-in-one (one replica, tempauth) from tests/peers/swift.py on the"
        " same machine. `python -m bench.objects`. Target (issue 15): `swift upload` and `swift download`"
        f" through imagehop >= 1.3x the real Swift. imagehop's server peak RSS (VmHWM) over these runs:"
        f" {server_rss:.0f} MiB."
    )
    section.lines.append("")
    header = "| what | imagehop |" + (" Swift 2.38 | ratio |" if "swift" in results else "")
    section.lines += [header, "| --- | --- |" + (" --- | --- |" if "swift" in results else "")]
    for label, key in rows:
        line = f"| {label} | {results['imagehop'][key]:.1f} |"
        if "swift" in results:
            line += f" {results['swift'][key]:.1f} | {results['imagehop'][key] / results['swift'][key]:.2f}x |"
        section.lines.append(line)
    return section


def bench_baseline(work: Path, size_mib: int, runs: int, small: int, baseline_src: Path) -> Section:
    """This checkout's imagehop beside the one whose source is ``baseline_src``, both up at once and their runs
    interleaved (now, before, before, now, ...); medians of each figure."""
    path = work / "object.bin"
    with open(path, "wb") as handle:
        block = os.urandom(MiB)
        for i in range(size_mib):
            handle.write(block[i % 7 :] + block[: i % 7])
    here = Path(__file__).resolve().parent.parent / "src"
    sides = {"now": here, "before": baseline_src.resolve()}
    runs_of: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    clouds = {}
    try:
        for name, src in sides.items():
            clouds[name] = start_cloud(work / f"cloud-{name}", {"PYTHONPATH": str(src)})
        for run in range(runs):
            order = list(clouds.items()) if run % 2 == 0 else list(clouds.items())[::-1]  # neither always first
            for name, cloud in order:
                demo = cloud.credentials["demo"]
                identity = cloud.endpoints["identity"]
                url = f"{cloud.endpoints['regions']['ORD']}/v1/AUTH_{demo['tenant_id']}"

                def token(identity: str = identity, demo: dict = demo) -> str:
                    return _token_v3(identity, "demo", demo["password"], demo["tenant_id"])

                runs_of[name].append(_run_once(url, token, cloud.swift_env("ORD"), path, work, small))
                _empty(url, token())
    finally:
        for cloud in clouds.values():
            cloud.stop()
    results = {side: {key: median([r[key] for r in done]) for key in done[0]} for side, done in runs_of.items()}
    for side, figures in results.items():
        print(side, {k: round(v, 1) for k, v in figures.items()}, file=sys.stderr)
    section = Section("Object storage: this checkout beside another")
    section.lines += [
        f"A {size_mib} MiB random object, medians of {runs} runs, both servers up at once and their runs interleaved."
        f" `python -m bench.objects --baseline-src <other checkout>/src --size-mib {size_mib} --runs {runs}"
        f" --small {small}`.",
        "",
        "| what | now | before | now / before |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key in _rows(size_mib, small):
        now, before = results["now"][key], results["before"][key]
        section.lines.append(f"| {label} | {now:.1f} | {before:.1f} | {now / before:.2f}x |")
    return section


def _empty(url: str, token: str) -> None:
    """Delete what a run stored (the SLO and its segments too), so that each run starts from the same state."""
    with httpx.Client(timeout=300, headers={"X-Auth-Token": token}) as client:
        for container in ("bench", "bench-cli", "bench-cli_segments", "bench-small"):
            listing = client.get(f"{url}/{container}")
            for name in listing.text.splitlines() if listing.status_code == 200 else []:
                client.delete(f"{url}/{container}/{name}")
            client.delete(f"{url}/{container}")


def _rows(size_mib: int, small: int) -> list[tuple[str, str]]:
    return [
        ("PUT, one streamed request (MB/s)", "put"),
        ("GET, one request (MB/s)", "get"),
        ("GET, one request by `curl -o /dev/null` (MB/s)", "curl_get"),
        (f"`swift upload --use-slo --segment-size {_segment_mib(size_mib)}M` (MB/s)", "cli_up"),
        ("`swift download` (MB/s)", "cli_down"),
        (f"{small} PUTs of 4 KiB, one connection (requests/s)", "small_put"),
        (f"{small} GETs of 4 KiB, one connection (requests/s)", "small_get"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.objects")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--no-swift", action="store_true", help="imagehop only")
    parser.add_argument("--baseline-src", type=Path, help="compare with the imagehop of this src folder, not Swift")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagehop-bench-objects-") as work:
        print(machine())
        if args.baseline_src is not None:
            section = bench_baseline(Path(work), args.size_mib, args.runs, args.small, args.baseline_src)
        else:
            section = bench_objects(Path(work), args.size_mib, args.runs, args.small, not args.no_swift)
        print(section.render())


if __name__ == "__main__":
    main()
