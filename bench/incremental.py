"""The second copy of a slightly changed image: incremental against full, and against rclone.

Issue 16: a 2 GiB image (data in every block) is copied ORD -> IAD; then a new image with 1 % of its
2 MiB blocks changed is uploaded to ORD (a raw upload of the modified file) and copied again. Timed:
the incremental copy (the first copy is its base) and the full copy (`--no-base`) of that second
image, each way (`pull`: the target region fetches; `stream`: the bytes pass through the client, as
between clouds, into `imagehop-delta`), and `rclone copy` of the second image's exported VHD from
ORD's object storage to IAD's (the move alone; rclone has no block-level delta for objects). Target:
incremental >= 10x faster than the full `imagehop copy` of the same image. Each copy also reports the
CPU seconds of the server and the client (wall times on a loaded machine are noisy) and how much the
target's `file` blob store grew (an incremental image refers to its base's bytes: only the changed
blocks are stored).

`python -m bench.incremental [--quick] [--runs N]` runs this case alone and prints its section.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from bench.harness import BIN, Cloud, Section, Timing, measure, median, start_cloud
from bench.job import Api

MiB = 1 << 20
BLOCK = 2 * MiB
TAG = "com.mycompany.image-of=bench-incremental"


def make_dense(path: Path, size_mib: int) -> None:
    """A raw disk with distinct random data in every block (no two blocks alike, as on a real disk)."""
    with open(path, "wb") as handle:
        for _ in range(size_mib):
            handle.write(os.urandom(MiB))


def changed_copy(source: Path, target: Path, percent: float) -> int:
    """``target``: ``source`` with ``percent`` % of its 2 MiB blocks changed (a few bytes each, spread
    evenly); returns how many blocks changed."""
    shutil.copyfile(source, target)
    blocks = source.stat().st_size // BLOCK
    count = max(1, round(blocks * percent / 100))
    with open(target, "r+b") as handle:
        for n in range(count):
            index = n * blocks // count + blocks // (2 * count)
            handle.seek(index * BLOCK + 4096)
            piece = bytearray(handle.read(64))
            handle.seek(index * BLOCK + 4096)
            handle.write(bytes(b ^ 0xFF for b in piece))
    return count


def server_cpu(cloud: Cloud) -> float:
    """CPU seconds the `imagehop serve` process has used (all its threads), from /proc."""
    fields = Path(f"/proc/{cloud.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stored(cloud: Cloud, region: str = "IAD") -> int:
    """Bytes the region's `file` blob store holds (allocated blocks of its committed blobs)."""
    root = cloud.data_dir / "regions" / region / "objects" / "data"
    return sum(f.stat().st_blocks * 512 for f in root.rglob("*") if f.is_file())


def copy(cloud: Cloud, work: Path, image_id: str, method: str, name: str, *extra: str) -> tuple[Timing, dict]:
    """One timed `imagehop copy --json`; its report, with ``cpu`` (server and client CPU seconds) and
    ``grown`` (bytes the target's blob store grew by) added."""
    out = work / f"{name}.json"
    command = [str(BIN / "imagehop"), "copy", image_id, "--from", "ORD", "--to", "IAD", "--method", method,
               "--tag", TAG, "--json", "--poll-interval", "1", "--state", str(work / f"{name}.db"), *extra]  # fmt: skip
    script = f'"$@" > {out}'
    before = (server_cpu(cloud), children_cpu(), stored(cloud))
    timing = measure(["sh", "-c", script, "sh", *command], cloud.copy_env())
    report = json.loads(out.read_text())
    report["cpu"] = server_cpu(cloud) - before[0] + children_cpu() - before[1]
    report["grown"] = stored(cloud) - before[2]
    return timing, report


