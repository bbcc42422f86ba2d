"""images: image records, extra properties, tags, members and import tasks

Revision ID: img0001
Revises: r0001
"""

import sqlalchemy as sa
from alembic import op

revision = "img0001"
down_revision = "r0001"
branch_labels = ("images",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
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
        sa.Column("data_key", sa.String(255), nullable=True),
    )
    op.create_index("ix_images_created", "images", ["created_at", "id"])
    op.create_index("ix_images_updated", "images", ["updated_at", "id"])
    op.create_index("ix_images_name", "images", ["name", "id"])
    op.create_index("ix_images_owner", "images", ["owner", "created_at", "id"])
    op.create_index("ix_images_visibility", "images", ["visibility", "created_at", "id"])

    op.create_table(
        "image_properties",
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("value_key", sa.String(200), nullable=False),
    )
    op.create_index("ix_image_properties_lookup", "image_properties", ["name", "value_key", "image_id"])

    op.create_table(
        "image_tags",
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
    )
    op.create_index("ix_image_tags_value", "image_tags", ["value", "image_id"])

    op.create_table(
        "image_members",
        sa.Column("image_id", sa.String(36), sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_image_members_member", "image_members", ["member_id", "status", "image_id"])

    op.create_table(
        "image_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("image_id", sa.String(36), nullable=False),
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
    )
    op.create_index("ix_image_tasks_image_id", "image_tasks", ["image_id"])


def downgrade() -> None:
    for table in ("image_tasks", "image_members", "image_tags", "image_properties", "images"):
        op.drop_table(table)
