"""Uploads through the object storage API leave the page cache as Swift's object server does.

A large blob written with ``keep_cache=False`` (what a Swift API PUT asks for) has its pages dropped
as it is written and at commit; a small one, and one written for images (read back at once by an
import or a copy), stays cached. Residency is read with ``mincore`` on a mapping of the blob file.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagehop.objects.blobs.file import DROP_LAG, WRITE_BEHIND, FileBlobStore
from imagehop.objects.routes import SEND_PIECE
from tests.support.clients import storage_url
from tests.support.cloud import Cloud, make_cloud

MiB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident(path: Path, upto: int | None = None) -> float:
    """The share of ``path``'s pages in the page cache: ``mincore`` over a private mapping of it (never
    written, so every page it reports is the file's own page in the cache)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = (size + PAGE - 1) // PAGE
    vector = ctypes.create_string_buffer(pages)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        first = ctypes.c_char.from_buffer(mapped)
        try:
            assert libc.mincore(ctypes.addressof(first), size, vector) == 0, os.strerror(ctypes.get_errno())
        finally:
            del first  # the mapping cannot close while a ctypes object points into it
    counted = vector.raw[: (upto + PAGE - 1) // PAGE] if upto is not None else vector.raw
    return sum(b & 1 for b in counted) / len(counted)


def _write(store: FileBlobStore, blob_id: str, size: int, keep_cache: bool) -> Path:
    piece = os.urandom(MiB)
    writer = store.writer(blob_id, keep_cache)
    for _ in range(size // MiB):
        writer.write(piece)
    writer.commit()
    return store.path(blob_id)


def test_a_large_blob_written_without_cache_leaves_the_page_cache(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    size = 4 * DROP_LAG
    path = _write(store, "a" * 32, size, keep_cache=False)
    assert path.stat().st_size == size
    assert resident(path) < 0.1
    kept = _write(store, "b" * 32, size, keep_cache=True)
    assert resident(kept) > 0.9  # the default keeps what an import or a copy reads next


def test_a_small_blob_stays_cached_either_way(tmp_path: Path) -> None:
    path = _write(FileBlobStore(tmp_path), "c" * 32, WRITE_BEHIND // 2, keep_cache=False)
    assert resident(path) > 0.9


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with make_cloud(tmp_path_factory.mktemp("page-cache"), "sqlite", regions=("ORD",)) as running:
        yield running


def _blob_files(cloud: Cloud) -> set[Path]:
    return set((cloud.data_dir / "regions" / "ORD" / "objects" / "data").glob("*/*"))


def test_a_swift_put_drops_its_pages_and_reads_back_whole(cloud: Cloud) -> None:
    body = os.urandom(MiB) * (3 * DROP_LAG // MiB) + os.urandom(12345)
    url = storage_url(cloud)
    headers = {"X-Auth-Token": cloud.token()}
    with httpx.Client(headers=headers, timeout=60) as http:
        assert http.put(f"{url}/pc", headers={"Content-Length": "0"}).status_code in (201, 202)
        before = _blob_files(cloud)
        put = http.put(f"{url}/pc/big", content=body)
        assert put.status_code == 201, put.text
        (blob,) = _blob_files(cloud) - before
        assert resident(blob) < 0.1
        got = http.get(f"{url}/pc/big")  # read back from the disk (sent from the file)
        assert got.status_code == 200
        assert hashlib.md5(got.content).hexdigest() == put.headers["etag"] == hashlib.md5(body).hexdigest()
        # pages sent by sendfile are held by the sockets until the client has read them, so the last
        # piece sent (SEND_PIECE) may stay: every piece before it is dropped
        assert resident(blob, upto=len(body) - SEND_PIECE) < 0.1
        # a download leaves the cache as it found it: drop the pages it read, even ones cached before
        blob.read_bytes()
        assert resident(blob) > 0.9
        ranged = http.get(f"{url}/pc/big", headers={"Range": f"bytes=1000-{len(body) - 1}"})
        assert ranged.status_code == 206 and ranged.content == body[1000:]
        assert resident(blob, upto=len(body) - SEND_PIECE) < 0.1
        # and so does a large object: sent from its segments' files ...
        assert http.put(f"{url}/pc/tail", content=b"tail").status_code == 201
        manifest = http.put(f"{url}/pc/slo?multipart-manifest=put", json=[{"path": "/pc/big"}, {"path": "/pc/tail"}])
        assert manifest.status_code == 201, manifest.text
        blob.read_bytes()
        got = http.get(f"{url}/pc/slo")
        assert got.status_code == 200 and got.content == body + b"tail"
        assert resident(blob, upto=len(body) - SEND_PIECE) < 0.1
        # ... or read piece by piece (an SLO with inline data is not in files alone)
        inline = [{"data": base64.b64encode(b"head").decode()}, {"path": "/pc/big"}]
        assert http.put(f"{url}/pc/inline?multipart-manifest=put", json=inline).status_code == 201
        blob.read_bytes()
        got = http.get(f"{url}/pc/inline")
        assert got.status_code == 200 and got.content == b"head" + body
        assert resident(blob) < 0.1


def test_a_small_object_read_through_the_api_stays_cached(cloud: Cloud) -> None:
    url = storage_url(cloud)
    with httpx.Client(headers={"X-Auth-Token": cloud.token()}, timeout=60) as http:
        assert http.put(f"{url}/pc2", headers={"Content-Length": "0"}).status_code in (201, 202)
        before = _blob_files(cloud)
        body = os.urandom(WRITE_BEHIND // 2)
        assert http.put(f"{url}/pc2/small", content=body).status_code == 201
        (blob,) = _blob_files(cloud) - before
        assert http.get(f"{url}/pc2/small").content == body
        assert resident(blob) > 0.9
