"""Helpers shared by the disk-format tests (kept out of conftest.py so tests can import them)."""

from __future__ import annotations

import hashlib
import json
import random
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
BLOCK = 2 * MiB


def run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc.stdout


def qemu_compare(qemu_img: str, raw: Path, other: Path, fmt: str) -> str:
    """``qemu-img compare`` of a raw file with an image; returns its stdout and stderr together."""
    proc = subprocess.run(
        [qemu_img, "compare", "-f", "raw", "-F", fmt, str(raw), str(other)], capture_output=True, text=True
    )
    return f"{proc.returncode}: {proc.stdout}{proc.stderr}"


IDENTICAL = "0: Images are identical.\n"


def qemu_virtual_size(qemu_img: str, path: Path, fmt: str) -> int:
    return json.loads(run(qemu_img, "info", "-f", fmt, "--output=json", str(path)))["virtual-size"]


def reference_digest(data: bytes, virtual_size: int) -> str:
    """The content digest computed straight from DESIGN.md's definition, independently of the code."""
    sector_size = -(-virtual_size // 512) * 512
    data = data[:virtual_size].ljust(sector_size, b"\0")
    outer = hashlib.sha256()
    for index in range(-(-sector_size // BLOCK)):
        block = data[index * BLOCK : (index + 1) * BLOCK].ljust(BLOCK, b"\0")
        if block.count(0) != BLOCK:
            outer.update(struct.pack(">Q", index) + hashlib.sha256(block).digest())
    outer.update(struct.pack(">Q", sector_size))
    return "sha256:" + outer.hexdigest()


@dataclass
class Sample:
    path: Path
    size: int
    data: bytes  # the whole disk in memory (100 MiB; tests compare against it)
    digest: str
    nonzero_blocks: list[int]


# Where the sample disk holds data: block-aligned, mid-block, spanning blocks, tiny writes, an
# explicitly written zero run (allocated but zero), and the unaligned last bytes of the disk.
SAMPLE_SIZE = 100 * MiB + 1234
SAMPLE_WRITES = [
    (3 * MiB, 5 * MiB, "random"),
    (20 * MiB + 777, 3 * MiB, "random"),
    (30 * MiB + 12345, 4096, "random"),
    (50 * MiB, 4 * MiB, "zeros"),
    (64 * MiB, 2 * MiB, "random"),
    (71 * MiB + 4096, 4096, "random"),
    (SAMPLE_SIZE - 234, 234, "random"),
]


def make_disk(path: Path, size: int, writes: list[tuple[int, int, str]], seed: int = 1234) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length, kind in writes:
            f.seek(offset)
            f.write(rng.randbytes(length) if kind == "random" else bytes(length))
