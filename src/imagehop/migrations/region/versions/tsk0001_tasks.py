"""tasks: one table for every task of a region (import, export, api_image_import)

Replaces the images branch's ``image_tasks`` (its rows are copied): ``image_id`` becomes nullable,
and the worker's columns (progress, attempts, claim, heartbeat) are added.

Revision ID: tsk0001
Revises: img0001
"""

import sqlalchemy as sa
from alembic import op

revision = "tsk0001"
down_revision = "img0001"
branch_labels = ("tasks",)
depends_on = None

COPIED = ("id", "image_id", "type", "status", "owner", "user_id", "request_id", "input", "result", "message",
          "created_at", "updated_at", "expires_at")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("image_id", sa.String(36), nullable=True),
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
    )
    op.create_index("ix_tasks_image_id", "tasks", ["image_id"])
    op.create_index("ix_tasks_owner_created", "tasks", ["owner", "created_at", "id"])
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at"])
    op.create_index("ix_tasks_expires", "tasks", ["expires_at"])
    columns = ", ".join(COPIED)
    op.execute(f"INSERT INTO tasks ({columns}) SELECT {columns} FROM image_tasks")
    op.drop_index("ix_image_tasks_image_id", table_name="image_tasks")
    op.drop_table("image_tasks")


def downgrade() -> None:
    raise NotImplementedError("tasks: no downgrade (export/import tasks have no place in image_tasks)")
