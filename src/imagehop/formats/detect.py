"""Recognise a disk image's format from its content (never from its name) and open it.

Probing is content-based and conservative: a VHD is recognised by its ``conectix`` footer at the
end (fixed or dynamic) or its footer copy at offset 0 (dynamic; a truncated one then fails
validation with code 111), qcow2 by its magic, and anything else is raw. The VHD footer is checked
first so that a fixed VHD whose guest data happens to start with qcow2's magic is still a VHD.
When the caller states the format, a mismatch is an error (code 396), never a silent re-guess.
"""

from __future__ import annotations

import os

from .disk import VirtualDisk
from .errors import NOT_THIS_FORMAT, DiskFormatError
from .qcow2 import MAGIC as QCOW2_MAGIC
from .qcow2 import Qcow2Disk
from .raw import RawDisk
from .source import FileSource, Source
from .vhd import FOOTER_COOKIE, VhdDisk

FORMATS = ("raw", "vhd", "qcow2")


def detect_format(source: Source) -> str:
    """``"vhd"``, ``"qcow2"`` or ``"raw"``, from the bytes of ``source``."""
    size = source.size
    head = source.pread(0, 8)
    if head == FOOTER_COOKIE:
        return "vhd"
    if size >= 512:
        tail = source.pread(size - 512, 9)
        if tail[:8] == FOOTER_COOKIE or tail[1:9] == FOOTER_COOKIE:  # 512- or 511-byte footer
            return "vhd"
    if head[:4] == QCOW2_MAGIC:
        return "qcow2"
    return "raw"


def open_disk(
    source: Source,
    fmt: str | None = None,
    *,
    max_virtual_size: int | None = None,
    max_physical_size: int | None = None,
) -> VirtualDisk:
    """Open ``source`` as a virtual disk of format ``fmt`` (detected when None).

    Raises DiskFormatError: 396 when ``fmt`` is ``vhd`` or ``qcow2`` and the content is not,
    and whatever the format's validation finds. ``raw`` accepts any content (a raw disk may
    legitimately hold anything); check ``detect_format`` first if that matters.
    """
    detected = detect_format(source)
    if fmt is None:
        fmt = detected
    elif fmt not in FORMATS:
        raise ValueError(f"unknown disk format {fmt!r}; expected one of {', '.join(FORMATS)}")
    elif fmt != "raw" and fmt != detected:
        name = "a VHD" if fmt == "vhd" else "a qcow2 image"
        raise DiskFormatError(NOT_THIS_FORMAT, f"The image is not {name} (the content looks like {detected})")
    limits = {"max_virtual_size": max_virtual_size, "max_physical_size": max_physical_size}
    if fmt == "vhd":
        return VhdDisk(source, **limits)
    if fmt == "qcow2":
        return Qcow2Disk(source, **limits)
    return RawDisk(source, **limits)


def open_file(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    max_virtual_size: int | None = None,
    max_physical_size: int | None = None,
) -> VirtualDisk:
    """Open a local file as a disk; ``disk.close()`` (or ``with``) closes the file."""
    source = FileSource(path)
    try:
        return open_disk(source, fmt, max_virtual_size=max_virtual_size, max_physical_size=max_physical_size)
    except BaseException:
        source.close()
        raise
