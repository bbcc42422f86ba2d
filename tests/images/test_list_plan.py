"""The image list's query plan, proved by each database's own account of its work (no timing).

``GET /v2/images`` must cost the same per page whatever the number of images in the region. Each
case below runs the exact statement the service builds on a region database holding N images, then
on the same database grown to 4N, and compares the work the engine reports: on SQLite the number of
virtual-machine steps (``set_progress_handler``, called every ``STEP`` instructions of the query),
on PostgreSQL the rows every plan node produced (``EXPLAIN (ANALYZE, FORMAT JSON)``). Both also
show the shape: SQLite's ``EXPLAIN QUERY PLAN`` never scans ``images`` whole, and a lookup drives.

A differential check then compares every page the new plan returns with the same list computed by
brute force in Python, on both databases, for the parameters that change the plan.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from imagehop import db
from imagehop.identity.caller import Caller
from imagehop.images import filters, service
from tests.support.cloud import database_url

ME, OTHER = "30000001", "30000002"
TENANTS = [f"{30000100 + i}" for i in range(20)]
STEP = 100  # SQLite: one progress-handler call per STEP virtual-machine instructions
BASE = 2000  # images at the first size; the second is 4x


def _image(i: int, owner: str, visibility: str) -> dict[str, Any]:
    created = datetime(2026, 1, 1) + timedelta(seconds=i)
    return {
        "id": str(uuid.UUID(int=i + 1)), "name": f"image-{i % 997:03d}", "status": "active",
        "visibility": visibility, "protected": False, "os_hidden": i % 50 == 3, "owner": owner,
        "size": i, "virtual_size": i, "container_format": "bare", "disk_format": "raw", "min_ram": 0,
        "min_disk": 0, "created_at": created, "updated_at": created + timedelta(seconds=i % 7),
    }  # fmt: skip


def grow(engine: sa.Engine, start: int, stop: int) -> None:
    """Images ``start``..``stop``: a fifth are ME's, 5% public, 2% community, 10% shared with
    others; each ``group`` value and tag is on 20 images whatever the size; ``os_distro`` is on all of
    them. ME is a member of the same 30 shared images (of OTHER's) at every size."""
    rows, props, tags, members = [], [], [], []
    for i in range(start, stop):
        kind = i % 20
        owner = ME if kind in (0, 5, 10, 15) else TENANTS[i % len(TENANTS)]
        visibility = {1: "public", 2: "community", 3: "shared", 4: "shared"}.get(kind, "private")
        rows.append(_image(i, owner, visibility))
        image_id = rows[-1]["id"]
        for name, value in (("group", f"g-{i // 20}"), ("os_distro", "debian")):
            props.append({"image_id": image_id, "name": name, "value": value, "value_key": value})
        tags.append({"image_id": image_id, "value": f"t-{i // 20}"})
        if visibility == "shared":
            members.append({"image_id": image_id, "member_id": TENANTS[(i + 1) % len(TENANTS)], "status": "accepted",
                            "created_at": rows[-1]["created_at"], "updated_at": rows[-1]["created_at"]})  # fmt: skip
    if start == 0:  # ME's memberships: 30 shared images of OTHER, the same at every size
        for k in range(30):
            row = _image(10_000_000 + k, OTHER, "shared")
            rows.append(row)
            status = "accepted" if k % 3 else "pending"
            members.append({"image_id": row["id"], "member_id": ME, "status": status,
                            "created_at": row["created_at"], "updated_at": row["created_at"]})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(db.images.insert(), rows)
        conn.execute(db.image_properties.insert(), props)
        conn.execute(db.image_tags.insert(), tags)
        conn.execute(db.image_members.insert(), members)
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))


def caller(tenant: str = ME, admin: bool = False) -> Caller:
    return Caller("u", "user", tenant, frozenset({"admin"} if admin else {"member"}), 0.0)


def statement(conn: sa.Connection, who: Caller, params: list[tuple[str, str]]) -> sa.Select:
    """The statement the service runs for ``params`` (its marker and driving lookup included)."""
    query = filters.parse(params)
    marker = None
    if query.marker is not None:
        marker = dict(conn.execute(sa.select(db.images).where(db.images.c.id == query.marker)).mappings().one())
    return filters.select(who, query, marker, service.driver(conn, query))


def work(conn: sa.Connection, select: sa.Select) -> tuple[int, list[str]]:
    """The engine's own count of the work ``select`` did, and the ids it returned."""
    if conn.dialect.name == "sqlite":
        steps = [0]
        raw = conn.connection.dbapi_connection

        def tick() -> int:
            steps[0] += 1
            return 0

        raw.set_progress_handler(tick, STEP)
        try:
            ids = [row.id for row in conn.execute(select)]
        finally:
            raw.set_progress_handler(None, STEP)
        return steps[0], ids
    sql = select.compile(conn.engine, compile_kwargs={"literal_binds": True})
    plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").scalar_one()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return _rows(plan[0]["Plan"]), [row.id for row in conn.execute(select)]


