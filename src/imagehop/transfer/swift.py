"""A small Swift client over httpx: just what moving large objects between clouds needs.

It talks to any Swift / Cloud Files endpoint found in a cloud's catalog; tokens come from the
cloud's keystoneauth1 session (renewed when they expire; a 401 forces a new one once).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import quote, unquote, urlsplit

import httpx

from imagehop import wire
from imagehop.transfer.clouds import CloudSession

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class SwiftError(Exception):
    """A Swift request failed; ``status`` is the HTTP status (0 when no answer came)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ObjectHead:
    size: int
    etag: str  # without quotes
    last_modified: str
    slo: bool
    dlo_prefix: str | None  # "<container>/<prefix>" of a Dynamic Large Object
    content_type: str
    meta: dict[str, str] = field(default_factory=dict)  # the X-Object-Meta-* headers, names lower-case


@dataclass(frozen=True)
class Segment:
    """One piece of a large object as its manifest (SLO) or listing (DLO) names it."""

    container: str
    name: str
    size: int
    etag: str | None


class SwiftClient:
    def __init__(self, cloud: CloudSession, region: str | None = None, *, connections: int = 16) -> None:
        self.cloud = cloud
        self.region = region or cloud.region_name
        self.storage_url = cloud.endpoint("object-store", self.region)
        self._tempurl_key: str | None = None
        self._own_key: str | None = None  # a TempURL key this client set on the account, while in use
        self._own_users = 0
        self._key_lock = threading.Lock()
        self._connections = connections
        self._wire_pool: wire.Connections | None = None
        self._wire_lock = threading.Lock()
        self.http = httpx.Client(
            verify=cloud.tls,  # insecure / cacert, as openstacksdk read them for this cloud
            timeout=httpx.Timeout(60.0, connect=10.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def close(self) -> None:
        self.http.close()
        if self._wire_pool is not None:
            self._wire_pool.close()

    # --- plumbing ------------------------------------------------------------------------------

    def _url(self, container: str | None = None, name: str | None = None) -> str:
        url = self.storage_url
        if container is not None:
            url += "/" + quote(container, safe="")
        if name is not None:
            url += "/" + quote(name, safe="/")
        return url

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"X-Auth-Token": self.cloud.session.get_token()}
        if extra:
            headers.update(extra)
        return headers

    def request(self, method: str, url: str, *, ok: Iterable[int] = (200, 201, 202, 204), **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        """One request; a 401 renews the token and tries once more."""
        extra = kwargs.pop("headers", None)
        for attempt in (1, 2):
            try:
                response = self.http.request(method, url, headers=self._headers(extra), **kwargs)
            except httpx.HTTPError as exc:
                raise SwiftError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
            if response.status_code == 401 and attempt == 1 and "content" not in kwargs:
                self.cloud.session.invalidate()
                continue
            if response.status_code not in ok:
                raise SwiftError(
                    f"{method} {url} answered {response.status_code}: {response.text[:300].strip()}",
                    response.status_code,
                )
            return response
        raise AssertionError("unreachable")

    # --- account and containers ------------------------------------------------------------------

    def info(self) -> dict:
        """``/info`` at the root of the storage host; ``{}`` if the cloud does not publish it."""
        parts = urlsplit(self.storage_url)
        try:
            response = self.http.get(f"{parts.scheme}://{parts.netloc}/info", timeout=10)
        except httpx.HTTPError:
            return {}
        return response.json() if response.status_code == 200 else {}

    OWN_KEY = "X-Account-Meta-Temp-URL-Key-2"  # the header a copy sets when the account has no key

    def claim_tempurl_key(self, left_by_us: str | None = None) -> str:
        """A key to sign TempURLs with: the account's own where it has one (left alone), else a new
        random one set as :data:`OWN_KEY` for the copies of this client, which each call
        :meth:`release_tempurl_key` when their target has fetched the image. ``left_by_us``: the
        SHA-256 of a key an interrupted run set (then it is ours to replace). Returns the SHA-256
        of the key set here, ``""`` when the account's own key is used."""
        with self._key_lock:
            if self._own_key is not None:
                self._own_users += 1
                self._tempurl_key = self._own_key
                return _sha256(self._own_key)
            response = self.request("HEAD", self._url(), ok=(200, 204))
            for header in ("x-account-meta-temp-url-key", self.OWN_KEY.lower()):
                value = response.headers.get(header)
                if value and _sha256(value) != left_by_us:
                    self._tempurl_key = value
                    return ""
            key = secrets.token_hex(32)
            self.request("POST", self._url(), headers={self.OWN_KEY: key}, ok=(200, 202, 204))
            self._tempurl_key = self._own_key = key
            self._own_users = 1
            return _sha256(key)

    def release_tempurl_key(self, fingerprint: str) -> bool:
        """Remove the key :meth:`claim_tempurl_key` set (``fingerprint``: its SHA-256) once no copy of
        this client needs it, and only while the account still holds that very key. True if removed."""
        with self._key_lock:
            if self._own_key is not None and _sha256(self._own_key) == fingerprint:
                self._own_users -= 1
                if self._own_users > 0:
                    return False
                self._own_key = None
            response = self.request("HEAD", self._url(), ok=(200, 204))
            value = response.headers.get(self.OWN_KEY.lower())
            if not value or _sha256(value) != fingerprint:
                return False  # gone already, or changed since: the account's owner's business now
            self.request("POST", self._url(), headers={"X-Remove-" + self.OWN_KEY[2:]: "x"}, ok=(200, 202, 204))
            return True

    def temp_url(self, container: str, name: str, seconds: int, method: str = "GET") -> str:
        """A TempURL for one object, signed with SHA-256 under the key :meth:`claim_tempurl_key` chose."""
        if self._tempurl_key is None:
            raise SwiftError("no TempURL key: claim_tempurl_key first")
        key = str(self._tempurl_key)
        url = self._url(container, name)
        path = unquote(urlsplit(url).path)  # Swift signs the path as it decodes it
        expires = int(time.time()) + seconds
        sig = hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
        return f"{url}?temp_url_sig={sig}&temp_url_expires={expires}"

    def ensure_container(self, container: str) -> None:
        self.request("PUT", self._url(container), ok=(201, 202, 204))

    def list_objects(self, container: str, prefix: str = "") -> list[dict]:
        """Every object under ``prefix``, paging with markers until an empty page."""
        out: list[dict] = []
        marker = ""
        while True:
            response = self.request(
                "GET",
                self._url(container),
                params={"format": "json", "prefix": prefix, "marker": marker, "limit": 10000},
                ok=(200, 204, 404),
            )
            page = response.json() if response.status_code == 200 else []
            if not page:
                return out
            out.extend(page)
            marker = page[-1].get("name") or page[-1].get("subdir")

    # --- objects -------------------------------------------------------------------------------

    def head_object(self, container: str, name: str) -> ObjectHead | None:
        response = self.request("HEAD", self._url(container, name), ok=(200, 204, 404))
        if response.status_code == 404:
            return None
        h = response.headers
        return ObjectHead(
            size=int(h.get("content-length", 0)),
            etag=h.get("etag", "").strip('"'),
            last_modified=h.get("last-modified", ""),
            slo=h.get("x-static-large-object", "").lower() == "true",
            dlo_prefix=h.get("x-object-manifest"),
            content_type=h.get("content-type", "application/octet-stream"),
            meta={k.lower(): v for k, v in h.items() if k.lower().startswith("x-object-meta-")},
        )

    def large_object_segments(self, container: str, name: str, head: ObjectHead) -> list[Segment] | None:
        """The segments of an SLO or DLO, in order; ``None`` for a plain object."""
        if head.slo:
            response = self.request("GET", self._url(container, name), params={"multipart-manifest": "get"})
            segments = []
            for entry in response.json():
                if "range" in entry or entry.get("sub_slo"):
                    return None  # ranged or nested pieces: move it as one stream of bytes instead
                seg_container, seg_name = entry["name"].lstrip("/").split("/", 1)
                segments.append(Segment(seg_container, seg_name, int(entry["bytes"]), entry["hash"]))
            return segments
        if head.dlo_prefix:
            seg_container, prefix = head.dlo_prefix.split("/", 1)
            seg_container, prefix = unquote(seg_container), unquote(prefix)
            listing = self.list_objects(seg_container, prefix)
            return [Segment(seg_container, e["name"], int(e["bytes"]), e["hash"]) for e in listing if "name" in e]
        return None

    # --- the data path: plain http.client connections (wire.py), no per-chunk objects ------------

    def _wire(self) -> wire.Connections:
        """The keep-alive connections to the storage host (made anew if ``storage_url`` moved)."""
        with self._wire_lock:  # the mover's threads ask at once
            pool = self._wire_pool
            if pool is None or not self.storage_url.startswith(pool.origin + "/"):
                pool = self._wire_pool = wire.Connections(self.storage_url, lambda: self.cloud.tls, self._connections)
            return pool

    @contextmanager
    def open_range(self, container: str, name: str, start: int, length: int) -> Iterator[Callable[[memoryview], int]]:
        """A ranged GET of ``length`` bytes from ``start``: yields ``read_into(buffer) -> n`` for its
        body (0 at its end). The server must honour the range."""
        pool = self._wire()
        what = f"GET {container}/{name}"
        headers = self._headers({"Range": f"bytes={start}-{start + length - 1}"} if length else {})
        try:
            conn, response = wire.send_head(pool, "GET", self._url(container, name), headers)
        except (OSError, http.client.HTTPException) as exc:
            raise SwiftError(f"{what}: {exc.__class__.__name__}: {exc}") from exc
        assert response is not None
        reusable = False
        try:
            if response.status not in (200, 206):
                self._refused(what, response)
            if length and response.status == 200 and response.length != length:
                raise SwiftError(f"{what} ignored the Range header", response.status)

            def read_into(buffer: memoryview) -> int:
                try:
                    return response.readinto(buffer)
                except (OSError, http.client.HTTPException) as exc:
                    raise SwiftError(f"{what}: {exc.__class__.__name__}: {exc}") from exc

            yield read_into
            reusable = response.isclosed() and not response.will_close
        finally:
            pool.give(conn, reusable)

    def put_from(
        self,
        container: str,
        name: str,
        read_into: Callable[[memoryview], int],
        *,
        length: int,
        etag: str | None = None,
        headers: dict[str, str] | None = None,
        on_chunk: Callable[[memoryview], object] | None = None,
    ) -> str:
        """PUT ``length`` bytes that ``read_into`` fills into a reused buffer (``on_chunk`` sees each
        piece before it is sent); with ``etag`` the server verifies them (422 on mismatch). Returns
        the object's ETag."""
        pool = self._wire()
        what = f"PUT {container}/{name}"
        extra = {"Content-Length": str(length), **(headers or {})}
        if etag:
            extra["ETag"] = etag
        conn, reusable = None, False
        try:
            conn, _ = wire.send_head(pool, "PUT", self._url(container, name), self._headers(extra), body=True)
            response, complete = wire.send_body(conn, read_into, length, pool.buffer(), on_chunk)
            if response.status != 201:
                self._refused(what, response)
            response.read()
            reusable = complete and not response.will_close
        except (OSError, http.client.HTTPException, wire.WireError) as exc:
            raise SwiftError(f"{what}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            if conn is not None:
                pool.give(conn, reusable)
        return (response.getheader("etag") or "").strip('"')

    def _refused(self, what: str, response: http.client.HTTPResponse) -> NoReturn:
        """SwiftError for a data request's error answer; a 401 drops the token, so a retry gets a new one."""
        if response.status == 401:
            self.cloud.session.invalidate()
        try:
            text = response.read(300).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            text = ""
        raise SwiftError(f"{what} answered {response.status}: {text}", response.status)

    def put_object(
        self,
        container: str,
        name: str,
        body: Iterable[bytes] | bytes,
        *,
        length: int,
        etag: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """PUT an object; with ``etag`` the server verifies the bytes (422 on mismatch). Returns its ETag."""
        extra = {"Content-Length": str(length), **(headers or {})}
        if etag:
            extra["ETag"] = etag
        response = self.request("PUT", self._url(container, name), content=body, headers=extra, ok=(201,))
        return response.headers.get("etag", "").strip('"')

    def put_slo_manifest(self, container: str, name: str, segments: list[Segment], headers: dict[str, str]) -> str:
        manifest = [{"path": f"/{s.container}/{s.name}", "etag": s.etag, "size_bytes": s.size} for s in segments]
        body = json.dumps(manifest).encode()
        response = self.request(
            "PUT",
            self._url(container, name),
            params={"multipart-manifest": "put"},
            content=body,
            headers={"Content-Type": headers.pop("Content-Type", "application/octet-stream"), **headers},
            ok=(201,),
        )
        return response.headers.get("etag", "").strip('"')

    def put_dlo_manifest(self, container: str, name: str, prefix: str, headers: dict[str, str]) -> None:
        extra = {"X-Object-Manifest": quote(prefix, safe="/"), "Content-Length": "0", **headers}
        self.request("PUT", self._url(container, name), content=b"", headers=extra, ok=(201,))

    def delete_object(self, container: str, name: str, *, large: bool = False) -> None:
        params = {"multipart-manifest": "delete"} if large else None
        self.request("DELETE", self._url(container, name), params=params, ok=(200, 204, 404))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
