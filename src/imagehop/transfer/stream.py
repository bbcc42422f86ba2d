"""The direct stream: an image's bytes from one Glance v2 image data API into another's.

No staging disk: ``GET /v2/images/{id}/file`` is read in 1 MiB chunks and written on at once.
Memory is bounded by a few chunks in flight. MD5 and the hash Glance computes (SHA-512 unless the
cloud says otherwise) are computed in flight, each in its own thread (hashlib releases the GIL),
and compared afterwards with the target's ``checksum`` / ``os_hash_value`` and with the source's.

Three ways into the target:
- ``resumable``: where the target keeps a broken upload (imagehop's extension, advertised by
  ``imagehop.upload_kept`` in its image schema): ``PUT /v2/images/{id}/file`` with
  ``X-Imagehop-Resumable``, the bytes written once. After a crash the next run reads the kept count
  from the image and sends only the rest, read from the source with ``Range`` (a store that ignores
  ``Range`` is read from the start and the bytes before the offset skipped).
- ``put``: Glance's ``PUT /v2/images/{id}/file`` (or ``PUT .../stage`` and a ``glance-direct``
  import where the cloud refuses a direct upload). Glance drops a partial upload, so after a crash
  the next run sends the image again into the same queued image.
- ``segments``: into an imagehop from before resumable uploads (object storage and import tasks):
  verified segments into its object storage (the mover, with its journal), then an import task;
  after a crash the next run reads only the segments not yet verified.

``--convert`` reads the source as a disk through ranged reads (``formats/`` parses VHD and qcow2
headers and tables wherever they lie) and writes the new format as a stream: raw, or a dynamic VHD.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from imagehop import formats
from imagehop.transfer.glance import GlanceClient, GlanceError
from imagehop.transfer.swift import ObjectHead, Segment

CHUNK = 1 << 20
CONVERSIONS = {("qcow2", "raw"), ("vhd", "raw"), ("raw", "vhd"), ("vhd", "vhd"), ("qcow2", "vhd")}


class StreamError(Exception):
    """The stream stopped; the message says why."""


# --- hashing in flight --------------------------------------------------------------------------


class Hashes:
    """MD5 and one more hash (``sha512`` by default) over a byte stream, each in its own thread."""

    def __init__(self, algo: str = "sha512", depth: int = 8) -> None:
        try:
            second = hashlib.new(algo)
        except ValueError:
            algo, second = "sha512", hashlib.sha512()
        self.algo = algo
        self._hashes = (hashlib.md5(), second)
        self._queues: list[queue.Queue] = [queue.Queue(depth) for _ in self._hashes]
        self._threads = [
            threading.Thread(target=self._run, args=(h, q), daemon=True, name=f"imagehop-hash-{i}")
            for i, (h, q) in enumerate(zip(self._hashes, self._queues, strict=True))
        ]
        for thread in self._threads:
            thread.start()
        self.size = 0

    @staticmethod
    def _run(hasher: Any, chunks: queue.Queue) -> None:
        while (chunk := chunks.get()) is not None:
            hasher.update(chunk)

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        for q in self._queues:
            q.put(chunk)

    def finish(self) -> tuple[str, str]:
        """``(md5 hex, <algo> hex)``; waits for both threads."""
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()
        return self._hashes[0].hexdigest(), self._hashes[1].hexdigest()


def hashed(chunks: Iterator[bytes], hashes: Hashes, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in chunks:
        chunk = bytes(chunk)
        hashes.feed(chunk)
        if progress is not None:
            progress(len(chunk))
        yield chunk


# --- reading the source ---------------------------------------------------------------------------


@contextmanager
def read_image(glance: GlanceClient, image_id: str, offset: int = 0, length: int | None = None) -> Iterator[Any]:
    """The image's bytes ``[offset, offset+length)`` as chunks; skips when the store ignores Range."""
    with glance.download(image_id, offset) as (chunks, ranged):
        yield _window(chunks, 0 if ranged else offset, length)


def _window(chunks: Iterator[bytes], skip: int, length: int | None) -> Iterator[bytes]:
    left = length
    for chunk in chunks:
        if skip:
            if len(chunk) <= skip:
                skip -= len(chunk)
                continue
            chunk, skip = chunk[skip:], 0
        if left is not None:
            if len(chunk) >= left:
                if left:
                    yield chunk[:left]
                return
            left -= len(chunk)
        yield chunk
    if left:
        raise StreamError(f"the source ended {left} bytes early")