def _rows(node: dict[str, Any]) -> int:
    """Rows produced by every node of a PostgreSQL plan (each node's rows times its loops)."""
    own = int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
    return own + sum(_rows(child) for child in node.get("Plans", []))


def sqlite_plan(conn: sa.Connection, select: sa.Select) -> list[str]:
    compiled = select.compile(conn.engine, compile_kwargs={"literal_binds": True})
    return [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]


CASES = {
    "property (few images)": (caller(), [("group", "g-7")], "lookup"),
    "tag (few images)": (caller(), [("tag", "t-7")], "lookup"),
    "property on every image": (caller(), [("os_distro", "debian")], "walk"),
    "no filter": (caller(), [], "walk"),
    "no filter, sorted by name": (caller(), [("sort", "name:asc")], "walk"),
    "no filter, sorted by updated_at": (caller(), [("sort_key", "updated_at"), ("sort_dir", "desc")], "walk"),
    "visibility=all": (caller(), [("visibility", "all")], "walk"),
    "visibility=shared, any member status": (caller(), [("visibility", "shared"), ("member_status", "all")], "walk"),
    "admin, no filter": (caller(admin=True), [], "walk"),
}


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def region(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One region database measured at BASE images, then grown to 4 x BASE and measured again."""
    path = Path(tmp_path_factory.mktemp("plan")) / "region.db"
    engine = db.make_engine(database_url(request.param, path))
    db.migrate(engine, "region")
    grow(engine, 0, BASE)
    # A marker deep in ME's own images (the same image at both sizes).
    deep = str(uuid.UUID(int=BASE // 2 + 1))
    cases = {**CASES, "no filter, page after a deep marker": (caller(), [("marker", deep)], "walk")}
    measured: dict[str, list[tuple[int, list[str]]]] = {name: [] for name in cases}
    plans: dict[str, list[str]] = {}
    for size in (BASE, 4 * BASE):
        if size > BASE:
            grow(engine, BASE, size)
        with engine.connect() as conn:
            for name, (who, params, _) in cases.items():
                select = statement(conn, who, params)
                measured[name].append(work(conn, select))
                if engine.dialect.name == "sqlite":
                    plans[name] = sqlite_plan(conn, select)
    yield {"engine": engine, "cases": cases, "measured": measured, "plans": plans}
    engine.dispose()


@pytest.mark.parametrize("name", [*CASES, "no filter, page after a deep marker"])
def test_a_page_costs_the_same_at_4x_the_images(region: dict[str, Any], name: str) -> None:
    (small, ids_small), (large, ids_large) = region["measured"][name]
    assert ids_small, f"{name}: the case must return images to prove anything"
    # Pages hold the newest images first: growing the region may change which ones, not how many.
    assert len(ids_large) == len(ids_small)
    # Work may differ by a few rows where a walk's first rows differ, never with the image count.
    assert large <= small * 1.25 + 5, f"{name}: {small} at {BASE} images, {large} at {4 * BASE}"


@pytest.mark.parametrize("region", ["sqlite"], indirect=True)  # EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's
@pytest.mark.parametrize("name", [*CASES, "no filter, page after a deep marker"])  # plans: the rows above
def test_sqlite_never_scans_images_whole(region: dict[str, Any], name: str) -> None:
    assert region["engine"].dialect.name == "sqlite"
    plan = region["plans"][name]
    kind = region["cases"][name][2]
    # A whole-table scan is never the way; an ordered walk of an index, stopped by LIMIT, may be.
    assert "SCAN images" not in plan, plan
    if kind == "lookup":
        assert plan[0].startswith(("SEARCH image_properties USING", "SEARCH image_tags USING")), plan
        assert any("images USING INDEX sqlite_autoindex_images_1 (id=?)" in line for line in plan), plan
    else:
        walks = ("SEARCH images USING INDEX ix_images_", "SCAN images USING INDEX ix_images_created")
        assert any(line.startswith(walks) for line in plan), plan


# --- the new plan returns what the rules say ------------------------------------------------------


def brute_force(everything: list[dict[str, Any]], who: Caller, params: list[tuple[str, str]]) -> list[str]:
    """The whole list for ``params``, by Glance's rules applied row by row in Python."""
    args = dict(params)
    visibility, statuses = args.get("visibility"), args.get("member_status", "accepted")

    def member(image: dict[str, Any]) -> bool:
        status = image["members"].get(who.tenant_id)
        return status is not None and (statuses == "all" or status == statuses)

    def visible(image: dict[str, Any]) -> bool:
        own, vis = image["owner"] == who.tenant_id, image["visibility"]
        if visibility not in (None, "all") and vis != visibility:
            return False
        if who.is_admin:
            return visibility is not None or vis != "community" or own
        if visibility is None:
            return own or vis == "public" or (vis == "shared" and member(image))
        if visibility == "all":
            return own or vis in ("public", "community") or (vis == "shared" and member(image))
        if visibility in ("public", "community"):
            return True
        return own or (visibility == "shared" and member(image))

    def matches(image: dict[str, Any]) -> bool:
        if image["os_hidden"]:
            return False
        for key, value in params:
            if key == "tag" and value not in image["tags"]:
                return False
            listing = key in ("tag", "visibility", "member_status", "sort", "limit")
            if not listing and image["properties"].get(key) != value:
                return False
        return visible(image)

    key, _, direction = args.get("sort", "created_at:desc").partition(":")
    chosen = [i for i in everything if matches(i)]
    # Ties broken by created_at then id, in the last key's direction; names sort nulls first ascending.
    chosen.sort(key=lambda i: (i[key] is not None, i[key] or "", i["created_at"], i["id"]), reverse=direction == "desc")
    return [i["id"] for i in chosen]


def random_region(engine: sa.Engine, seed: int) -> list[dict[str, Any]]:
    """300 images of 4 tenants with every visibility, memberships of every status, nameless ones,
    hidden ones, equal timestamps, and properties and tags of few and of many images."""
    rng = random.Random(seed)
    tenants = [ME, OTHER, "30000003", "30000004"]
    everything, props, tags, members = [], [], [], []
    for i in range(300):
        row = _image(i, rng.choice(tenants), rng.choice(["public", "private", "shared", "community"]))
        row["created_at"] = datetime(2026, 1, 1) + timedelta(seconds=rng.randrange(120))  # ties
        row["name"] = None if rng.random() < 0.1 else f"n{rng.randrange(40)}"
        row["os_hidden"] = rng.random() < 0.05
        record = {**row, "properties": {}, "tags": set(), "members": {}}
        for name, value in (("few", f"f{rng.randrange(30)}"), ("many", rng.choice(["a", "b"]))):
            record["properties"][name] = value
            props.append({"image_id": row["id"], "name": name, "value": value, "value_key": value})
        for tag in {f"t{rng.randrange(30)}", rng.choice(["x", "y"])}:
            record["tags"].add(tag)
            tags.append({"image_id": row["id"], "value": tag})
        for tenant in rng.sample(tenants, rng.randrange(3)):
            status = rng.choice(["accepted", "pending", "rejected"])
            record["members"][tenant] = status
            members.append({"image_id": row["id"], "member_id": tenant, "status": status,
                            "created_at": row["created_at"], "updated_at": row["created_at"]})  # fmt: skip
        everything.append(record)
    with engine.begin() as conn:
        conn.execute(db.images.insert(), [{k: v for k, v in r.items() if k in db.images.c} for r in everything])
        conn.execute(db.image_properties.insert(), props)
        conn.execute(db.image_tags.insert(), tags)
        conn.execute(db.image_members.insert(), members)
    return everything


LISTS = [
    [], [("few", "f3")], [("many", "a")], [("tag", "t4")], [("tag", "x"), ("few", "f9")], [("many", "b"), ("tag", "y")],
    [("visibility", "all")], [("visibility", "shared")], [("visibility", "shared"), ("member_status", "all")],
    [("visibility", "shared"), ("member_status", "pending")], [("visibility", "private")],
    [("visibility", "community")], [("visibility", "public"), ("many", "a")], [("member_status", "rejected")],
    [("sort", "name:asc")], [("sort", "name:desc"), ("many", "b")], [("sort", "created_at:asc")],
    [("sort", "name:asc"), ("visibility", "all"), ("tag", "x")],
]  # fmt: skip


@pytest.mark.parametrize("backend", ("sqlite", "postgresql"))
def test_every_page_is_what_the_rules_say(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 7 followed by markers to the end, as four kinds of caller; ``DRIVE_LIMIT`` small so
    that both the driven and the walked plan are exercised by the few- and many-image filters."""
    monkeypatch.setattr(filters, "DRIVE_LIMIT", 60)
    engine = db.make_engine(database_url(backend, tmp_path / "region.db"))
    db.migrate(engine, "region")
    everything = random_region(engine, seed=15)
    images = service.ImageService(engine, data=None)  # type: ignore[arg-type]  # lists read no data
    try:
        for who in (caller(ME), caller(OTHER), caller("30000009"), caller(ME, admin=True)):
            for params in LISTS:
                expected = brute_force(everything, who, params)
                got: list[str] = []
                marker: list[tuple[str, str]] = []
                while True:
                    page, full = images.list(who, [*params, ("limit", "7"), *marker])
                    got += [image["id"] for image in page]
                    if not full:
                        break
                    marker = [("marker", page[-1]["id"])]
                assert got == expected, (who.tenant_id, who.is_admin, params)
    finally:
        engine.dispose()
