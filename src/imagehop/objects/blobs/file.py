"""The ``file`` blob store: one file per blob under the region's data dir (the embedded default).

A write goes to ``tmp/<id>``, is fsynced and renamed to ``data/<id[:2]>/<id>`` (and the directory
fsynced) at commit. Every :data:`WRITE_BEHIND` bytes, a writer asks the kernel to start writing what
it wrote so far (``sync_file_range``, which does not wait): the page cache of a machine with a lot of
memory would otherwise hold a whole upload of gigabytes dirty until the fsync at commit, so the disk
would sit idle while the bytes arrive and then the commit would wait for all of them.

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
_SYNC_FILE_RANGE_WRITE = 2  # start writeback of the range's dirty pages; do not wait for it


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    """``sync_file_range(fd, offset, n, SYNC_FILE_RANGE_WRITE)`` from the C library (Linux), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start_writeback(fd: int, offset: int, n: int) -> None:
        call(fd, offset, n, _SYNC_FILE_RANGE_WRITE)  # a failure only means the fsync does it all

    return start_writeback


_start_writeback = _load_sync_file_range()


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

    def writer(self, blob_id: str) -> FileBlobWriter:
        return FileBlobWriter(self, blob_id)

    def reader(self, blob_id: str, size: int) -> FileBlobReader:
        return FileBlobReader(self.path(blob_id))

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
    def __init__(self, store: FileBlobStore, blob_id: str) -> None:
        self.store = store
        self.blob_id = blob_id
        self.tmp_path = store.tmp_dir / blob_id
        self.fd: int | None = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0  # bytes in the file so far
        self.flushed = 0  # bytes up to which writeback was started

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
            self.size += written
        self._write_behind()

    def _write_behind(self) -> None:
        if _start_writeback is not None and self.size - self.flushed >= WRITE_BEHIND:
            _start_writeback(self.fd, self.flushed, self.size - self.flushed)  # type: ignore[arg-type]
            self.flushed = self.size

    def commit(self) -> None:
        assert self.fd is not None
        os.fsync(self.fd)
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
    def __init__(self, path: Path) -> None:
        try:
            self.fd: int | None = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise BlobError("a stored blob is missing") from None

    def fileno(self) -> int:
        """The open file (a response may ``sendfile`` from it)."""
        assert self.fd is not None
        return self.fd

    def read(self, offset: int, length: int) -> bytes:
        assert self.fd is not None
        data = os.pread(self.fd, length, offset)
        if len(data) < length:  # a file shorter than its row says: never pad silently
            raise BlobError("stored blob is shorter than recorded")
        return data

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
