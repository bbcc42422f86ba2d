"""images (incremental copies): the block map of every image, (index, SHA-256) of its non-zero 2 MiB blocks

Images stored before this revision have no map (no header row); they are measured again only when
their bytes are written again.

Revision ID: inc0001_block_maps
Revises: perf0001_image_lists
"""

import sqlalchemy as sa
from alembic import op

revision = "inc0001_block_maps"
down_revision = "perf0001_image_lists"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_block_maps",
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("block_size", sa.Integer, nullable=False),
        sa.Column("virtual_size", sa.BigInteger, nullable=False),
        sa.Column("content_digest", sa.String(80), nullable=False),
        sa.Column("block_count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "image_blocks",
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("block_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("image_blocks")
    op.drop_table("image_block_maps")
