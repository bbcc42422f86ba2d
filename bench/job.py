"""The whole cross-region job (export, move, import, tag) for one image, three ways, side by side.

PERFORMANCE.md: a 2 GiB image (1 GiB random + 1 GiB zeros) ORD -> IAD. `imagehop copy` against the
same job done by hand on the same regions: the export and import tasks driven over the API (polled
as often as the region's Retry-After allows, which is kinder to the by-hand ways than the article's
30 s), with the move done (a) the article's way, `swift download` to disk then `swift upload
--use-slo --segment-size 256M`, or (b) `rclone copy` between the two regions.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import httpx

from bench.harness import BIN, Cloud, Section, Timing, make_image, measure, median

MiB = 1 << 20


class Api:
    """The by-hand side: plain HTTP calls, as the article's curl commands make them."""

    def __init__(self, cloud: Cloud) -> None:
        demo = cloud.credentials["demo"]
        body = {"auth": {"passwordCredentials": {"username": "demo", "password": demo["password"]}}}
        access = httpx.post(cloud.endpoints["identity"] + "/v2.0/tokens", json=body).json()["access"]
        self.headers = {"X-Auth-Token": access["token"]["id"]}
        self.regions = cloud.endpoints["regions"]
        self.http = httpx.Client(headers=self.headers, timeout=600)

    def images(self, region: str) -> str:
        return self.regions[region] + "/image/v2"

    def storage(self, region: str) -> str:
        return self.regions[region] + "/v1/AUTH_10000001"

    def upload(self, region: str, path: Path) -> dict:
        image = self.http.post(
            self.images(region) + "/images", json={"name": "bench", "disk_format": "raw", "container_format": "bare"}
        ).json()
        with open(path, "rb") as handle:
            self.http.put(
                f"{self.images(region)}/images/{image['id']}/file", content=handle,
                headers={"Content-Type": "application/octet-stream"},
            ).raise_for_status()  # fmt: skip
        return self.http.get(f"{self.images(region)}/images/{image['id']}").json()

    def task(self, region: str, body: dict) -> dict:
        task = self.http.post(self.images(region) + "/tasks", json=body).json()
        while True:
            response = self.http.get(f"{self.images(region)}/tasks/{task['id']}")
            task = response.json()
            if task["status"] in ("success", "failure"):
                if task["status"] == "failure":
                    raise RuntimeError(f"task failed: {task['message']}")
                return task
            time.sleep(float(response.headers.get("Retry-After", "30")))


