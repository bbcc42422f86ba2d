"""A copy between imagehop and a real OpenStack cloud (Keystone 30 + Glance 33), each direction.

PERFORMANCE.md: a 2 GiB image (1 GiB random + 1 GiB zeros), `imagehop copy` against what a user
does by hand with the `openstack` CLI: `openstack image save --file` from the source, then
`openstack image create --file` into the target. The real cloud is the test suite's peer
(tests/peers/openstack.py: uWSGI, MariaDB, a `file` store), built once under peers_dir().

`python -m bench.anycloud [--quick] [--runs N]` runs this case alone and prints its section.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import BIN, Cloud, Section, Timing, make_image, measure, median, start_cloud

MiB = 1 << 20


def _upload(url: str, token: str, path: Path, name: str) -> dict:
    headers = {"X-Auth-Token": token}
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    image = httpx.post(f"{url}/v2/images", headers=headers, json=body, timeout=60).json()
    with open(path, "rb") as handle:
        httpx.put(
            f"{url}/v2/images/{image['id']}/file", content=handle, timeout=1200,
            headers={**headers, "Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
        ).raise_for_status()  # fmt: skip
    return httpx.get(f"{url}/v2/images/{image['id']}", headers=headers, timeout=60).json()


def _delete(url: str, token: str, image_id: str) -> None:
    httpx.delete(f"{url}/v2/images/{image_id}", headers={"X-Auth-Token": token}, timeout=120)


def by_hand(image_id: str, src_env: dict[str, str], dst_env: dict[str, str], work: Path, name: str) -> Timing:
    """`openstack image save` to a file, then `openstack image create --file`."""
    osc = str(BIN / "openstack")
    path = work / "saved.img"
    start = time.perf_counter()
    saved = measure([osc, "image", "save", "--file", str(path), image_id], src_env)
    created = measure(
        [osc, "image", "create", "--file", str(path), "--disk-format", "raw", "--container-format", "bare", name],
        dst_env,
    )
    seconds = time.perf_counter() - start
    path.unlink()
    return Timing(seconds, max(saved.peak_rss_mb, created.peak_rss_mb))


def bench_anycloud(cloud: Cloud, work: Path, random_mib: int, zero_mib: int, runs: int) -> Section:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.peers.openstack import OpenStack

    size = (random_mib + zero_mib) * MiB
    raw = work / "anycloud.raw"
    make_image(raw, random_mib, zero_mib)
    with OpenStack.running(work / "openstack", regions=("ORD",)) as real:
        user = real.create_user("bench")
        clouds = real.clouds_yaml(work, {"real": user}, merge=cloud.clouds_yaml)
        env = {**cloud.copy_env(), "OS_CLIENT_CONFIG_FILE": str(clouds)}
        imagehop_env = {**env, "OS_CLOUD": "imagehop", "OS_REGION_NAME": "ORD"}
        real_env = {**env, "OS_CLOUD": "real", "OS_REGION_NAME": "ORD"}
        glance, token = real.glance_url("ORD"), real.token(user)
        ih_url = cloud.endpoints["regions"]["ORD"] + "/image"
        ih_token = _imagehop_token(cloud)
        on_imagehop = _upload(ih_url, ih_token, raw, "bench-src")
        on_real = _upload(glance, token, raw, "bench-src")
        raw.unlink()

        results: dict[str, list[Timing]] = {"to-copy": [], "to-hand": [], "from-copy": [], "from-hand": []}
        for run in range(runs):
            copy = [str(BIN / "imagehop"), "copy", "--json", "--state", str(work / f"journal{run}.db")]
            before = {i["id"] for i in _list(glance, token)}
            results["to-copy"].append(measure(
                [*copy, on_imagehop["id"], "--from-cloud", "imagehop", "--from", "ORD", "--to-cloud", "real",
                 "--to", "ORD", "--tag", f"bench.run=to{run}"], env,
            ))  # fmt: skip
            results["to-hand"].append(by_hand(on_imagehop["id"], imagehop_env, real_env, work, f"hand-to{run}"))
            for image in _list(glance, token):
                if image["id"] not in before:
                    _delete(glance, token, image["id"])
            before = {i["id"] for i in _list(ih_url, ih_token)}
            results["from-copy"].append(measure(
                [*copy, on_real["id"], "--from-cloud", "real", "--from", "ORD", "--to-cloud", "imagehop",
                 "--to", "IAD", "--tag", f"bench.run=from{run}"], env,
            ))  # fmt: skip
            results["from-hand"].append(by_hand(on_real["id"], real_env, imagehop_env, work, f"hand-from{run}"))
            for region in ("ORD", "IAD"):
                url = cloud.endpoints["regions"][region] + "/image"
                for image in _list(url, ih_token):
                    if image["id"] not in before and image["id"] != on_imagehop["id"]:
                        _delete(url, ih_token, image["id"])

    t = {k: median([x.seconds for x in v]) for k, v in results.items()}
    rss = {k: max(x.peak_rss_mb for x in v) for k, v in results.items()}
    shown = f"{size / 2**30:.0f} GiB" if size >= 1 << 30 else f"{size // MiB} MiB"
    section = Section(f"Copy between imagehop and a real Glance 33, {shown} image ({random_mib} MiB"
                      f" random + {zero_mib} MiB zeros)")  # fmt: skip
    section.lines += [
        f"Median of {runs} runs of each way, interleaved: one `imagehop serve` (SQLite) and a real Keystone 30 +"
        " Glance 33 (uWSGI, MariaDB, `file` store, tests/peers/openstack.py) on this machine. By hand: `openstack"
        " image save --file F IMAGE` then `openstack image create --file F ...` (GNU time; the client's peak RSS is"
        " the larger of the two commands'). Target: imagehop >= 2x the by-hand way, client peak RSS < 150 MB.",
        "",
        "| direction | `imagehop copy` s | by hand s | by hand / imagehop | imagehop client RSS MB | by-hand RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| imagehop ORD -> Glance (`auto` = stream, PUT file) | {t['to-copy']:.1f} | {t['to-hand']:.1f} |"
        f" {t['to-hand'] / t['to-copy']:.2f}x | {rss['to-copy']:.0f} | {rss['to-hand']:.0f} |",
        f"| Glance -> imagehop IAD (`auto` = stream, one resumable PUT file) | {t['from-copy']:.1f} |"
        f" {t['from-hand']:.1f} | {t['from-hand'] / t['from-copy']:.2f}x | {rss['from-copy']:.0f} |"
        f" {rss['from-hand']:.0f} |",
        "",
        "All runs: " + "; ".join(f"{k} {', '.join(f'{x.seconds:.1f}' for x in v)} s" for k, v in results.items()) + ".",
    ]
    return section


def _imagehop_token(cloud: Cloud) -> str:
    demo = cloud.credentials["demo"]
    body = {"auth": {"passwordCredentials": {"username": "demo", "password": demo["password"]}}}
    return httpx.post(cloud.endpoints["identity"] + "/v2.0/tokens", json=body).json()["access"]["token"]["id"]


def _list(url: str, token: str) -> list[dict]:
    return httpx.get(f"{url}/v2/images", headers={"X-Auth-Token": token}, params={"limit": 1000}).json()["images"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.anycloud")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    random_mib, zero_mib = (64, 64) if args.quick else (1024, 1024)
    work = Path(tempfile.mkdtemp(prefix="imagehop-bench-"))
    try:
        cloud = start_cloud(work / "cloud")
        try:
            print(bench_anycloud(cloud, work, random_mib, zero_mib, 1 if args.quick else args.runs).render())
        finally:
            cloud.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