class RangeSource:
    """A ``formats.Source`` over an image's data API: positional reads as ranged GETs, read ahead in
    windows so that a disk reader's many small reads become a few large requests."""

    WINDOW = 8 << 20

    def __init__(self, glance: GlanceClient, image_id: str, size: int) -> None:
        self.glance = glance
        self.image_id = image_id
        self.size = size
        self._start = 0
        self._buf = b""
        self.bytes_read = 0

    def pread(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        if not (self._start <= offset and offset + length <= self._start + len(self._buf)):
            want = min(max(length, self.WINDOW), self.size - offset)
            with self.glance.download(self.image_id, offset) as (chunks, ranged):
                if not ranged and offset:
                    raise StreamError(
                        f"{self.glance.region} ignores Range requests on image data, which --convert needs"
                    )
                parts, got = [], 0
                for chunk in chunks:
                    parts.append(bytes(chunk))
                    got += len(chunk)
                    if got >= want:
                        break
            self._start, self._buf = offset, b"".join(parts)[:want]
            self.bytes_read += len(self._buf)
        start = offset - self._start
        return self._buf[start : start + length]

    def close(self) -> None:
        self._buf = b""


def converted(glance: GlanceClient, image: dict[str, Any], to: str) -> tuple[Iterator[bytes], int]:
    """The source image as ``to`` (raw or a dynamic VHD), streamed; ``(chunks, length)``."""
    fmt = image.get("disk_format") or "raw"
    if (fmt, to) not in CONVERSIONS:
        raise StreamError(cannot_convert(fmt, to))
    source = RangeSource(glance, image["id"], int(image.get("size") or 0))
    try:
        disk = formats.open_disk(source, fmt)
    except (formats.DiskFormatError, ValueError) as exc:
        raise StreamError(f"the source image {image['id']} is not a readable {fmt}: {exc}") from exc
    if to == "raw":
        return _raw_stream(disk), disk.virtual_size
    writer = formats.VhdWriter(disk, subformat="dynamic")
    writer.allocated_blocks()  # reads the disk once to find the blocks that hold data
    return iter(writer), writer.size


def _raw_stream(disk: formats.VirtualDisk) -> Iterator[bytes]:
    position = 0
    size = disk.virtual_size
    zero = bytes(formats.BLOCK_SIZE)
    for index, block in disk.iter_blocks(formats.BLOCK_SIZE):
        offset = index * formats.BLOCK_SIZE
        while position < offset:
            step = min(formats.BLOCK_SIZE, offset - position)
            yield zero[:step]
            position += step
        block = block[: size - offset]
        yield block
        position = offset + len(block)
    while position < size:
        step = min(formats.BLOCK_SIZE, size - position)
        yield zero[:step]
        position += step
    disk.close()


def cannot_convert(fmt: str, to: str) -> str:
    return (
        f"imagehop cannot convert {fmt} to {to} while streaming (it converts qcow2 or VHD to raw, and raw, qcow2 "
        f"or VHD to a dynamic VHD); convert it first with `qemu-img convert -O {to}` or pick another --convert"
    )


# --- the image as a source object for the mover (the resumable "segments" way) -------------------


class ImageFileSource:
    """Makes an image's data API look like the one object the mover reads from (``SwiftClient``'s
    read side): its size, an identity for the journal, and ranged streams."""

    def __init__(self, glance: GlanceClient, image: dict[str, Any]) -> None:
        self.glance = glance
        self.image = image
        self.region = glance.region
        self.storage_url = f"{glance.base}/images/{image['id']}/file"
        self.bytes_read = 0

    def head_object(self, _container: str, _name: str) -> ObjectHead:
        tag = self.image.get("os_hash_value") or self.image.get("checksum") or self.image.get("updated_at") or ""
        return ObjectHead(int(self.image.get("size") or 0), str(tag), "", False, None, "application/octet-stream")

    def large_object_segments(self, *_args: Any) -> list[Segment] | None:
        return None

    @contextmanager
    def get_stream(self, _container: str, _name: str, start: int, length: int, chunk: int = CHUNK) -> Iterator[Any]:
        from imagehop.transfer.swift import SwiftError

        try:
            with read_image(self.glance, self.image["id"], start, length) as chunks:
                yield self._count(chunks)
        except (GlanceError, StreamError) as exc:
            raise SwiftError(str(exc), getattr(exc, "status", 0)) from exc

    def _count(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.bytes_read += len(chunk)
            yield chunk


# --- writing into the target by PUT -----------------------------------------------------------------


@dataclass
class Streamed:
    size: int
    md5: str
    algo: str
    digest: str
    upload: str  # "put", "glance-direct" or "resumable"
    read: int = 0  # bytes read from the source
    resumed_at: int = 0  # where a resumable upload started (bytes the target kept from before)


def put_stream(
    source: GlanceClient,
    image: dict[str, Any],
    target: GlanceClient,
    target_id: str,
    *,
    convert: str | None = None,
    algo: str = "sha512",
    progress: Callable[[int], None] | None = None,
    glance_direct: bool = False,
) -> Streamed:
    """Stream the source image's bytes (converted when asked) into the queued target image."""
    hashes = Hashes(algo)
    upload = "glance-direct" if glance_direct else "put"
    try:
        if convert:
            chunks, length = converted(source, image, convert)
            target.put_data(target_id, hashed(chunks, hashes, progress), length, stage=glance_direct)
        else:
            length = int(image.get("size") or 0) or None
            with read_image(source, image["id"]) as chunks:
                target.put_data(target_id, hashed(chunks, hashes, progress), length, stage=glance_direct)
    finally:
        md5, digest = hashes.finish()
    return Streamed(hashes.size, md5, hashes.algo, digest, upload)


def put_resumable(
    source: GlanceClient,
    image: dict[str, Any],
    target: GlanceClient,
    target_id: str,
    resume_at: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> Streamed:
    """Stream the source image's bytes from ``resume_at`` into an imagehop target that keeps a
    broken upload (``PUT /file`` with ``X-Imagehop-Resumable``); the bytes before it are the ones
    the target kept, never read from the source again (with ``Range``; a store that ignores it is
    read from the start and the bytes before skipped). Nothing is hashed here: the target hashes
    every byte, the kept ones included, and the caller compares its checksum and ``os_hash_value``
    with the source's, which covers the whole image end to end."""
    size = int(image.get("size") or 0)
    counted = [0]

    def chunks(stream: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in stream:
            counted[0] += len(chunk)
            if progress is not None:
                progress(len(chunk))
            yield chunk

    with read_image(source, image["id"], resume_at) as stream:
        target.put_data(target_id, chunks(stream), size or None, resume_at=resume_at)
    return Streamed(resume_at + counted[0], "", "", "", "resumable", read=counted[0], resumed_at=resume_at)