def by_hand(api: Api, cloud: Cloud, image: dict, move: str, run: int, work: Path) -> Timing:
    """Export, move (a or b), import, tag; the time of all of it, the peak RSS of the move's client."""
    container = f"byhand-{move}{run}"
    start = time.perf_counter()
    api.http.put(f"{api.storage('ORD')}/{container}").raise_for_status()
    api.http.put(f"{api.storage('IAD')}/{container}").raise_for_status()
    export = api.task(
        "ORD", {"type": "export", "input": {"image_uuid": image["id"], "receiving_swift_container": container}}
    )
    obj = export["result"]["export_location"].split("/", 1)[1]
    swift = str(BIN / "swift")
    if move == "a":
        staging = work / "neutral"
        staging.mkdir(exist_ok=True)
        down = measure([swift, "download", container, obj, "-o", str(staging / obj)], cloud.swift_env("ORD"))
        up = measure(
            [
                swift,
                "upload",
                "--use-slo",
                "--segment-size",
                "256M",
                "--object-name",
                obj,
                container,
                str(staging / obj),
            ],
            cloud.swift_env("IAD"),
        )
        shutil.rmtree(staging)
        rss = max(down.peak_rss_mb, up.peak_rss_mb)
    else:
        moved = measure(
            ["rclone", "copy", f"ORD:{container}/{obj}", f"IAD:{container}/"], cloud.rclone_env("ORD", "IAD")
        )
        rss = moved.peak_rss_mb
    imported = api.task(
        "IAD",
        {"type": "import", "input": {"import_from": f"{container}/{obj}", "import_from_format": "vhd",
                                     "image_properties": {"name": "bench"}}},
    )  # fmt: skip
    new_id = imported["result"]["image_id"]
    api.http.patch(
        f"{api.images('IAD')}/images/{new_id}",
        json=[{"op": "add", "path": "/com.mycompany.image-of", "value": f"byhand-{move}{run}"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    ).raise_for_status()
    return Timing(time.perf_counter() - start, rss)


def bench_job(cloud: Cloud, work: Path, random_mib: int, zero_mib: int, runs: int) -> Section:
    size = (random_mib + zero_mib) * MiB
    raw = work / "job.raw"
    make_image(raw, random_mib, zero_mib)
    api = Api(cloud)
    image = api.upload("ORD", raw)
    raw.unlink()

    # "tasks" is the article's way automated (export, move, import); "pull" is glance-download.
    results: dict[str, list[Timing]] = {"tasks": [], "pull": [], "a": [], "b": []}
    for run in range(runs):
        for method in ("tasks", "pull"):
            results[method].append(measure(
                [str(BIN / "imagehop"), "copy", image["id"], "--from", "ORD", "--to", "IAD", "--json",
                 "--method", method, "--tag", f"com.mycompany.image-of={method}{run}",
                 "--container", f"imagehop{method}{run}", "--state", str(work / f"journal-{method}{run}.db")],
                cloud.copy_env(),
            ))  # fmt: skip
        results["a"].append(by_hand(api, cloud, image, "a", run, work))
        results["b"].append(by_hand(api, cloud, image, "b", run, work))

    t = {k: median([x.seconds for x in v]) for k, v in results.items()}
    rss = {k: max(x.peak_rss_mb for x in v) for k, v in results.items()}
    section = Section(
        f"The whole job, {size / 2**30:.0f} GiB image ({random_mib} MiB random + {zero_mib} MiB zeros), ORD -> IAD"
    )
    section.lines += [
        f"Copy and tag (the by-hand ways: export, move, import, tag). Median of {runs} runs of each way,"
        " interleaved, against one `imagehop serve`"
        " (two regions in one process, SQLite). Targets: imagehop >= 3x (a) and >= 2x (b); client peak RSS"
        " < 150 MB. The last two columns say how many times faster than (a) and (b) each way is.",
        "",
        "| way | median s | client peak RSS MB | (a) / this | (b) / this |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| `imagehop copy IMAGE --from ORD --to IAD --method pull` (the target region pulls with glance-download;"
        f" `auto` picks it between regions) | {t['pull']:.1f} | {rss['pull']:.0f} | {t['a'] / t['pull']:.2f}x"
        f" | {t['b'] / t['pull']:.2f}x |",
        f"| `imagehop copy IMAGE --from ORD --to IAD --method tasks` (export, 4 parallel segments, import)"
        f" | {t['tasks']:.1f} | {rss['tasks']:.0f} | {t['a'] / t['tasks']:.2f}x | {t['b'] / t['tasks']:.2f}x |",
        f"| (a) export task, `swift download` to disk, `swift upload --use-slo --segment-size 256M`, import task,"
        f" PATCH | {t['a']:.1f} | {rss['a']:.0f} | 1.00x | |",
        f"| (b) export task, `rclone copy ORD:c/o IAD:c/`, import task, PATCH | {t['b']:.1f} | {rss['b']:.0f} | |"
        " 1.00x |",
        "",
        f"Server peak RSS (VmHWM) after all runs: {cloud.server_rss_mb():.0f} MiB. All runs:"
        f" pull {', '.join(f'{x.seconds:.1f}' for x in results['pull'])} s;"
        f" tasks {', '.join(f'{x.seconds:.1f}' for x in results['tasks'])} s;"
        f" (a) {', '.join(f'{x.seconds:.1f}' for x in results['a'])} s;"
        f" (b) {', '.join(f'{x.seconds:.1f}' for x in results['b'])} s.",
    ]
    return section


if __name__ == "__main__":
    sys.exit("run through `python -m bench`")
