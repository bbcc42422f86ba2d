"""The ``swift`` blob store: an OpenStack Swift cluster, through its API.

Auth: v1 (tempauth, swauth: ``X-Auth-User``/``X-Auth-Key``) directly, v2/v3 through keystoneauth1;
the token is renewed when Swift answers 401. Data: httpx, one pooled client per region.

A blob is the object ``<container>/<prefix><id>``, written by one streamed (chunked) PUT as the data
comes, so nothing is buffered. It continues in ``<id>.000001``, ``<id>.000002``, ... when it grows
past ``swift_segment_size`` (at most 5 GiB, Swift's object size limit), and also when no data came
for ``IDLE_CLOSE`` seconds (a sparse disk's long run of zeros is never sent, and Swift's proxy drops
a PUT whose body stalls for its ``client_timeout``, 60 s by default). No manifest is needed: a
reader learns the first object's length from the ``Content-Range`` of its first answer and, only for
a longer blob, the other segments' lengths from one listing. Reads are ranged and streamed; a read
that continues where the last one stopped reuses the open response.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from urllib.parse import quote

import httpx

from imagehop.config import BlobSettings
from imagehop.objects.blobs import BlobError

DEFAULT_GRACE = 900.0
IDLE_CLOSE = 20.0  # seconds without data after which the current segment is finished
_END = object()


class SwiftBlobStore:
    kind = "swift"

    def __init__(self, settings: BlobSettings) -> None:
        assert settings.swift_auth_url and settings.swift_user and settings.swift_key and settings.swift_container
        self.settings = settings
        self.container = settings.swift_container
        self.prefix = ""
        self.segment_size = settings.swift_segment_size
        self.delete_grace = DEFAULT_GRACE if settings.delete_grace is None else settings.delete_grace
        self.client = httpx.Client(
            timeout=httpx.Timeout(120, connect=10),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            transport=httpx.HTTPTransport(retries=2),
        )
        self._lock = threading.Lock()
        self._auth: tuple[str, str] | None = None  # (storage URL, token)
        self._container_ready = False

    # --- auth and requests

    def _authenticate(self) -> tuple[str, str]:
        s = self.settings
        if s.swift_auth_version.startswith("1"):
            headers = {"X-Auth-User": s.swift_user or "", "X-Auth-Key": s.swift_key or ""}
            response = self.client.get(s.swift_auth_url or "", headers=headers)
            if response.status_code not in (200, 204):
                raise BlobError(f"Swift auth: HTTP {response.status_code}")
            return response.headers["X-Storage-Url"].rstrip("/"), response.headers["X-Auth-Token"]
        from keystoneauth1 import session
        from keystoneauth1.identity import v2, v3

        if s.swift_auth_version.startswith("2"):
            plugin = v2.Password(auth_url=s.swift_auth_url, username=s.swift_user, password=s.swift_key,
                                 tenant_name=s.swift_project)  # fmt: skip
        else:
            plugin = v3.Password(auth_url=s.swift_auth_url, username=s.swift_user, password=s.swift_key,
                                 project_name=s.swift_project, user_domain_name=s.swift_user_domain,
                                 project_domain_name=s.swift_project_domain)  # fmt: skip
        sess = session.Session(auth=plugin)
        token = sess.get_token()
        url = sess.get_endpoint(service_type="object-store", interface="public", region_name=s.swift_region)
        return url.rstrip("/"), token

    def _credentials(self, renew: bool = False) -> tuple[str, str]:
        with self._lock:
            if self._auth is None or renew:
                self._auth = self._authenticate()
            return self._auth

    def url(self, name: str = "") -> str:
        base = f"{self._credentials()[0]}/{quote(self.container)}"
        return f"{base}/{quote(name)}" if name else base

    def request(self, method: str, name: str = "", **kwargs: object) -> httpx.Response:
        """One request with the current token; on 401 the token is renewed and the request sent again."""
        for attempt in (0, 1):
            storage, token = self._credentials(renew=attempt == 1)
            target = f"{storage}/{quote(self.container)}" + (f"/{quote(name)}" if name else "")
            headers = {**kwargs.pop("headers", {}), "X-Auth-Token": token}  # type: ignore[dict-item]
            response = self.client.request(method, target, headers=headers, **kwargs)  # type: ignore[arg-type]
            if response.status_code != 401:
                return response
            kwargs["headers"] = {k: v for k, v in headers.items() if k != "X-Auth-Token"}
        return response

    def ensure_container(self) -> None:
        if not self._container_ready:
            response = self.request("PUT")
            if response.status_code not in (201, 202):
                raise BlobError(f"Swift container {self.container}: HTTP {response.status_code}")
            self._container_ready = True

    def segment_name(self, blob_id: str, index: int) -> str:
        return self.prefix + blob_id if index == 0 else f"{self.prefix}{blob_id}.{index:06d}"

    # --- the interface

    def writer(self, blob_id: str, keep_cache: bool = True) -> SwiftBlobWriter:  # no local page cache to spare
        self.ensure_container()
        return SwiftBlobWriter(self, blob_id)

    def reader(self, blob_id: str, size: int, keep_cache: bool = True) -> SwiftBlobReader:
        return SwiftBlobReader(self, blob_id, size)

    def delete(self, blob_id: str) -> None:
        """Every segment of the blob (found by listing its name as a prefix)."""
        for name in self._names(self.prefix + blob_id):
            response = self.request("DELETE", name)
            if response.status_code not in (204, 404):
                raise BlobError(f"Swift DELETE {name}: HTTP {response.status_code}")

    def discard(self, blob_id: str) -> None:
        self.delete(blob_id)

    def _sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(name, bytes) of a blob's objects."""
        for entry in self._entries(prefix, blob=True):
            yield entry["name"], int(entry["bytes"])

    def _names(self, prefix: str, blob: bool = True) -> Iterator[str]:
        for entry in self._entries(prefix, blob):
            yield entry["name"]

    def _entries(self, prefix: str, blob: bool = True) -> Iterator[dict]:
        """Object names under ``prefix``; with ``blob``, only that blob's objects (``<id>``, ``<id>.NNNNNN``)."""
        marker = ""
        while True:
            response = self.request("GET", params={"prefix": prefix, "marker": marker, "format": "json"})
            if response.status_code == 404:
                return
            if response.status_code not in (200, 204):
                raise BlobError(f"Swift listing: HTTP {response.status_code}")
            page = response.json() if response.status_code == 200 else []
            for entry in page:
                if not blob or entry["name"] == prefix or entry["name"].startswith(prefix + "."):
                    yield entry
            if not page:
                return
            marker = page[-1]["name"]

    def check(self) -> None:
        try:
            self.ensure_container()
        except httpx.HTTPError as exc:
            raise BlobError(f"Swift unreachable: {exc}") from None

    def list_ids(self) -> Iterator[str]:
        for name in self._names(self.prefix, blob=False):
            rest = name[len(self.prefix) :]
            if "." not in rest:
                yield rest


