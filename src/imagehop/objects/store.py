"""The object storage engine of one region: rows in the region database, bytes in files.

Images, tasks and compute use it in-process (no HTTP); the Swift routes are one more caller.
All methods are blocking: call them from a worker thread (``run_in_threadpool``) in async code.

    store = ObjectStore(engine, data_dir)          # one per region: ``region.objects``
    store.sweep()                                  # at start-up: drop temp files and orphans

    store.ensure_container(account, container, meta=None) -> (ContainerInfo, created: bool)
    store.get_container(account, container) -> ContainerInfo
    store.list_objects(account, container, prefix=, delimiter=, marker=, end_marker=, limit=, reverse=)
        -> list[ObjectInfo | Subdir]
    store.delete_container(account, container)

    w = store.writer(account, container, name, content_type=, meta=, expected_etag=, hashes=("sha512",))
    w.write(b"...")         # any size; all-zero buffers become holes in the stored file
    w.skip(n)               # n zero bytes without writing them (a hole); they count for size and ETag
    info = w.commit()       # fsync, rename, then the row; w.digests has the extra hashes; or w.abort()

    with store.open(account, container, name) as r:   # plain, SLO and DLO objects alike
        r.info (size, etag, meta, ...); r.extents() -> [(offset, length), ...] of data
        r.pread(offset, length) -> bytes; r.iter_range(start, length, chunk=1 MiB) -> Iterator[bytes]

    store.head(account, container, name) -> ObjectInfo
    store.delete_object(account, container, name) -> ObjectInfo
    store.copy(account, container, name, dst_container, dst_name, meta=None) -> ObjectInfo

Durability: a write goes to ``tmp/<id>``, is fsynced and renamed to ``data/<id[:2]>/<id>``, and only
then is the row committed; the replaced file is unlinked after the commit. A crash at any point
leaves either the old row or the new one, and ``sweep()`` removes whatever file no row names.
Names never reach the filesystem: files are named by random ids.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from imagehop.db import swift_accounts, swift_containers, swift_objects

CHUNK = 1 << 20
ZEROS = bytes(CHUNK)
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
MAX_SEGMENT_DEPTH = 10

# Hashing runs beside the writer: hashlib releases the GIL on large buffers, so MD5 of one chunk
# overlaps the write of the next and the receipt of the one after (PERFORMANCE.md).
_hash_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="objects-hash")


# --- errors -------------------------------------------------------------------------------------


class StoreError(Exception):
    """A refusal of the storage engine; the routes map each kind to a status."""


class NoSuchContainer(StoreError):
    pass


class NoSuchObject(StoreError):
    pass


class ContainerNotEmpty(StoreError):
    pass


class EtagMismatch(StoreError):
    pass


class BrokenLargeObject(StoreError):
    """A segment of an SLO is missing or changed, or the manifests nest too deep."""


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subdir:
    """A listing entry that stands for every name sharing ``name`` as a prefix (with a delimiter)."""

    name: str


@dataclass(frozen=True)
class ContainerInfo:
    id: int
    account: str
    name: str
    meta: dict[str, str]
    object_count: int
    bytes_used: int
    created_at: float
    modified_at: float  # Swift's put timestamp: Last-Modified, moved by PUT and POST


@dataclass(frozen=True)
class AccountInfo:
    name: str
    meta: dict[str, str]
    container_count: int
    object_count: int
    bytes_used: int
    created_at: float


@dataclass(frozen=True)
class ObjectInfo:
    account: str
    container: str
    name: str
    size: int  # for a SLO the total of its segments; for a DLO 0 (its own body)
    etag: str  # plain MD5 hex; for an SLO the SLO etag (unquoted)
    content_type: str
    last_modified: float
    meta: dict[str, str] = field(default_factory=dict)  # lower-case header name -> value
    kind: str = ""  # "", "slo", "dlo"
    manifest: str | None = None
    delete_at: float | None = None
    file_id: str | None = None


def _now() -> float:
    return time.time()


# --- the store ----------------------------------------------------------------------------------


class ObjectStore:
    def __init__(self, engine: Engine, data_dir: Path) -> None:
        self.engine = engine
        self.root = Path(data_dir) / "objects"
        self.tmp_dir = self.root / "tmp"
        self.data_dir = self.root / "data"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)

    # --- files

    def file_path(self, file_id: str) -> Path:
        return self.data_dir / file_id[:2] / file_id

    def sweep(self) -> int:
        """Remove temp files and data files no row refers to; run before serving. Returns the count."""
        removed = 0
        for entry in os.scandir(self.tmp_dir):
            os.unlink(entry.path)
            removed += 1
        with self.engine.connect() as conn:
            known = set(
                conn.execute(sa.select(swift_objects.c.file_id).where(swift_objects.c.file_id.is_not(None))).scalars()
            )
        for sub in os.scandir(self.data_dir):
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                if entry.name not in known:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def reap_expired(self, limit: int = 500) -> int:
        """Remove up to ``limit`` expired objects for good (rows, counts, bytes); the number removed.

        Safe beside other processes doing the same: each row goes by a conditional delete, and only the
        process whose delete took the row unlinks its file (Swift's object-expirer, as a fenced update).
        """
        o, c = swift_objects, swift_containers
        now = _now()
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(o.c.id, o.c.container_id, o.c.size, o.c.file_id)
                .where(o.c.delete_at.is_not(None), o.c.delete_at <= now)
                .order_by(o.c.delete_at)
                .limit(limit)
            ).all()
        removed = 0
        for row in due:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    o.delete().where(o.c.id == row.id, o.c.delete_at.is_not(None), o.c.delete_at <= now)
                ).rowcount
                if taken:
                    conn.execute(
                        c.update()
                        .where(c.c.id == row.container_id)
                        .values(object_count=c.c.object_count - 1, bytes_used=c.c.bytes_used - row.size)
                    )
            if taken:
                removed += 1
                if row.file_id:
                    self._unlink(row.file_id)
        return removed

    # --- accounts

    def account_info(self, account: str) -> AccountInfo:
        """Counts and metadata; an account that was never used reads as empty (autocreate)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(swift_accounts).where(swift_accounts.c.name == account)).first()
            totals = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(swift_containers.c.object_count), 0),
                    sa.func.coalesce(sa.func.sum(swift_containers.c.bytes_used), 0),
                ).where(swift_containers.c.account == account)
            ).one()
        return AccountInfo(
            account,
            dict(row.meta) if row else {},
            int(totals[0]),
            int(totals[1]),
            int(totals[2]),
            row.created_at if row else _now(),
        )

    def account_meta(self, account: str) -> dict[str, str]:
        """Only the account's metadata (its ACL, TempURL keys): one indexed read."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(swift_accounts.c.meta).where(swift_accounts.c.name == account)).first()
        return dict(row.meta) if row else {}

    def update_account_meta(self, account: str, updates: dict[str, str]) -> None:
        """Set headers to values; an empty value removes the header."""
        with self.engine.begin() as conn:
            row = self._ensure_account(conn, account)
            meta = _merge_meta(dict(row.meta), updates)
            conn.execute(swift_accounts.update().where(swift_accounts.c.name == account).values(meta=meta))

    def _ensure_account(self, conn: Connection, account: str) -> Any:
        row = conn.execute(sa.select(swift_accounts).where(swift_accounts.c.name == account)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(swift_accounts.insert().values(name=account, meta={}, created_at=_now()))
            except sa.exc.IntegrityError:
                pass
            row = conn.execute(sa.select(swift_accounts).where(swift_accounts.c.name == account)).one()
        return row

    def list_containers(
        self,
        account: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int = 10000,
        reverse: bool = False,
    ) -> list[ContainerInfo | Subdir]:
        t = swift_containers

        def fetch(conn: Connection, where: list[Any], n: int) -> list[ContainerInfo]:
            query = sa.select(t).where(t.c.account == account, *where)
            query = query.order_by(t.c.name.desc() if reverse else t.c.name).limit(n)
            return [_container(r) for r in conn.execute(query)]

        with self.engine.connect() as conn:
            return _listing(conn, t.c.name, fetch, prefix, delimiter, marker, end_marker, limit, reverse)

    # --- containers

    def ensure_container(
        self, account: str, name: str, meta: dict[str, str] | None = None
    ) -> tuple[ContainerInfo, bool]:
        """Create the container if missing (merging ``meta`` either way); True if it was created."""
        with self.engine.begin() as conn:
            self._ensure_account(conn, account)
            row = self._container_row(conn, account, name)
            created = row is None
            now = _now()
            if created:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            swift_containers.insert().values(
                                account=account,
                                name=name,
                                meta=_merge_meta({}, meta or {}),
                                created_at=now,
                                modified_at=now,
                            )
                        )
                except sa.exc.IntegrityError:
                    created = False
            else:  # Swift: a PUT of an existing container moves its put timestamp and merges metadata
                conn.execute(
                    swift_containers.update()
                    .where(swift_containers.c.id == row.id)
                    .values(meta=_merge_meta(dict(row.meta), meta or {}), modified_at=now)
                )
            row = self._container_row(conn, account, name)
        return _container(row), created

    def get_container(self, account: str, name: str) -> ContainerInfo:
        with self.engine.connect() as conn:
            row = self._container_row(conn, account, name)
        if row is None:
            raise NoSuchContainer(f"{account}/{name}")
        return _container(row)

    def update_container_meta(self, account: str, name: str, updates: dict[str, str]) -> ContainerInfo:
        with self.engine.begin() as conn:
            row = self._container_row(conn, account, name)
            if row is None:
                raise NoSuchContainer(f"{account}/{name}")
            meta = _merge_meta(dict(row.meta), updates)
            conn.execute(
                swift_containers.update().where(swift_containers.c.id == row.id).values(meta=meta, modified_at=_now())
            )
            return _container(self._container_row(conn, account, name))

    def delete_container(self, account: str, name: str) -> None:
        with self.engine.begin() as conn:
            row = self._container_row(conn, account, name)
            if row is None:
                raise NoSuchContainer(f"{account}/{name}")
            o = swift_objects
            live = conn.execute(
                sa.select(o.c.id, o.c.delete_at, o.c.file_id).where(o.c.container_id == row.id).limit(100)
            ).all()
            now = _now()
            if any(r.delete_at is None or r.delete_at > now for r in live):
                raise ContainerNotEmpty(f"{account}/{name}")
            expired = [r.file_id for r in live if r.file_id]
            conn.execute(o.delete().where(o.c.container_id == row.id))
            conn.execute(swift_containers.delete().where(swift_containers.c.id == row.id))
        for file_id in expired:
            self._unlink(file_id)

    def _container_row(self, conn: Connection, account: str, name: str) -> Any:
        t = swift_containers
        return conn.execute(sa.select(t).where(t.c.account == account, t.c.name == name)).first()

    def list_objects(
        self,
        account: str,
        container: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        end_marker: str = "",
        limit: int = 10000,
        reverse: bool = False,
        path: bool = False,
    ) -> list[ObjectInfo | Subdir]:
        """``path``: Swift's legacy listing of the objects directly under ``prefix`` (no subdirs, not the marker)."""
        o = swift_objects
        with self.engine.connect() as conn:
            row = self._container_row(conn, account, container)
            if row is None:
                raise NoSuchContainer(f"{account}/{container}")

            def fetch(conn: Connection, where: list[Any], n: int) -> list[ObjectInfo]:
                now = _now()
                query = sa.select(o).where(
                    o.c.container_id == row.id, *where, sa.or_(o.c.delete_at.is_(None), o.c.delete_at > now)
                )
                query = query.order_by(o.c.name.desc() if reverse else o.c.name).limit(n)
                return [_object(account, container, r) for r in conn.execute(query)]

            return _listing(conn, o.c.name, fetch, prefix, delimiter, marker, end_marker, limit, reverse, path)

    def iter_objects(self, account: str, container: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` in name order, page by page (DLO segments, bulk work)."""
        marker = ""
        while True:
            page = self.list_objects(account, container, prefix=prefix, marker=marker, limit=1000)
            for entry in page:
                assert isinstance(entry, ObjectInfo)
                yield entry
            if len(page) < 1000:
                return
            marker = page[-1].name

    # --- objects

    def writer(
        self,
        account: str,
        container: str,
        name: str,
        *,
        content_type: str = "application/octet-stream",
        meta: dict[str, str] | None = None,
        expected_etag: str | None = None,
        delete_at: float | None = None,
        hashes: Sequence[str] = (),
        known_etag: str | None = None,
    ) -> ObjectWriter:
        """A streaming writer for a new version of ``name``; the container must exist.

        ``known_etag``: for in-process callers that proved the content identical to bytes whose MD5
        they know (e.g. by a stronger digest): it becomes the ETag and no MD5 is computed.
        """
        self.get_container(account, container)
        return ObjectWriter(
            self, account, container, name, content_type, meta or {}, expected_etag, delete_at, hashes, known_etag
        )

    def put_manifest(
        self,
        account: str,
        container: str,
        name: str,
        *,
        kind: str,
        manifest: str,
        size: int,
        etag: str,
        content_type: str = "application/octet-stream",
        meta: dict[str, str] | None = None,
        delete_at: float | None = None,
    ) -> ObjectInfo:
        """Store a large-object manifest (``kind`` "slo" or "dlo"): a row with no file."""
        return self._commit_row(
            account, container, name, size, etag, content_type, meta or {}, None, kind, manifest, delete_at
        )

    def head(self, account: str, container: str, name: str) -> ObjectInfo:
        with self.engine.connect() as conn:
            return self._object_row(conn, account, container, name)

    def _object_row(self, conn: Connection, account: str, container: str, name: str) -> ObjectInfo:
        c, o = swift_containers, swift_objects
        row = conn.execute(
            sa.select(o)
            .join(c, c.c.id == o.c.container_id)
            .where(c.c.account == account, c.c.name == container, o.c.name == name)
        ).first()
        if row is None or (row.delete_at is not None and row.delete_at <= _now()):
            raise NoSuchObject(f"{account}/{container}/{name}")
        return _object(account, container, row)

    def update_object_meta(
        self,
        account: str,
        container: str,
        name: str,
        *,
        meta: dict[str, str],
        content_type: str | None = None,
        delete_at: float | bool | None = False,
        kind: str | None = None,
        manifest: str | None = None,
    ) -> ObjectInfo:
        """Replace the user metadata (Swift's POST semantics); ``delete_at=False`` keeps it."""
        with self.engine.begin() as conn:
            current = self._object_row(conn, account, container, name)
            values: dict[str, Any] = {"meta": meta, "last_modified": _now()}  # a POST moves Last-Modified
            if content_type:
                values["content_type"] = content_type
            if delete_at is not False:
                values["delete_at"] = delete_at
            if kind is not None:
                values["kind"], values["manifest"] = kind, manifest
            row_id = conn.execute(
                sa.select(swift_objects.c.id)
                .join(swift_containers, swift_containers.c.id == swift_objects.c.container_id)
                .where(
                    swift_containers.c.account == account,
                    swift_containers.c.name == container,
                    swift_objects.c.name == name,
                )
            ).scalar_one()
            conn.execute(swift_objects.update().where(swift_objects.c.id == row_id).values(**values))
            return self._object_row(conn, account, container, name) if current else current

    def delete_object(self, account: str, container: str, name: str) -> ObjectInfo:
        with self.engine.begin() as conn:
            row = self._container_row(conn, account, container)
            if row is None:
                raise NoSuchContainer(f"{account}/{container}")
            old = self._remove_row(conn, row.id, name)
        if old is None or (old.delete_at is not None and old.delete_at <= _now()):
            if old is not None and old.file_id:
                self._unlink(old.file_id)
            raise NoSuchObject(f"{account}/{container}/{name}")
        if old.file_id:
            self._unlink(old.file_id)
        return _object(account, container, old)

    def _remove_row(self, conn: Connection, container_id: int, name: str) -> Any:
        o = swift_objects
        old = conn.execute(sa.select(o).where(o.c.container_id == container_id, o.c.name == name)).first()
        if old is None:
            return None
        conn.execute(o.delete().where(o.c.id == old.id))
        conn.execute(
            swift_containers.update()
            .where(swift_containers.c.id == container_id)
            .values(
                object_count=swift_containers.c.object_count - 1,
                bytes_used=swift_containers.c.bytes_used - old.size,
            )
        )
        return old

    def open(
        self,
        account: str,
        container: str,
        name: str,
        *,
        resolve: bool = True,
        check: SegmentCheck | None = None,
    ) -> ObjectReader:
        """A reader of the object's data; with ``resolve`` an SLO/DLO reads as its concatenated segments.

        ``check(container)`` is called once for each container a segment is read from (at any depth)
        and may raise to refuse: the Swift routes read segments with the caller's own rights.
        """
        info = self.head(account, container, name)
        return ObjectReader(self, info, self._parts(info, resolve, 0, _CheckedContainers(check)))

    def _parts(self, info: ObjectInfo, resolve: bool, depth: int, check: _CheckedContainers) -> list[_Part]:
        if depth > MAX_SEGMENT_DEPTH:
            raise BrokenLargeObject("large objects nest too deep")
        if not resolve or not info.kind:
            return [_Part(info.file_id, 0, info.size)] if info.size else []
        parts: list[_Part] = []
        for seg, start, length in self.segments(info, check, depth):
            if isinstance(seg, bytes):
                parts.append(_Part(None, start, length, seg))
                continue
            resolve_segment = info.kind == "slo" or seg.kind == "slo"  # a DLO's DLO segments are not followed
            seg_parts = self._parts(seg, resolve_segment, depth + 1, check)
            parts.extend(_slice_parts(seg_parts, start, start + length))
        return _coalesce(parts)

    def segments(
        self, info: ObjectInfo, check: _CheckedContainers | None = None, depth: int = 0
    ) -> list[tuple[ObjectInfo | bytes, int, int]]:
        """The (segment, start, length) list of a large object, from its manifest (bytes: inline SLO data)."""
        if depth > MAX_SEGMENT_DEPTH:
            raise BrokenLargeObject("large objects nest too deep")
        check = check or _CheckedContainers(None)
        out: list[tuple[ObjectInfo | bytes, int, int]] = []
        if info.kind == "dlo":
            seg_container, _, prefix = unquote(info.manifest or "").partition("/")
            check(info.account, seg_container)
            try:
                # As Swift's dlo: each listed object as it is stored (its own bytes, even a DLO's, even this
                # manifest itself), so a DLO can never recurse.
                for seg in self.iter_objects(info.account, seg_container, prefix):
                    out.append((seg, 0, seg.size))
            except NoSuchContainer:  # Swift's dlo: the listing's 404 is the answer
                raise NoSuchObject(f"{info.account}/{seg_container}") from None
            return out
        for entry in json.loads(info.manifest or "[]"):
            if "data" in entry:
                data = base64.b64decode(entry["data"])
                out.append((data, 0, len(data)))
                continue
            seg_container, _, seg_name = entry["name"].lstrip("/").partition("/")
            check(info.account, seg_container)
            try:
                seg = self.head(info.account, seg_container, seg_name)
            except (NoSuchObject, NoSuchContainer):
                raise BrokenLargeObject(f"segment {entry['name']} is missing") from None
            if seg.etag != entry["hash"]:
                raise BrokenLargeObject(f"segment {entry['name']} changed")
            start, length = 0, int(entry["bytes"])
            if "range" in entry:
                start, end = (int(x) for x in entry["range"].split("-"))
                length = end - start + 1
            out.append((seg, start, length))
        return out

    def _logical_size(self, info: ObjectInfo, check: _CheckedContainers | None = None, depth: int = 0) -> int:
        if info.kind == "dlo":
            return sum(length for _, _, length in self.segments(info, check, depth))
        return info.size

    def copy(
        self,
        account: str,
        container: str,
        name: str,
        dst_container: str,
        dst_name: str,
        *,
        meta: dict[str, str] | None = None,
        content_type: str | None = None,
        fresh_meta: bool = False,
        manifest_only: bool = False,
        dst_account: str | None = None,
        byte_range: tuple[int, int] | None = None,
        check: SegmentCheck | None = None,
    ) -> ObjectInfo:
        """Server-side copy (to ``dst_account`` if given); large objects copy their concatenated data.

        ``byte_range`` (start, length) copies only those bytes; ``check`` as for :meth:`open`.
        """
        dst_account = dst_account or account
        source = self.head(account, container, name)
        new_meta = {} if fresh_meta else dict(source.meta)
        new_meta.update(meta or {})
        ctype = content_type or source.content_type
        if manifest_only and source.kind:
            return self.put_manifest(
                dst_account,
                dst_container,
                dst_name,
                kind=source.kind,
                manifest=source.manifest or "",
                size=source.size,
                etag=source.etag,
                content_type=ctype,
                meta=new_meta,
            )
        writer = self.writer(dst_account, dst_container, dst_name, content_type=ctype, meta=new_meta)
        try:
            with self.open(account, container, name, check=check) as reader:
                lo, hi = (0, reader.size) if byte_range is None else (byte_range[0], sum(byte_range))
                pos = lo
                for offset, length in reader.extents():
                    start, end = max(offset, lo), min(offset + length, hi)
                    if start >= end:
                        continue
                    if start > pos:
                        writer.skip(start - pos)
                    for chunk in reader.iter_range(start, end - start):
                        writer.write(chunk)
                    pos = end
                if hi > pos:
                    writer.skip(hi - pos)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

    # --- internals shared with the writer

    def _commit_row(
        self,
        account: str,
        container: str,
        name: str,
        size: int,
        etag: str,
        content_type: str,
        meta: dict[str, str],
        file_id: str | None,
        kind: str,
        manifest: str | None,
        delete_at: float | None,
    ) -> ObjectInfo:
        now = _now()
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    row = self._container_row(conn, account, container)
                    if row is None:
                        raise NoSuchContainer(f"{account}/{container}")
                    old = self._remove_row(conn, row.id, name)
                    conn.execute(
                        swift_objects.insert().values(
                            container_id=row.id,
                            name=name,
                            size=size,
                            etag=etag,
                            content_type=content_type,
                            last_modified=now,
                            meta=meta,
                            file_id=file_id,
                            kind=kind,
                            manifest=manifest,
                            delete_at=delete_at,
                        )
                    )
                    conn.execute(
                        swift_containers.update()
                        .where(swift_containers.c.id == row.id)
                        .values(
                            object_count=swift_containers.c.object_count + 1,
                            bytes_used=swift_containers.c.bytes_used + size,
                        )
                    )
                break
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise
            except BaseException:
                if file_id:
                    self._unlink(file_id)
                raise
        if old is not None and old.file_id:
            self._unlink(old.file_id)
        return ObjectInfo(
            account, container, name, size, etag, content_type, now, dict(meta), kind, manifest, delete_at, file_id
        )

    def _unlink(self, file_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.file_path(file_id))


# --- writing ------------------------------------------------------------------------------------


class _HashChain:
    """One running digest fed in order by the shared hashing pool; at most one update in flight."""

    def __init__(self, name: str) -> None:
        self.hash = hashlib.new(name)
        self._pending: Future[None] | None = None

    def feed(self, data: bytes) -> None:
        self.wait()
        self._pending = _hash_pool.submit(self.hash.update, data)

    def feed_zeros(self, n: int) -> None:
        self.wait()
        self._pending = _hash_pool.submit(_hash_zeros, self.hash, n)

    def wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None


def _hash_zeros(h: Any, n: int) -> None:
    view = memoryview(ZEROS)
    while n >= CHUNK:
        h.update(view)
        n -= CHUNK
    if n:
        h.update(view[:n])


class ObjectWriter:
    """Streams one object version to a temp file; nothing is visible until :meth:`commit`."""

    def __init__(
        self,
        store: ObjectStore,
        account: str,
        container: str,
        name: str,
        content_type: str,
        meta: dict[str, str],
        expected_etag: str | None,
        delete_at: float | None,
        hashes: Sequence[str],
        known_etag: str | None = None,
    ) -> None:
        self.store = store
        self.account, self.container, self.name = account, container, name
        self.content_type, self.meta, self.delete_at = content_type, meta, delete_at
        self.expected_etag = expected_etag.strip('"').lower() if expected_etag else None
        self.file_id = uuid.uuid4().hex
        self.tmp_path = store.tmp_dir / self.file_id
        self.fd: int | None = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0
        self._known_etag = known_etag
        self._md5 = _HashChain("md5")
        self._extra = {h: _HashChain(h) for h in hashes}
        self._chains = [self._md5, *self._extra.values()] if known_etag is None else list(self._extra.values())
        self.digests: dict[str, str] = {}
        self.kind, self.manifest = "", None  # a DLO keeps its own body: kind "dlo", manifest "container/prefix"

    def write(self, data: bytes) -> None:
        """Append ``data``; a buffer of zeros is skipped, leaving a hole in the file."""
        if not data:
            return
        data = bytes(data)
        for chain in self._chains:
            chain.feed(data)
        assert self.fd is not None
        for start in range(0, len(data), CHUNK):
            piece = data[start : start + CHUNK] if len(data) > CHUNK else data
            if piece != ZEROS[: len(piece)]:  # bytes comparison: a memcmp, fast
                os.pwrite(self.fd, piece, self.size + start)
        self.size += len(data)

    def skip(self, n: int) -> None:
        """Append ``n`` zero bytes as a hole: nothing is written, the zeros are still hashed."""
        if n <= 0:
            return
        for chain in self._chains:
            chain.feed_zeros(n)
        self.size += n

    def commit(self) -> ObjectInfo:
        """Verify, fsync, rename, then commit the row; raises :class:`EtagMismatch` (and aborts)."""
        try:
            for chain in self._chains:
                chain.wait()
            etag = self._known_etag or self._md5.hash.hexdigest()
            self.digests = {name: chain.hash.hexdigest() for name, chain in self._extra.items()}
            if self.expected_etag and self.expected_etag != etag:
                raise EtagMismatch(f"expected {self.expected_etag}, got {etag}")
            assert self.fd is not None
            file_id: str | None = None
            if self.size:
                os.ftruncate(self.fd, self.size)
                os.fsync(self.fd)
                os.close(self.fd)
                self.fd = None
                final = self.store.file_path(self.file_id)
                final.parent.mkdir(exist_ok=True)
                os.rename(self.tmp_path, final)
                _fsync_dir(final.parent)
                file_id = self.file_id
            else:
                self.abort()
        except BaseException:
            self.abort()
            raise
        return self.store._commit_row(
            self.account,
            self.container,
            self.name,
            self.size,
            etag,
            self.content_type,
            self.meta,
            file_id,
            self.kind,
            self.manifest,
            self.delete_at,
        )

    def abort(self) -> None:
        """Drop everything written so far (safe to call more than once)."""
        for chain in (self._md5, *self._extra.values()):
            with contextlib.suppress(Exception):
                chain.wait()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ------------------------------------------------------------------------------------


@dataclass
class _Part:
    """``length`` bytes of file ``file_id`` from ``offset`` (None: a run of zeros, or of ``data`` if given)."""

    file_id: str | None
    offset: int
    length: int
    data: bytes | None = None  # an SLO's inline data segment


SegmentCheck = Callable[[str, str], None]


class _CheckedContainers:
    """Calls a :data:`SegmentCheck` once per (account, container) a large object reads from."""

    def __init__(self, check: SegmentCheck | None) -> None:
        self.check = check
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, account: str, container: str) -> None:
        if self.check is not None and (account, container) not in self.seen:
            self.check(account, container)
            self.seen.add((account, container))


def _slice_parts(parts: list[_Part], lo: int, hi: int) -> list[_Part]:
    """The bytes [lo, hi) of the concatenation of ``parts``."""
    out: list[_Part] = []
    pos = 0
    for part in parts:
        start, end = max(lo, pos), min(hi, pos + part.length)
        if start < end:
            out.append(_Part(part.file_id, part.offset + start - pos, end - start, part.data))
        pos += part.length
    return out


def _coalesce(parts: list[_Part]) -> list[_Part]:
    return [p for p in parts if p.length > 0]


class ObjectReader:
    """Reads an object's bytes, plain or large, by offset; open files are closed by :meth:`close`."""

    def __init__(self, store: ObjectStore, info: ObjectInfo, parts: list[_Part]) -> None:
        self.store = store
        self.info = info
        self.parts = parts
        self.size = sum(p.length for p in parts)
        self._fds: dict[str, int] = {}
        # Open plain objects at once: a later overwrite or delete unlinks the file, not our fd.
        if len(parts) == 1 and parts[0].file_id:
            self._fd(parts[0].file_id)

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _fd(self, file_id: str) -> int:
        fd = self._fds.get(file_id)
        if fd is None:
            try:
                fd = os.open(self.store.file_path(file_id), os.O_RDONLY)
            except FileNotFoundError:
                raise BrokenLargeObject("a segment disappeared while reading") from None
            if len(self._fds) >= 8:  # large objects: keep only a few segment files open
                os.close(self._fds.pop(next(iter(self._fds))))
            self._fds[file_id] = fd
        return fd

    def extents(self) -> list[tuple[int, int]]:
        """The (offset, length) runs that hold data; everything else reads as zeros (holes)."""
        out: list[tuple[int, int]] = []
        pos = 0
        for part in self.parts:
            if part.data is not None:
                runs: Iterator[tuple[int, int]] = iter([(part.offset, part.length)])
            elif part.file_id:
                runs = _file_extents(self._fd(part.file_id), part.offset, part.length)
            else:
                runs = iter(())
            if part.data is not None or part.file_id:
                for start, length in runs:
                    at = pos + start - part.offset
                    if out and out[-1][0] + out[-1][1] == at:
                        out[-1] = (out[-1][0], out[-1][1] + length)
                    else:
                        out.append((at, length))
            pos += part.length
        return out

    def pread(self, offset: int, length: int) -> bytes:
        return b"".join(self.iter_range(offset, length, chunk=max(length, 1)))

    def iter_range(self, start: int, length: int, chunk: int = CHUNK) -> Iterator[bytes]:
        """The bytes [start, start + length) in pieces of at most ``chunk`` bytes."""
        end = min(start + length, self.size)
        for part in _slice_parts(self.parts, start, end):
            pos, stop = part.offset, part.offset + part.length
            while pos < stop:
                n = min(chunk, stop - pos)
                if part.data is not None:
                    yield part.data[pos : pos + n]
                elif part.file_id is None:
                    yield ZEROS[:n] if n <= CHUNK else bytes(n)
                else:
                    data = os.pread(self._fd(part.file_id), n, pos)
                    if len(data) < n:  # a file shorter than its row says: never pad silently
                        raise BrokenLargeObject("stored file is shorter than recorded")
                    yield data
                pos += n

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_range(0, self.size)


def _file_extents(fd: int, start: int, length: int) -> Iterator[tuple[int, int]]:
    """Data runs of ``fd`` within [start, start + length) by SEEK_DATA / SEEK_HOLE."""
    end = start + length
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            return
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole - data
        pos = hole


# --- listings -----------------------------------------------------------------------------------


def _after(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix`` (None: there is none).

    U+10FFFF cannot be incremented (the one before it is, instead), and U+D7FF steps over the surrogates.
    """
    while prefix and prefix[-1] == "\U0010ffff":
        prefix = prefix[:-1]
    if not prefix:
        return None
    code = ord(prefix[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000
    return prefix[:-1] + chr(code)


def _listing(
    conn: Connection,
    column: Any,
    fetch: Any,
    prefix: str,
    delimiter: str,
    marker: str,
    end_marker: str,
    limit: int,
    reverse: bool,
    path: bool = False,
) -> list[Any]:
    """Swift's listing walk: exclusive markers, prefix, optional delimiter roll-up, reverse order.

    Each step is one indexed range query; a ``subdir`` skips past all names it covers at once.
    """
    out: list[Any] = []
    lower: tuple[str, bool] | None = None  # (value, inclusive)
    upper: tuple[str, bool] | None = None
    if reverse:
        if marker:
            upper = (marker, False)
        if end_marker:
            lower = (end_marker, False)
    else:
        if marker:
            lower = (marker, False)
        if end_marker:
            upper = (end_marker, False)
    if prefix:
        if lower is None or lower[0] < prefix:
            lower = (prefix, True)
        bound = _after(prefix)
        if bound is not None and (upper is None or upper[0] > bound):
            upper = (bound, False)
    while len(out) < limit:
        where = []
        if lower is not None:
            where.append(column >= lower[0] if lower[1] else column > lower[0])
        if upper is not None:
            where.append(column <= upper[0] if upper[1] else column < upper[0])
        if lower is not None and upper is not None and lower[0] > upper[0]:
            break
        wanted = limit - len(out)
        rows = fetch(conn, where, wanted)
        if not rows:
            break
        rolled = False
        for entry in rows:
            rest = entry.name[len(prefix) :]
            if path and entry.name == prefix:
                continue
            if delimiter and delimiter in rest and not (path and rest.index(delimiter) + len(delimiter) == len(rest)):
                sub = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if not path and not (marker and (sub >= marker if reverse else sub <= marker)):
                    out.append(Subdir(sub))  # with path, deeper names are skipped and no subdir is listed
                if reverse:
                    upper = (sub, path)
                else:
                    following = _after(sub)
                    if following is None:  # nothing can sort after this subdir
                        return out[:limit]
                    lower = (following, True)
                rolled = True
                break
            out.append(entry)
        if not rolled and len(rows) < wanted:
            break
    return out[:limit]


# --- row conversion -----------------------------------------------------------------------------


def _container(row: Any) -> ContainerInfo:
    return ContainerInfo(
        row.id,
        row.account,
        row.name,
        dict(row.meta),
        int(row.object_count),
        int(row.bytes_used),
        row.created_at,
        row.modified_at or row.created_at,
    )


def _object(account: str, container: str, row: Any) -> ObjectInfo:
    return ObjectInfo(
        account,
        container,
        row.name,
        int(row.size),
        row.etag,
        row.content_type,
        row.last_modified,
        dict(row.meta),
        row.kind or "",
        row.manifest,
        row.delete_at,
        row.file_id,
    )


def _merge_meta(meta: dict[str, str], updates: dict[str, str]) -> dict[str, str]:
    for key, value in updates.items():
        if value == "":
            meta.pop(key.lower(), None)
        else:
            meta[key.lower()] = value
    return meta
