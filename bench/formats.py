"""Export (native raw -> dynamic VHD) and import (VHD -> sparse raw + content digest) against qemu-img.

PERFORMANCE.md: at least qemu-img's speed on the same input; holes and zero blocks skipped. Both
sides run as separate processes on the same files, interleaved, page cache warm.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.harness import Section, Timing

MiB = 1 << 20


def _ours(mode: str, src: str, dst: str) -> None:
    """Child-process entry: our side of one conversion."""
    from imagehop import formats

    fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if mode == "export":
            with formats.open_file(src, "raw") as disk:
                formats.write_vhd(disk, fd, "dynamic")
        else:  # import, as the import task does it: sparse raw and the content digest in one pass
            with formats.open_file(src, "vhd") as disk:
                digest = formats.ContentDigest(disk.virtual_size, threads=2)
                formats.write_raw_sparse(disk, fd, digest=digest)
                print(digest.hexdigest())
    finally:
        os.close(fd)


def allocated_mib(path: Path) -> float:
    return os.stat(path).st_blocks * 512 / MiB


def bench_formats(work: Path, random_mib: int, zero_mib: int, runs: int) -> Section:
    # imported here, not at the top: the timed child processes (``_ours``) load only imagehop.formats
    from bench.harness import Section, make_image, measure, median

    raw = work / "formats.raw"
    make_image(raw, random_mib, zero_mib)
    ours_vhd, qemu_vhd = work / "ours.vhd", work / "qemu.vhd"
    ours_raw, qemu_raw = work / "ours.raw", work / "qemu.raw"
    ours = [sys.executable, "-m", "bench.formats"]
    times: dict[str, list[Timing]] = {"ours-export": [], "qemu-export": [], "ours-import": [], "qemu-import": []}

    def timed(cmd: list[str], out: Path) -> Timing:
        # Each side starts alike: its output gone and no dirty page of an earlier run left to write back
        # (truncating a file that is still being written back waits for the disk, and that wait would
        # fall on whichever side comes next).
        out.unlink(missing_ok=True)
        os.sync()
        return measure(cmd)

    for _ in range(runs):
        times["qemu-export"].append(timed(
            ["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "force_size=on", str(raw), str(qemu_vhd)], qemu_vhd
        ))  # fmt: skip
        times["ours-export"].append(timed([*ours, "export", str(raw), str(ours_vhd)], ours_vhd))
        times["qemu-import"].append(
            timed(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(qemu_vhd), str(qemu_raw)], qemu_raw)
        )
        times["ours-import"].append(timed([*ours, "import", str(qemu_vhd), str(ours_raw)], ours_raw))
    t = {k: median([x.seconds for x in v]) for k, v in times.items()}
    size = (random_mib + zero_mib) * MiB
    section = Section(
        f"Export and import, {size / 2**30:.0f} GiB sparse disk ({random_mib} MiB random data, {zero_mib} MiB hole)"
    )
    section.lines += [
        f"Median of {runs} interleaved runs, each side a separate process on the same files, each started with"
        " its output removed and the page cache's dirty data written back (`sync`, not timed). Our import also"
        " computes the content digest (SHA-256 of every non-zero 2 MiB block, on two threads, as the import task"
        " does); qemu-img computes nothing. `python -m bench.formats --random-mib N --zero-mib N --runs N`.",
        "",
        "| step | qemu-img s | imagehop s | imagehop vs qemu-img (higher is better) | allocated MiB (qemu / ours) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| export raw -> dynamic VHD (`qemu-img convert -f raw -O vpc -o force_size=on`) | {t['qemu-export']:.2f}"
        f" | {t['ours-export']:.2f} | {t['qemu-export'] / t['ours-export']:.2f}x"
        f" | {allocated_mib(qemu_vhd):.0f} / {allocated_mib(ours_vhd):.0f} |",
        f"| import VHD -> sparse raw (`qemu-img convert -f vpc -O raw`) | {t['qemu-import']:.2f}"
        f" | {t['ours-import']:.2f} | {t['qemu-import'] / t['ours-import']:.2f}x"
        f" | {allocated_mib(qemu_raw):.0f} / {allocated_mib(ours_raw):.0f} |",
    ]
    for path in (raw, ours_vhd, qemu_vhd, ours_raw, qemu_raw):
        path.unlink(missing_ok=True)
    return section


def main() -> None:
    """``python -m bench.formats [--random-mib N] [--zero-mib N] [--runs N]``: this section alone, printed."""
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.formats")
    parser.add_argument("--random-mib", type=int, default=1024)
    parser.add_argument("--zero-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imagehop-bench-formats-"))
    try:
        print(bench_formats(work, args.random_mib, args.zero_mib, args.runs).render())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] in (["export"], ["import"]):  # a child process: our side of one conversion
        _ours(*sys.argv[1:4])
    else:
        main()
