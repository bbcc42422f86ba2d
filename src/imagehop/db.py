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

from imagehop.explain import Explained

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

# --- region: images ------------------------------------------------------------------------------
# Glance v2 image records. Extra properties live in their own table, indexed on (name, value
# prefix, image_id), so `GET /v2/images?<key>=<value>` is an index lookup whatever the image count;
# listings page by keyset on (sort key, id), so a page costs the same at any depth, and walk one
# index per kind of visibility (images/filters.py explains the plan).

PROPERTY_PREFIX = 200  # characters of a property value covered by the lookup index

images = sa.Table(
    "images",
    region_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("visibility", sa.String(20), nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("os_hidden", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("checksum", sa.String(32), nullable=True),
    sa.Column("os_hash_algo", sa.String(64), nullable=True),
    sa.Column("os_hash_value", sa.String(128), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("virtual_size", sa.BigInteger, nullable=True),
    sa.Column("container_format", sa.String(32), nullable=True),
    sa.Column("disk_format", sa.String(32), nullable=True),
    sa.Column("min_ram", sa.Integer, nullable=False, server_default="0"),
    sa.Column("min_disk", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # Where the bytes are (an opaque key in the image data store); null until data is uploaded.
    sa.Column("data_key", sa.String(255), nullable=True),
    sa.Index("ix_images_created", "created_at", "id"),
    sa.Index("ix_images_updated", "updated_at", "id"),
    # Lists walk these in the page's order (images/filters.py); name is NULLS FIRST on PostgreSQL.
    sa.Index("ix_images_name", "name", "created_at", "id"),
    sa.Index("ix_images_owner", "owner", "created_at", "id"),
    sa.Index("ix_images_visibility", "visibility", "created_at", "id"),
    sa.Index("ix_images_owner_visibility", "owner", "visibility", "created_at", "id"),
    sa.Index("ix_images_owner_name", "owner", "name", "created_at", "id"),
    sa.Index("ix_images_visibility_name", "visibility", "name", "created_at", "id"),
    sa.Index("ix_images_owner_updated", "owner", "updated_at", "created_at", "id"),
    sa.Index("ix_images_visibility_updated", "visibility", "updated_at", "created_at", "id"),
)

image_properties = sa.Table(
    "image_properties",
    region_metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    # The first PROPERTY_PREFIX characters of value: indexable whatever the value's length.
    sa.Column("value_key", sa.String(PROPERTY_PREFIX), nullable=False),
    sa.Index("ix_image_properties_lookup", "name", "value_key", "image_id"),
)

image_tags = sa.Table(
    "image_tags",
    region_metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("value", sa.String(255), primary_key=True),
    sa.Index("ix_image_tags_value", "value", "image_id"),
)

image_members = sa.Table(
    "image_members",
    region_metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("member_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_image_members_member", "member_id", "status", "image_id"),
)

# The block map of an image (DESIGN.md, "The content digest"): (index, SHA-256) of each non-zero
# 2 MiB block of its virtual disk, stored when its bytes are (upload, import, snapshot), in the same
# pass that computes the content digest. ``image_block_maps`` says a map exists (an image with no
# non-zero block has a header and no rows); ``GET /v2/images/{id}/x-imagehop-blocks`` serves it.

image_block_maps = sa.Table(
    "image_block_maps",
    region_metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("block_size", sa.Integer, nullable=False),
    sa.Column("virtual_size", sa.BigInteger, nullable=False),
    sa.Column("content_digest", sa.String(80), nullable=False),
    sa.Column("block_count", sa.BigInteger, nullable=False),  # non-zero blocks: the rows below
)

image_blocks = sa.Table(
    "image_blocks",
    region_metadata,
    sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("block_index", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("sha256", sa.LargeBinary(32), nullable=False),
)

# --- region: tasks -------------------------------------------------------------------------------
# Every asynchronous task of the region: ``import`` / ``export`` (the v2 Tasks API, as Rackspace had
# them) and ``api_image_import`` (interoperable import; ``image_id`` set, shown by
# GET /v2/images/{id}/tasks). A worker claims ``pending`` rows; progress and heartbeat are columns.

tasks = sa.Table(
    "tasks",
    region_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("image_id", sa.String(36), nullable=True, index=True),
    sa.Column("type", sa.String(30), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("input", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=True),
    sa.Column("progress_done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("progress_total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("worker_id", sa.String(64), nullable=True),
    sa.Column("heartbeat_at", sa.DateTime, nullable=True),
    sa.Index("ix_tasks_owner_created", "owner", "created_at", "id"),
    sa.Index("ix_tasks_status_created", "status", "created_at"),
    sa.Index("ix_tasks_expires", "expires_at"),
)
image_tasks = tasks  # the images service's name for the same table

deleted_images = sa.Table(
    "deleted_images",
    region_metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # never given to a new image again
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("deleted_at", sa.DateTime, nullable=False),
)


# --- region: objects -----------------------------------------------------------------------------
# Swift accounts, containers and objects. Names sort byte-wise (UTF-8 code point order) on both
# backends, so listings page by (container_id, name) on one index whatever the object count. Object
# bytes live in files named by ``file_id`` under the region's data dir; the row is the truth.


def _swift_name(length: int) -> sa.types.TypeEngine:
    """A name column that compares byte-wise: SQLite's default BINARY, PostgreSQL's "C" collation."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


swift_accounts = sa.Table(
    "swift_accounts",
    region_metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

swift_containers = sa.Table(
    "swift_containers",
    region_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(256), nullable=False),
    sa.Column("name", _swift_name(256), nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("object_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes_used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("modified_at", sa.Float, nullable=True),  # Swift's put timestamp: PUT and POST move it
    sa.UniqueConstraint("account", "name", name="uq_swift_containers_account_name"),
)

swift_objects = sa.Table(
    "swift_objects",
    region_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("container_id", sa.Integer, sa.ForeignKey("swift_containers.id"), nullable=False),
    sa.Column("name", _swift_name(1024), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(256), nullable=False),
    sa.Column("last_modified", sa.Float, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("file_id", sa.String(32), nullable=True, unique=True),  # None: no bytes (empty or manifest)
    sa.Column("kind", sa.String(8), nullable=False, server_default=""),  # "", "slo" or "dlo"
    sa.Column("manifest", sa.Text, nullable=True),  # SLO: stored manifest JSON; DLO: "container/prefix"
    sa.Column("delete_at", sa.Float, nullable=True, index=True),
    sa.UniqueConstraint("container_id", "name", name="uq_swift_objects_container_name"),
)


# Every blob the engine wrote or is writing: the intent record of a write (``writing``, with its
# holder and a lease), the extent map of a stored blob (``live``), and a blob that no row names any
# more but that readers in flight may still read (``deleting`` until ``delete_after``). Clean-up works
# from these rows, never by listing the blob store.
object_blobs = sa.Table(
    "object_blobs",
    region_metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(10), nullable=False),  # writing, live, deleting
    sa.Column("holder", sa.String(128), nullable=True),  # the writing process (host:pid:nonce)
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),  # logical size, holes included
    sa.Column("stored", sa.BigInteger, nullable=False, server_default="0"),  # bytes in the blob store
    # JSON [[offset, length], ...] of the data runs, packed in this order in the blob; null: one run, all of it.
    sa.Column("extents", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("delete_after", sa.Float, nullable=True),
    # How many blobs' extent maps (or unfinished writes) refer to runs of this blob: it is removed only at 0.
    sa.Column("refs", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_object_blobs_state", "state", "delete_after"),
)

# Which blob refers to runs of which other blob (an object built by reference, e.g. an incremental copy
# on its base): ``holder`` holds one count of ``target.refs`` for as long as its row exists.
blob_refs = sa.Table(
    "blob_refs",
    region_metadata,
    sa.Column("holder", sa.String(32), primary_key=True),
    sa.Column("target", sa.String(32), primary_key=True),
)

# Named locks with a lease: housekeeping of a region runs in whichever process holds ``housekeeping``.
region_leases = sa.Table(
    "region_leases",
    region_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)


# --- region: compute -----------------------------------------------------------------------------
# Servers of the small Compute API: a row per server; its disk is an object of the internal account
# ``.imagehop-compute`` (see compute/service.py). Rows of deleted servers are removed once the disk is.

servers = sa.Table(
    "servers",
    region_metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.String(255), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # BUILD, ACTIVE, ERROR, DELETED
    sa.Column("task_state", sa.String(32), nullable=True),
    sa.Column("image_id", sa.String(36), nullable=False),
    sa.Column("flavor_id", sa.String(64), nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("fault", sa.JSON, nullable=True),
    sa.Column("disk_size", sa.BigInteger, nullable=True),
    sa.Column("snapshot_image_id", sa.String(36), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("launched_at", sa.DateTime, nullable=True),
    sa.Index("ix_servers_tenant_created", "tenant_id", "created_at", "id"),
    sa.Index("ix_servers_status", "status"),
)


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
        # the pool as PostgreSQL's: with SQLAlchemy's default (5), concurrent requests beyond five each
        # opened a connection (and ran the pragmas below) and closed it again
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=20
        )
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
            schema = search_path_schema(engine)
            if schema:  # one database for every service (``database_url``): a schema each
                connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        config.attributes["connection"] = connection
        # Each service owns a branch of the region history (see migrations/region/versions).
        command.upgrade(config, "heads")


def search_path_schema(engine: Engine) -> str | None:
    """The schema a ``...?options=-csearch_path=NAME`` URL selects (see ``config.schema_url``)."""
    options = engine.url.query.get("options")
    if isinstance(options, tuple):
        options = " ".join(options)
    if options and "search_path=" in options:
        schema = options.split("search_path=", 1)[1].split()[0].split(",")[0]
        if schema.replace("_", "").isalnum():
            return schema
    return None


class DatabaseUnavailable(Explained):
    """A configured database cannot be used; the message says which one and what to do."""


def open_database(url: str, kind: Kind, setting: str) -> Engine:
    """An engine on ``url`` with its schema up to date, or :class:`DatabaseUnavailable`.

    ``setting`` names where the URL came from (``[identity] database_url``), for the message.
    """
    from imagehop.explain import database_error

    engine = make_engine(url)
    try:
        migrate(engine, kind)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        shown = engine.url.render_as_string(hide_password=True).replace("+psycopg", "")
        raise DatabaseUnavailable(database_error(exc, shown, setting)) from exc
    return engine


def metadata_for(kind: Kind) -> sa.MetaData:
    return identity_metadata if kind == "identity" else region_metadata
