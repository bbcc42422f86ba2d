"""The object storage engine of one region: rows in the region database, bytes in a blob store.

Images, tasks and compute use it in-process (no HTTP); the Swift routes are one more caller.
All methods are blocking: call them from a worker thread (``run_in_threadpool``) in async code.

    store = ObjectStore(engine, data_dir, blobs=None)   # one per region: ``region.objects``; file blobs by default

    store.ensure_container(account, container, meta=None) -> (ContainerInfo, created: bool)
    store.get_container(account, container) -> ContainerInfo
    store.list_objects(account, container, prefix=, delimiter=, marker=, end_marker=, limit=, reverse=)
        -> list[ObjectInfo | Subdir]
    store.delete_container(account, container)

    w = store.writer(account, container, name, content_type=, meta=, expected_etag=, hashes=("sha512",))
    w.write(b"...")         # any size; all-zero pieces become holes: not stored, only mapped
    w.skip(n)               # n zero bytes without writing them (a hole); they count for size and ETag
    info = w.commit()       # blob durable, then the row; w.digests has the extra hashes; or w.abort()

    with store.open(account, container, name) as r:   # plain, SLO and DLO objects alike
        r.info (size, etag, meta, ...); r.extents() -> [(offset, length), ...] of data
        r.pread(offset, length) -> bytes; r.iter_range(start, length, chunk=1 MiB) -> Iterator[bytes]

    store.head(account, container, name) -> ObjectInfo
    store.delete_object(account, container, name) -> ObjectInfo
    store.copy(account, container, name, dst_container, dst_name, meta=None) -> ObjectInfo
    store.housekeeping()    # by the holder of the region's housekeeping lock: clean-up and reaping

Bytes: a blob (see ``objects/blobs``) holds only an object's data runs, packed; the row
``object_blobs`` keeps its extent map, so holes never reach the blob store. A run of the map may
instead name a range of *another* blob (``w.pin(reader)``, ``w.copy_from(reader, start, length)``:
an object built by reference, e.g. an incremental copy on its base). Such a blob holds a reference
(a ``blob_refs`` row and one count of the target's ``refs``) from the moment it pins until its own
row is removed; a retired blob is removed only once its ``refs`` is 0, so the bytes stay exactly as
long as some object reads them, on every blob store. Durability: before the
first byte, an intent row (``writing``, with this process as holder and a lease) is committed; the
blob is made durable; then one transaction turns the intent ``live`` and commits the object row.
A process that writes often commits its intents ahead, several in one transaction (up to
``intent_batch``, see :meth:`ObjectStore._begin_blob`), and hands one to each new blob: a small PUT
then costs one transaction, not two. An intent not handed out is no different from one whose
writer has not written yet: it is dropped when it gets old, or discarded by housekeeping after a crash.
The replaced or deleted blob turns ``deleting`` and is removed once ``delete_grace`` has passed, so
readers in flight finish. A crash leaves an intent whose holder is gone or whose lease ran out, and
:meth:`housekeeping` discards it; nothing is ever found by listing the store. Names never reach
the blob store: blobs are named by random ids.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import json
import logging
import os
import threading
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

from imagehop.db import blob_refs, object_blobs, swift_accounts, swift_containers, swift_objects
from imagehop.leases import holder_gone, holder_id
from imagehop.objects.blobs import BlobError, BlobReader, BlobStore, BlobWriter, FileRun

log = logging.getLogger(__name__)

CHUNK = 1 << 20
ZEROS = bytes(CHUNK)
EMPTY_MD5 = hashlib.md5(b"").hexdigest()
MAX_SEGMENT_DEPTH = 10
WRITE_LEASE = 600.0  # seconds an unfinished write stays ours without a sign of life (renewed while writing)
INTENT_BATCH = 16  # at most this many intents are committed ahead in one transaction
INTENT_FRESH = WRITE_LEASE / 4  # an intent committed ahead is handed out only this long (then dropped)
INTENT_BURST = 5.0  # seconds: a pool that runs dry this soon after its refill is refilled with twice as many
READERS = 8  # blobs a reader keeps open at once (segments of a large object, blobs an object refers to)
INLINE_HASH = 64 << 10  # smaller pieces are hashed in the caller's thread: a hop to the pool costs more

# The statements of every small PUT and GET, built once: SQLAlchemy then reuses their cache key and
# compiled form, instead of building and hashing a new expression tree per request.
_C, _O, _B = swift_containers, swift_objects, object_blobs
_CONTAINER_ROW = sa.select(_C).where(_C.c.account == sa.bindparam("account"), _C.c.name == sa.bindparam("container"))
_OBJECT_ROW = (
    sa.select(_O)
    .join(_C, _C.c.id == _O.c.container_id)
    .where(_C.c.account == sa.bindparam("account"), _C.c.name == sa.bindparam("container"),
           _O.c.name == sa.bindparam("object"))
)  # fmt: skip
_OPEN_ROW = _OBJECT_ROW.add_columns(_B.c.extents.label("blob_extents")).outerjoin(_B, _B.c.id == _O.c.file_id)
_INTENT_LIVE = (
    _B.update()
    .where(_B.c.id == sa.bindparam("blob_id"), _B.c.state == "writing", _B.c.holder == sa.bindparam("holder_id"))
    .values(state="live", holder=None, lease_until=None, size=sa.bindparam("size_"), stored=sa.bindparam("stored_"),
            extents=sa.bindparam("extents_"))
)  # fmt: skip
_REMOVE_ROW = (
    _O.delete()
    .where(_O.c.container_id == sa.bindparam("container_id_"), _O.c.name == sa.bindparam("object"))
    .returning(*_O.c)
)
_INSERT_ROW = _O.insert()
_COUNT_IN = (
    _C.update()
    .where(_C.c.id == sa.bindparam("container_id_"))
    .values(object_count=_C.c.object_count + 1, bytes_used=_C.c.bytes_used + sa.bindparam("size_", type_=sa.BigInteger))
)

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


class WriteExpired(StoreError):
    """The write's intent record was taken over (its lease ran out): nothing was committed."""


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
    def __init__(
        self, engine: Engine, data_dir: Path, blobs: BlobStore | None = None, intent_batch: int = INTENT_BATCH
    ) -> None:
        self.engine = engine
        if blobs is None:
            from imagehop.objects.blobs.file import FileBlobStore

            blobs = FileBlobStore(Path(data_dir) / "objects")
        self.blobs = blobs
        self.intent_batch = max(1, intent_batch)
        self._intents: list[str] = []  # committed intents of this process not handed to a writer yet
        self._intents_at = 0.0  # when they were committed (time.monotonic())
        self._intents_next = 1  # how many the next refill commits
        self._intents_holder = ""  # the process they were committed for (holder_id())
        self._intents_lock = threading.Lock()

    # --- blobs: intents, deferred deletes, housekeeping

    def _begin_blob(self) -> tuple[str, float]:
        """A new blob id whose intent row (``writing``, held by this process) is committed, and when
        it was committed (``time.monotonic()``; its lease runs from then).

        Intents are committed ahead, in batches that double (up to ``intent_batch``) while writes
        keep coming and fall back to one after a pause, so a busy process pays one transaction per
        batch and an idle one leaves at most one intent unused. An id is handed out once, by this
        process only, and only while its lease is young (:data:`INTENT_FRESH`): the writer then
        renews it as any other. Older ones are deleted in the refill's transaction; nothing was
        written under them. Crash safety is the same as with one intent per write: every id bytes
        are written under has a committed ``writing`` row first, and the commit turns it ``live``
        only if it is still ours.
        """
        with self._intents_lock:
            now = time.monotonic()
            if self._intents_holder != holder_id():  # a forked child: the parent's intents are not ours
                self._intents, self._intents_at = [], 0.0
            if self._intents and now - self._intents_at < INTENT_FRESH:
                return self._intents.pop(), self._intents_at
            stale, self._intents = self._intents, []
            if stale or now - self._intents_at > INTENT_BURST:
                self._intents_next = 1
            batch = min(self._intents_next, self.intent_batch)
            self._intents_next = min(batch * 2, self.intent_batch)
            ids = [uuid.uuid4().hex for _ in range(batch)]
            wall = _now()
            with self.engine.begin() as conn:
                if stale:
                    _drop_unused(conn, stale)
                conn.execute(
                    object_blobs.insert(),
                    [
                        {"id": i, "state": "writing", "holder": holder_id(), "lease_until": wall + WRITE_LEASE,
                         "created_at": wall}
                        for i in ids
                    ],
                )  # fmt: skip
            self._intents_at, self._intents_holder = now, holder_id()
            blob_id = ids.pop()
            self._intents = ids
            return blob_id, now

    def release_intents(self) -> int:
        """Delete the intents committed ahead and not handed out (at shutdown, and in tests that count
        rows); how many."""
        with self._intents_lock:
            ids, self._intents = self._intents, []
            self._intents_at = 0.0
            if ids and self._intents_holder == holder_id():
                with self.engine.begin() as conn:
                    _drop_unused(conn, ids)
            return len(ids)

    def _renew(self, blob_id: str) -> bool:
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    object_blobs.update()
                    .where(object_blobs.c.id == blob_id, object_blobs.c.state == "writing")
                    .values(lease_until=_now() + WRITE_LEASE)
                ).rowcount
                == 1
            )

    def _drop_intent(self, blob_id: str) -> None:
        """An aborted write: discard what reached the store, then the intent and the references it
        took (the lease covers a failure)."""
        try:
            self._remove_blob(blob_id, "writing", quiet=False)
        except Exception:
            log.warning("could not discard blob %s now; housekeeping will", blob_id, exc_info=True)

    def _pin(self, holder: str, targets: Sequence[str]) -> None:
        """Let the unfinished write ``holder`` refer to runs of the blobs ``targets``: each gains a
        reference (a ``blob_refs`` row and one count of ``refs``), held as long as ``holder``'s row
        exists, so their bytes stay whatever happens to the objects that named them.

        A target must be ``live``, or retired but still referred to (its bytes are kept for those):
        a retired blob whose count reached 0 is being removed and can never be pinned again, which is
        what makes :meth:`_remove_blob`'s check of ``refs = 0`` final. Raises :class:`StoreError`
        when a target cannot be pinned (its object was deleted), :class:`WriteExpired` when the write
        is no longer ours; then nothing was pinned."""
        b = object_blobs
        with self.engine.begin() as conn:
            ours = conn.execute(
                b.update().where(b.c.id == holder, b.c.state == "writing", b.c.holder == holder_id())
                .values(lease_until=_now() + WRITE_LEASE)
            ).rowcount  # fmt: skip
            if ours != 1:
                raise WriteExpired("the upload's lease ran out and it was discarded; send it again")
            for target in targets:
                pinned = conn.execute(
                    b.update()
                    .where(b.c.id == target)
                    .where(sa.or_(b.c.state == "live", sa.and_(b.c.state == "deleting", b.c.refs > 0)))
                    .values(refs=b.c.refs + 1)
                ).rowcount
                if pinned != 1:
                    raise StoreError(f"blob {target} is gone: it cannot be referred to")
                conn.execute(blob_refs.insert().values(holder=holder, target=target))

    def _release(self, conn: Connection, holder: str) -> list[str]:
        """Inside the transaction that deletes ``holder``'s row: drop the references it holds; the
        targets, whose bytes may now be removable (see :meth:`_remove_freed`)."""
        targets = list(conn.execute(sa.select(blob_refs.c.target).where(blob_refs.c.holder == holder)).scalars())
        if targets:
            conn.execute(blob_refs.delete().where(blob_refs.c.holder == holder))
            b = object_blobs
            conn.execute(b.update().where(b.c.id.in_(targets)).values(refs=b.c.refs - 1))
        return targets

    def _remove_freed(self, targets: list[str]) -> None:
        """Remove the retired ``targets`` that nothing refers to any more and whose grace period is over
        (the rest wait for housekeeping, or for their last reference to go)."""
        if not targets:
            return
        b = object_blobs
        with self.engine.connect() as conn:
            freed = conn.execute(
                sa.select(b.c.id).where(b.c.id.in_(targets), b.c.state == "deleting", b.c.refs <= 0,
                                        b.c.delete_after <= _now())
            ).scalars().all()  # fmt: skip
        for blob_id in freed:
            self._remove_blob(blob_id, "deleting")

    def _retire(self, conn: Connection, blob_id: str | None) -> None:
        """Inside the transaction that stops naming ``blob_id``: it is deleted after the grace period."""
        if blob_id:
            conn.execute(
                object_blobs.update()
                .where(object_blobs.c.id == blob_id)
                .values(state="deleting", delete_after=_now() + self.blobs.delete_grace)
            )

    def _delete_now(self, blob_id: str | None) -> None:
        """After the commit that retired ``blob_id``: with no grace period, remove it at once."""
        if blob_id and self.blobs.delete_grace <= 0:
            self._remove_blob(blob_id, "deleting")

    def _remove_blob(self, blob_id: str, state: str, quiet: bool = True) -> bool:
        """Remove a retired (``deleting``) or unfinished (``writing``) blob: its bytes, then its row and
        the references it holds. A retired blob that other blobs still refer to stays (False)."""
        b = object_blobs
        if state == "deleting":
            with self.engine.connect() as conn:
                refs = conn.execute(sa.select(b.c.refs).where(b.c.id == blob_id, b.c.state == state)).scalar()
            if refs is None or refs > 0:  # gone already, or still referred to: its bytes stay
                return False
        try:
            if state == "writing":
                self.blobs.discard(blob_id)
            else:
                self.blobs.delete(blob_id)
        except Exception:
            if not quiet:
                raise
            log.warning("removing blob %s failed; it is retried later", blob_id, exc_info=True)
            return False
        with self.engine.begin() as conn:
            removed = conn.execute(b.delete().where(b.c.id == blob_id, b.c.state == state)).rowcount
            freed = self._release(conn, blob_id) if removed else []
        self._remove_freed(freed)
        return True

    def housekeeping(self, limit: int = 1000) -> dict[str, int]:
        """Clean-up for the holder of the region's housekeeping lock (never at start-up).

        Reaps expired objects (``X-Delete-At`` passed), removes retired blobs whose grace period is
        over, and discards unfinished writes whose holder is gone or whose lease ran out.
        """
        done = {"reaped": self.reap_expired(limit), "deleted": 0, "discarded": 0}
        now = _now()
        b = object_blobs
        with self.engine.connect() as conn:
            retired = (
                conn.execute(
                    sa.select(b.c.id)
                    .where(b.c.state == "deleting", b.c.delete_after <= now, b.c.refs <= 0)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            writing = conn.execute(sa.select(b.c.id, b.c.holder, b.c.lease_until).where(b.c.state == "writing")).all()
        for blob_id in retired:
            done["deleted"] += self._remove_blob(blob_id, "deleting")
        for row in writing[:limit]:
            if (row.lease_until or 0) < now or holder_gone(row.holder):
                # Take the intent over first, so a writer that comes back cannot commit it meanwhile.
                with self.engine.begin() as conn:
                    taken = conn.execute(
                        b.update()
                        .where(b.c.id == row.id, b.c.state == "writing", b.c.holder == row.holder)
                        .values(holder=holder_id(), lease_until=0)
                    ).rowcount
                if taken:
                    done["discarded"] += self._remove_blob(row.id, "writing")
        return done

    def reap_expired(self, limit: int = 1000) -> int:
        """Delete the rows of objects whose ``X-Delete-At`` has passed (they are hidden already)."""
        o = swift_objects
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(o.c.container_id, o.c.name)
                .where(o.c.delete_at.is_not(None), o.c.delete_at <= _now())
                .limit(limit)
            ).all()
        reaped = 0
        for row in rows:
            with self.engine.begin() as conn:
                old = self._remove_row(conn, row.container_id, row.name, expired_only=True)
                if old is not None:
                    self._retire(conn, old.file_id)
            if old is not None:
                reaped += 1
                self._delete_now(old.file_id)
        return reaped

    def blob_rows(self) -> dict[str, str]:
        """Every blob row: id -> state (audits and tests; intents committed ahead are ``writing``
        rows too, see :meth:`release_intents`)."""
        with self.engine.connect() as conn:
            return {r.id: r.state for r in conn.execute(sa.select(object_blobs.c.id, object_blobs.c.state))}

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
            for file_id in expired:
                self._retire(conn, file_id)
            conn.execute(o.delete().where(o.c.container_id == row.id))
            try:
                with conn.begin_nested():
                    conn.execute(swift_containers.delete().where(swift_containers.c.id == row.id))
            except sa.exc.IntegrityError:  # an object arrived meanwhile
                raise ContainerNotEmpty(f"{account}/{name}") from None
        for file_id in expired:
            self._delete_now(file_id)

    def _container_row(self, conn: Connection, account: str, name: str) -> Any:
        return conn.execute(_CONTAINER_ROW, {"account": account, "container": name}).first()

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
        check: bool = True,
        keep_cache: bool = False,
    ) -> ObjectWriter:
        """A streaming writer for a new version of ``name``; the container must exist.

        ``known_etag``: for in-process callers that proved the content identical to bytes whose MD5
        they know (e.g. by a stronger digest): it becomes the ETag and no MD5 is computed.
        ``check=False``: the caller has just read the container (the commit checks it again); then
        no database is touched here and it may be called from async code.
        ``keep_cache``: a blob store with a page cache drops a large blob's pages as it writes them,
        unless the caller will read the bytes again at once and asks to keep them (see
        docs/operations.md: taking fresh pages for every byte cost more than reading back from disk).
        """
        if check:
            self.get_container(account, container)
        return ObjectWriter(
            self, account, container, name, content_type, meta or {}, expected_etag, delete_at, hashes, known_etag,
            keep_cache,
        )  # fmt: skip

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
        row = conn.execute(_OBJECT_ROW, {"account": account, "container": container, "object": name}).first()
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
            if old is not None:
                self._retire(conn, old.file_id)
        if old is not None:
            self._delete_now(old.file_id)
        if old is None or (old.delete_at is not None and old.delete_at <= _now()):
            raise NoSuchObject(f"{account}/{container}/{name}")
        return _object(account, container, old)

    def _remove_row(self, conn: Connection, container_id: int, name: str, expired_only: bool = False) -> Any:
        """Delete the row and count it out, only if this transaction is the one that deleted it.

        ``DELETE ... RETURNING``: of two concurrent deletes (or overwrites) of one name, only the one
        that removed the row adjusts the container's counters, so they stay exact.
        """
        o = swift_objects
        if expired_only:
            query = o.delete().where(o.c.container_id == container_id, o.c.name == name)
            query = query.where(o.c.delete_at.is_not(None), o.c.delete_at <= _now())
            old = conn.execute(query.returning(*o.c)).first()
        else:
            old = conn.execute(_REMOVE_ROW, {"container_id_": container_id, "object": name}).first()
        if old is None:
            return None
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
        keep_cache: bool = False,
    ) -> ObjectReader:
        """A reader of the object's data; with ``resolve`` an SLO/DLO reads as its concatenated segments.

        ``check(container)`` is called once for each container a segment is read from (at any depth)
        and may raise to refuse: the Swift routes read segments with the caller's own rights.
        ``keep_cache``: as for :meth:`writer`; by default large blobs leave the page cache as read.
        """
        with self.engine.connect() as conn:  # the row and its extent map in one query
            row = conn.execute(_OPEN_ROW, {"account": account, "container": container, "object": name}).first()
        if row is None or (row.delete_at is not None and row.delete_at <= _now()):
            raise NoSuchObject(f"{account}/{container}/{name}")
        info = _object(account, container, row)
        if not info.kind or not resolve:
            blob = _Blob.from_row(info.file_id, info.size, row.blob_extents) if info.file_id else None
            return ObjectReader(self, info, [_Part(blob, 0, info.size)] if info.size else [], keep_cache)
        return ObjectReader(self, info, self._parts(info, resolve, 0, _CheckedContainers(check)), keep_cache)

    def _blob(self, file_id: str | None, size: int) -> _Blob | None:
        """The extent map of a stored blob (None: no bytes)."""
        if not file_id:
            return None
        b = object_blobs
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(b.c.extents, b.c.state).where(b.c.id == file_id)).first()
        return _Blob.from_row(file_id, size, row.extents if row is not None else None)

    def _parts(self, info: ObjectInfo, resolve: bool, depth: int, check: _CheckedContainers) -> list[_Part]:
        if depth > MAX_SEGMENT_DEPTH:
            raise BrokenLargeObject("large objects nest too deep")
        if not resolve or not info.kind:
            return [_Part(self._blob(info.file_id, info.size), 0, info.size)] if info.size else []
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
        extents: list[list[Any]] | None = None,
        stored: int = 0,
    ) -> ObjectInfo:
        """One transaction: the blob's intent turns ``live`` (only if still ours), the old version's row
        goes and its blob is retired, the new row and the counters are written."""
        now = _now()
        old = None
        try:
            for attempt in range(10):
                try:
                    with self.engine.begin() as conn:
                        row = self._container_row(conn, account, container)
                        if row is None:
                            raise NoSuchContainer(f"{account}/{container}")
                        if file_id:
                            mapped = json.dumps(extents, separators=(",", ":")) if extents is not None else None
                            live = conn.execute(
                                _INTENT_LIVE,
                                {"blob_id": file_id, "holder_id": holder_id(), "size_": size, "stored_": stored,
                                 "extents_": mapped},
                            ).rowcount  # fmt: skip
                            if live != 1:
                                raise WriteExpired("the upload's lease ran out and it was discarded; send it again")
                        old = self._remove_row(conn, row.id, name)
                        if old is not None:
                            self._retire(conn, old.file_id)
                        conn.execute(
                            _INSERT_ROW,
                            {
                                "container_id": row.id,
                                "name": name,
                                "size": size,
                                "etag": etag,
                                "content_type": content_type,
                                "last_modified": now,
                                "meta": meta,
                                "file_id": file_id,
                                "kind": kind,
                                "manifest": manifest,
                                "delete_at": delete_at,
                            },
                        )
                        conn.execute(_COUNT_IN, {"container_id_": row.id, "size_": size})
                    break
                except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                    # A concurrent writer of the same name committed first (unique name), or on
                    # PostgreSQL a deadlock/serialisation failure: try again on the new state.
                    if attempt == 9 or (isinstance(exc, sa.exc.OperationalError) and not _retryable(exc)):
                        raise
                    time.sleep(0.005 * (attempt + 1))
        except BaseException:
            if file_id:
                self._drop_intent(file_id)
            raise
        if old is not None:
            self._delete_now(old.file_id)
        return ObjectInfo(
            account, container, name, size, etag, content_type, now, dict(meta), kind, manifest, delete_at, file_id
        )


