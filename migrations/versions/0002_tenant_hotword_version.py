"""tenant hot-word version

Revision ID: e59c3f07b654
Revises: 43ffab9ff3a9
Create Date: 2026-11-30 04:45:05.567782
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e59c3f07b654"
down_revision: str | None = "43ffab9ff3a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing tenants start at 0; the default is for them only, the model sets it for new rows.
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hotword_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.drop_column("hotword_version")
