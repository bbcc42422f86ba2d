"""Disk formats: read raw, VHD (fixed, dynamic) and qcow2; write raw and VHD; content digest.

Pure: bytes and files in, bytes out. No HTTP, no database, no external tools.
"""

from .detect import FORMATS, detect_format, open_disk, open_file
from .digest import BlockMap, ContentDigest, RawStreamDigest, block_map, content_digest, digest_of_blocks
from .disk import BLOCK_SIZE, BufferRing, VirtualDisk, iter_blocks_into
from .errors import DiskFormatError
from .inspect import check_safe, content_format, format_mismatch
from .qcow2 import Qcow2Disk
from .raw import RawDisk, iter_raw, write_raw_sparse
from .source import BytesSource, FileSource, Source, file_data_extents
from .vhd import (
    VhdDisk,
    VhdWriter,
    dynamic_vhd_size,
    extent_blocks,
    fixed_vhd_size,
    iter_vhd,
    scan_nonzero_blocks,
    write_vhd,
)

__all__ = [
    "BLOCK_SIZE",
    "FORMATS",
    "BlockMap",
    "BufferRing",
    "BytesSource",
    "ContentDigest",
    "DiskFormatError",
    "FileSource",
    "Qcow2Disk",
    "RawDisk",
    "RawStreamDigest",
    "Source",
    "VhdDisk",
    "VhdWriter",
    "VirtualDisk",
    "block_map",
    "check_safe",
    "content_digest",
    "content_format",
    "detect_format",
    "digest_of_blocks",
    "dynamic_vhd_size",
    "extent_blocks",
    "file_data_extents",
    "fixed_vhd_size",
    "format_mismatch",
    "iter_blocks_into",
    "iter_raw",
    "iter_vhd",
    "open_disk",
    "open_file",
    "scan_nonzero_blocks",
    "write_raw_sparse",
    "write_vhd",
]
