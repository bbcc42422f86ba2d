"""Editing VHD bytes by the spec (not with our own reader/writer): fields, checksums, broken copies."""

from __future__ import annotations

import struct

FOOTER = 512
# footer fields: (offset, struct format)
CURRENT_SIZE, ORIGINAL_SIZE, DISK_TYPE, CHECKSUM, UNIQUE_ID = (48, ">Q"), (40, ">Q"), (60, ">I"), 64, (68, ">16s")
HEADER_CHECKSUM = 36


def fix_checksum(buf: bytearray, start: int, length: int, field: int) -> None:
    """Set the ones'-complement byte-sum checksum at ``start + field`` of the structure at ``start``."""
    buf[start + field : start + field + 4] = bytes(4)
    buf[start + field : start + field + 4] = (~sum(buf[start : start + length]) & 0xFFFFFFFF).to_bytes(4, "big")


def set_footer(buf: bytearray, field: tuple[int, str], value: object, dynamic: bool = True) -> None:
    """Patch a footer field in the trailing footer (and in the copy at 0 of a dynamic VHD), checksums fixed."""
    offset, fmt = field
    for start in [len(buf) - FOOTER] + ([0] if dynamic else []):
        struct.pack_into(fmt, buf, start + offset, value)
        fix_checksum(buf, start, FOOTER, CHECKSUM)
