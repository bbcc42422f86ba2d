"""Task rows: insert, read, page, claim, progress, finish, expire.

A task record is a plain dict of the ``tasks`` columns. Claiming is safe with several workers on one
database: PostgreSQL takes the oldest pending row with ``SELECT … FOR UPDATE SKIP LOCKED``; SQLite
(one writer at a time) uses a conditional ``UPDATE … WHERE status = 'pending'`` and checks that it
won the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from imagehop.db import tasks

Record = dict[str, Any]
ACTIVE = ("pending", "processing")
# The types the Tasks API shows; the others (compute jobs) are the region's own work.
PUBLIC_TYPES = ("import", "export", "api_image_import")
SORT_KEYS = ("created_at", "updated_at", "expires_at", "status", "type", "id")


def insert(conn: Connection, row: Record) -> None:
    conn.execute(tasks.insert().values(**row))


def get(conn: Connection, task_id: str) -> Record | None:
    row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
    return dict(row) if row is not None else None


def update(conn: Connection, task_id: str, **values: Any) -> bool:
    return conn.execute(tasks.update().where(tasks.c.id == task_id).values(**values)).rowcount == 1


def count_active(conn: Connection, owner: str) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(tasks)
        .where(tasks.c.owner == owner, tasks.c.status.in_(ACTIVE), tasks.c.type.in_(PUBLIC_TYPES))
    )
    return int(conn.execute(query).scalar_one())


def page(
    conn: Connection,
    owner: str | None,
    *,
    status: str | None,
    type_: str | None,
    sort_key: str,
    sort_dir: str,
    marker: Record | None,
    limit: int,
    alive_at: datetime | None = None,
) -> list[Record]:
    """One page by keyset on (sort key, id); ``owner`` None lists every tenant's (admin); with
    ``alive_at``, tasks expired by then are left out. Only the Tasks API's own types are listed."""
    query = sa.select(tasks).where(tasks.c.type.in_(PUBLIC_TYPES))
    if alive_at is not None:
        query = query.where(sa.or_(tasks.c.expires_at.is_(None), tasks.c.expires_at > alive_at))
    if owner is not None:
        query = query.where(tasks.c.owner == owner)
    if status:
        query = query.where(tasks.c.status == status)
    if type_:
        query = query.where(tasks.c.type == type_)
    key, ident = tasks.c[sort_key], tasks.c.id
    desc = sort_dir == "desc"
    if marker is not None:
        value = marker[sort_key]
        after = (lambda a, b: a < b) if desc else (lambda a, b: a > b)
        if value is None:  # nulls come first in both directions (see the order below)
            cond = sa.or_(key.is_not(None), after(ident, marker["id"]))
        else:
            same = sa.and_(key == value, after(ident, marker["id"]))
            cond = sa.and_(key.is_not(None), sa.or_(after(key, value), same))
        query = query.where(cond)
    order = [key.desc(), ident.desc()] if desc else [key.asc(), ident.asc()]
    if sort_key == "expires_at":  # the only nullable sort key: nulls first
        order = [key.is_not(None), *order]
    query = query.order_by(*order).limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()]


def claim(engine: Engine, worker_id: str, moment: datetime, types: tuple[str, ...]) -> Record | None:
    """Take the oldest pending task of one of ``types`` for ``worker_id``; None if there is none."""
    with engine.begin() as conn:
        query = (
            sa.select(tasks.c.id)
            .where(tasks.c.status == "pending", tasks.c.type.in_(types))
            .order_by(tasks.c.created_at, tasks.c.id)
            .limit(1)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        task_id = conn.execute(query).scalar()
        if task_id is None:
            return None
        won = conn.execute(
            tasks.update()
            .where(tasks.c.id == task_id, tasks.c.status == "pending")
            .values(status="processing", worker_id=worker_id, heartbeat_at=moment, updated_at=moment,
                    attempts=tasks.c.attempts + 1)
        ).rowcount  # fmt: skip
        if won != 1:
            return None
        return get(conn, task_id)


def update_held(conn: Connection, task: Record, **values: Any) -> bool:
    """A fenced update: only while ``task`` is still ``processing`` under the same claim (holder and
    attempt). A worker whose lease ran out and whose task another worker took over changes nothing."""
    query = tasks.update().where(
        tasks.c.id == task["id"],
        tasks.c.status == "processing",
        tasks.c.worker_id == task["worker_id"],
        tasks.c.attempts == task["attempts"],
    )
    return conn.execute(query.values(**values)).rowcount == 1


def orphans(conn: Connection, worker_id: str) -> list[Record]:
    """Processing tasks held by another worker (or none); the caller decides which are orphaned."""
    query = sa.select(tasks).where(
        tasks.c.status == "processing",
        sa.or_(tasks.c.worker_id.is_(None), tasks.c.worker_id != worker_id),
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def heartbeat(conn: Connection, worker_id: str, task_ids: list[str], moment: datetime) -> None:
    if task_ids:
        conn.execute(
            tasks.update()
            .where(tasks.c.id.in_(task_ids), tasks.c.worker_id == worker_id, tasks.c.status == "processing")
            .values(heartbeat_at=moment)
        )


def delete_expired(conn: Connection, moment: datetime) -> int:
    return conn.execute(tasks.delete().where(tasks.c.expires_at.is_not(None), tasks.c.expires_at < moment)).rowcount
