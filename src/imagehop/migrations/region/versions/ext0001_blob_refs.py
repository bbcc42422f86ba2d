"""objects: blobs that refer to runs of other blobs (objects built by reference), with reference counts

Revision ID: ext0001_blob_refs
Revises: scaleout0001

Existing blobs hold all their own bytes: ``refs`` 0 and no ``blob_refs`` rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "ext0001_blob_refs"
down_revision = "scaleout0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("object_blobs", sa.Column("refs", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "blob_refs",
        sa.Column("holder", sa.String(32), primary_key=True),
        sa.Column("target", sa.String(32), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("blob_refs")
    with op.batch_alter_table("object_blobs") as batch:
        batch.drop_column("refs")
