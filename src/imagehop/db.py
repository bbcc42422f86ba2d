"""Database engines, the schema, and migrations.

Two kinds of database, as separate clouds would have: one global *identity* database and one
*region* database per region. SQLite (WAL mode) is the embedded default; a ``postgresql://`` URL
selects PostgreSQL through psycopg 3. The schema lives here as SQLAlchemy Core tables; Alembic
migrations under ``migrations/identity`` and ``migrations/region`` create and evolve it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

Kind = Literal["identity", "region"]

MIGRATIONS = Path(__file__).parent / "migrations"

identity_metadata = sa.MetaData()
region_metadata = sa.MetaData()

# --- identity ------------------------------------------------------------------------------------

projects = sa.Table(
    "projects",
    identity_metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("domain_id", sa.String(64), nullable=False, server_default="default"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.Float, nullable=False),
)

users = sa.Table(
    "users",
    identity_metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("domain_id", sa.String(64), nullable=False, server_default="default"),
    sa.Column("default_project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("api_key_hash", sa.String(255), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.Float, nullable=False),
)

roles = sa.Table(
    "roles",
    identity_metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
)

role_assignments = sa.Table(
    "role_assignments",
    identity_metadata,
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("role_id", sa.String(64), sa.ForeignKey("roles.id"), primary_key=True),
)

tokens = sa.Table(
    "tokens",
    identity_metadata,
    # SHA-256 of the token: the token itself is never stored.
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project_id", sa.String(64), nullable=True),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("methods", sa.JSON, nullable=False),
    sa.Column("audit_id", sa.String(32), nullable=False),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

# --- region --------------------------------------------------------------------------------------
# Each service of a region (objects, images, tasks, compute) adds its tables below, in a section of
# its own, and its migrations as a branch of its own off revision r0001 (branch_labels=("<service>",)).


# --- engines and migrations ----------------------------------------------------------------------


def normalize_url(url: str) -> str:
    """Accept the URLs operators write (``postgresql://``) and pick our drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, a busy timeout and foreign keys."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_migrate_lock = threading.Lock()


def migrate(engine: Engine, kind: Kind) -> None:
    """Bring the database of ``kind`` up to the newest schema (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / kind))
    config.set_main_option("version_table", f"alembic_version_{kind}")
    with _migrate_lock, engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start against one database at once: serialise migrations.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7271001)"))
        config.attributes["connection"] = connection
        # Each service owns a branch of the region history (see migrations/region/versions).
        command.upgrade(config, "heads")


def metadata_for(kind: Kind) -> sa.MetaData:
    return identity_metadata if kind == "identity" else region_metadata
