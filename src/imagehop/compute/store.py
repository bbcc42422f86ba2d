"""Server rows. A server record is a plain dict of the ``servers`` columns.

Functions take a connection so the service decides the transactions.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from imagehop.db import servers, tasks

Record = dict[str, Any]


def insert(conn: Connection, row: Record) -> None:
    conn.execute(servers.insert().values(**row))


def get(conn: Connection, server_id: str) -> Record | None:
    row = conn.execute(sa.select(servers).where(servers.c.id == server_id)).mappings().first()
    return dict(row) if row is not None else None


def list_for(conn: Connection, tenant_id: str | None) -> list[Record]:
    """Every server of ``tenant_id`` (all tenants when None), newest first."""
    query = sa.select(servers).order_by(servers.c.created_at.desc(), servers.c.id.desc())
    if tenant_id is not None:
        query = query.where(servers.c.tenant_id == tenant_id)
    return [dict(r) for r in conn.execute(query).mappings()]


def with_status(conn: Connection, status: str) -> list[Record]:
    return [dict(r) for r in conn.execute(sa.select(servers).where(servers.c.status == status)).mappings()]


def with_task(conn: Connection) -> list[Record]:
    return [dict(r) for r in conn.execute(sa.select(servers).where(servers.c.task_state.is_not(None))).mappings()]


def update(conn: Connection, server_id: str, when: dict[str, Any] | None = None, **values: Any) -> bool:
    """Set ``values`` if the row exists (and its columns equal ``when``); True if a row changed."""
    query = servers.update().where(servers.c.id == server_id)
    for column, expected in (when or {}).items():
        col = servers.c[column]
        query = query.where(col.is_(None) if expected is None else col == expected)
    return conn.execute(query.values(**values)).rowcount > 0


def delete(conn: Connection, server_id: str) -> None:
    conn.execute(servers.delete().where(servers.c.id == server_id))


def touch(values: dict[str, Any], moment: datetime) -> dict[str, Any]:
    return {**values, "updated_at": moment}


def insert_task(conn: Connection, task_type: str, server: Record, task_input: Record) -> str:
    """A compute job as a row of the region's task table (in the caller's transaction)."""
    moment = datetime.now(UTC).replace(tzinfo=None)
    task_id = str(uuid.uuid4())
    conn.execute(tasks.insert().values(
        id=task_id, image_id=None, type=task_type, status="pending", owner=server["tenant_id"],
        user_id=server["user_id"], request_id=None, input=task_input, result=None, message="",
        created_at=moment, updated_at=moment, expires_at=None,
    ))  # fmt: skip
    return task_id