def _drop_unused(conn: Connection, ids: list[str]) -> None:
    """Delete this process's intents ``ids`` that were committed ahead and never handed to a writer."""
    b = object_blobs
    conn.execute(b.delete().where(b.c.id.in_(ids), b.c.state == "writing", b.c.holder == holder_id()))


def _retryable(exc: sa.exc.OperationalError) -> bool:
    """PostgreSQL's deadlock_detected / serialization_failure; SQLite's 'database is locked'."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001") or "locked" in str(exc.orig)


# --- writing ------------------------------------------------------------------------------------


class _HashChain:
    """One running digest fed in order by the shared hashing pool; at most one update in flight."""

    def __init__(self, name: str) -> None:
        self.hash = hashlib.new(name)
        self._pending: Future[None] | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self.wait()
        if len(data) < INLINE_HASH:
            self.hash.update(data)
        else:
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
    """Streams one object version to a new blob; nothing is visible until :meth:`commit`.

    Only data runs reach the blob store: an all-zero piece (or :meth:`skip`) is a hole, recorded in
    the extent map and hashed but never stored. The blob and its intent row are created on the
    first data byte, so an empty or all-zero object has no blob at all.
    """

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
        keep_cache: bool = False,
    ) -> None:
        self.store = store
        self.account, self.container, self.name = account, container, name
        self.content_type, self.meta, self.delete_at = content_type, meta, delete_at
        self.expected_etag = expected_etag.strip('"').lower() if expected_etag else None
        self.file_id: str | None = None
        self._blob: BlobWriter | None = None
        self.keep_cache = keep_cache  # passed on to the blob store's writer
        self._renewed = 0.0
        self.size = 0
        self.stored = 0
        # Each data run, in order: [offset, length] (bytes of this blob, packed) or [offset, length,
        # blob id, blob offset, blob size] (bytes of another blob, pinned: see copy_from).
        self.extents: list[list[Any]] = []
        self._pinned: set[str] = set()
        self._known_etag = known_etag
        self._md5 = _HashChain("md5")
        self._extra = {h: _HashChain(h) for h in hashes}
        self._chains = [self._md5, *self._extra.values()] if known_etag is None else list(self._extra.values())
        self.digests: dict[str, str] = {}
        self.kind, self.manifest = "", None  # a DLO keeps its own body: kind "dlo", manifest "container/prefix"
        self._done = False
        self._blob_keeps_writes = getattr(store.blobs, "keeps_writes", True)

    def _intent(self) -> str:
        """This write's blob id, its intent committed (and its lease renewed now and then)."""
        if self.file_id is None:
            self.file_id, self._renewed = self.store._begin_blob()
        elif time.monotonic() - self._renewed > WRITE_LEASE / 4:
            self._renewed = time.monotonic()
            if not self.store._renew(self.file_id):
                raise WriteExpired("the upload's lease ran out and it was discarded; send it again")
        return self.file_id

    def _open_blob(self) -> BlobWriter:
        blob_id = self._intent()
        if self._blob is None:
            self._blob = self.store.blobs.writer(blob_id, self.keep_cache)
        return self._blob

    def _stored(self, at: int, n: int) -> None:
        self.stored += n
        last = self.extents[-1] if self.extents else None
        if last is not None and len(last) == 2 and last[0] + last[1] == at:
            last[1] += n
        else:
            self.extents.append([at, n])

    def can_copy_from(self, reader: ObjectReader) -> bool:
        """Whether :meth:`copy_from` can take ``reader``'s bytes by reference: a plain object (whose
        bytes are in blobs, on any blob store), and no hash to compute over the bytes here (the
        caller knows the ETag: ``known_etag``)."""
        parts = reader.parts
        return (
            not self._chains
            and len(parts) == 1
            and parts[0].blob is not None
            and parts[0].data is None
            and parts[0].offset == 0
        )

    def pin(self, reader: ObjectReader) -> None:
        """Hold a reference to every blob ``reader``'s object keeps its bytes in, from now until this
        write is committed (then the new object's blob holds them) or dropped: deleting that object
        meanwhile, or later, leaves the bytes this object refers to in place. Raises
        :class:`StoreError` when the object's bytes are already being removed (it was deleted)."""
        if not self.can_copy_from(reader):
            raise ValueError("copy_from needs a plain object and no hashes")
        blob = reader.parts[0].blob
        assert blob is not None
        wanted = [blob_id for blob_id in blob.sizes if blob_id not in self._pinned]
        if wanted:
            self.store._pin(self._intent(), wanted)
            self._pinned.update(wanted)

    def copy_from(self, reader: ObjectReader, start: int, length: int) -> None:
        """Append bytes ``[start, start + length)`` of another object (see :meth:`can_copy_from`) by
        reference: the new object's extent map names the runs of the blobs that hold them (the blob
        that holds each run, whatever object it was written for: references never chain), and no
        byte is read, written or stored again; its holes stay holes. Pins the blobs first (:meth:`pin`)."""
        self.pin(reader)
        blob = reader.parts[0].blob
        assert blob is not None
        end = min(start + length, reader.size)
        pos = start
        for run_start, run_length, at, blob_id in [*blob.runs_within(start, end), (end, 0, 0, "")]:
            if run_start > pos:
                self.skip(run_start - pos)
            if run_length:
                last = self.extents[-1] if self.extents else None
                if (last is not None and len(last) == 5 and last[2] == blob_id and last[0] + last[1] == self.size
                        and last[3] + last[1] == at):  # fmt: skip
                    last[1] += run_length
                else:
                    self.extents.append([self.size, run_length, blob_id, at, blob.sizes[blob_id]])
                self.size += run_length
            pos = run_start + run_length

    def write(self, data: bytes) -> None:
        """Append ``data``; a piece of zeros is skipped, leaving a hole.

        Zeros are looked for in the object's own 1 MiB blocks (aligned on its offsets, whatever the
        sizes the data arrives in), so the extent map does not depend on how a client chunked it.
        """
        self.write_buffer(bytes(data))

    def write_buffer(self, data: bytes | bytearray) -> None:
        """:meth:`write` without a copy of ``data``, for a caller that reuses its buffers: the hashing
        of ``data`` may still run when this returns, so ``data`` must not change until the next call
        of :meth:`write_buffer`, :meth:`write`, :meth:`commit` or :meth:`abort` has returned."""
        n = len(data)
        if not n:
            return
        for chain in self._chains:
            chain.feed(data)
        at = self.size
        start = 0
        while start < n:  # each 1 MiB block of the object this piece touches
            end = min(n, start + CHUNK - (at + start) % CHUNK)
            if not data.startswith(ZEROS[: end - start], start):  # a memcmp in place, no slice
                self._store(data if end - start == n else memoryview(data)[start:end], at + start)
            start = end
        self.size += n

    def _store(self, piece: bytes | bytearray | memoryview, at: int) -> None:
        n = len(piece)
        if self._blob_keeps_writes and not isinstance(piece, bytes):
            piece = bytes(piece)  # the blob store may hold on to it past this call
        self._open_blob().write(piece)  # type: ignore[arg-type]
        self._stored(at, n)

    def skip(self, n: int) -> None:
        """Append ``n`` zero bytes as a hole: nothing is stored, the zeros are still hashed."""
        if n <= 0:
            return
        for chain in self._chains:
            chain.feed_zeros(n)
        self.size += n

    def retarget(self, container: str, name: str) -> None:
        """Commit under another name of the same account (e.g. an interrupted upload kept aside)."""
        self.store.get_container(self.account, container)
        self.container, self.name = container, name

    def commit(self) -> ObjectInfo:
        """Verify, make the blob durable, then commit the row; raises :class:`EtagMismatch` (and aborts)."""
        try:
            for chain in self._chains:
                chain.wait()
            etag = self._known_etag or self._md5.hash.hexdigest()
            self.digests = {name: chain.hash.hexdigest() for name, chain in self._extra.items()}
            if self.expected_etag and self.expected_etag != etag:
                raise EtagMismatch(f"expected {self.expected_etag}, got {etag}")
            if self._blob is not None:
                try:
                    self._blob.commit()
                except Exception as exc:
                    if not self.store._renew(self.file_id):  # type: ignore[arg-type]
                        raise WriteExpired("the upload's lease ran out and it was discarded; send it again") from exc
                    raise
                self._blob = None
        except BaseException:
            self.abort()
            raise
        self._done = True
        dense = len(self.extents) == 1 and self.extents[0] == [0, self.size]
        return self.store._commit_row(
            self.account,
            self.container,
            self.name,
            self.size,
            etag,
            self.content_type,
            self.meta,
            self.file_id,
            self.kind,
            self.manifest,
            self.delete_at,
            None if dense else self.extents,
            self.stored,
        )

    def abort(self) -> None:
        """Drop everything written so far (safe to call more than once)."""
        for chain in (self._md5, *self._extra.values()):
            with contextlib.suppress(Exception):
                chain.wait()
        if self._blob is not None:
            with contextlib.suppress(Exception):
                self._blob.abort()
            self._blob = None
        if self.file_id is not None and not self._done:
            self._done = True
            self.store._drop_intent(self.file_id)


