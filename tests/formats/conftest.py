"""Fixtures for the disk-format tests: a sample sparse disk, and qemu-img as the oracle.

qemu-img (Debian package ``qemu-utils``) is required: without it these tests fail with a clear
message rather than skip, because they are the evidence that our formats interoperate.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import BLOCK, MiB, reference_digest, run, write_disk


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
SEED = 1234


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is not installed; the disk-format tests use it as their oracle. "
            "Install it with: apt-get install -y qemu-utils",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def qemu_img() -> str:
    return _require("qemu-img")


@pytest.fixture(scope="session")
def qemu_io() -> str:
    return _require("qemu-io")


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    path = tmp_path_factory.mktemp("sample") / "disk.raw"
    write_disk(path, SAMPLE_SIZE, SEED, SAMPLE_WRITES)
    data = path.read_bytes()
    blocks = [
        i
        for i in range(-(-len(data) // BLOCK))
        if data[i * BLOCK : (i + 1) * BLOCK].count(0) != len(data[i * BLOCK : (i + 1) * BLOCK])
    ]
    return Sample(path, SAMPLE_SIZE, data, reference_digest(data, SAMPLE_SIZE), blocks)


@pytest.fixture(scope="session")
def sample_padded(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample disk with its size rounded up to a whole sector (sparse, same content)."""
    path = tmp_path_factory.mktemp("padded") / "disk.raw"
    write_disk(path, -(-sample.size // 512) * 512, SEED, SAMPLE_WRITES)
    assert path.read_bytes()[: sample.size] == sample.data
    return path


@pytest.fixture(scope="session")
def qemu_images(sample: Sample, qemu_img: str, qemu_io: str, tmp_path_factory: pytest.TempPathFactory):
    """The sample disk converted by qemu-img into the formats we read; name -> path."""
    out = tmp_path_factory.mktemp("qemu")
    src = str(sample.path)
    made: dict[str, Path] = {}
    variants = {
        "vpc-dynamic": ["-O", "vpc"],
        "vpc-dynamic-force": ["-O", "vpc", "-o", "force_size=on"],
        "vpc-fixed": ["-O", "vpc", "-o", "subformat=fixed"],
        "vpc-fixed-force": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
        "qcow2": ["-O", "qcow2"],
        "qcow2-v2": ["-O", "qcow2", "-o", "compat=0.10"],
        "qcow2-compressed": ["-c", "-O", "qcow2"],
        "qcow2-4k-clusters": ["-O", "qcow2", "-o", "cluster_size=4096"],
        "qcow2-2m-clusters-compressed": ["-c", "-O", "qcow2", "-o", "cluster_size=2097152"],
    }
    for name, opts in variants.items():
        path = out / f"{name}.img"
        run([qemu_img, "convert", "-f", "raw", *opts, src, str(path)])
        made[name] = path
    # Zero clusters (v3 zero flag) over allocated data, and over unallocated space.
    zpath = out / "qcow2-zero-clusters.img"
    run([qemu_img, "convert", "-f", "raw", "-O", "qcow2", src, str(zpath)])
    run([qemu_io, "-f", "qcow2", "-c", f"write -z {4 * MiB} {MiB}", "-c", f"write -z {80 * MiB} {2 * MiB}", str(zpath)])
    made["qcow2-zero-clusters"] = zpath
    return made
