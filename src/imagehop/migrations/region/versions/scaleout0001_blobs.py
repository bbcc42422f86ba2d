"""objects: blob intent records and extent maps; region leases

Revision ID: scaleout0001
Revises: obj0002_swift

Blobs written before this revision were sparse files holding the object's bytes at their own
offsets: they become ``live`` rows with no extent map (one run, read in place), which reads them
correctly, holes as zeros.
"""

import sqlalchemy as sa
from alembic import op

revision = "scaleout0001"
down_revision = "obj0002_swift"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "object_blobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("stored", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("extents", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("delete_after", sa.Float, nullable=True),
    )
    op.create_index("ix_object_blobs_state", "object_blobs", ["state", "delete_after"])
    op.create_table(
        "region_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.execute(
        "INSERT INTO object_blobs (id, state, size, stored, created_at) "
        "SELECT file_id, 'live', size, size, last_modified FROM swift_objects WHERE file_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("region_leases")
    op.drop_index("ix_object_blobs_state", "object_blobs")
    op.drop_table("object_blobs")
