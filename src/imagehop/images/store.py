"""Image rows: one image is a row in ``images`` plus its properties and tags.

An image record is a plain dict: the ``images`` columns, ``properties`` (extra properties, a dict of
strings) and ``tags`` (a list). Functions take a connection so the service decides transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from imagehop.db import (
    PROPERTY_PREFIX,
    deleted_images,
    image_block_maps,
    image_blocks,
    image_members,
    image_properties,
    image_tags,
    image_tasks,
    images,
)

Record = dict[str, Any]
UPLOAD_KEPT = "imagehop.upload_kept"  # bytes an interrupted resumable upload keeps (service.py)
COLUMNS = [c.name for c in images.columns]


def insert(conn: Connection, row: Record, properties: dict[str, str], tags: Iterable[str]) -> None:
    conn.execute(images.insert().values(**row))
    if properties:
        conn.execute(image_properties.insert(), [_property(row["id"], k, v) for k, v in properties.items()])
    tag_rows = [{"image_id": row["id"], "value": t} for t in dict.fromkeys(tags)]
    if tag_rows:
        conn.execute(image_tags.insert(), tag_rows)


def _property(image_id: str, name: str, value: str) -> Record:
    return {"image_id": image_id, "name": name, "value": value, "value_key": value[:PROPERTY_PREFIX]}


def exists(conn: Connection, image_id: str) -> bool:
    """Whether the id is taken: by an image, or by one that was deleted (ids are never reused)."""
    if conn.execute(sa.select(deleted_images.c.id).where(deleted_images.c.id == image_id)).first() is not None:
        return True
    return conn.execute(sa.select(images.c.id).where(images.c.id == image_id)).first() is not None


def usage(conn: Connection, owner: str) -> dict[str, int]:
    """What a tenant uses, as Glance's quotas count it: images, bytes stored, bytes staged, uploads running.

    One query over the owner's images (index ``owner``), each joined to at most one property row.
    """
    stored = sa.case((images.c.status == "uploading", 0), else_=images.c.size)  # staged bytes count as staging
    running = sa.case((images.c.status.in_(["saving", "uploading", "importing"]), 1), else_=0)
    # The bytes an interrupted resumable upload keeps are stored too: they count (a tenant could
    # otherwise keep any amount by breaking its uploads).
    kept = sa.cast(image_properties.c.value, sa.BigInteger)
    joined = images.outerjoin(
        image_properties, sa.and_(image_properties.c.image_id == images.c.id, image_properties.c.name == UPLOAD_KEPT)
    )
    count, size, uploading, kept_total = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(stored), 0),
            sa.func.coalesce(sa.func.sum(running), 0),
            sa.func.coalesce(sa.func.sum(kept), 0),
        )
        .select_from(joined)
        .where(images.c.owner == owner)
    ).one()
    return {
        "image_count_total": int(count),
        "image_size_total": int(size) + int(kept_total),
        "image_count_uploading": int(uploading),
    }


def get(conn: Connection, image_id: str, *, for_update: bool = False) -> Record | None:
    query = sa.select(images).where(images.c.id == image_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return complete(conn, [dict(row)])[0]


_IDS = sa.bindparam("ids", expanding=True)
# Built once: a list page runs them on every request, and a prebuilt statement skips SQLAlchemy's
# construction and cache-key work (most of the page's cost at this size).
_PROPERTIES_OF = sa.select(image_properties.c.image_id, image_properties.c.name, image_properties.c.value).where(
    image_properties.c.image_id.in_(_IDS)
)
_TAGS_OF = (
    sa.select(image_tags.c.image_id, image_tags.c.value)
    .where(image_tags.c.image_id.in_(_IDS))
    .order_by(image_tags.c.image_id, image_tags.c.value)
)


def complete(conn: Connection, rows: list[Record]) -> list[Record]:
    """Attach properties and tags to image rows, two queries for the whole page."""
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["properties"], r["tags"] = {}, []
    if not by_id:
        return rows
    ids = list(by_id)
    for image_id, name, value in conn.execute(_PROPERTIES_OF, {"ids": ids}):
        by_id[image_id]["properties"][name] = value
    for image_id, value in conn.execute(_TAGS_OF, {"ids": ids}):
        by_id[image_id]["tags"].append(value)
    return rows


def save(conn: Connection, before: Record, after: Record) -> None:
    """Write what differs between two versions of one record."""
    image_id = before["id"]
    changed = {c: after[c] for c in COLUMNS if c != "id" and after.get(c) != before.get(c)}
    if changed:
        conn.execute(images.update().where(images.c.id == image_id).values(**changed))
    old, new = before["properties"], after["properties"]
    gone = [k for k in old if k not in new]
    if gone:
        conn.execute(
            image_properties.delete().where(image_properties.c.image_id == image_id, image_properties.c.name.in_(gone))
        )
    for key, value in new.items():
        if key not in old:
            conn.execute(image_properties.insert().values(**_property(image_id, key, value)))
        elif old[key] != value:
            conn.execute(
                image_properties.update()
                .where(image_properties.c.image_id == image_id, image_properties.c.name == key)
                .values(value=value, value_key=value[:PROPERTY_PREFIX])
            )
    if list(before["tags"]) != list(after["tags"]):
        conn.execute(image_tags.delete().where(image_tags.c.image_id == image_id))
        rows = [{"image_id": image_id, "value": t} for t in dict.fromkeys(after["tags"])]
        if rows:
            conn.execute(image_tags.insert(), rows)


def set_status(
    conn: Connection, image_id: str, expected: Iterable[str], status: str, now: datetime, **values: Any
) -> bool:
    """Move an image from one of ``expected`` to ``status`` atomically; False if it was not there."""
    result = conn.execute(
        images.update()
        .where(images.c.id == image_id, images.c.status.in_(list(expected)))
        .values(status=status, updated_at=now, **values)
    )
    return result.rowcount == 1


def set_property(conn: Connection, image_id: str, name: str, value: str | None) -> None:
    conn.execute(
        image_properties.delete().where(image_properties.c.image_id == image_id, image_properties.c.name == name)
    )
    if value is not None:
        conn.execute(image_properties.insert().values(**_property(image_id, name, value)))


def delete(conn: Connection, image_id: str, owner: str | None, moment: datetime) -> None:
    conn.execute(deleted_images.insert().values(id=image_id, owner=owner, deleted_at=moment))
    for table in (image_properties, image_tags, image_members, image_blocks, image_block_maps):
        conn.execute(table.delete().where(table.c.image_id == image_id))
    conn.execute(image_tasks.delete().where(image_tasks.c.image_id == image_id))
    conn.execute(images.delete().where(images.c.id == image_id))


def property_ids(name: Any, value: Any, key: Any = None) -> sa.Select:
    """Ids of the images whose property ``name`` is exactly ``value``: a walk of the lookup index.

    ``key`` is the value's indexed prefix (``value[:PROPERTY_PREFIX]``); give it when ``value`` is a bind parameter.
    """
    return sa.select(image_properties.c.image_id).where(
        image_properties.c.name == name,
        image_properties.c.value_key == (value[:PROPERTY_PREFIX] if key is None else key),
        image_properties.c.value == value,
    )


def property_exists(name: Any, value: Any) -> sa.ColumnElement[bool]:
    """``images.id`` has property ``name`` equal to ``value``: one primary-key probe per image."""
    return sa.exists().where(
        image_properties.c.image_id == images.c.id,
        image_properties.c.name == name,
        image_properties.c.value == value,
    )


def tag_ids(tag: Any) -> sa.Select:
    return sa.select(image_tags.c.image_id).where(image_tags.c.value == tag)


def tag_exists(tag: Any) -> sa.ColumnElement[bool]:
    return sa.exists().where(image_tags.c.image_id == images.c.id, image_tags.c.value == tag)


# --- members ---------------------------------------------------------------------------------------


def member_exists(tenant_id: str, statuses: list[str] | None) -> sa.ColumnElement[bool]:
    """``images.id`` is shared with ``tenant_id`` (with a member status among ``statuses``, if given)."""
    query = sa.exists().where(image_members.c.image_id == images.c.id, image_members.c.member_id == tenant_id)
    if statuses is not None:
        query = query.where(image_members.c.status.in_(statuses))
    return query


def shared_visibility() -> sa.ColumnElement[bool]:
    """``visibility = 'shared'`` in a form no index serves (the column is never null)."""
    return sa.func.coalesce(images.c.visibility, "") == "shared"


def shared_with(tenant_id: str, statuses: list[str] | None) -> tuple[sa.FromClause, list[sa.ColumnElement[bool]]]:
    """Images joined from the memberships of ``tenant_id``: a walk of that tenant's member index.

    The caller's conditions on ``images.visibility`` must not be an index term here, or the
    database would rather walk every shared image in order: see :func:`shared_visibility`.
    """
    conditions = [image_members.c.member_id == tenant_id]
    if statuses is not None:
        conditions.append(image_members.c.status.in_(statuses))
    return image_members.join(images, images.c.id == image_members.c.image_id), conditions


def get_member(conn: Connection, image_id: str, member_id: str) -> Record | None:
    row = (
        conn.execute(
            sa.select(image_members).where(image_members.c.image_id == image_id, image_members.c.member_id == member_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def list_members(conn: Connection, image_id: str) -> list[Record]:
    rows = conn.execute(
        sa.select(image_members)
        .where(image_members.c.image_id == image_id)
        .order_by(image_members.c.created_at, image_members.c.member_id)
    ).mappings()
    return [dict(r) for r in rows]


def count_members(conn: Connection, image_id: str) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(image_members).where(image_members.c.image_id == image_id)
    ).scalar_one()


def insert_member(conn: Connection, row: Record) -> None:
    conn.execute(image_members.insert().values(**row))


def update_member(conn: Connection, image_id: str, member_id: str, status: str, now: datetime) -> None:
    conn.execute(
        image_members.update()
        .where(image_members.c.image_id == image_id, image_members.c.member_id == member_id)
        .values(status=status, updated_at=now)
    )


def delete_member(conn: Connection, image_id: str, member_id: str) -> None:
    conn.execute(
        image_members.delete().where(image_members.c.image_id == image_id, image_members.c.member_id == member_id)
    )


# --- import tasks ----------------------------------------------------------------------------------


def insert_task(conn: Connection, row: Record) -> None:
    conn.execute(image_tasks.insert().values(**row))


def update_task(conn: Connection, task_id: str, **values: Any) -> None:
    conn.execute(image_tasks.update().where(image_tasks.c.id == task_id).values(**values))


def tasks_of(conn: Connection, image_id: str) -> list[Record]:
    rows = conn.execute(
        sa.select(image_tasks).where(image_tasks.c.image_id == image_id).order_by(image_tasks.c.created_at.desc())
    ).mappings()
    return [dict(r) for r in rows]
