"""Rows of the identity database: projects, users, roles, assignments, tokens."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from imagehop.db import projects, role_assignments, roles, tokens, users

# The roles every cloud has; any other well-formed name (Rackspace's ``object-store:observer``, an
# operator's own) is created the first time a user is given it.
ROLE_NAMES = ("admin", "member", "reader")
ROLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:.-]{0,63}")


@dataclass(frozen=True)
class User:
    id: str
    name: str
    domain_id: str
    default_project_id: str
    password_hash: str | None
    api_key_hash: str | None
    enabled: bool


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    domain_id: str
    enabled: bool


@dataclass(frozen=True)
class TokenRow:
    user_id: str
    project_id: str | None
    roles: list[dict[str, str]]
    methods: list[str]
    audit_id: str
    issued_at: float
    expires_at: float
    revoked_at: float | None


def ensure_roles(conn: Connection, names: tuple[str, ...] | list[str] = ROLE_NAMES) -> None:
    existing = set(conn.scalars(sa.select(roles.c.name)))
    for name in names:
        if name not in existing:
            conn.execute(roles.insert().values(id=uuid.uuid5(uuid.NAMESPACE_URL, f"role/{name}").hex, name=name))


def role_ids(conn: Connection, names: list[str]) -> dict[str, str]:
    rows = conn.execute(sa.select(roles.c.name, roles.c.id).where(roles.c.name.in_(names))).all()
    return {name: id_ for name, id_ in rows}


def get_project(conn: Connection, *, id: str | None = None, name: str | None = None) -> Project | None:
    column, value = (projects.c.id, id) if id is not None else (projects.c.name, name)
    row = conn.execute(sa.select(projects).where(column == value)).first()
    return Project(row.id, row.name, row.domain_id, row.enabled) if row else None


def ensure_project(conn: Connection, project_id: str, now: float) -> Project:
    project = get_project(conn, id=project_id)
    if project is None:
        # Tenants are named by their id, as Rackspace's numeric tenants are.
        conn.execute(projects.insert().values(id=project_id, name=project_id, created_at=now))
        project = get_project(conn, id=project_id)
        assert project is not None
    return project


def _user(row: Any) -> User:
    return User(
        row.id, row.name, row.domain_id, row.default_project_id, row.password_hash, row.api_key_hash, row.enabled
    )


def get_user(conn: Connection, *, id: str | None = None, name: str | None = None) -> User | None:
    column, value = (users.c.id, id) if id is not None else (users.c.name, name)
    row = conn.execute(sa.select(users).where(column == value)).first()
    return _user(row) if row else None


def list_users(conn: Connection) -> list[tuple[User, list[str]]]:
    rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
    return [(_user(row), user_role_names(conn, row.id, row.default_project_id)) for row in rows]


def insert_user(
    conn: Connection,
    *,
    name: str,
    project_id: str,
    password_hash: str | None,
    api_key_hash: str | None,
    now: float,
) -> str:
    user_id = uuid.uuid4().hex
    conn.execute(
        users.insert().values(
            id=user_id,
            name=name,
            default_project_id=project_id,
            password_hash=password_hash,
            api_key_hash=api_key_hash,
            created_at=now,
        )
    )
    return user_id


def update_user_secrets(conn: Connection, user_id: str, *, password_hash: str, api_key_hash: str) -> None:
    conn.execute(
        users.update().where(users.c.id == user_id).values(password_hash=password_hash, api_key_hash=api_key_hash)
    )


def delete_user(conn: Connection, user_id: str) -> None:
    conn.execute(tokens.delete().where(tokens.c.user_id == user_id))
    conn.execute(role_assignments.delete().where(role_assignments.c.user_id == user_id))
    conn.execute(users.delete().where(users.c.id == user_id))


def assign_roles(conn: Connection, user_id: str, project_id: str, names: list[str]) -> None:
    ids = role_ids(conn, names)
    current = set(user_role_names(conn, user_id, project_id))
    for name in names:
        if name not in current:
            conn.execute(role_assignments.insert().values(user_id=user_id, project_id=project_id, role_id=ids[name]))


def user_roles(conn: Connection, user_id: str, project_id: str) -> list[dict[str, str]]:
    rows = conn.execute(
        sa.select(roles.c.id, roles.c.name)
        .join(role_assignments, role_assignments.c.role_id == roles.c.id)
        .where(role_assignments.c.user_id == user_id, role_assignments.c.project_id == project_id)
        .order_by(roles.c.name)
    ).all()
    return [{"id": id_, "name": name} for id_, name in rows]


def user_role_names(conn: Connection, user_id: str, project_id: str) -> list[str]:
    return [role["name"] for role in user_roles(conn, user_id, project_id)]


def insert_token(conn: Connection, id_hash: str, row: TokenRow) -> None:
    conn.execute(
        tokens.insert().values(
            id_hash=id_hash,
            user_id=row.user_id,
            project_id=row.project_id,
            roles=row.roles,
            methods=row.methods,
            audit_id=row.audit_id,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )
    )


def get_token(conn: Connection, id_hash: str) -> TokenRow | None:
    row = conn.execute(sa.select(tokens).where(tokens.c.id_hash == id_hash)).first()
    if row is None:
        return None
    return TokenRow(
        row.user_id, row.project_id, row.roles, row.methods, row.audit_id, row.issued_at, row.expires_at, row.revoked_at
    )


def revoke_token(conn: Connection, id_hash: str, now: float) -> bool:
    result = conn.execute(
        tokens.update().where(tokens.c.id_hash == id_hash, tokens.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount > 0


def delete_expired_tokens(conn: Connection, before: float) -> int:
    return conn.execute(tokens.delete().where(tokens.c.expires_at < before)).rowcount


# --- the read-only directory (projects, users and roles as the v3 API lists them) ---------------


def list_projects(conn: Connection) -> list[Project]:
    rows = conn.execute(sa.select(projects).order_by(projects.c.id)).all()
    return [Project(row.id, row.name, row.domain_id, row.enabled) for row in rows]


def projects_of_user(conn: Connection, user_id: str) -> list[Project]:
    """The projects a user holds a role on (what Keystone's ``/v3/users/{id}/projects`` lists)."""
    query = (
        sa.select(projects)
        .where(projects.c.id.in_(sa.select(role_assignments.c.project_id).where(role_assignments.c.user_id == user_id)))
        .order_by(projects.c.id)
    )
    return [Project(row.id, row.name, row.domain_id, row.enabled) for row in conn.execute(query).all()]


def list_roles(conn: Connection) -> list[dict[str, str]]:
    rows = conn.execute(sa.select(roles.c.id, roles.c.name).order_by(roles.c.name)).all()
    return [{"id": id_, "name": name} for id_, name in rows]
