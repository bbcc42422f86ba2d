"""images: ids of deleted images, which are never used again (Glance keeps deleted rows)

Revision ID: img0002_security
Revises: tsk0001
"""

import sqlalchemy as sa
from alembic import op

revision = "img0002_security"
down_revision = "tsk0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deleted_images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("deleted_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deleted_images")
