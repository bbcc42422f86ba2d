"""objects: a container's put timestamp (Last-Modified), which PUT and POST move as in Swift

Revision ID: obj0002_swift
Revises: obj0001
"""

import sqlalchemy as sa
from alembic import op

revision = "obj0002_swift"
down_revision = "obj0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("swift_containers") as batch:
        batch.add_column(sa.Column("modified_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("swift_containers") as batch:
        batch.drop_column("modified_at")
