"""The ``file`` blob store: one file per blob under the region's data dir (the embedded default).

A write goes to ``tmp/<id>``, is fsynced and renamed to ``data/<id[:2]>/<id>`` (and the directory
fsynced) at commit. Every :data:`WRITE_BEHIND` bytes, a writer asks the kernel to start writing what
it wrote so far (``sync_file_range``, which does not wait): the page cache of a machine with a lot of
memory would otherwise hold a whole upload of gigabytes dirty until the fsync at commit, so the disk
would sit idle while the bytes arrive and then the commit would wait for all of them.

A writer made with ``keep_cache=False`` (an upload through the object storage API, whose bytes are
not expected to be read again at once) also drops what it wrote from the page cache as it goes, as
Swift's object server does: every :data:`DROP_LAG` bytes it waits for the writeback of the range that
far behind and lets the kernel free its pages (``POSIX_FADV_DONTNEED``), and at commit the whole
file's. Copying into pages the kernel must first find and free costs an upload more CPU than the
disk does; recycled pages cost little. A blob smaller than :data:`WRITE_BEHIND` stays in the cache.
A reader made with ``keep_cache=False`` (a download through the API) of a blob that large reads it
with the kernel's longer sequential read-ahead and drops each range once it was read or sent
(:meth:`FileBlobReader.release`), as Swift's object server does for objects over its keep_cache_size.

Names never reach the filesystem: blob ids are random hex. A reader holds an open file descriptor,
so a blob deleted while it is read stays readable to that reader; that is why the default
``delete_grace`` of this store is 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from imagehop.objects.blobs import BlobError

WRITE_BEHIND = 8 << 20  # bytes written between two calls asking the kernel to start writing them out
DROP_LAG = 32 << 20  # how far behind the end a writer with keep_cache=False drops written pages
_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2  # start writeback of the range's dirty pages; do not wait for it
_SYNC_FILE_RANGE_WAIT_AFTER = 4


def _load_sync_file_range() -> Callable[[int, int, int, int], None] | None:
    """``sync_file_range(fd, offset, n, flags)`` from the C library (Linux), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def sync_range(fd: int, offset: int, n: int, flags: int) -> None:
        call(fd, offset, n, flags)  # a failure only means the fsync does it all

    return sync_range


_sync_range = _load_sync_file_range()


class FileBlobStore:
    kind = "file"
    keeps_writes = False  # a writer is done with the bytes it is given when write() returns

    def __init__(self, root: Path, delete_grace: float | None = None) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.data_dir = self.root / "data"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.delete_grace = 0.0 if delete_grace is None else delete_grace

    def path(self, blob_id: str) -> Path:
        return self.data_dir / blob_id[:2] / blob_id

    def writer(self, blob_id: str, keep_cache: bool = True) -> FileBlobWriter:
        return FileBlobWriter(self, blob_id, keep_cache)

    def reader(self, blob_id: str, size: int, keep_cache: bool = True) -> FileBlobReader:
        return FileBlobReader(self.path(blob_id), keep_cache or size < WRITE_BEHIND)

    def delete(self, blob_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(blob_id))

    def discard(self, blob_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_dir / blob_id)
        self.delete(blob_id)

    def check(self) -> None:
        if not os.access(self.data_dir, os.W_OK) or not os.access(self.tmp_dir, os.W_OK):
            raise BlobError(f"{self.root} is not writable")

    def list_ids(self) -> Iterator[str]:
        for sub in os.scandir(self.data_dir):
            if sub.is_dir():
                for entry in os.scandir(sub.path):
                    yield entry.name
        for entry in os.scandir(self.tmp_dir):
            yield entry.name


class FileBlobWriter:
    def __init__(self, store: FileBlobStore, blob_id: str, keep_cache: bool = True) -> None:
        self.store = store
        self.blob_id = blob_id
        self.tmp_path = store.tmp_dir / blob_id
        self.fd: int | None = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0  # bytes in the file so far
        self.flushed = 0  # bytes up to which writeback was started
        self.keep_cache = keep_cache
        self.dropped = 0  # bytes up to which the page cache was dropped (keep_cache=False)

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
            self.size += written
        self._write_behind()

    def _write_behind(self) -> None:
        if _sync_range is None or self.size - self.flushed < WRITE_BEHIND:
            return
        assert self.fd is not None
        _sync_range(self.fd, self.flushed, self.size - self.flushed, _SYNC_FILE_RANGE_WRITE)
        self.flushed = self.size
        if not self.keep_cache and self.flushed - self.dropped >= 2 * DROP_LAG:
            end = self.flushed - DROP_LAG
            wait = _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
            _sync_range(self.fd, self.dropped, end - self.dropped, wait)  # pages under writeback are not dropped
            os.posix_fadvise(self.fd, self.dropped, end - self.dropped, os.POSIX_FADV_DONTNEED)
            self.dropped = end

    def commit(self) -> None:
        assert self.fd is not None
        os.fsync(self.fd)
        if self.dropped:  # a large upload with keep_cache=False: none of it stays in the page cache
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(self.fd)
        self.fd = None
        final = self.store.path(self.blob_id)
        final.parent.mkdir(exist_ok=True)
        os.rename(self.tmp_path, final)
        _fsync_dir(final.parent)

    def abort(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


class FileBlobReader:
    def __init__(self, path: Path, keep_cache: bool = True) -> None:
        try:
            self.fd: int | None = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise BlobError("a stored blob is missing") from None
        self.keep_cache = keep_cache
        self._pending: list[int] | None = None  # [start, end) released and not yet dropped
        self._span: list[int] | None = None  # [start, end) of everything released
        if not keep_cache:
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)

    def fileno(self) -> int:
        """The open file (a response may ``sendfile`` from it)."""
        assert self.fd is not None
        return self.fd

    def read(self, offset: int, length: int) -> bytes:
        assert self.fd is not None
        data = os.pread(self.fd, length, offset)
        if len(data) < length:  # a file shorter than its row says: never pad silently
            raise BlobError("stored blob is shorter than recorded")
        self.release(offset, length)
        return data

    def release(self, offset: int, length: int) -> None:
        """The caller is done with these bytes (read, or sent from :meth:`fileno`): a reader with
        ``keep_cache=False`` lets the kernel free their pages, :data:`DROP_LAG` bytes at a time, and
        all it released at :meth:`close`. (The kernel frees only the page-cache folios that lie wholly
        inside the range it is given, and a folio may be larger than a piece read.)"""
        if self.keep_cache or self.fd is None or length <= 0:
            return
        end = offset + length
        self._span = [min(self._span[0], offset), max(self._span[1], end)] if self._span else [offset, end]
        if self._pending is not None and offset == self._pending[1]:
            self._pending[1] = end
        else:
            self._drop(self._pending)
            self._pending = [offset, end]
        if self._pending[1] - self._pending[0] >= DROP_LAG:
            self._drop(self._pending)
            self._pending = None

    def _drop(self, span: list[int] | None) -> None:
        if span is not None and self.fd is not None:
            os.posix_fadvise(self.fd, span[0], span[1] - span[0], os.POSIX_FADV_DONTNEED)

    def close(self) -> None:
        if self.fd is not None:
            self._drop(self._span)
            os.close(self.fd)
            self.fd = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
