"""region: the base revision every region database starts from

Revision ID: r0001
Revises:
"""

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
