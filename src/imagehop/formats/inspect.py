"""Is an uploaded image safe to keep as the format it claims? Glance's format-inspector rule.

Since CVE-2024-32498 Glance refuses, on upload and import, a qcow2 or VMDK that would make whoever
opens it read another file: a qcow2 backing file or external data file, a VMDK with a parent or with
extents in other files (a descriptor file, or more than one extent). We also refuse a qcow2 whose
mapping is inconsistent (cross-linked clusters, tables inside metadata, a decompression bomb).
Data that is not of the claimed format at all passes: Glance stores it too, and nothing here will
ever open it as that format.
"""

from __future__ import annotations

import struct

from .errors import HAS_PARENT, UNSUPPORTED_TYPE, DiskFormatError
from .qcow2 import Qcow2Disk
from .source import Source

VMDK_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
VMDK_CREATE_TYPES = ("monolithicSparse", "streamOptimized")
MAX_DESCRIPTOR = 1 << 20
_VMDK_HEADER = struct.Struct("<4sIIQQQQIQQQ")


def check_safe(source: Source, disk_format: str | None) -> None:
    """Raise an ``unsafe`` :class:`DiskFormatError` if the image is one Glance's inspector refuses."""
    if disk_format == "qcow2":
        try:
            Qcow2Disk(source)
        except DiskFormatError as exc:
            if exc.unsafe:
                raise
    elif disk_format == "vmdk":
        check_vmdk(source)


def check_vmdk(source: Source) -> None:
    """A VMDK must be one stand-alone sparse file: monolithicSparse or streamOptimized, one extent,
    no parent."""
    head = source.pread(0, 512)
    if head.startswith(VMDK_DESCRIPTOR):
        raise DiskFormatError(UNSUPPORTED_TYPE, "The VMDK is a descriptor file whose extents are other files",
                              unsafe=True)  # fmt: skip
    if len(head) < _VMDK_HEADER.size or head[:4] != VMDK_MAGIC:
        return  # not a sparse VMDK: stored as given, never opened as one
    _magic, _version, _flags, _capacity, _grain, desc_offset, desc_size, *_rest = _VMDK_HEADER.unpack_from(head)
    if not desc_offset or not desc_size:
        raise DiskFormatError(UNSUPPORTED_TYPE, "The VMDK has no embedded descriptor", unsafe=True)
    length = min(desc_size * 512, MAX_DESCRIPTOR)
    text = source.pread(desc_offset * 512, length).split(b"\0", 1)[0].decode("latin-1")
    create_type, extents, parent = None, 0, False
    for raw_line in text.splitlines():
        line = raw_line.strip()
        key, _, value = line.partition("=")
        if key.strip() == "createType":
            create_type = value.strip().strip('"')
        elif key.strip() == "parentFileNameHint":
            parent = True
        elif line.split(" ", 1)[0] in ("RW", "RDONLY", "NOACCESS"):
            extents += 1
    if parent:
        raise DiskFormatError(HAS_PARENT, "The VMDK has a parent disk (parentFileNameHint)", unsafe=True)
    if create_type not in VMDK_CREATE_TYPES:
        raise DiskFormatError(UNSUPPORTED_TYPE, f"The VMDK type {create_type!r} is not one stand-alone file",
                              unsafe=True)  # fmt: skip
    if extents != 1:
        raise DiskFormatError(UNSUPPORTED_TYPE, f"The VMDK has {extents} extents; only one is allowed", unsafe=True)


__all__ = ["check_safe", "check_vmdk"]
