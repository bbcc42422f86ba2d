"""Where disk readers get their bytes from: a size and positional reads.

Readers never seek a shared file position, so one open file can serve several readers, and a
source can be anything that answers ``pread`` (a local file, bytes in memory, ranged reads on an
object). A source may also offer ``extents()``: the byte ranges that may hold data, everything
else being known to read as zeros (holes of a sparse file).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class Source(Protocol):
    """Random-access bytes of known size. ``pread`` returns short only at end of file."""

    size: int

    def pread(self, offset: int, length: int) -> bytes: ...


def source_extents(source: Source) -> Iterator[tuple[int, int]]:
    """The (offset, length) ranges of ``source`` that may hold non-zero bytes, in order."""
    extents = getattr(source, "extents", None)
    if extents is not None:
        yield from extents()
    elif source.size:
        yield (0, source.size)


def read_into(source: Source, offset: int, view: memoryview) -> int:
    """Read up to ``len(view)`` bytes at ``offset`` into ``view``; returns how many (short only at
    the end of the source). Straight into the buffer when the source offers ``preadinto``."""
    preadinto = getattr(source, "preadinto", None)
    if preadinto is not None:
        return preadinto(offset, view)
    data = source.pread(offset, len(view))
    view[: len(data)] = data
    return len(data)


def file_data_extents(fd: int, size: int | None = None) -> Iterator[tuple[int, int]]:
    """Data ranges of an open file from ``SEEK_DATA``/``SEEK_HOLE``, in order.

    Where the file system (or platform) cannot tell, the whole file is reported as data. The
    file position of ``fd`` is moved; readers here only use ``pread`` so that does not matter.
    """
    if size is None:
        size = os.fstat(fd).st_size
    if size <= 0:
        return
    seek_data = getattr(os, "SEEK_DATA", None)
    seek_hole = getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None:
        yield (0, size)
        return
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, seek_data)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after offset
                return
            if offset == 0:  # not supported here: everything is data
                yield (0, size)
                return
            raise
        if start >= size:
            return
        try:
            end = os.lseek(fd, start, seek_hole)
        except OSError:
            end = size
        end = min(end, size)
        if end <= start:  # defensive: a file system that answers nonsense
            yield (start, size - start)
            return
        yield (start, end - start)
        offset = end


class FileSource:
    """A local file (path or an already open descriptor) read with ``os.pread``.

    A path is opened here and closed by ``close()``; a descriptor passed in stays the caller's.
    The size is taken once, at construction: the file must not change while it is read.
    """

    def __init__(self, path_or_fd: str | os.PathLike[str] | int) -> None:
        if isinstance(path_or_fd, int):
            self.fd = path_or_fd
            self._owned = False
        else:
            self.fd = os.open(path_or_fd, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self._owned = True
        try:
            self.size = os.lseek(self.fd, 0, os.SEEK_END)
        except BaseException:
            self.close()
            raise

    def pread(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        if length == 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        data = os.pread(self.fd, length, offset)
        if len(data) < length:  # pread may return short on some files; finish the job
            parts = [data]
            got = len(data)
            while got < length:
                more = os.pread(self.fd, length - got, offset + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def preadinto(self, offset: int, view: memoryview) -> int:
        """``os.preadv`` into ``view`` until it is full or the file ends; returns the bytes read."""
        if offset < 0:
            raise ValueError("negative offset")
        want = max(0, min(len(view), self.size - offset))
        got = 0
        while got < want:
            n = os.preadv(self.fd, [view[got:want]], offset + got)
            if not n:
                break
            got += n
        return got

    def extents(self) -> Iterator[tuple[int, int]]:
        return file_data_extents(self.fd, self.size)

    def close(self) -> None:
        if self._owned and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BytesSource:
    """Bytes in memory as a source: for headers, tests and small images."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)
        self.size = len(self._data)

    def pread(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        return self._data[offset : offset + length]

    def close(self) -> None:
        pass