# --- reading ------------------------------------------------------------------------------------


Run = tuple[int, int, int, str]  # (object offset, length, offset in the blob that holds it, that blob's id)


@dataclass
class _Blob:
    """A stored blob and its extent map: ``runs`` are (object offset, length, blob offset, blob id), in
    order; ``sizes`` the stored bytes of each blob the runs are in.

    The extent map (``object_blobs.extents``) lists each data run as ``[offset, length]`` (its bytes
    are this blob's own, packed in this order) or ``[offset, length, blob id, blob offset, blob
    size]`` (its bytes are in another blob, which this one holds a reference to: see
    :meth:`ObjectStore._pin`)."""

    id: str
    size: int
    runs: list[Run]
    starts: list[int]
    sizes: dict[str, int]

    @classmethod
    def from_row(cls, blob_id: str, size: int, extents: str | None) -> _Blob:
        runs: list[Run] = []
        at = 0
        sizes: dict[str, int] = {}
        if extents is None:
            runs = [(0, size, 0, blob_id)] if size else []
            at = size
        else:
            for entry in json.loads(extents):
                if len(entry) == 2:
                    runs.append((entry[0], entry[1], at, blob_id))
                    at += entry[1]
                else:
                    offset, length, other, other_at, other_size = entry
                    runs.append((offset, length, other_at, other))
                    sizes[other] = other_size
        if at:
            sizes[blob_id] = at
        return cls(blob_id, size, runs, [r[0] for r in runs], sizes)

    def runs_within(self, lo: int, hi: int) -> Iterator[Run]:
        """The data runs clipped to [lo, hi): (object offset, length, blob offset, blob id)."""
        i = max(0, bisect.bisect_right(self.starts, lo) - 1)
        for offset, length, at, blob_id in self.runs[i:]:
            if offset >= hi:
                return
            start, end = max(lo, offset), min(hi, offset + length)
            if start < end:
                yield start, end - start, at + start - offset, blob_id


