"""VHD (Microsoft Virtual Hard Disk, "vpc" in qemu): a validating reader and a streaming writer.

Layout (all integers big-endian, sectors of 512 bytes):

* fixed:   ``[disk bytes][footer 512]``
* dynamic: ``[footer copy 512][dynamic header 1024][BAT, padded to 512][blocks...][footer 512]``,
  each block being a sector bitmap (512 bytes for 2 MiB blocks) followed by the block's data;
  BAT entry *i* is the sector where block *i* starts, ``0xFFFFFFFF`` when it reads as zeros.

Size policy. The footer holds both a CHS geometry and ``current_size`` and readers disagree on
which wins (qemu <= 9 prefers CHS unless the creator is one it knows, qemu >= 10 and Hyper-V,
Azure, libvhdi prefer ``current_size``). The reader follows qemu >= 10: ``current_size``, except
for the creators ``vpc `` and ``qemu`` whose CHS (when not the 65535/16/255 maximum) gives the
size. The writer stores ``current_size`` = the virtual size rounded up to 512 bytes, and a
geometry every qemu reads as "use current_size": the spec geometry when it describes the size
exactly, else the 65535/16/255 maximum (what qemu's own ``force_size=on`` writes). The price of the
maximum geometry: blktap's ``vhd-util check`` calls it "geometry too large" on disks under
~127 GiB; round the disk up to a CHS-exact size if that tool matters.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
import uuid
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .disk import (
    BLOCK_SIZE,
    SECTOR,
    ZERO_BLOCK,
    BufferRing,
    DiskBase,
    VirtualDisk,
    WriteBehind,
    block_indexes,
    check_limits,
    iter_blocks_into,
    merge_extents,
    pwrite_all,
    pwrite_sparse,
    round_up,
)
from .errors import (
    HAS_PARENT,
    NOT_THIS_FORMAT,
    UNSUPPORTED_TYPE,
    VIRTUAL_SIZE_TOO_LARGE,
    ZERO_UUID,
    DiskFormatError,
    corrupt,
)
from .source import Source, read_into, source_extents

FOOTER_COOKIE = b"conectix"
HEADER_COOKIE = b"cxsparse"
FOOTER_SIZE = 512
HEADER_SIZE = 1024
VERSION = 0x00010000
FEATURES_RESERVED = 0x2
NO_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF
UNALLOCATED = 0xFFFFFFFF

DISK_FIXED = 2
DISK_DYNAMIC = 3
DISK_DIFFERENCING = 4

VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z as Unix time
MAX_CHS = (65535, 16, 255)
MAX_DYNAMIC_SIZE = 0xFF000000 * SECTOR  # 2040 GiB: qemu's and the spec's limit for dynamic disks
MAX_BAT_BYTES = 32 * 1024 * 1024  # refuse absurd tables before allocating them

CREATOR_APP = b"ihop"  # our own 4-character tag, as the spec intends
CREATOR_VERSION = 0x00010000
CREATOR_HOST_OS = b"Wi2k"  # what Azure-facing tools write
CHS_SIZED_CREATORS = (b"vpc ", b"qemu")

_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427s")
_HEADER = struct.Struct(">8sQQIIII16sII512s192s256s")
_BITMAP = b"\xff" * SECTOR  # every sector "present" (we write the zeros too)

assert _FOOTER.size == FOOTER_SIZE and _HEADER.size == HEADER_SIZE


# -- fields ---------------------------------------------------------------------------------------


def checksum(data: bytes, field_offset: int) -> int:
    """One's complement of the byte sum, the 4-byte checksum field counted as zero."""
    total = sum(data) - sum(data[field_offset : field_offset + 4])
    return ~total & 0xFFFFFFFF