def bench_incremental(cloud: Cloud, work: Path, size_mib: int, percent: float, runs: int) -> Section:
    api = Api(cloud)
    first, second = work / "v1.raw", work / "v2.raw"
    make_dense(first, size_mib)
    blocks = changed_copy(first, second, percent)
    v1, v2 = api.upload("ORD", first), api.upload("ORD", second)
    first.unlink()
    second.unlink()
    _, base = copy(cloud, work, v1["id"], "pull", "base")

    def drop(report: dict) -> None:  # each measured copy is deleted, so the next one does the same work
        api.http.delete(f"{api.images('IAD')}/images/{report['target_image']}").raise_for_status()

    results: dict[str, list[Timing]] = {k: [] for k in ("pull-inc", "pull-full", "stream-inc", "stream-full", "rclone")}
    moved: dict[str, int] = {}
    cpu: dict[str, list[float]] = {k: [] for k in results}
    grown: dict[str, int] = {}
    for run in range(runs):
        for method in ("pull", "stream"):
            for kind, extra in (("inc", ()), ("full", ("--no-base",))):
                timing, report = copy(cloud, work, v2["id"], method, f"{method}-{kind}{run}", *extra)
                assert (report["base"] is not None) == (kind == "inc"), report["incremental"]
                assert report["target_image"] != base["target_image"]
                results[f"{method}-{kind}"].append(timing)
                moved[f"{method}-{kind}"] = report["bytes_moved"]
                cpu[f"{method}-{kind}"].append(report["cpu"])
                grown[f"{method}-{kind}"] = report["grown"]
                drop(report)
        results["rclone"].append(rclone_exported(api, cloud, v2, run))

    t = {k: median([x.seconds for x in v]) for k, v in results.items()}
    size = size_mib * MiB
    section = Section(
        f"Incremental copy: the second copy of a {_size(size_mib)} image with {percent:g} % of its blocks"
        " changed, ORD -> IAD"
    )

    c = {k: median(v) for k, v in cpu.items() if v}

    def row(label: str, key: str, full: str) -> str:
        share = f"{moved[key]:,} ({100 * moved[key] / size:.1f} %)" if key in moved else "the whole VHD"
        if key not in c:
            return f"| {label} | {t[key]:.1f} | {share} | {t[full] / t[key]:.1f}x | | |"
        used = f"{c[key]:.1f} ({c[full] / c[key]:.1f}x)"
        return f"| {label} | {t[key]:.1f} | {share} | {t[full] / t[key]:.1f}x | {used} | {grown[key] / MiB:,.0f} MiB |"

    section.lines += [
        f"A {size_mib} MiB raw image with data in every 2 MiB block is copied ORD -> IAD; then {blocks} of its"
        f" {size // BLOCK} blocks change (a raw upload of the modified file as a new image in ORD) and that image"
        f" is copied again with `--tag {TAG}`, so the first copy is the base. Each measured copy is deleted"
        f" before the next. Median of {runs} run(s), one `imagehop serve` (SQLite, `file` blob store). Target:"
        " incremental >= 10x faster than a full `imagehop copy` of the same image.",
        "",
        "| second copy | s | bytes moved (of the image) | full / this | CPU s, server + client (full / this) |"
        " target storage grown |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        row("`imagehop copy --method pull` (incremental: the target builds on its base)", "pull-inc", "pull-full"),
        row("`imagehop copy --method pull --no-base` (full)", "pull-full", "pull-full"),
        row(
            "`imagehop copy --method stream` (incremental: the changed blocks through the client into"
            " `imagehop-delta`, as between clouds)",
            "stream-inc",
            "stream-full",
        ),
        row("`imagehop copy --method stream --no-base` (full)", "stream-full", "stream-full"),
        row(
            "`rclone copy ORD:c/o IAD:c/` of the exported VHD (the move alone; export and import not counted)",
            "rclone",
            "pull-full",
        ),
        "",
        "All runs: " + "; ".join(f"{k} {', '.join(f'{x.seconds:.1f}' for x in v)} s" for k, v in results.items()) + ".",
        "CPU: " + "; ".join(f"{k} {', '.join(f'{x:.1f}' for x in v)} s" for k, v in cpu.items() if v) + ".",
    ]
    return section


def _size(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def rclone_exported(api: Api, cloud: Cloud, image: dict, run: int) -> Timing:
    """Export the image as a VHD (not timed), then time ``rclone copy`` of it to IAD."""
    container = f"incremental-rclone{run}"
    api.http.put(f"{api.storage('ORD')}/{container}").raise_for_status()
    api.http.put(f"{api.storage('IAD')}/{container}").raise_for_status()
    export = api.task(
        "ORD", {"type": "export", "input": {"image_uuid": image["id"], "receiving_swift_container": container}}
    )
    obj = export["result"]["export_location"].split("/", 1)[1]
    moved = measure(["rclone", "copy", f"ORD:{container}/{obj}", f"IAD:{container}/"], cloud.rclone_env("ORD", "IAD"))
    for region in ("ORD", "IAD"):
        api.http.delete(f"{api.storage(region)}/{container}/{obj}")
        api.http.delete(f"{api.storage(region)}/{container}")
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.incremental")
    parser.add_argument("--quick", action="store_true", help="a 128 MiB image, one run: checks the harness works")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imagehop-bench-"))
    try:
        cloud = start_cloud(work / "cloud")
        try:
            size = 128 if args.quick else 2048
            print(bench_incremental(cloud, work, size, 1.0, 1 if args.quick else args.runs).render())
        finally:
            cloud.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