@dataclass
class _Part:
    """``length`` bytes of ``blob`` from object offset ``offset`` (blob None: a run of zeros)."""

    blob: _Blob | None
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
            out.append(_Part(part.blob, part.offset + start - pos, end - start, part.data))
        pos += part.length
    return out


def _coalesce(parts: list[_Part]) -> list[_Part]:
    return [p for p in parts if p.length > 0]


class ObjectReader:
    """Reads an object's bytes, plain or large, by offset; blob readers are closed by :meth:`close`."""

    def __init__(self, store: ObjectStore, info: ObjectInfo, parts: list[_Part], keep_cache: bool = False) -> None:
        self.store = store
        self.keep_cache = keep_cache
        self.info = info
        self.parts = parts
        self.size = sum(p.length for p in parts)
        self._readers: dict[str, BlobReader] = {}
        # Open plain objects at once (and the few blobs they refer to): on a file store an open blob
        # outlives its deletion.
        if len(parts) == 1 and parts[0].blob is not None:
            for blob_id in list(parts[0].blob.sizes)[:READERS]:
                self._reader(parts[0].blob, blob_id)

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def _reader(self, blob: _Blob, blob_id: str) -> BlobReader:
        """A reader of ``blob_id``: ``blob`` itself or a blob its runs refer to."""
        reader = self._readers.get(blob_id)
        if reader is None:
            try:
                reader = self.store.blobs.reader(blob_id, blob.sizes.get(blob_id, 0), self.keep_cache)
            except BlobError:
                raise BrokenLargeObject("a segment disappeared while reading") from None
            if len(self._readers) >= READERS:  # large objects: keep only a few segment blobs open
                self._readers.pop(next(iter(self._readers))).close()
            self._readers[blob_id] = reader
        return reader

    def extents(self) -> list[tuple[int, int]]:
        """The (offset, length) runs that hold data, from the extent map; everything else reads as zeros."""
        out: list[tuple[int, int]] = []
        pos = 0
        for part in self.parts:
            if part.data is not None:  # an SLO's inline data segment
                runs: Iterator[Run] = iter([(part.offset, part.length, 0, "")])
            elif part.blob is not None:
                runs = part.blob.runs_within(part.offset, part.offset + part.length)
            else:
                runs = iter(())
            for start, length, *_ in runs:
                at = pos + start - part.offset
                if out and out[-1][0] + out[-1][1] == at:
                    out[-1] = (out[-1][0], out[-1][1] + length)
                else:
                    out.append((at, length))
            pos += part.length
        return out

    def pread(self, offset: int, length: int) -> bytes:
        return b"".join(self.iter_range(offset, length, chunk=max(length, 1)))

    def preadinto(self, offset: int, view: memoryview) -> int:
        """``pread`` into the caller's buffer: returns the bytes read (short only at the object's end).
        Straight from the blob files where the bytes lie in them (no ``bytes`` per piece), else copied."""
        length = max(0, min(len(view), self.size - offset))
        runs = self.file_runs(offset, length) if length else []
        pos = 0
        if runs is None:
            for piece in self.iter_range(offset, length):
                view[pos : pos + len(piece)] = piece
                pos += len(piece)
            return pos
        for reader, at, n in runs:
            end = pos + n
            if reader is None:  # a hole
                while pos < end:
                    k = min(CHUNK, end - pos)
                    view[pos : pos + k] = ZEROS[:k]
                    pos += k
                continue
            while pos < end:
                got = os.preadv(reader.fileno(), [view[pos:end]], at)
                if got <= 0:  # a file shorter than its row says: never pad silently
                    raise BrokenLargeObject("stored blob is shorter than recorded")
                pos += got
                at += got
            reader.release(at - n, n)
        return pos

    def iter_range(self, start: int, length: int, chunk: int = CHUNK) -> Iterator[bytes]:
        """The bytes [start, start + length) in pieces of at most ``chunk`` bytes."""
        end = min(start + length, self.size)
        for part in _slice_parts(self.parts, start, end):
            pos, stop = part.offset, part.offset + part.length
            if part.data is not None:  # an SLO's inline data segment
                while pos < stop:
                    n = min(chunk, stop - pos)
                    yield part.data[pos : pos + n]
                    pos += n
                continue
            runs = part.blob.runs_within(pos, stop) if part.blob is not None else iter(())
            for run_start, run_length, at, blob_id in [*runs, (stop, 0, 0, "")]:
                while pos < run_start:  # a hole before the run (or before the end)
                    n = min(chunk, run_start - pos)
                    yield ZEROS[:n] if n <= CHUNK else bytes(n)
                    pos += n
                if run_length:
                    reader = self._reader(part.blob, blob_id)  # type: ignore[arg-type]
                    run_end = run_start + run_length
                    while pos < run_end:
                        n = min(chunk, run_end - pos)
                        try:
                            yield reader.read(at + pos - run_start, n)
                        except BlobError as exc:
                            raise BrokenLargeObject(str(exc)) from None
                        pos += n

    def file_runs(self, start: int, length: int) -> list[tuple[FileRun | None, int, int]] | None:
        """The bytes [start, start + length) as ``(blob reader, offset in its file, n)`` runs, ``None``
        for a run of zeros (a hole); None when they are not all in open files (a blob store without
        them, an SLO's inline data, more blobs than are kept open, a segment gone). Plain and large
        objects alike: a large one's runs go from segment to segment. The caller sends from
        ``reader.fileno()`` and then calls ``reader.release(offset, n)``."""
        parts = _slice_parts(self.parts, start, min(start + length, self.size))
        if any(part.data is not None for part in parts):
            return None
        planned = []
        needed: set[str] = set()
        for part in parts:
            runs = list(part.blob.runs_within(part.offset, part.offset + part.length)) if part.blob else []
            needed.update(run[3] for run in runs)
            planned.append((part, runs))
        if len(needed | set(self._readers)) > READERS:  # opening them all would close some it needs
            return None
        out: list[tuple[FileRun | None, int, int]] = []
        for part, runs in planned:
            pos, stop = part.offset, part.offset + part.length
            for run_start, run_length, at, blob_id in [*runs, (stop, 0, 0, "")]:
                if pos < run_start:
                    out.append((None, 0, run_start - pos))
                    pos = run_start
                if run_length:
                    try:
                        reader = self._reader(part.blob, blob_id)  # type: ignore[arg-type]
                    except BrokenLargeObject:  # a segment is gone: the piece-by-piece path answers for it
                        return None
                    if not isinstance(reader, FileRun):
                        return None
                    out.append((reader, at, run_length))
                    pos = run_start + run_length
        return out

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_range(0, self.size)


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
