"""The ``s3`` blob store: any S3-compatible store (Ceph RGW, SeaweedFS, MinIO, AWS S3).

Client: httpx (already our HTTP client) with a small AWS Signature V4 signer below. Requests are
signed with ``UNSIGNED-PAYLOAD``, so no byte is hashed for the signature: boto3 (and the released
httpx-auth) compute a SHA-256 of every uploaded byte over plain HTTP, a second full pass over the
data beside the MD5 and SHA-512 the engine already computes, on a 2-core machine. One pooled client
per region serves every thread; no service model is loaded (botocore's cost tens of MB per process).

Writes: a blob smaller than one part is one ``PutObject``; a larger one is a multipart upload whose
parts (``s3_part_size``, 8 MiB by default, growing by one step every 1,000 parts so 10,000 parts
cover any blob) are sent by a background thread while the next one fills: memory stays at two parts
per upload. Reads: ranged GETs, streamed; a read that continues where the last one stopped reuses
the open response, and each new request asks for twice as much as the last (up to 1 GiB), so a
sequential read costs a handful of requests and a random one little more than its bytes.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import quote

import httpx

from imagehop.config import BlobSettings
from imagehop.objects.blobs import BlobError

DEFAULT_GRACE = 900.0  # seconds a retired blob stays for readers in flight (a remote store has no open fds)
MAX_WINDOW = 1 << 30
_uploads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-parts")


class SigV4(httpx.Auth):
    """AWS Signature Version 4 in the Authorization header, payload unsigned."""

    def __init__(self, access_key: str, secret_key: str, region: str, service: str = "s3") -> None:
        self.access_key, self.secret_key, self.region, self.service = access_key, secret_key, region, service
        self._keys: dict[str, bytes] = {}

    def _signing_key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = ("AWS4" + self.secret_key).encode()
            for part in (day, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {day: key}
        return key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        request.headers["x-amz-date"] = stamp
        request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        names = sorted({"host", "x-amz-date", "x-amz-content-sha256", *(h for h in request.headers if h == "range")})
        headers = "".join(f"{name}:{request.headers[name].strip()}\n" for name in names)
        signed = ";".join(names)
        query = "&".join(
            f"{_encode(k)}={_encode(v)}" for k, v in sorted(request.url.params.multi_items(), key=lambda kv: kv)
        )
        canonical = "\n".join(
            [request.method, _encode(request.url.path, safe="/"), query, headers, signed, "UNSIGNED-PAYLOAD"]
        )
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(stamp[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        yield request


def _encode(value: str, safe: str = "") -> str:
    return quote(value, safe="-_.~" + safe)


def _check(response: httpx.Response, what: str, ok: tuple[int, ...] = (200,)) -> httpx.Response:
    if response.status_code not in ok:
        body = response.read()[:300].decode(errors="replace")
        raise BlobError(f"S3 {what}: HTTP {response.status_code} {body}")
    return response


def _xml_find(text: bytes, tag: str) -> list[str]:
    root = ET.fromstring(text)
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == tag]


class S3BlobStore:
    kind = "s3"

    def __init__(self, settings: BlobSettings) -> None:
        assert settings.s3_endpoint and settings.s3_bucket and settings.s3_access_key and settings.s3_secret_key
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.part_size = settings.s3_part_size
        self.delete_grace = DEFAULT_GRACE if settings.delete_grace is None else settings.delete_grace
        self.client = httpx.Client(
            base_url=settings.s3_endpoint.rstrip("/"),
            auth=SigV4(settings.s3_access_key, settings.s3_secret_key, settings.s3_region),
            timeout=httpx.Timeout(120, connect=10),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            transport=httpx.HTTPTransport(retries=2),
        )
        self._bucket_ready = False

    def url(self, blob_id: str) -> str:
        return f"/{self.bucket}/{self.prefix}{blob_id}"

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (idempotent)."""
        if self._bucket_ready:
            return
        head = self.client.head(f"/{self.bucket}")
        if head.status_code == 404:
            _check(self.client.put(f"/{self.bucket}"), f"create bucket {self.bucket}", (200, 409))
        elif head.status_code != 200:
            raise BlobError(f"S3 bucket {self.bucket}: HTTP {head.status_code}")
        self._bucket_ready = True

    def writer(self, blob_id: str, keep_cache: bool = True) -> S3BlobWriter:  # no local page cache to spare
        self.ensure_bucket()
        return S3BlobWriter(self, blob_id)

    def reader(self, blob_id: str, size: int, keep_cache: bool = True) -> S3BlobReader:
        return S3BlobReader(self, blob_id, size)

    def delete(self, blob_id: str) -> None:
        _check(self.client.delete(self.url(blob_id)), f"delete {blob_id}", (200, 204, 404))

    def discard(self, blob_id: str) -> None:
        """The blob, and any multipart upload an unfinished write left under its key."""
        self.delete(blob_id)
        key = self.prefix + blob_id
        listed = _check(self.client.get(f"/{self.bucket}", params={"uploads": "", "prefix": key}), "list uploads")
        root = ET.fromstring(listed.content)
        for upload in (el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Upload"):
            fields = {child.tag.rsplit("}", 1)[-1]: child.text for child in upload}
            if fields.get("Key") == key and fields.get("UploadId"):
                self.client.delete(self.url(blob_id), params={"uploadId": fields["UploadId"]})

    def check(self) -> None:
        try:
            self.ensure_bucket()
        except httpx.HTTPError as exc:
            raise BlobError(f"S3 endpoint unreachable: {exc}") from None

    def list_ids(self) -> Iterator[str]:
        self.ensure_bucket()
        token: str | None = None
        while True:
            params = {"list-type": "2", "prefix": self.prefix, "max-keys": "1000"}
            if token:
                params["continuation-token"] = token
            page = _check(self.client.get(f"/{self.bucket}", params=params), "list").content
            for key in _xml_find(page, "Key"):
                yield key[len(self.prefix) :]
            truncated = _xml_find(page, "IsTruncated")
            tokens = _xml_find(page, "NextContinuationToken")
            if not (truncated and truncated[0] == "true" and tokens):
                return
            token = tokens[0]


class S3BlobWriter:
    def __init__(self, store: S3BlobStore, blob_id: str) -> None:
        self.store = store
        self.blob_id = blob_id
        self.url = store.url(blob_id)
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[tuple[int, str]] = []
        self._pending: Future[tuple[int, str]] | None = None

    def _part_limit(self) -> int:
        return self.store.part_size * (1 + len(self.parts) // 1000)

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self._part_limit():
            self._send_part()

    def _send_part(self) -> None:
        limit = self._part_limit()
        if self.upload_id is None:
            response = _check(self.store.client.post(self.url, params={"uploads": ""}), "create multipart upload")
            self.upload_id = _xml_find(response.content, "UploadId")[0]
        self._wait()
        body = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        number = len(self.parts) + 1
        self._pending = _uploads.submit(self._upload_part, number, body)

    def _upload_part(self, number: int, body: bytes) -> tuple[int, str]:
        params = {"partNumber": str(number), "uploadId": self.upload_id or ""}
        response = _check(self.store.client.put(self.url, params=params, content=body), f"upload part {number}")
        return number, response.headers.get("etag", "")

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.parts.append(pending.result())

    def commit(self) -> None:
        if self.upload_id is None:
            _check(self.store.client.put(self.url, content=bytes(self.buffer)), "put object")
            self.buffer = bytearray()
            return
        if self.buffer:
            self._wait()
            self.parts.append(self._upload_part(len(self.parts) + 1, bytes(self.buffer)))
            self.buffer = bytearray()
        self._wait()
        body = (
            "<CompleteMultipartUpload>"
            + "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in sorted(self.parts))
            + "</CompleteMultipartUpload>"
        )
        response = _check(
            self.store.client.post(self.url, params={"uploadId": self.upload_id}, content=body.encode()),
            "complete multipart upload",
        )
        if b"<Error>" in response.content[:200]:  # S3 may report a failure inside a 200 answer
            raise BlobError(f"S3 complete multipart upload: {response.content[:300].decode(errors='replace')}")
        self.upload_id = None

    def abort(self) -> None:
        if self._pending is not None:
            with contextlib.suppress(Exception):
                self._pending.result()
            self._pending = None
        self.buffer = bytearray()
        if self.upload_id is not None:
            with contextlib.suppress(httpx.HTTPError):  # else housekeeping discards it with the intent
                self.store.client.delete(self.url, params={"uploadId": self.upload_id})
            self.upload_id = None


class S3BlobReader:
    """Ranged, streamed reads; sequential reads continue one open response."""

    def __init__(self, store: S3BlobStore, blob_id: str, size: int) -> None:
        self.store, self.url, self.size = store, store.url(blob_id), size
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] = iter(())
        self._pending = b""
        self._position = -1  # offset of the next byte the open response gives
        self._end = -1
        self._window = 1 << 20

    def read(self, offset: int, length: int) -> bytes:
        if offset + length > self.size:
            raise BlobError("read past the end of a stored blob")
        if length == 0:
            return b""
        if self._response is None or offset != self._position:
            self._window = 1 << 20
            self._open(offset, length)
        out = bytearray()
        while len(out) < length:
            if not self._pending:
                if self._position >= self._end:
                    self._window = min(self._window * 2, MAX_WINDOW)
                    self._open(self._position, length - len(out))
                self._pending = next(self._chunks, b"")
                if not self._pending:
                    raise BlobError("S3 response ended early")
            piece = self._pending[: length - len(out)]
            out += piece
            self._pending = self._pending[len(piece) :]
            self._position += len(piece)
        return bytes(out)

    def _open(self, offset: int, length: int) -> None:
        self.close()
        end = min(self.size, offset + max(length, self._window))
        request = self.store.client.build_request("GET", self.url, headers={"Range": f"bytes={offset}-{end - 1}"})
        try:
            response = self.store.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise BlobError(f"S3 GET: {exc}") from None
        if response.status_code not in (200, 206):
            response.read()
            response.close()
            raise BlobError(f"S3 GET: HTTP {response.status_code}")
        if response.status_code == 200 and offset != 0:
            response.close()
            raise BlobError("S3 GET ignored the Range header")
        self._response, self._chunks = response, response.iter_raw(1 << 20)
        self._position, self._end, self._pending = offset, end if response.status_code == 206 else self.size, b""

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
            self._chunks = iter(())
            self._pending = b""
