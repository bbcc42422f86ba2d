"""images (performance): index walks for lists sorted by name or updated_at, per owner and visibility

A list page is a UNION of index walks, one per kind of visibility (see images/filters.py); each walk
needs an index whose order is the page's: (owner | visibility, sort key, created_at, id). created_at
sorts were covered by img0001; these add name (openstack image list sorts by name) and updated_at,
and (owner, visibility, created_at, id) for a caller's own private or shared images.
On PostgreSQL, name is indexed NULLS FIRST: the order lists use on both databases (SQLite puts
nulls first ascending anyway).

Revision ID: perf0001_image_lists
Revises: img0002_security
"""

import sqlalchemy as sa
from alembic import op

revision = "perf0001_image_lists"
down_revision = "img0002_security"
branch_labels = None
depends_on = None

WALKS = ("owner", "visibility")


def _name() -> sa.ColumnElement | str:
    return sa.text("name NULLS FIRST") if op.get_bind().dialect.name == "postgresql" else "name"


def upgrade() -> None:
    op.drop_index("ix_images_name", table_name="images")
    op.create_index("ix_images_name", "images", [_name(), "created_at", "id"])
    op.create_index("ix_images_owner_visibility", "images", ["owner", "visibility", "created_at", "id"])
    for column in WALKS:
        op.create_index(f"ix_images_{column}_name", "images", [column, _name(), "created_at", "id"])
        op.create_index(f"ix_images_{column}_updated", "images", [column, "updated_at", "created_at", "id"])


def downgrade() -> None:
    for column in WALKS:
        op.drop_index(f"ix_images_{column}_updated", table_name="images")
        op.drop_index(f"ix_images_{column}_name", table_name="images")
    op.drop_index("ix_images_owner_visibility", table_name="images")
    op.drop_index("ix_images_name", table_name="images")
    op.create_index("ix_images_name", "images", ["name", "id"])
