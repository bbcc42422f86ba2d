"""Server CPU per small request: this checkout's ``imagehop serve`` beside another checkout's.

`python -m bench.request_cpu --baseline-src ../before/src [--count 2000] [--block 200] [--runs 3]` starts
both servers at once (each on a fresh data dir, by its own ``PYTHONPATH``), then sends blocks of
``--block`` 4 KiB PUTs, then as many GETs, to each in turn on one kept-alive connection per server
(the first side alternating), until each got ``--count`` of each, and reads each server's CPU time
(utime + stime of the process, all its threads, from ``/proc/<pid>/stat``) around every block. On a
shared machine wall time says little, CPU per request is the figure; blocks taken in turn put the same
noise on both sides. Prints milliseconds of server CPU per request, per run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import httpx

from bench.harness import Cloud, median, start_cloud
from bench.objects import _token_v3

TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """Seconds of CPU the process has used (user + system, every thread)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one_run(clouds: dict[str, Cloud], count: int, block: int) -> dict[str, dict[str, float]]:
    body = os.urandom(4096)
    clients, urls = {}, {}
    for name, cloud in clouds.items():
        demo = cloud.credentials["demo"]
        token = _token_v3(cloud.endpoints["identity"], "demo", demo["password"], demo["tenant_id"])
        clients[name] = httpx.Client(timeout=60, headers={"X-Auth-Token": token})
        urls[name] = f"{cloud.endpoints['regions']['ORD']}/v1/AUTH_{demo['tenant_id']}/cpu"
        clients[name].put(urls[name]).raise_for_status()
        for i in range(50):  # warm-up: connections, caches, the intent batches
            clients[name].put(f"{urls[name]}/w{i}", content=body).raise_for_status()
            clients[name].get(f"{urls[name]}/w{i}").raise_for_status()
    spent = {name: {"put": 0.0, "get": 0.0} for name in clouds}
    names = list(clouds)
    try:
        for k in range(count // block):
            for name in names if k % 2 == 0 else names[::-1]:
                client, url, pid = clients[name], urls[name], clouds[name].proc.pid
                start = server_cpu(pid)
                for i in range(k * block, (k + 1) * block):
                    client.put(f"{url}/o{i}", content=body).raise_for_status()
                middle = server_cpu(pid)
                for i in range(k * block, (k + 1) * block):
                    client.get(f"{url}/o{i}").raise_for_status()
                spent[name]["put"] += middle - start
                spent[name]["get"] += server_cpu(pid) - middle
    finally:
        for client in clients.values():
            client.close()
    done = count // block * block
    return {name: {kind: seconds / done * 1000 for kind, seconds in by.items()} for name, by in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, required=True, help="the other checkout's src folder")
    parser.add_argument("--count", type=int, default=2000, help="4 KiB PUTs (and GETs) per server and run")
    parser.add_argument("--block", type=int, default=200, help="requests in a row to one server")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent / "src"
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="request-cpu-") as tmp:
            clouds: dict[str, Cloud] = {}
            try:
                for name, src in {"now": here, "before": args.baseline_src.resolve()}.items():
                    clouds[name] = start_cloud(Path(tmp) / name, {"PYTHONPATH": str(src)})
                load = os.getloadavg()
                result = one_run(clouds, args.count, args.block)
            finally:
                for cloud in clouds.values():
                    cloud.stop()
        runs.append(result)
        print(json.dumps({"load": [round(x, 1) for x in load], **result}), flush=True)
    medians = {name: {kind: median([r[name][kind] for r in runs]) for kind in ("put", "get")} for name in runs[0]}
    print("medians (ms of server CPU per request):", json.dumps(medians))
    for kind in ("put", "get"):
        print(f"4 KiB {kind.upper()}: now / before = {medians['now'][kind] / medians['before'][kind]:.2f}x")


if __name__ == "__main__":
    main()
