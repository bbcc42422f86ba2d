"""Size constants, in one place."""

from __future__ import annotations

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
SECTOR = 512
BLOCK = 2 * MiB  # the content digest's block (DESIGN.md, "The content digest")
