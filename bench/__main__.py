"""`python -m bench [--quick]`: run the benchmarks and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.abuse import bench_abuse
from bench.anycloud import bench_anycloud
from bench.formats import bench_formats
from bench.harness import BIN, Section, machine, median, start_cloud
from bench.incremental import bench_incremental
from bench.job import bench_job
from bench.listing import bench_listing
from bench.objects import bench_objects
from bench.scaleout import bench_blob_stores, bench_listing_processes

ROOT = Path(__file__).resolve().parent.parent


def bench_startup(work: Path, runs: int) -> Section:
    """`imagehop serve` with two regions, cold start (fresh data dir) to the first answered request."""
    import httpx

    times = []
    for run in range(runs):
        data = work / f"start{run}"
        start = time.perf_counter()
        proc = subprocess.Popen([str(BIN / "imagehop"), "serve", "--port", "0", "--data-dir", str(data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while not (data / "endpoints.json").exists():
            time.sleep(0.005)
        url = json.loads((data / "endpoints.json").read_text())["regions"]["ORD"]
        assert httpx.get(url + "/image/").status_code == 300
        times.append(time.perf_counter() - start)
        proc.terminate()
        proc.wait()
    section = Section("Cold start")
    section.lines += [
        "`imagehop serve --port 0 --data-dir <new dir>` (two regions, SQLite) from process start to the first"
        f" answered `GET <ORD>/image/`: median {median(times):.2f} s over {runs} runs"
        f" (min {min(times):.2f}, max {max(times):.2f}). Target < 2 s.",
    ]
    return section


def kept_sections(path: Path, titles: set[str]) -> list[str]:
    """The ``## `` sections of the file at ``path`` that this run does not write (figures measured by hand
    during development, with their commands): a run replaces its own sections and keeps the others."""
    if not path.exists():
        return []
    parts = path.read_text().split("\n## ")[1:]
    return ["## " + part.rstrip("\n") + "\n" for part in parts if part.split("\n", 1)[0].strip() not in titles]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: checks the harness works")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    random_mib, zero_mib = (64, 64) if args.quick else (1024, 1024)

    work = Path(tempfile.mkdtemp(prefix="imagehop-bench-"))
    sections = [bench_startup(work, 5 if not args.quick else 1), bench_formats(work, random_mib, zero_mib, runs)]
    try:
        cloud = start_cloud(work / "cloud")
        try:
            sections.append(bench_job(cloud, work, random_mib, zero_mib, runs))
            sections.append(bench_anycloud(cloud, work, random_mib, zero_mib, runs))
            sections.append(bench_incremental(cloud, work, 128 if args.quick else 2048, 1.0, runs))
            memory = Section("Server peak memory")
            memory.lines.append(
                f"VmHWM of the one `imagehop serve` that ran the whole job, the copies with a real Glance and the"
                f" incremental copies above: {cloud.server_rss_mb():.0f} MiB (target < 200 MiB; the object storage"
                " section reports its own server's)."
            )
            sections.append(memory)
        finally:
            cloud.stop()
        sections.append(
            bench_listing(work, (1000, 2000), glance=(1000,), requests=200)
            if args.quick
            else bench_listing(work, (10_000, 100_000), glance=(10_000,))
        )
        # Object PUT/GET and the swift CLI, imagehop beside a real Swift 2.38 (PERFORMANCE.md's upload row).
        sections.append(bench_objects(work, 64 if args.quick else 2048, runs, 100 if args.quick else 500))
        sections.append(bench_abuse(work, tokens=200 if args.quick else 1000))
        sections += bench_blob_stores(work, 64 if args.quick else 1024, random_mib, zero_mib, runs)
        sections.append(bench_listing_processes(work, 2000 if args.quick else 100_000))
    except BaseException:
        # what was measured before the failure stays in the log, not lost with it
        print("\n".join(section.render() for section in sections), flush=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)

    header = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m bench{' --quick' if args.quick else ''}`) on"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}. Figures are medians; anchors run"
        " side by side in the same run.",
        "",
    ]
    text = "\n".join(header) + "\n".join(section.render() for section in sections)
    if args.quick:
        print(text)
        return
    kept = kept_sections(args.output, {section.title for section in sections})
    args.output.write_text(text + "".join("\n" + part for part in kept))
    print(text)
    print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
