"""The move step between two regions: imagehop's mover against the article's way and rclone.

PERFORMANCE.md: a 2 GiB image (1 GiB random + 1 GiB zeros) moved ORD -> IAD, side by side with
(a) `swift download` to disk then `swift upload --use-slo --segment-size 256M`, and
(b) `rclone copy` between the two regions; client peak RSS < 150 MB.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from bench.harness import BIN, Cloud, Section, Timing, measure, median

MiB = 1 << 20


def make_image(path: Path, random_mib: int, zero_mib: int) -> None:
    with open(path, "wb") as handle:
        block = os.urandom(MiB)
        for i in range(random_mib):
            handle.write(block[i % 7 :] + block[: i % 7])  # distinct blocks, cheap to make
        handle.truncate(random_mib * MiB + zero_mib * MiB)


def run_mover(clouds_yaml: str, src: str, dst: str, parallel: str) -> None:
    """Entry for a child process, so its peak RSS is the client's alone."""
    from imagehop.transfer.clouds import connect
    from imagehop.transfer.journal import Journal
    from imagehop.transfer.mover import move_object
    from imagehop.transfer.swift import SwiftClient

    cloud = connect("imagehop", clouds_yaml)
    src_c, src_o = src.split("/", 1)
    dst_c, dst_o = dst.split("/", 1)
    journal = Journal(Path(clouds_yaml).parent / f"journal-{time.time_ns()}.db")
    result = move_object(
        SwiftClient(cloud, "ORD"), src_c, src_o, SwiftClient(cloud, "IAD"), dst_c, dst_o,
        journal=journal, parallel=int(parallel),
    )  # fmt: skip
    print(result)


def bench_move(cloud: Cloud, work: Path, random_mib: int, zero_mib: int, runs: int) -> Section:
    size = (random_mib + zero_mib) * MiB
    image = work / "image.raw"
    make_image(image, random_mib, zero_mib)
    swift = str(BIN / "swift")
    ord_env, iad_env = cloud.swift_env("ORD"), cloud.swift_env("IAD")
    upload = [swift, "upload", "--use-slo", "--segment-size", "256M", "--object-name", "image.vhd"]

    setup = measure([*upload, "exports", str(image)], ord_env)
    results: dict[str, list[Timing]] = {"imagehop": [], "a": [], "b": []}
    for run in range(runs):
        results["imagehop"].append(measure(
            [sys.executable, "-m", "bench.move", str(cloud.clouds_yaml), "exports/image.vhd",
             f"mover{run}/image.vhd", "4"],
        ))  # fmt: skip
        staging = work / "neutral"
        staging.mkdir(exist_ok=True)
        down = measure([swift, "download", "exports", "image.vhd", "-o", str(staging / "image.vhd")], ord_env)
        up = measure([*upload, f"article{run}", str(staging / "image.vhd")], iad_env)
        results["a"].append(Timing(down.seconds + up.seconds, max(down.peak_rss_mb, up.peak_rss_mb)))
        shutil.rmtree(staging)
        results["b"].append(measure(
            ["rclone", "copy", "ORD:exports/image.vhd", f"IAD:rclone{run}/"], cloud.rclone_env("ORD", "IAD"),
        ))  # fmt: skip

    t = {k: median([x.seconds for x in v]) for k, v in results.items()}
    rss = {k: max(x.peak_rss_mb for x in v) for k, v in results.items()}
    gib = size / 2**30
    section = Section(f"Move step, {gib:.0f} GiB image ({random_mib} MiB random + {zero_mib} MiB zeros), ORD -> IAD")
    section.lines += [
        f"Median of {runs} runs, all three side by side against the same `imagehop serve` (two regions, one"
        " process, SQLite). Only the move step: export and import tasks are not in the tree yet, so the"
        " whole-job target of PERFORMANCE.md is not measured here.",
        "",
        "| way | median s | MB/s | client peak RSS MB | imagehop is faster by |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| imagehop mover (`move_object`, 4 parallel segments) | {t['imagehop']:.1f}"
        f" | {size / t['imagehop'] / 1e6:.0f} | {rss['imagehop']:.0f} | 1.00x |",
        f"| (a) `swift download` to disk, then `swift upload --use-slo --segment-size 256M` | {t['a']:.1f}"
        f" | {size / t['a'] / 1e6:.0f} | {rss['a']:.0f} | {t['a'] / t['imagehop']:.2f}x |",
        f"| (b) `rclone copy ORD:exports/image.vhd IAD:rclone/` | {t['b']:.1f} | {size / t['b'] / 1e6:.0f}"
        f" | {rss['b']:.0f} | {t['b'] / t['imagehop']:.2f}x |",
        "",
        f"Setup upload to ORD (`swift upload --use-slo --segment-size 256M`): {setup.seconds:.1f} s,"
        f" {size / setup.seconds / 1e6:.0f} MB/s (real Swift on this kind of machine: 184 MB/s, PERFORMANCE.md;"
        " not run side by side here). Server peak RSS after all runs:"
        f" {cloud.server_rss_mb():.0f} MiB.",
    ]
    return section


if __name__ == "__main__":
    run_mover(*sys.argv[1:])
