"""Boot and snapshot copy sparse disks without reading their zero regions."""

from __future__ import annotations

from imagehop.compute.service import copy_disk
from tests.support import MiB as MIB


class FakeDisk:
    """A disk of 8 MiB with data in [1 MiB, 2 MiB) and [5 MiB, 5 MiB + 10); reads are recorded."""

    virtual_size = 8 * MIB

    def __init__(self) -> None:
        self.reads: list[tuple[int, int]] = []

    def extents(self):
        return iter([(1 * MIB, 1 * MIB), (5 * MIB, 10)])

    def read(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return b"\x07" * length


class Recorder:
    def __init__(self) -> None:
        self.parts: list[tuple[str, int]] = []

    def write(self, data: bytes) -> None:
        self.parts.append(("data", len(data)))

    def skip(self, n: int) -> None:
        self.parts.append(("hole", n))


def test_copy_disk_reads_only_extents_and_skips_holes() -> None:
    disk, writer = FakeDisk(), Recorder()
    copy_disk(disk, writer)
    assert disk.reads == [(1 * MIB, 1 * MIB), (5 * MIB, 10)]
    assert writer.parts == [("hole", MIB), ("data", MIB), ("hole", 3 * MIB), ("data", 10), ("hole", 3 * MIB - 10)]
    assert sum(n for _, n in writer.parts) == disk.virtual_size
