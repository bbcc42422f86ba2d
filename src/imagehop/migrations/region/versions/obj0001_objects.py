"""objects: Swift accounts, containers and objects

Revision ID: obj0001
Revises: r0001
"""

import sqlalchemy as sa
from alembic import op

revision = "obj0001"
down_revision = "r0001"
branch_labels = ("objects",)
depends_on = None


def _name(length: int) -> sa.types.TypeEngine:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "swift_accounts",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "swift_containers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("name", _name(256), nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("object_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("account", "name", name="uq_swift_containers_account_name"),
    )
    op.create_table(
        "swift_objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("container_id", sa.Integer, sa.ForeignKey("swift_containers.id"), nullable=False),
        sa.Column("name", _name(1024), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(256), nullable=False),
        sa.Column("last_modified", sa.Float, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("file_id", sa.String(32), nullable=True, unique=True),
        sa.Column("kind", sa.String(8), nullable=False, server_default=""),
        sa.Column("manifest", sa.Text, nullable=True),
        sa.Column("delete_at", sa.Float, nullable=True),
        sa.UniqueConstraint("container_id", "name", name="uq_swift_objects_container_name"),
    )
    op.create_index("ix_swift_objects_delete_at", "swift_objects", ["delete_at"])


def downgrade() -> None:
    op.drop_table("swift_objects")
    op.drop_table("swift_containers")
    op.drop_table("swift_accounts")
