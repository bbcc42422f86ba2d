"""Blob stores: where the object engine keeps the bytes of each stored part.

The engine (``objects/store.py``) owns every row: names, metadata, ETags, manifests, and the extent
map of each blob. A blob store only keeps immutable byte strings under opaque ids, as glance_store
drivers do. A blob holds only the *data runs* of an object, packed one after the other; the extent
map in the database says where each run lies in the object, so holes (zeros) are never stored and
sparse reads, the extents extension and the content digest work the same on every backend. A run
may also lie in another blob (an object built by reference, with reference counts in the database):
that is the engine's business too, so every store shares bytes between objects without knowing it.

    store = open_blob_store(settings, region_dir)
    w = store.writer(blob_id); w.write(b"..."); w.commit()   # or w.abort(); nothing visible before commit
    r = store.reader(blob_id, size); r.read(offset, n); r.close()
    store.delete(blob_id)       # a committed blob; idempotent
    store.discard(blob_id)      # whatever an unfinished write left (temp file, multipart upload, segments)
    store.check()               # readiness: raises when the store cannot be reached
    store.list_ids()            # every blob id present (audits and tests; never used at start-up)

A writer may keep a reference to what ``write`` is given (to send it later); one that never does says
so with ``keeps_writes = False`` on its store, and the engine then hands it reused buffers without a
copy (the ``file`` store does; the others get ``bytes``).

Implementations: ``file`` (local files, the embedded default), ``s3`` (any S3-compatible store) and
``swift`` (an OpenStack Swift cluster).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from imagehop.config import BlobSettings


class BlobError(Exception):
    """The blob store failed or refused an operation."""


class BlobWriter(Protocol):
    def write(self, data: bytes) -> None:
        """Append ``data`` (any size) to the blob."""

    def commit(self) -> None:
        """Make the blob durable and readable under its id."""

    def abort(self) -> None:
        """Drop whatever was written; safe to call more than once and after a failed commit."""


class BlobReader(Protocol):
    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset`` (a short blob raises :class:`BlobError`)."""

    def close(self) -> None: ...


@runtime_checkable
class FileRun(Protocol):
    """A blob reader whose bytes lie in an open file (the ``file`` store): a response may send them
    straight from it (``sendfile``), then says it is done with them."""

    def fileno(self) -> int: ...

    def release(self, offset: int, length: int) -> None: ...


class BlobStore(Protocol):
    kind: str
    delete_grace: float  # seconds a replaced or deleted blob is kept for readers in flight

    def writer(self, blob_id: str, keep_cache: bool = True) -> BlobWriter:
        """A writer of a new blob; ``keep_cache=False``: its bytes are not expected to be read again
        soon, so a store with a local page cache may drop them as written (others ignore it)."""

    def reader(self, blob_id: str, size: int, keep_cache: bool = True) -> BlobReader:
        """A reader of a committed blob; ``keep_cache=False`` as for :meth:`writer`."""

    def delete(self, blob_id: str) -> None: ...

    def discard(self, blob_id: str) -> None: ...

    def check(self) -> None: ...

    def list_ids(self) -> Iterator[str]: ...


def open_blob_store(settings: BlobSettings, region_dir: Path) -> BlobStore:
    """The blob store a region's settings name."""
    if settings.kind == "file":
        from imagehop.objects.blobs.file import FileBlobStore

        return FileBlobStore(region_dir / "objects", settings.delete_grace)
    if settings.kind == "s3":
        from imagehop.objects.blobs.s3 import S3BlobStore

        return S3BlobStore(settings)
    if settings.kind == "swift":
        from imagehop.objects.blobs.swift import SwiftBlobStore

        return SwiftBlobStore(settings)
    raise ValueError(f"unknown blob store {settings.kind!r}")
