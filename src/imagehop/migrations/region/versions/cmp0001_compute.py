"""compute: servers

Revision ID: cmp0001
Revises: r0001
"""

import sqlalchemy as sa
from alembic import op

revision = "cmp0001"
down_revision = "r0001"
branch_labels = ("compute",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
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
    )
    op.create_index("ix_servers_tenant_created", "servers", ["tenant_id", "created_at", "id"])
    op.create_index("ix_servers_status", "servers", ["status"])


def downgrade() -> None:
    op.drop_table("servers")
