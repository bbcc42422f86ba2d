"""Image bytes, kept through the region's object storage engine (one internal account).

The one place images meet ``objects/``: an image's data is the object ``images/<image id>`` of the
internal account ``.imagehop-images``, which no Swift request can name (Swift accounts are
``AUTH_<tenant>``). The engine streams to a temp file, fsyncs, renames, then commits its row, and
hashes MD5 and SHA-512 beside the writer; we add the content digest and the virtual size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imagehop import formats
from imagehop.images.errors import BadRequest, UnsupportedMediaType
from imagehop.objects.store import NoSuchContainer, NoSuchObject, ObjectStore, ObjectWriter, StoreError
from imagehop.region import Region

ACCOUNT = ".imagehop-images"
CONTAINER = "images"
KEPT = "kept-uploads"  # the part of an interrupted resumable upload, kept for the next PUT to append to
MEASURED_FORMATS = {"raw": "raw", "vhd": "vhd", "qcow2": "qcow2"}
SAFETY_CHECKED = ("qcow2", "vmdk")


@dataclass(frozen=True)
class StoredData:
    key: str
    size: int
    md5: str
    sha512: str
    virtual_size: int | None
    content_digest: str | None
    blocks: formats.BlockMap | None = None  # the block map, from the same pass as the digest


class ImageData:
    def __init__(self, region: Region) -> None:
        objects = getattr(region, "objects", None)
        self.objects: ObjectStore = objects if objects is not None else ObjectStore(region.engine, region.data_dir)
        self._ready = False

    def _container(self) -> None:
        if not self._ready:
            self.objects.ensure_container(ACCOUNT, CONTAINER)
            self._ready = True

    def writer(self, image_id: str, disk_format: str | None, container_format: str | None = None) -> DataWriter:
        self._container()
        return DataWriter(self, image_id, disk_format, container_format)

    def size(self, key: str) -> int:
        return self.objects.head(ACCOUNT, CONTAINER, key).size

    def extents(self, key: str) -> list[tuple[int, int]]:
        """The (offset, length) ranges of the stored bytes that may be non-zero; the rest are holes."""
        with self.objects.open(ACCOUNT, CONTAINER, key) as reader:
            return list(reader.extents())

    def read(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """``length`` bytes from ``start``, in chunks (blocking: iterate in a worker thread)."""
        with self.objects.open(ACCOUNT, CONTAINER, key) as reader:
            yield from reader.iter_range(start, length)

    def open(self, key: str) -> formats.VirtualDisk:
        """The stored image as a disk (native raw); a sparse reader: holes are never read.

        The caller closes it (``disk.close()`` or ``with``).
        """
        reader = self.objects.open(ACCOUNT, CONTAINER, key)
        return formats.RawDisk(reader)

    def open_as(self, key: str, disk_format: str | None) -> formats.VirtualDisk:
        """The stored image as a disk of its ``disk_format`` (raw for formats we do not parse)."""
        reader = self.objects.open(ACCOUNT, CONTAINER, key)
        try:
            return formats.open_disk(reader, disk_format if disk_format in formats.FORMATS else "raw")
        except BaseException:
            reader.close()
            raise

    def write_disk(
        self,
        key: str,
        disk: formats.VirtualDisk,
        progress: Callable[[int], object] | None = None,
        known_hashes: tuple[str, str] | None = None,
    ) -> StoredData:
        """Store ``disk`` as a native raw image under ``key``: zero blocks become holes.

        One read pass: the object engine hashes MD5 and SHA-512 (zeros included, without writing
        them) and we feed the content digest. ``progress`` gets the virtual bytes done. Nothing is
        visible until the final commit; any error leaves nothing behind.
        """
        self._container()
        if known_hashes is None:
            writer = self.objects.writer(ACCOUNT, CONTAINER, key, hashes=("sha512",))
        else:
            # The caller knows the MD5 and SHA-512 of these exact bytes and checks the content digest
            # afterwards (equal digest and size: identical raw bytes), so neither is computed again.
            writer = self.objects.writer(ACCOUNT, CONTAINER, key, known_etag=known_hashes[0])
        digest = formats.ContentDigest(disk.virtual_size, threads=2)  # SHA-256 beside the reads and writes
        size = disk.virtual_size
        # Blocks are read into a few reused buffers (a fresh 2 MiB per block costs its page faults);
        # each goes back to the ring once its SHA-256 is done, long after the writer hashed it.
        ring = formats.BufferRing()
        try:
            position = 0
            for index, buf in formats.iter_blocks_into(disk, ring):
                offset = index * formats.BLOCK_SIZE
                writer.skip(offset - position)
                hashed = digest.submit_block(index, buf)
                chunk = buf if offset + len(buf) <= size else bytes(memoryview(buf)[: size - offset])
                writer.write_buffer(chunk)
                ring.hold(buf, (hashed,))
                position = offset + len(chunk)
                if progress is not None:
                    progress(position)
            ring.drain()
            writer.skip(size - position)
            info = writer.commit()
        except BaseException:
            writer.abort()
            with contextlib.suppress(BaseException):
                ring.drain()
            raise
        if progress is not None:
            progress(size)
        sha512 = known_hashes[1] if known_hashes is not None else writer.digests["sha512"]
        blocks = digest.block_map()
        return StoredData(key, info.size, info.etag, sha512, size, blocks.content_digest, blocks)

    def check_safe(self, container: str, key: str, disk_format: str | None) -> None:
        """BadRequest if the stored bytes are a qcow2/VMDK that Glance's format inspector refuses
        (read through the object engine, whatever the blob store)."""
        if disk_format not in SAFETY_CHECKED:
            return
        with self.objects.open(ACCOUNT, container, key) as source:
            try:
                formats.check_safe(source, disk_format)
            except formats.DiskFormatError as exc:
                raise BadRequest(f"Image data is not acceptable: {exc}") from None

    def check_format(self, container: str, key: str, disk_format: str | None, empty: bool = False) -> None:
        """415 as Glance 33 answers an upload whose bytes are not the ``disk_format`` it claims."""
        found = "raw"
        if not empty:
            with self.objects.open(ACCOUNT, container, key) as source:
                found = formats.content_format(source)
        refusal = formats.format_mismatch(disk_format, found)
        if refusal is not None:
            raise UnsupportedMediaType(
                f"The request media type application/octet-stream is not supported by this server. {refusal}"
            )

    def staged_size(self, image_id: str) -> int:
        """Bytes staged for ``image_id`` (0 when none)."""
        try:
            return self.objects.head(ACCOUNT, "staging", image_id).size
        except (NoSuchObject, NoSuchContainer):
            return 0

    def delete(self, key: str) -> None:
        with contextlib.suppress(NoSuchObject):
            self.objects.delete_object(ACCOUNT, CONTAINER, key)

    # --- resumable uploads (imagehop's extension; see ImageService.upload) ---------------------

    def kept_size(self, image_id: str) -> int:
        """Bytes kept from ``image_id``'s interrupted resumable upload (0 when none)."""
        try:
            return self.objects.head(ACCOUNT, KEPT, image_id).size
        except (NoSuchObject, NoSuchContainer):
            return 0

    def replay_kept(self, writer: DataWriter, image_id: str, length: int) -> None:
        """Feed the first ``length`` kept bytes to ``writer``: read back and hashed again here (a
        hash's state cannot be saved), so that the client need not read them from its source again."""
        with self.objects.open(ACCOUNT, KEPT, image_id) as reader:
            for chunk in reader.iter_range(0, length):
                writer.write(chunk)

    def drop_kept(self, image_id: str) -> None:
        with contextlib.suppress(NoSuchObject, NoSuchContainer):
            self.objects.delete_object(ACCOUNT, KEPT, image_id)