class SwiftBlobWriter:
    """One streamed PUT per segment, fed from :meth:`write` through a small queue."""

    def __init__(self, store: SwiftBlobStore, blob_id: str) -> None:
        self.store, self.blob_id = store, blob_id
        self.index = -1
        self.in_segment = 0
        self._queue: queue.Queue[object] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._idle = False  # the current segment was finished for want of data

    def _open_segment(self) -> None:
        self.index += 1
        self.in_segment = 0
        self._idle = False
        self._queue = queue.Queue(maxsize=4)
        name = self.store.segment_name(self.blob_id, self.index)
        chunks = self._queue

        def body() -> Iterator[bytes]:
            while True:
                try:
                    item = chunks.get(timeout=IDLE_CLOSE)
                except queue.Empty:
                    with self._lock:  # no data for a while: finish this segment (write() opens the next)
                        if chunks.empty():
                            self._idle = True
                            return
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]

        def put() -> None:
            try:
                response = self.store.request("PUT", name, content=body())
                if response.status_code != 201:
                    raise BlobError(f"Swift PUT {name}: HTTP {response.status_code}")
            except BaseException as exc:
                self._error = exc
                with contextlib.suppress(queue.Empty):  # unblock a writer waiting on a full queue
                    while True:
                        chunks.get_nowait()

        self._thread = threading.Thread(target=put, name=f"swift-put-{self.blob_id[:8]}", daemon=True)
        self._thread.start()

    def _close_segment(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._put(_END)  # (already finished when idle)
            self._thread.join()
            self._queue, self._thread = None, None
            if self._error is not None:
                raise BlobError(str(self._error)) from self._error

    def _put(self, item: object) -> bool:
        """Hand ``item`` to the PUT; False when the segment was finished for want of data."""
        while True:
            if self._error is not None:
                raise BlobError(str(self._error)) from self._error
            with self._lock:
                if self._idle:
                    return False
                try:
                    self._queue.put(item, timeout=1)  # type: ignore[union-attr]
                    return True
                except queue.Full:
                    pass

    def write(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            if self._queue is None or self.in_segment >= self.store.segment_size or self._idle:
                self._close_segment()
                self._open_segment()
            room = self.store.segment_size - self.in_segment
            piece = data if pos == 0 and len(data) <= room else data[pos : pos + room]
            if not self._put(piece):
                continue  # the segment was just finished: the next one takes the piece
            self.in_segment += len(piece)
            pos += len(piece)

    def commit(self) -> None:
        if self._queue is None:
            self._open_segment()  # an empty blob is still one object
        self._close_segment()

    def abort(self) -> None:
        if self._queue is not None and self._thread is not None:
            with contextlib.suppress(Exception):
                self._put(BlobError("aborted"))
            self._thread.join(30)
            self._queue, self._thread = None, None
        if self.index >= 0:
            with contextlib.suppress(Exception):  # else housekeeping discards it with the intent
                self.store.discard(self.blob_id)


class SwiftBlobReader:
    """Ranged, streamed reads across the blob's segments."""

    def __init__(self, store: SwiftBlobStore, blob_id: str, size: int) -> None:
        self.store, self.blob_id, self.size = store, blob_id, size
        self.first: int | None = None  # length of the first object
        self.table: list[tuple[int, int, str]] | None = None  # (start, length, name) of every segment
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] = iter(())
        self._pending = b""
        self._position = -1
        self._end = -1

    def read(self, offset: int, length: int) -> bytes:
        if offset + length > self.size:
            raise BlobError("read past the end of a stored blob")
        out = bytearray()
        while len(out) < length:
            if self._response is None or offset != self._position or self._position >= self._end:
                self._open(offset)
            if not self._pending:
                self._pending = next(self._chunks, b"")
                if not self._pending:
                    raise BlobError("Swift response ended early")
            piece = self._pending[: length - len(out)]
            out += piece
            self._pending = self._pending[len(piece) :]
            self._position += len(piece)
            offset += len(piece)
        return bytes(out)

    def _segments(self) -> list[tuple[int, int, str]]:
        """Every segment's (start, length, name), from one listing (only for a blob past its first object)."""
        if self.table is None:
            table, at = [], 0
            for name, length in sorted(self.store._sizes(self.store.prefix + self.blob_id)):
                table.append((at, length, name))
                at += length
            if at != self.size:
                raise BlobError(f"Swift segments of {self.blob_id} hold {at} bytes, not {self.size}")
            self.table = table
        return self.table

    def _locate(self, offset: int) -> tuple[str, int, int]:
        """(object name, offset in it, blob offset where it starts) for ``offset``."""
        if self.first is None or offset < self.first:
            return self.store.segment_name(self.blob_id, 0), offset, 0
        for start, length, name in self._segments():
            if start <= offset < start + length:
                return name, offset - start, start
        raise BlobError("read past the end of a stored blob")

    def _open(self, offset: int) -> None:
        """Stream from ``offset`` to the end of its segment."""
        self.close()
        name, start, segment_start = self._locate(offset)
        request_headers = {"Range": f"bytes={start}-"}
        storage, token = self.store._credentials()
        url = f"{storage}/{quote(self.store.container)}/{quote(name)}"
        response = self.store.client.send(
            self.store.client.build_request("GET", url, headers={**request_headers, "X-Auth-Token": token}),
            stream=True,
        )
        if response.status_code == 401:
            response.close()
            storage, token = self.store._credentials(renew=True)
            response = self.store.client.send(
                self.store.client.build_request("GET", url, headers={**request_headers, "X-Auth-Token": token}),
                stream=True,
            )
        total = _range_total(response.headers.get("content-range", ""))
        if response.status_code == 416 and self.first is None and total:  # past the first object: now we know it
            response.close()
            self.first = total
            return self._open(offset)
        if response.status_code not in (200, 206) or (response.status_code == 200 and start):
            response.read()
            response.close()
            raise BlobError(f"Swift GET {name}: HTTP {response.status_code}")
        if self.first is None and segment_start == 0:
            self.first = total or int(response.headers.get("content-length", "0"))
        self._response, self._chunks = response, response.iter_raw(1 << 20)
        self._position, self._pending = offset, b""
        self._end = min(self.size, segment_start + (total or start + int(response.headers.get("content-length", 0))))

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
            self._chunks = iter(())
            self._pending = b""


def _range_total(content_range: str) -> int | None:
    """The complete length of ``Content-Range: bytes a-b/TOTAL`` (or ``bytes */TOTAL``)."""
    _, _, total = content_range.rpartition("/")
    return int(total) if total.isdigit() else None
