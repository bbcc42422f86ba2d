"""The fixed flavors a region offers: sizes only, since imagehop runs no virtual machines.

``disk`` (GiB) is what matters: an image whose virtual disk is larger cannot boot on the flavor.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    ram: int  # MiB
    vcpus: int
    disk: int  # GiB; the root disk an image must fit in
    ephemeral: int = 0
    swap: int = 0

    @property
    def disk_bytes(self) -> int:
        return self.disk * GIB


FLAVORS: tuple[Flavor, ...] = (
    Flavor("1", "m1.tiny", 512, 1, 1),
    Flavor("2", "m1.small", 2048, 1, 20),
    Flavor("3", "m1.medium", 4096, 2, 40),
    Flavor("4", "m1.large", 8192, 4, 80),
    Flavor("5", "m1.xlarge", 16384, 8, 160),
    Flavor("general1-1", "1 GB General Purpose v1", 1024, 1, 20),
    Flavor("general1-2", "2 GB General Purpose v1", 2048, 2, 40),
)

_BY_ID = {f.id: f for f in FLAVORS}


def get(flavor_id: str) -> Flavor | None:
    return _BY_ID.get(flavor_id)