class DataWriter:
    """Streams one image's bytes; :meth:`commit` makes them durable and measures them."""

    def __init__(
        self, data: ImageData, image_id: str, disk_format: str | None, container_format: str | None = None
    ) -> None:
        self.data = data
        self.key = image_id
        self.disk_format = disk_format
        self.container_format = container_format
        self._writer: ObjectWriter = data.objects.writer(ACCOUNT, CONTAINER, image_id, hashes=("sha512",))
        self._raw_digest = formats.RawStreamDigest() if disk_format == "raw" else None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._writer.write(chunk)
        if self._raw_digest is not None:
            self._raw_digest.feed(chunk)
        self.size += len(chunk)

    def commit(self) -> StoredData:
        info = self._writer.commit()
        try:
            if self.container_format == "bare":  # Glance inspects bare images only
                self.data.check_format(CONTAINER, self.key, self.disk_format, empty=not info.file_id)
            if info.file_id:
                self.data.check_safe(CONTAINER, self.key, self.disk_format)
        except (BadRequest, UnsupportedMediaType):
            self.data.delete(self.key)
            raise
        blocks = None
        if self._raw_digest is not None:
            blocks = self._raw_digest.block_map()
        elif self.disk_format in MEASURED_FORMATS and info.size:
            blocks = self._measure()
        virtual_size, digest = (blocks.virtual_size, blocks.content_digest) if blocks else (None, None)
        return StoredData(self.key, info.size, info.etag, self._writer.digests["sha512"], virtual_size, digest, blocks)

    def _measure(self) -> formats.BlockMap | None:
        """The block map (virtual size, content digest) of a VHD or qcow2; None if it is not one.

        Read back through the object engine (whatever the blob store), never from a file directly.
        """
        try:
            with self.data.objects.open(ACCOUNT, CONTAINER, self.key) as reader:
                disk = formats.open_disk(reader, self.disk_format)
                return formats.block_map(disk)
        except (formats.DiskFormatError, ValueError, OSError, StoreError):
            return None

    def keep(self) -> int:
        """Commit what arrived so far as the image's kept upload (not as its data); its size."""
        self.data.objects.ensure_container(ACCOUNT, KEPT)
        self._writer.retarget(KEPT, self.key)
        return self._writer.commit().size

    def abort(self) -> None:
        self._writer.abort()
