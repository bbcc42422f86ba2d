"""The storage engine's Python API, used in-process by images and tasks (no HTTP)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from imagehop import db
from imagehop.objects import slo
from imagehop.objects.store import BrokenLargeObject, EtagMismatch, NoSuchContainer, NoSuchObject, ObjectStore
from tests.support import MiB


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'region.db'}")
    db.migrate(engine, "region")
    return ObjectStore(engine, tmp_path / "region")


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
    stat = os.stat(store.file_path(info.file_id))
    assert stat.st_size == len(expected)
    assert stat.st_blocks * 512 < 4 * MiB  # sparse on disk

    with store.open(".imagehop_images", "raw", "disk") as reader:
        assert reader.size == len(expected)
        assert reader.extents() == [(0, MiB), (67 * MiB, MiB)]
        assert reader.pread(67 * MiB - 10, 20) == bytes(10) + data[:10]
        assert b"".join(reader) == expected


def test_commit_is_all_or_nothing(store: ObjectStore) -> None:
    store.ensure_container("AUTH_1", "c")
    w = store.writer("AUTH_1", "c", "o")
    w.write(b"old")
    w.commit()
    w = store.writer("AUTH_1", "c", "o", expected_etag="0" * 32)
    w.write(b"new")
    with pytest.raises(EtagMismatch):
        w.commit()
    w = store.writer("AUTH_1", "c", "o")
    w.write(b"never committed")
    w.abort()
    with store.open("AUTH_1", "c", "o") as reader:
        assert reader.pread(0, 3) == b"old"
    assert os.listdir(store.tmp_dir) == []
    files = [f for d in os.listdir(store.data_dir) for f in os.listdir(store.data_dir / d)]
    assert len(files) == 1  # the replaced and aborted versions left nothing behind
    with pytest.raises(NoSuchContainer):
        store.writer("AUTH_1", "missing", "o")
    with pytest.raises(NoSuchObject):
        store.open("AUTH_1", "c", "nope")


def test_sweep_removes_orphans_only(store: ObjectStore) -> None:
    store.ensure_container("AUTH_1", "c")
    w = store.writer("AUTH_1", "c", "kept")
    w.write(b"data")
    info = w.commit()
    (store.tmp_dir / "partial").write_bytes(b"half")
    orphan = store.data_dir / "ab" / ("ab" + "0" * 30)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"renamed but never committed")
    assert store.sweep() == 2
    assert not orphan.exists() and os.listdir(store.tmp_dir) == []
    assert store.file_path(info.file_id).read_bytes() == b"data"


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