def chs_geometry(size: int) -> tuple[int, int, int]:
    """Cylinders, heads, sectors per track for ``size`` bytes: the VHD spec's algorithm.

    C*H*S*512 is at most ``size`` (it rounds down) and saturates at 65535/16/255.
    """
    total = min(size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def writer_geometry(size: int) -> tuple[int, int, int]:
    """The geometry we write: exact spec CHS if it describes ``size``, else the maximum."""
    c, h, s = chs_geometry(size)
    return (c, h, s) if c * h * s * SECTOR == size else MAX_CHS


@dataclass(frozen=True)
class Footer:
    cookie: bytes
    features: int
    version: int
    data_offset: int
    timestamp: int
    creator_app: bytes
    creator_version: int
    creator_os: bytes
    original_size: int
    current_size: int
    cylinders: int
    heads: int
    sectors: int
    disk_type: int
    checksum: int
    unique_id: bytes
    saved_state: int
    reserved: bytes

    @classmethod
    def parse(cls, data: bytes) -> Footer:
        return cls(*_FOOTER.unpack(data[:FOOTER_SIZE].ljust(FOOTER_SIZE, b"\0")))

    def pack(self) -> bytes:
        fields = list(self.__dict__.values())
        fields[14] = 0
        raw = _FOOTER.pack(*fields)
        return raw[:64] + checksum(raw, 64).to_bytes(4, "big") + raw[68:]

    @property
    def chs_size(self) -> int:
        return self.cylinders * self.heads * self.sectors * SECTOR


@dataclass(frozen=True)
class DynamicHeader:
    cookie: bytes
    data_offset: int
    table_offset: int
    version: int
    max_table_entries: int
    block_size: int
    checksum: int
    parent_unique_id: bytes
    parent_timestamp: int
    reserved1: int
    parent_name: bytes
    parent_locators: bytes
    reserved2: bytes

    @classmethod
    def parse(cls, data: bytes) -> DynamicHeader:
        return cls(*_HEADER.unpack(data))

    def pack(self) -> bytes:
        fields = list(self.__dict__.values())
        fields[6] = 0
        raw = _HEADER.pack(*fields)
        return raw[:36] + checksum(raw, 36).to_bytes(4, "big") + raw[40:]


def bitmap_size(block_size: int) -> int:
    return round_up(block_size // SECTOR // 8, SECTOR)


# -- reader ---------------------------------------------------------------------------------------


class VhdDisk(DiskBase):
    """A fixed or dynamic VHD, validated on open.

    Raises DiskFormatError: 396 not a VHD, 111 corrupt (checksums, offsets, overlaps, sizes,
    truncation), 523 not fixed/dynamic, 721 differencing, 614 zero UUID, 413/609 over the
    ``max_virtual_size`` / ``max_physical_size`` limits. Sector bitmaps of dynamic disks are not
    consulted (as in qemu): unwritten sectors are zeros on disk.
    """

    format = "vhd"

    def __init__(
        self,
        source: Source,
        *,
        max_virtual_size: int | None = None,
        max_physical_size: int | None = None,
    ) -> None:
        self.source = source
        file_size = source.size
        raw_footer, footer_len = _read_footer(source)
        footer = Footer.parse(raw_footer)
        if checksum(raw_footer, 64) != footer.checksum:
            raise corrupt("VHD footer checksum is wrong")
        if footer.version != VERSION:
            raise corrupt(f"VHD footer version is {footer.version:#x}, expected 0x00010000")
        if footer.disk_type == DISK_DIFFERENCING:
            raise DiskFormatError(HAS_PARENT, "VHD is a differencing disk; only stand-alone disks can be imported")
        if footer.disk_type not in (DISK_FIXED, DISK_DYNAMIC):
            raise DiskFormatError(
                UNSUPPORTED_TYPE,
                f"VHD disk type is {footer.disk_type}; only fixed (2) and dynamic (3) disks can be imported",
            )
        if footer.unique_id == bytes(16):
            raise DiskFormatError(ZERO_UUID, "VHD unique id is all zeros")
        if footer.current_size % SECTOR:
            raise corrupt(f"VHD current size {footer.current_size} is not a multiple of 512")
        self.footer = footer
        self.footer_len = footer_len
        self.virtual_size = _virtual_size(footer)
        self.dynamic = footer.disk_type == DISK_DYNAMIC
        check_limits(self.virtual_size, file_size, max_virtual_size, max_physical_size, "VHD")
        data_end = file_size - footer_len
        if not self.dynamic:
            if data_end != footer.current_size:
                raise corrupt(f"The fixed VHD holds {data_end} bytes of data but its footer says {footer.current_size}")
            self.header = None
            self.block_size = 0
            self._bat = array("I")
            return
        if self.virtual_size > MAX_DYNAMIC_SIZE:
            raise DiskFormatError(
                VIRTUAL_SIZE_TOO_LARGE,
                f"The dynamic VHD of {self.virtual_size} bytes is over the format's 2040 GiB limit",
            )
        if source.pread(0, footer_len) != raw_footer[:footer_len]:
            raise corrupt("The VHD footer copy at offset 0 differs from the footer at the end")
        self.header = header = self._read_header(footer, data_end)
        self.block_size = header.block_size
        self._bitmap_size = bitmap_size(header.block_size)
        self._bat = self._read_bat(footer, header, data_end)

    # -- validation helpers

    def _read_header(self, footer: Footer, data_end: int) -> DynamicHeader:
        offset = footer.data_offset
        if offset < FOOTER_SIZE or offset + HEADER_SIZE > data_end:
            raise corrupt(f"VHD dynamic header offset {offset} is outside the file")
        raw = self.source.pread(offset, HEADER_SIZE)
        header = DynamicHeader.parse(raw)
        if header.cookie != HEADER_COOKIE:
            raise corrupt("VHD dynamic header cookie 'cxsparse' is missing")
        if checksum(raw, 36) != header.checksum:
            raise corrupt("VHD dynamic header checksum is wrong")
        if header.version != VERSION:
            raise corrupt(f"VHD dynamic header version is {header.version:#x}")
        bs = header.block_size
        if bs < SECTOR or bs & (bs - 1) or bs > 256 * 1024 * 1024:
            raise corrupt(f"VHD block size {bs} is not a power of two between 512 and 256 MiB")
        needed = -(-self.virtual_size // bs)
        if header.max_table_entries < needed:
            raise corrupt(
                f"VHD block table has {header.max_table_entries} entries, too few for {self.virtual_size} bytes"
            )
        bat_len = header.max_table_entries * 4
        if bat_len > MAX_BAT_BYTES:
            raise corrupt(f"VHD block table of {header.max_table_entries} entries is too large")
        if header.table_offset < FOOTER_SIZE or header.table_offset + bat_len > data_end:
            raise corrupt("VHD block table lies outside the file")
        return header

    def _read_bat(self, footer: Footer, header: DynamicHeader, data_end: int) -> array:
        entries = header.max_table_entries
        raw = self.source.pread(header.table_offset, entries * 4)
        bat = array("I")
        bat.frombytes(raw)
        if bat.itemsize != 4:  # pragma: no cover - exotic platforms
            raise RuntimeError("array('I') is not 32-bit here")
        if struct.pack("=I", 1) != struct.pack(">I", 1):
            bat.byteswap()
        span = self._bitmap_size + header.block_size
        regions = [
            (0, FOOTER_SIZE, "the footer copy"),
            (footer.data_offset, HEADER_SIZE, "the dynamic header"),
            (header.table_offset, entries * 4, "the block table"),
        ]
        for index, sector in enumerate(bat):
            if sector == UNALLOCATED:
                continue
            start = sector * SECTOR
            if start + span > data_end:
                raise corrupt(f"VHD block {index} points past the end of the file")
            regions.append((start, span, f"block {index}"))
        regions.sort()
        end, owner = 0, ""
        for start, length, name in regions:
            if start < end:
                raise corrupt(f"VHD {name} overlaps {owner}")
            end, owner = start + length, name
        return bat

    # -- VirtualDisk

    def extents(self) -> Iterator[tuple[int, int]]:
        size = self.virtual_size
        if not self.dynamic:
            for offset, length in source_extents(self.source):
                if offset >= size:
                    break
                yield offset, min(length, size - offset)
            return
        bs = self.block_size
        bat = self._bat
        yield from merge_extents(
            (i * bs, min(bs, size - i * bs)) for i in range(-(-size // bs)) if bat[i] != UNALLOCATED
        )

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        inside = max(0, min(length, self.virtual_size - offset))
        if not self.dynamic:
            data = self.source.pread(offset, inside) if inside else b""
        else:
            data = self._read_dynamic(offset, inside)
        if len(data) != inside:
            raise corrupt("VHD data is truncated")
        return data + bytes(length - inside) if inside < length else data

    def _read_dynamic(self, offset: int, length: int) -> bytes:
        bs = self.block_size
        parts = []
        pos, end = offset, offset + length
        while pos < end:
            index, inner = divmod(pos, bs)
            n = min(bs - inner, end - pos)
            sector = self._bat[index]
            if sector == UNALLOCATED:
                parts.append(ZERO_BLOCK[:n] if n <= BLOCK_SIZE else bytes(n))
            else:
                parts.append(self.source.pread(sector * SECTOR + self._bitmap_size + inner, n))
            pos += n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_into(self, offset: int, buf: bytearray) -> None:
        """Straight into ``buf`` when the range lies in one stored block (or a fixed disk's data)."""
        length = len(buf)
        inside = max(0, min(length, self.virtual_size - offset))
        view = memoryview(buf)
        if not self.dynamic:
            got = read_into(self.source, offset, view[:inside]) if inside else 0
        else:
            index, inner = divmod(offset, self.block_size) if self.block_size else (0, 0)
            if offset < 0 or inner + inside > self.block_size:  # spans blocks: the general path
                buf[:] = self.read(offset, length)
                return
            sector = self._bat[index] if inside else UNALLOCATED
            if sector == UNALLOCATED:
                got = inside
                view[:inside] = ZERO_BLOCK[:inside] if inside <= BLOCK_SIZE else bytes(inside)
            else:
                got = read_into(self.source, sector * SECTOR + self._bitmap_size + inner, view[:inside])
        if got != inside:
            raise corrupt("VHD data is truncated")
        if inside < length:
            view[inside:] = ZERO_BLOCK[: length - inside] if length - inside <= BLOCK_SIZE else bytes(length - inside)

    def allocated_blocks(self) -> list[int]:
        """Indexes of allocated blocks (dynamic disks; ``block_size`` units)."""
        return [i for i, sector in enumerate(self._bat) if sector != UNALLOCATED]


def _read_footer(source: Source) -> tuple[bytes, int]:
    """Return (footer bytes padded to 512, footer length on disk: 512, or 511 for old images)."""
    size = source.size
    if size >= FOOTER_SIZE:
        tail = source.pread(size - FOOTER_SIZE, FOOTER_SIZE)
        if tail[:8] == FOOTER_COOKIE:
            return tail, FOOTER_SIZE
        if tail[1:9] == FOOTER_COOKIE and not tail[9 + 3] & FEATURES_RESERVED:
            return tail[1:] + b"\0", FOOTER_SIZE - 1  # pre-2004 511-byte footer
    head = source.pread(0, 8)
    if head == FOOTER_COOKIE:
        raise corrupt("The VHD footer is missing at the end of the file (truncated?)")
    raise DiskFormatError(NOT_THIS_FORMAT, "The file is not a VHD: no 'conectix' footer at the end")


def _virtual_size(footer: Footer) -> int:
    if footer.creator_app in CHS_SIZED_CREATORS and ((footer.cylinders, footer.heads, footer.sectors) != MAX_CHS):
        return min(footer.chs_size, footer.current_size)
    return footer.current_size


# -- writer ---------------------------------------------------------------------------------------


def fixed_vhd_size(virtual_size: int) -> int:
    """Length of the fixed VHD we write for a disk of ``virtual_size`` bytes."""
    return round_up(virtual_size, SECTOR) + FOOTER_SIZE


def bat_bytes(virtual_size: int, block_size: int = BLOCK_SIZE) -> int:
    return round_up(-(-round_up(virtual_size, SECTOR) // block_size) * 4, SECTOR)


def dynamic_vhd_size(virtual_size: int, allocated_count: int) -> int:
    """Length of the dynamic VHD we write for ``allocated_count`` allocated 2 MiB blocks."""
    return FOOTER_SIZE + HEADER_SIZE + bat_bytes(virtual_size) + allocated_count * (SECTOR + BLOCK_SIZE) + FOOTER_SIZE


def scan_nonzero_blocks(disk: VirtualDisk) -> list[int]:
    """Indexes of the 2 MiB blocks of ``disk`` that are not all zeros (reads the data extents)."""
    return [index for index, _ in disk.iter_blocks(BLOCK_SIZE)]


def extent_blocks(disk: VirtualDisk) -> list[int]:
    """Indexes of the 2 MiB blocks touched by ``disk.extents()``, without reading any data.

    Cheap but coarse: allocated-but-zero regions count as data (what FreeBSD mkimg does).
    """
    return list(block_indexes(disk.extents(), BLOCK_SIZE))


class VhdWriter:
    """Writes a disk as a VHD: streamed as chunks (``iter(writer)``) or into a seekable file.

    ``subformat`` is ``"dynamic"`` (2 MiB blocks; only non-zero blocks stored) or ``"fixed"``.
    A stream of a dynamic VHD needs the set of allocated blocks before its first byte (the block
    table comes first). Pass ``allocated_blocks`` when you know them, e.g. the
    ``nonzero_blocks`` of the ContentDigest computed at import, or ``extent_blocks(disk)``;
    otherwise the writer reads the data extents once up front (``scan_nonzero_blocks``). Listed
    blocks that turn out all-zero are written as zeros; a non-zero block missing from the list
    raises ValueError mid-stream rather than produce a VHD that loses data. ``write_to`` (a
    seekable file) needs no list: one pass, the table is written last.

    The VHD's size is ``virtual_size`` rounded up to 512 bytes (VHD counts whole sectors).
    Memory use is a few 2 MiB blocks.
    """

    def __init__(
        self,
        disk: VirtualDisk,
        *,
        subformat: str = "dynamic",
        allocated_blocks: Iterable[int] | None = None,
        unique_id: bytes | uuid.UUID | None = None,
        timestamp: int | None = None,
        creator_app: bytes = CREATOR_APP,
    ) -> None:
        if subformat not in ("dynamic", "fixed"):
            raise ValueError(f"subformat must be 'dynamic' or 'fixed', not {subformat!r}")
        self.disk = disk
        self.subformat = subformat
        self.current_size = round_up(disk.virtual_size, SECTOR)
        if subformat == "dynamic" and self.current_size > MAX_DYNAMIC_SIZE:
            raise ValueError("a dynamic VHD cannot hold more than 2040 GiB")
        self.block_count = -(-self.current_size // BLOCK_SIZE)
        self._allocated = None if allocated_blocks is None else sorted(set(allocated_blocks))
        if self._allocated and not 0 <= self._allocated[0] <= self._allocated[-1] < self.block_count:
            raise ValueError("allocated_blocks holds indexes outside the disk")
        if isinstance(unique_id, uuid.UUID):
            unique_id = unique_id.bytes
        self.unique_id = unique_id or uuid.uuid4().bytes
        if len(self.unique_id) != 16 or self.unique_id == bytes(16):
            raise ValueError("unique_id must be 16 bytes, not all zero")
        if timestamp is None:
            timestamp = max(0, int(time.time()) - VHD_EPOCH)
        self.timestamp = timestamp
        if len(creator_app) != 4:
            raise ValueError("creator_app must be 4 bytes")
        self.creator_app = creator_app

    # -- layout

    def allocated_blocks(self) -> list[int]:
        """Blocks the dynamic stream stores (scans the disk once if they were not given)."""
        if self._allocated is None:
            self._allocated = scan_nonzero_blocks(self.disk)
        return self._allocated

    @property
    def size(self) -> int:
        """Total length of the stream in bytes (for a dynamic VHD, may trigger the scan)."""
        if self.subformat == "fixed":
            return fixed_vhd_size(self.current_size)
        return dynamic_vhd_size(self.current_size, len(self.allocated_blocks()))

    def footer(self) -> bytes:
        dynamic = self.subformat == "dynamic"
        c, h, s = writer_geometry(self.current_size)
        return Footer(
            cookie=FOOTER_COOKIE,
            features=FEATURES_RESERVED,
            version=VERSION,
            data_offset=FOOTER_SIZE if dynamic else NO_DATA_OFFSET,
            timestamp=self.timestamp,
            creator_app=self.creator_app,
            creator_version=CREATOR_VERSION,
            creator_os=CREATOR_HOST_OS,
            original_size=self.current_size,
            current_size=self.current_size,
            cylinders=c,
            heads=h,
            sectors=s,
            disk_type=DISK_DYNAMIC if dynamic else DISK_FIXED,
            checksum=0,
            unique_id=self.unique_id,
            saved_state=0,
            reserved=bytes(427),
        ).pack()

    def dynamic_header(self) -> bytes:
        return DynamicHeader(
            cookie=HEADER_COOKIE,
            data_offset=NO_DATA_OFFSET,
            table_offset=FOOTER_SIZE + HEADER_SIZE,
            version=VERSION,
            max_table_entries=self.block_count,
            block_size=BLOCK_SIZE,
            checksum=0,
            parent_unique_id=bytes(16),
            parent_timestamp=0,
            reserved1=0,
            parent_name=bytes(512),
            parent_locators=bytes(192),
            reserved2=bytes(256),
        ).pack()

    def _bat(self, placed: Iterable[tuple[int, int]]) -> bytes:
        """The block table: ``placed`` gives (block index, byte offset of its bitmap)."""
        bat = array("I", [UNALLOCATED]) * self.block_count
        for index, offset in placed:
            bat[index] = offset // SECTOR
        if struct.pack("=I", 1) != struct.pack(">I", 1):
            bat.byteswap()
        raw = bat.tobytes()
        return raw + b"\xff" * (round_up(len(raw), SECTOR) - len(raw))

    # -- streaming

    def __iter__(self) -> Iterator[bytes]:
        return self._iter_fixed() if self.subformat == "fixed" else self._iter_dynamic()

    def _iter_fixed(self) -> Iterator[bytes]:
        size = self.current_size
        nonzero = self.disk.iter_blocks(BLOCK_SIZE)
        pending = next(nonzero, None)
        for index in range(self.block_count):
            length = min(BLOCK_SIZE, size - index * BLOCK_SIZE)
            if pending is not None and pending[0] == index:
                data = pending[1]
                pending = next(nonzero, None)
            else:
                data = ZERO_BLOCK
            yield data if length == BLOCK_SIZE else data[:length]
        yield self.footer()

    def _iter_dynamic(self) -> Iterator[bytes]:
        allocated = self.allocated_blocks()
        footer = self.footer()
        first = FOOTER_SIZE + HEADER_SIZE + bat_bytes(self.current_size)
        span = SECTOR + BLOCK_SIZE
        yield footer
        yield self.dynamic_header()
        yield self._bat((index, first + k * span) for k, index in enumerate(allocated))
        nonzero = self.disk.iter_blocks(BLOCK_SIZE)
        pending = next(nonzero, None)
        for index in allocated:
            if pending is not None and pending[0] < index:
                raise ValueError(f"block {pending[0]} holds data but is not in allocated_blocks")
            if pending is not None and pending[0] == index:
                data = pending[1]
                pending = next(nonzero, None)
            else:
                data = ZERO_BLOCK
            yield _BITMAP
            yield data
        if pending is not None:
            raise ValueError(f"block {pending[0]} holds data but is not in allocated_blocks")
        yield footer

    # -- seekable output

    def write_to(self, fd: int) -> int:
        """Write the VHD into the open, seekable file ``fd`` in one read pass; return its length.

        The file is truncated first. Zero blocks are skipped without a pre-scan; zero runs
        (64 KiB granules) stay holes in the output file. Does not fsync.
        """
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
        if self.subformat == "fixed":
            size = self.current_size
            os.ftruncate(fd, size + FOOTER_SIZE)
            for index, data in self.disk.iter_blocks(BLOCK_SIZE):
                offset = index * BLOCK_SIZE
                pwrite_sparse(fd, data if offset + BLOCK_SIZE <= size else data[: size - offset], offset)
            pwrite_all(fd, self.footer(), size)
            return size + FOOTER_SIZE
        first = FOOTER_SIZE + HEADER_SIZE + bat_bytes(self.current_size)
        offset = first
        placed = []
        ring = BufferRing()
        writes = WriteBehind(fd)
        try:
            for index, buf in iter_blocks_into(self.disk, ring):
                # bitmap and data as two writes, never a 2 MiB concatenation; the blocks are read
                # into reused buffers and written on threads behind the reads; zero runs inside a
                # block stay holes of the output file, as qemu leaves them
                writes.write(_BITMAP, offset, sparse=False)
                ring.hold(buf, (writes.write(buf, offset + SECTOR),))
                placed.append((index, offset))
                offset += SECTOR + BLOCK_SIZE
            ring.drain()
        except BaseException:
            writes.close()
            with contextlib.suppress(BaseException):
                ring.drain()
            raise
        writes.finish()
        self._allocated = [index for index, _ in placed]
        footer = self.footer()
        pwrite_all(fd, footer, offset)
        pwrite_all(fd, footer + self.dynamic_header() + self._bat(placed), 0)
        return offset + FOOTER_SIZE


def iter_vhd(disk: VirtualDisk, subformat: str = "dynamic", **options: object) -> Iterator[bytes]:
    """Stream ``disk`` as a VHD: ``VhdWriter(disk, subformat=..., **options)`` iterated."""
    return iter(VhdWriter(disk, subformat=subformat, **options))  # type: ignore[arg-type]


def write_vhd(disk: VirtualDisk, fd: int, subformat: str = "dynamic", **options: object) -> int:
    """Write ``disk`` as a VHD into the seekable file ``fd``; return the file's length."""
    return VhdWriter(disk, subformat=subformat, **options).write_to(fd)  # type: ignore[arg-type]
