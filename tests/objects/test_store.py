"""The storage engine's Python API, used in-process by images and tasks (no HTTP)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from imagehop import db
from imagehop.config import BlobSettings
from imagehop.objects import slo
from imagehop.objects.blobs import open_blob_store
from imagehop.objects.store import (
    INTENT_FRESH,
    BrokenLargeObject,
    EtagMismatch,
    NoSuchContainer,
    NoSuchObject,
    ObjectStore,
    StoreError,
    WriteExpired,
)
from tests.support import MiB


@pytest.fixture(params=["file", "s3", "swift"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The engine on each blob store: local files, and a real S3 store (SeaweedFS)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'region.db'}")
    db.migrate(engine, "region")
    blobs = None
    if request.param == "s3":
        s3 = request.getfixturevalue("seaweedfs")
        bucket = f"t{uuid.uuid4().hex[:12]}"
        settings = BlobSettings(kind="s3", s3_endpoint=s3.endpoint, s3_bucket=bucket, s3_access_key=s3.access_key,
                                s3_secret_key=s3.secret_key, s3_part_size=5 << 20)  # fmt: skip
        blobs = open_blob_store(settings, tmp_path / "region")
    if request.param == "swift":  # segments of 1 MiB, so that multi-segment blobs are exercised
        swift = request.getfixturevalue("real_swift")
        settings = BlobSettings(kind="swift", swift_auth_url=swift.auth_url, swift_user="test:tester",
                                swift_key="testing", swift_container=f"t{uuid.uuid4().hex[:12]}",
                                swift_segment_size=1 << 20)  # fmt: skip
        blobs = open_blob_store(settings, tmp_path / "region")
    return ObjectStore(engine, tmp_path / "region", blobs)


def stored_ids(store: ObjectStore) -> set[str]:
    return set(store.blobs.list_ids())


def blob_rows(store: ObjectStore) -> dict[str, str]:
    """The blob rows once the intents committed ahead and not handed out are released (they are
    ``writing`` rows of this process, see ``ObjectStore._begin_blob``)."""
    store.release_intents()
    return store.blob_rows()


def test_writer_keeps_holes_and_reports_extents(store: ObjectStore) -> None:
    store.ensure_container(".imagehop_images", "raw")
    data = os.urandom(MiB)
    writer = store.writer(".imagehop_images", "raw", "disk", hashes=("sha512",))
    writer.write(data)
    writer.skip(64 * MiB)
    writer.write(bytes(2 * MiB))  # zeros written as data still become a hole
    writer.write(data)
    writer.skip(3 * MiB)
    info = writer.commit()

    expected = data + bytes(66 * MiB) + data + bytes(3 * MiB)
    assert info.size == len(expected)
    assert info.etag == hashlib.md5(expected).hexdigest()
    assert writer.digests["sha512"] == hashlib.sha512(expected).hexdigest()
    assert writer.stored == 2 * MiB  # only the data runs reach the blob store
    assert blob_rows(store) == {info.file_id: "live"}

    with store.open(".imagehop_images", "raw", "disk") as reader:
        assert reader.size == len(expected)
        assert reader.extents() == [(0, MiB), (67 * MiB, MiB)]
        assert reader.pread(67 * MiB - 10, 20) == bytes(10) + data[:10]
        assert reader.pread(MiB - 5, 10) == data[-5:] + bytes(5)
        assert b"".join(reader) == expected


def test_copy_from_takes_another_objects_bytes_by_reference(store: ObjectStore) -> None:
    """What an incremental copy builds on: ranges of a base object taken into a new one by reference
    (holes stay holes, no byte stored again), on every blob store; the base's bytes stay while the
    new object refers to them, and go with the last object that does."""
    store.blobs.delete_grace = 0  # (s3 and swift keep a retired blob a while for readers in flight)
    store.ensure_container(".imagehop_images", "raw")
    one, two = os.urandom(MiB), os.urandom(MiB)
    writer = store.writer(".imagehop_images", "raw", "base")
    for piece in (one, bytes(2 * MiB), two):
        writer.write(piece)
    base_blob = writer.commit().file_id
    expected = b"X" * 1000 + two[:4096] + bytes(MiB) + two + one[10:] + bytes(2 * MiB) + two + bytes(2 * MiB - 10)
    with store.open(".imagehop_images", "raw", "base") as base:
        new = store.writer(".imagehop_images", "raw", "new", known_etag=hashlib.md5(expected).hexdigest())
        assert new.can_copy_from(base)
        new.write(b"X" * 1000)
        new.copy_from(base, 3 * MiB, 4096)  # within a data run, at an unaligned place of the new object
        new.copy_from(base, 2 * MiB, 2 * MiB)  # a hole, then a whole data run
        new.copy_from(base, 10, 5 * MiB)  # from a run, across the hole, stopped at the end of the base
        new.skip(2 * MiB - 10)
        info = new.commit()
    assert info.size == len(expected)
    assert new.stored == 1000  # only its own bytes reached the blob store
    with store.open(".imagehop_images", "raw", "new") as reader:
        assert b"".join(reader) == expected
        assert reader.pread(999, 4098) == expected[999:5097]
        assert reader.extents() == [(0, 5096), (5096 + MiB, 2 * MiB - 10), (5096 + 5 * MiB - 10, MiB)]
    # an object built on the new one refers to the blobs that hold the bytes (no chains)
    with store.open(".imagehop_images", "raw", "new") as source:
        third = store.writer(".imagehop_images", "raw", "third", known_etag=hashlib.md5(expected).hexdigest())
        third.copy_from(source, 0, source.size)
        third_blob = third.commit().file_id
    # the base goes: its bytes stay for the objects that refer to them
    store.delete_object(".imagehop_images", "raw", "base")
    assert base_blob in stored_ids(store) and blob_rows(store)[base_blob] == "deleting"
    store.housekeeping()
    assert base_blob in stored_ids(store)
    store.delete_object(".imagehop_images", "raw", "new")
    with store.open(".imagehop_images", "raw", "third") as reader:
        assert b"".join(reader) == expected
    assert base_blob in stored_ids(store) and info.file_id in stored_ids(store)  # third holds both
    # the last one goes: everything is freed
    store.delete_object(".imagehop_images", "raw", "third")
    store.housekeeping()
    assert blob_rows(store) == {} and stored_ids(store) == set()
    assert third_blob not in stored_ids(store)


def test_a_pin_holds_the_base_through_a_crash_until_housekeeping(store: ObjectStore) -> None:
    """An unfinished write that refers to a deleted object keeps its bytes; once the write is
    discarded (abort, or housekeeping after a crash), they go. A deleted object can no longer be pinned."""
    store.blobs.delete_grace = 0
    store.ensure_container("AUTH_1", "c")
    w = store.writer("AUTH_1", "c", "base")
    w.write(os.urandom(MiB))
    base_blob = w.commit().file_id
    with store.open("AUTH_1", "c", "base") as base:
        new = store.writer("AUTH_1", "c", "new", known_etag="0" * 32)
        new.copy_from(base, 0, MiB)
    store.delete_object("AUTH_1", "c", "base")
    assert base_blob in stored_ids(store)
    # a crash: the writer never comes back; housekeeping takes its intent over once its lease ran out
    with store.engine.begin() as conn:
        conn.execute(db.object_blobs.update().where(db.object_blobs.c.id == new.file_id).values(lease_until=0))
    store.housekeeping()
    assert blob_rows(store) == {} and stored_ids(store) == set()
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.blob_refs)).scalar() == 0

    w = store.writer("AUTH_1", "c", "base")
    w.write(os.urandom(MiB))
    w.commit()
    with store.open("AUTH_1", "c", "base") as base:
        store.delete_object("AUTH_1", "c", "base")
        late = store.writer("AUTH_1", "c", "late", known_etag="0" * 32)
        with pytest.raises(StoreError):
            late.pin(base)
        late.abort()
    assert blob_rows(store) == {} and stored_ids(store) == set()


def test_all_zero_and_empty_objects_have_no_blob(store: ObjectStore) -> None:
    store.ensure_container("AUTH_1", "c")
    for name, body in (("empty", b""), ("zeros", bytes(3 * MiB))):
        w = store.writer("AUTH_1", "c", name)
        w.write(body)
        info = w.commit()
        assert info.file_id is None and info.size == len(body)
        with store.open("AUTH_1", "c", name) as reader:
            assert reader.extents() == [] and b"".join(reader) == body
    assert blob_rows(store) == {} and stored_ids(store) == set()


def test_commit_is_all_or_nothing(store: ObjectStore) -> None:
    store.ensure_container("AUTH_1", "c")
    w = store.writer("AUTH_1", "c", "o")
    w.write(b"old")
    old = w.commit()
    w = store.writer("AUTH_1", "c", "o", expected_etag="0" * 32)
    w.write(b"new")
    with pytest.raises(EtagMismatch):
        w.commit()
    w = store.writer("AUTH_1", "c", "o")
    w.write(b"never committed")
    w.abort()
    with store.open("AUTH_1", "c", "o") as reader:
        assert reader.pread(0, 3) == b"old"
    # the replaced and aborted versions left nothing behind: no row, no blob
    assert blob_rows(store) == {old.file_id: "live"}
    assert stored_ids(store) == {old.file_id}
    with pytest.raises(NoSuchContainer):
        store.writer("AUTH_1", "missing", "o")
    with pytest.raises(NoSuchObject):
        store.open("AUTH_1", "c", "nope")


def test_a_reader_in_flight_survives_overwrite_and_delete(store: ObjectStore) -> None:
    store.blobs.delete_grace = 3600  # as on a remote store: retired blobs wait for readers
    store.ensure_container("AUTH_1", "c")
    first = os.urandom(3 * MiB)
    w = store.writer("AUTH_1", "c", "o")
    w.write(first)
    old = w.commit()
    with store.open("AUTH_1", "c", "o") as reader:
        w = store.writer("AUTH_1", "c", "o")
        w.write(b"second")
        new = w.commit()
        store.delete_object("AUTH_1", "c", "o")
        assert b"".join(reader) == first
    assert blob_rows(store) == {old.file_id: "deleting", new.file_id: "deleting"}
    assert store.housekeeping()["deleted"] == 0  # still within the grace period
    store.blobs.delete_grace = 0
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE object_blobs SET delete_after = 0"))
    assert store.housekeeping()["deleted"] == 2
    assert blob_rows(store) == {} and stored_ids(store) == set()


def test_housekeeping_discards_writes_of_a_dead_process_only(store: ObjectStore) -> None:
    store.ensure_container("AUTH_1", "c")
    w = store.writer("AUTH_1", "c", "kept")
    w.write(b"data")
    kept = w.commit()
    crashed = store.writer("AUTH_1", "c", "crashed")
    crashed.write(b"half of it")
    running = store.writer("AUTH_1", "c", "running")
    running.write(b"still coming")
    # The first writer's process died (a pid that does not run on this host); the second is alive.
    dead = f"{socket.gethostname()}:{2**22 + 12345}:x"
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE object_blobs SET holder = :h WHERE id = :id"), {"h": dead, "id": crashed.file_id})
    assert store.housekeeping()["discarded"] == 1
    assert blob_rows(store) == {kept.file_id: "live", running.file_id: "writing"}
    assert crashed.file_id not in stored_ids(store)
    running.write(b" and done")
    assert running.commit().size == len(b"still coming and done")
    # an expired lease is taken over as well, and the late writer cannot commit any more
    late = store.writer("AUTH_1", "c", "late")
    late.write(b"slow")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE object_blobs SET lease_until = 1 WHERE id = :id"), {"id": late.file_id})
    assert store.housekeeping()["discarded"] == 1
    with pytest.raises(WriteExpired):
        late.commit()
    with store.open("AUTH_1", "c", "kept") as reader:
        assert reader.pread(0, 4) == b"data"
    with pytest.raises(NoSuchObject):
        store.head("AUTH_1", "c", "late")


def test_expired_objects_are_reaped_with_their_bytes(store: ObjectStore) -> None:
    store.blobs.delete_grace = 0
    store.ensure_container("AUTH_1", "c")
    w = store.writer("AUTH_1", "c", "brief", delete_at=time.time() - 1)
    w.write(b"gone soon")
    w.commit()
    assert store.get_container("AUTH_1", "c").object_count == 1
    assert store.housekeeping()["reaped"] == 1
    assert store.get_container("AUTH_1", "c").object_count == 0
    assert blob_rows(store) == {} and stored_ids(store) == set()


def test_large_objects_read_through(store: ObjectStore) -> None:
    store.ensure_container("AUTH_1", "segs")
    parts = [os.urandom(1000), bytes(5000), os.urandom(10)]
    for i, part in enumerate(parts):
        w = store.writer("AUTH_1", "segs", f"p/{i}")
        w.write(part)
        w.commit()
    manifest = json.dumps([{"path": f"/segs/p/{i}"} for i in range(3)] + [{"path": "/segs/p/0", "range": "10-19"}])
    entries = slo.parse(manifest.encode(), "segs", "big")
    slo.put(store, "AUTH_1", "segs", "big", entries, slo.in_process, expected_etag=None, content_type="x", meta={},
            delete_at=None)  # fmt: skip
    whole = b"".join(parts) + parts[0][10:20]
    with store.open("AUTH_1", "segs", "big") as reader:
        assert reader.size == len(whole)
        assert b"".join(reader) == whole
        assert reader.pread(990, 5020) == whole[990:6010]
        assert reader.extents()[0] == (0, 1000)
    store.put_manifest("AUTH_1", "segs", "dlo", kind="dlo", manifest="segs/p/", size=0, etag="e")
    with store.open("AUTH_1", "segs", "dlo") as reader:
        assert b"".join(reader) == b"".join(parts)
    copied = store.copy("AUTH_1", "segs", "big", "segs", "flat")
    assert copied.etag == hashlib.md5(whole).hexdigest() and copied.kind == ""
    store.delete_object("AUTH_1", "segs", "p/1")
    with pytest.raises(BrokenLargeObject):
        store.open("AUTH_1", "segs", "big")


def test_listing_walks_the_name_index(store: ObjectStore) -> None:
    container, _ = store.ensure_container("AUTH_1", "many")
    with store.engine.begin() as conn:
        conn.execute(
            db.swift_objects.insert(),
            [
                {
                    "container_id": container.id,
                    "name": f"d{i % 10}/obj{i:06d}",
                    "size": 1,
                    "etag": "e",
                    "content_type": "x",
                    "last_modified": 0.0,
                    "meta": {},
                    "kind": "",
                }
                for i in range(20000)
            ],
        )
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        page = store.list_objects("AUTH_1", "many", prefix="d3/", marker="d3/obj010003", limit=3)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    assert [e.name for e in page] == ["d3/obj010013", "d3/obj010023", "d3/obj010033"]
    subdirs = store.list_objects("AUTH_1", "many", delimiter="/")
    assert [e.name for e in subdirs] == [f"d{i}/" for i in range(10)]
    # The plan of the query the engine ran for that page (not of SQL written here): an index walk
    # from the marker, with no sort of the container's 20,000 rows.
    [(statement, parameters)] = [(q, p) for q, p in statements if "FROM swift_objects" in q and "SELECT" in q]
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()  # type: ignore[arg-type]
    detail = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX" in detail or "USING COVERING INDEX" in detail, detail
    assert "name>" in detail.replace(" ", "") and "TEMP B-TREE" not in detail, detail


def test_intents_are_committed_ahead_in_batches_and_are_safe_as_single_ones(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes in a row take their intents from batches committed ahead (1, 2, 4, ... at a time); each id
    has its committed ``writing`` row before any byte is stored under it. After a crash, housekeeping
    discards the used and the unused ones alike, and none of them can be committed any more."""
    monkeypatch.setattr("imagehop.objects.store.INTENT_BURST", 3600.0)  # remote stores are slow: still "in a row"
    store.ensure_container("AUTH_1", "c")
    committed = []
    for i in range(7):  # batches of 1, 2 and 4
        w = store.writer("AUTH_1", "c", f"o{i}")
        w.write(b"x%d" % i)
        assert store.blob_rows()[w.file_id] == "writing"  # before the commit, as with one intent per write
        committed.append(w.commit())
    assert len({info.file_id for info in committed}) == 7
    w = store.writer("AUTH_1", "c", "o7")
    w.write(b"this batch has 8: 7 left unused")
    assert sum(state == "writing" for state in store.blob_rows().values()) == 8
    crashed = w.file_id
    # The process dies: its rows name a pid that no longer runs on this host.
    dead = f"{socket.gethostname()}:{2**22 + 12345}:x"
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE object_blobs SET holder = :h WHERE state = 'writing'"), {"h": dead})
    assert store.housekeeping()["discarded"] == 8
    assert crashed not in stored_ids(store)
    assert store.blob_rows() == {info.file_id: "live" for info in committed}
    with pytest.raises(WriteExpired):  # the writer of the dead process cannot commit
        w.commit()
    # The surviving store object still holds ids whose rows are gone: it must not hand them out.
    store._intents_holder = dead  # as a forked child would see its parent's pool
    w = store.writer("AUTH_1", "c", "after")
    w.write(b"fresh intent")
    assert w.commit().size == len(b"fresh intent")
    assert blob_rows(store) == {**{info.file_id: "live" for info in committed}, w.file_id: "live"}


def test_intents_committed_ahead_expire_unused(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An intent is handed out only while its lease is young; older unused ones are deleted with the
    next refill (nothing was stored under them), and a pause makes the next batch one again."""
    monkeypatch.setattr("imagehop.objects.store.INTENT_BURST", 3600.0)
    store.ensure_container("AUTH_1", "c")
    for i in range(4):  # batches of 1, 2 and 4: three left
        w = store.writer("AUTH_1", "c", f"o{i}")
        w.write(b"x")
        w.commit()
    left = set(store._intents)
    assert len(left) == 3 and left <= set(store.blob_rows())
    store._intents_at -= INTENT_FRESH + 1  # as if committed long ago
    w = store.writer("AUTH_1", "c", "late")
    w.write(b"y")
    assert w.file_id not in left
    info = w.commit()
    assert not left & set(store.blob_rows())
    assert store._intents == []  # a batch of one after the pause
    assert store.blob_rows()[info.file_id] == "live"
