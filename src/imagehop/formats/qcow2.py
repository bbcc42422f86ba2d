"""qcow2 (versions 2 and 3), read-only, for importing stand-alone images.

Only the active L1/L2 mapping is read: refcounts, snapshots and bitmaps do not matter for the
guest-visible content. We refuse anything that would make the content depend on something other
than this one file, or that we cannot decode with the standard library: backing files (721),
encryption, external data files, zstd compression, extended L2 entries and unknown incompatible
features (523), and images marked corrupt (111).

On open the whole active mapping is checked, as the VHD reader checks its block table (111): no
table or data cluster outside the file, no L2 table or data cluster inside the header, the L1 table,
the refcount structures or another L2 table, and no host cluster used twice (a cross-linked image
where every L2 entry points at one cluster would otherwise import as a fully written disk many
times its size). Compressed clusters may share host clusters with each other but nothing else, and
the data may expand to at most ``MAX_EXPANSION`` times the file (a deflate bomb).
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterator

from .disk import ZERO_BLOCK, DiskBase, check_limits, merge_extents
from .errors import HAS_PARENT, NOT_THIS_FORMAT, UNSUPPORTED_TYPE, DiskFormatError, corrupt
from .source import Source

MAGIC = b"QFI\xfb"

INCOMPAT_DIRTY = 1 << 0  # refcounts may be stale; the mapping is still good for reading
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2

OFFSET_MASK = 0x00FFFFFFFFFFFE00  # bits 9-55: L1 -> L2 table, L2 -> data cluster
COMPRESSED = 1 << 62
ZERO_FLAG = 1 << 0
MAX_L1_BYTES = 32 * 1024 * 1024  # qemu's limit
MAX_EXPANSION = 100  # guest bytes allocated per byte of file: compressed real disks are far below
L2_CACHE_BYTES = 16 * 1024 * 1024

_V2 = struct.Struct(">4sIQIIQIIQQIIQ")  # 72 bytes
_V3 = struct.Struct(">QQQII")  # bytes 72-103

_UNALLOCATED, _ZERO, _DATA, _COMPRESSED = range(4)


class Qcow2Disk(DiskBase):
    """A stand-alone qcow2 image, validated on open; see the module docstring for refusals."""

    format = "qcow2"

    def __init__(
        self,
        source: Source,
        *,
        max_virtual_size: int | None = None,
        max_physical_size: int | None = None,
    ) -> None:
        self.source = source
        file_size = source.size
        head = source.pread(0, 4096)
        if len(head) < _V2.size or head[:4] != MAGIC:
            raise DiskFormatError(NOT_THIS_FORMAT, "The file is not a qcow2 image: no 'QFI\\xfb' magic")
        (
            _magic,
            version,
            backing_offset,
            _backing_size,
            cluster_bits,
            size,
            crypt_method,
            l1_size,
            l1_offset,
            refcount_offset,
            refcount_clusters,
            _nb_snapshots,
            _snapshots_offset,
        ) = _V2.unpack_from(head)
        if version not in (2, 3):
            raise DiskFormatError(UNSUPPORTED_TYPE, f"The qcow2 version {version} is not supported")
        incompatible = 0
        compression_type = 0
        if version == 3:
            if len(head) < _V2.size + _V3.size:
                raise corrupt("The qcow2 header is truncated")
            incompatible, _compat, _autoclear, _refcount_order, header_length = _V3.unpack_from(head, _V2.size)
            if header_length < 104 or header_length > len(head):
                raise corrupt(f"The qcow2 header length {header_length} is invalid")
            if header_length > 104:
                compression_type = head[104]
        if backing_offset:
            raise DiskFormatError(
                HAS_PARENT, "The qcow2 image has a backing file; only stand-alone images can be imported", unsafe=True
            )
        if crypt_method:
            raise DiskFormatError(UNSUPPORTED_TYPE, "Encrypted qcow2 images are not supported")
        if incompatible & INCOMPAT_CORRUPT:
            raise corrupt("The qcow2 image is marked corrupt")
        if incompatible & INCOMPAT_DATA_FILE:
            raise DiskFormatError(
                UNSUPPORTED_TYPE, "The qcow2 image uses an external data file, which is not supported", unsafe=True
            )
        if incompatible & INCOMPAT_EXTL2:
            raise DiskFormatError(UNSUPPORTED_TYPE, "The qcow2 image uses extended L2 entries, which are not supported")
        if incompatible & ~KNOWN_INCOMPAT:
            raise DiskFormatError(
                UNSUPPORTED_TYPE,
                f"The qcow2 image uses unknown incompatible features {incompatible:#x}",
            )
        if compression_type != 0:
            raise DiskFormatError(
                UNSUPPORTED_TYPE,
                f"The qcow2 compression type {compression_type} (zstd) is not supported; only deflate is",
            )
        if not 9 <= cluster_bits <= 21:
            raise corrupt(f"The qcow2 cluster_bits {cluster_bits} is outside 9-21")
        check_limits(size, file_size, max_virtual_size, max_physical_size, "qcow2")

        self.version = version
        self.virtual_size = size
        self.cluster_bits = cluster_bits
        self.cluster_size = cs = 1 << cluster_bits
        self.l2_entries = cs // 8
        needed = -(-size // (cs * self.l2_entries))
        if l1_size < needed:
            raise corrupt(f"The qcow2 L1 table of {l1_size} entries does not cover the disk")
        if l1_size * 8 > MAX_L1_BYTES:
            raise corrupt(f"The qcow2 L1 table of {l1_size} entries is too large")
        if l1_offset % cs or l1_offset + l1_size * 8 > file_size:
            raise corrupt("The qcow2 L1 table lies outside the file or is unaligned")
        self._l1 = _be64_array(source.pread(l1_offset, l1_size * 8))
        for i, entry in enumerate(self._l1):
            l2 = entry & OFFSET_MASK
            if l2 and (l2 % cs or l2 + cs > file_size):
                raise corrupt(f"The qcow2 L2 table {i} lies outside the file or is unaligned")
        self._l2_cache: OrderedDict[int, array] = OrderedDict()
        self._l2_cache_max = max(4, L2_CACHE_BYTES // cs)
        self._csize_shift = 62 - (cluster_bits - 8)
        self._last_compressed: tuple[int, bytes] = (-1, b"")
        self._check_layout(l1_offset, l1_size, refcount_offset, refcount_clusters)

    # -- validation

    def _check_layout(self, l1_offset: int, l1_size: int, refcount_offset: int, refcount_clusters: int) -> None:
        """Every cluster the active mapping uses has one owner; see the module docstring."""
        cs, file_size = self.cluster_size, self.source.size
        owners = _ClusterMap(file_size, cs)
        owners.claim(0, cs, _META, "the header")
        owners.claim(l1_offset, l1_size * 8, _META, "the L1 table")
        if refcount_clusters:
            if refcount_offset % cs or refcount_clusters * cs > file_size:
                raise corrupt("The qcow2 refcount table lies outside the file or is unaligned")
            owners.claim(refcount_offset, refcount_clusters * cs, _META, "the refcount table")
            for index, entry in enumerate(_be64_array(self.source.pread(refcount_offset, refcount_clusters * cs))):
                block = entry & OFFSET_MASK
                if block:
                    owners.claim(block, cs, _META, f"refcount block {index}")
        tables = [(i, entry & OFFSET_MASK) for i, entry in enumerate(self._l1) if entry & OFFSET_MASK]
        for index, offset in tables:
            owners.claim(offset, cs, _META, f"L2 table {index}")
        allocated = 0
        for index, offset in tables:
            table = _be64_array(self.source.pread(offset, cs))
            for slot, entry in enumerate(table):
                if not entry:
                    continue
                kind, where = self._decode(entry)
                if kind == _DATA:
                    owners.claim(where, cs, _DATA_OWNER, f"data cluster {index * self.l2_entries + slot}")
                elif kind == _COMPRESSED:
                    host, length = self._compressed_extent(where)
                    owners.claim(host, length, _SHARED, f"compressed cluster {index * self.l2_entries + slot}")
                else:
                    continue
                allocated += cs
        if allocated > max(file_size, cs) * MAX_EXPANSION:
            raise corrupt(
                f"The qcow2 image maps {allocated} bytes of data from a {file_size}-byte file, more than "
                f"{MAX_EXPANSION} times its size",
                unsafe=True,
            )

    def _compressed_extent(self, descriptor: int) -> tuple[int, int]:
        shift = self._csize_shift
        host = descriptor & ((1 << shift) - 1)
        sectors = ((descriptor >> shift) & ((1 << (self.cluster_bits - 8)) - 1)) + 1
        length = sectors * 512 - (host % 512)
        if host >= self.source.size:
            raise corrupt("The qcow2 compressed cluster lies outside the file")
        return host, min(length, self.source.size - host)

    # -- mapping

    def _l2_table(self, l1_index: int) -> array | None:
        if l1_index >= len(self._l1):
            return None
        offset = self._l1[l1_index] & OFFSET_MASK
        if not offset:
            return None
        table = self._l2_cache.get(offset)
        if table is None:
            table = _be64_array(self.source.pread(offset, self.cluster_size))
            self._l2_cache[offset] = table
            if len(self._l2_cache) > self._l2_cache_max:
                self._l2_cache.popitem(last=False)
        else:
            self._l2_cache.move_to_end(offset)
        return table

    def _decode(self, entry: int) -> tuple[int, int]:
        """(kind, host offset or compressed descriptor) for one L2 entry."""
        if entry & COMPRESSED:
            return _COMPRESSED, entry
        if self.version >= 3 and entry & ZERO_FLAG:
            return _ZERO, 0
        host = entry & OFFSET_MASK
        if not host:
            return _UNALLOCATED, 0
        if host % self.cluster_size or host >= self.source.size:
            raise corrupt(f"The qcow2 data cluster at {host} lies outside the file or is unaligned")
        return _DATA, host

    def _lookup(self, cluster: int) -> tuple[int, int]:
        l1_index, l2_index = divmod(cluster, self.l2_entries)
        table = self._l2_table(l1_index)
        if table is None:
            return _UNALLOCATED, 0
        return self._decode(table[l2_index])

    def _decompress(self, cluster: int, descriptor: int) -> bytes:
        if self._last_compressed[0] == cluster:
            return self._last_compressed[1]
        host, length = self._compressed_extent(descriptor)
        packed = self.source.pread(host, length)
        try:
            data = zlib.decompressobj(-15).decompress(packed, self.cluster_size)
        except zlib.error as exc:
            raise corrupt(f"The qcow2 compressed cluster {cluster} does not decompress: {exc}") from None
        if len(data) != self.cluster_size:
            raise corrupt(f"The qcow2 compressed cluster {cluster} is truncated")
        self._last_compressed = (cluster, data)
        return data

    # -- VirtualDisk

    def extents(self) -> Iterator[tuple[int, int]]:
        cs, size, per_table = self.cluster_size, self.virtual_size, self.l2_entries
        clusters = -(-size // cs)

        def ranges() -> Iterator[tuple[int, int]]:
            for l1_index in range(-(-clusters // per_table)):
                table = self._l2_table(l1_index)
                if table is None:
                    continue
                base = l1_index * per_table
                for i, entry in enumerate(table[: clusters - base]):
                    if entry and self._decode(entry)[0] in (_DATA, _COMPRESSED):
                        offset = (base + i) * cs
                        yield offset, min(cs, size - offset)

        return merge_extents(ranges())

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        inside = max(0, min(length, self.virtual_size - offset))
        cs = self.cluster_size
        parts: list[bytes] = []
        run_host = run_len = 0
        pos, end = offset, offset + inside
        while pos < end:
            cluster, inner = divmod(pos, cs)
            n = min(cs - inner, end - pos)
            kind, where = self._lookup(cluster)
            if kind == _DATA:
                if run_len and run_host + run_len == where + inner:
                    run_len += n
                else:
                    if run_len:
                        parts.append(self._read_host(run_host, run_len))
                    run_host, run_len = where + inner, n
            else:
                if run_len:
                    parts.append(self._read_host(run_host, run_len))
                    run_len = 0
                if kind == _COMPRESSED:
                    data = self._decompress(cluster, where)
                    parts.append(data if n == cs else data[inner : inner + n])
                else:
                    parts.append(ZERO_BLOCK[:n] if n <= len(ZERO_BLOCK) else bytes(n))
            pos += n
        if run_len:
            parts.append(self._read_host(run_host, run_len))
        if inside < length:
            parts.append(bytes(length - inside))
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_host(self, offset: int, length: int) -> bytes:
        data = self.source.pread(offset, length)
        if len(data) != length:
            raise corrupt("The qcow2 data cluster is truncated")
        return data


_FREE, _META, _DATA_OWNER, _SHARED = range(4)
_OWNER_NAMES = {_META: "metadata", _DATA_OWNER: "a data cluster", _SHARED: "compressed data"}


class _ClusterMap:
    """Who uses each host cluster of the file: one byte per cluster (a 160 GiB file of 64 KiB
    clusters costs 2.5 MiB)."""

    def __init__(self, file_size: int, cluster_size: int) -> None:
        self.cluster_size = cluster_size
        self.owners = bytearray(-(-file_size // cluster_size))

    def claim(self, offset: int, length: int, owner: int, what: str) -> None:
        if length <= 0:
            return
        first, last = offset // self.cluster_size, (offset + length - 1) // self.cluster_size
        if last >= len(self.owners):
            raise corrupt(f"The qcow2 {what} lies outside the file", unsafe=True)
        for cluster in range(first, last + 1):
            current = self.owners[cluster]
            if current and not (current == owner == _SHARED):
                where = cluster * self.cluster_size
                raise corrupt(f"The qcow2 {what} overlaps {_OWNER_NAMES[current]} at offset {where}", unsafe=True)
            self.owners[cluster] = owner


def _be64_array(raw: bytes) -> array:
    table = array("Q")
    table.frombytes(raw[: len(raw) - len(raw) % 8])
    if struct.pack("=Q", 1) != struct.pack(">Q", 1):
        table.byteswap()
    return table
