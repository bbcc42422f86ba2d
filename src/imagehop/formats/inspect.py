"""Is an uploaded image safe to keep as the format it claims? Glance's format-inspector rule.

Since CVE-2024-32498 Glance refuses, on upload and import, a qcow2 or VMDK that would make whoever
opens it read another file: a qcow2 backing file or external data file, a VMDK with a parent or with
extents in other files (a descriptor file, or more than one extent). We also refuse a qcow2 whose
mapping is inconsistent (cross-linked clusters, tables inside metadata, a decompression bomb).

Since Glance 33 (``[image_format] require_image_format_match``, on by default) an upload of a
``bare`` image must also *be* the format it claims: :func:`content_format` names the format the
bytes look like, as Glance's inspectors recognise them, and :func:`format_mismatch` says when
Glance refuses the pair (raw takes anything; formats Glance cannot inspect take unrecognised bytes).
"""

from __future__ import annotations

import struct

from .errors import HAS_PARENT, UNSUPPORTED_TYPE, DiskFormatError
from .qcow2 import MAGIC as QCOW2_MAGIC
from .qcow2 import Qcow2Disk
from .source import Source
from .vhd import FOOTER_COOKIE

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


# The formats Glance's inspectors recognise (format_inspector.ALL_FORMATS).
INSPECTABLE = frozenset({"raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi", "iso", "gpt", "luks"})
ISO_DESCRIPTORS = (0x8001, 0x8801, 0x9001)


def content_format(source: Source) -> str:
    """The format the bytes look like: one of :data:`INSPECTABLE` (``raw`` when nothing else fits).

    As Glance's inspectors, except that a fixed VHD (only a footer, at the end) is a ``vhd`` too:
    Glance 33 recognises a VHD by its header copy only, so refuses fixed VHDs as ``vhd``.
    """
    head = source.pread(0, 512)
    if head[:4] == QCOW2_MAGIC:
        return "qcow2"
    if head[:8] == FOOTER_COOKIE:
        return "vhd"
    if head[:8] == b"vhdxfile":
        return "vhdx"
    if head[:4] == VMDK_MAGIC or head.startswith(VMDK_DESCRIPTOR):
        return "vmdk"
    if head[0x40:0x44] == b"\x7f\x10\xda\xbe":
        return "vdi"
    if head[:6] == b"LUKS\xba\xbe":
        return "luks"
    size = source.size
    if any(offset + 5 <= size and source.pread(offset, 5) == b"CD001" for offset in ISO_DESCRIPTORS):
        return "iso"
    if head[510:512] == b"\x55\xaa" and size >= 520 and source.pread(512, 8) == b"EFI PART":
        return "gpt"
    if size >= 512:
        tail = source.pread(size - 512, 9)
        if tail[:8] == FOOTER_COOKIE or tail[1:9] == FOOTER_COOKIE:
            return "vhd"
    return "raw"


def format_mismatch(disk_format: str | None, found: str) -> str | None:
    """Glance's refusal when bytes of format ``found`` are uploaded as ``disk_format``, else None."""
    if disk_format is None or found == disk_format or disk_format == "raw":
        return None
    if found == "raw" and disk_format not in INSPECTABLE:
        return None  # ami, ari, aki, ploop: not inspectable, and nothing else recognised
    return f"Image disk_format {disk_format} does not match stream data {found}"


__all__ = ["INSPECTABLE", "check_safe", "check_vmdk", "content_format", "format_mismatch"]
