"""Login groups: the identity provider's groups of each user as their logins showed them
(append-only, a row when they change), for ``hpchub course sync``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

GROUPS = "hpchub_login_groups"


def upgrade() -> None:
    op.create_table(
        GROUPS,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("groups", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{GROUPS}"),
    )
    op.create_index(f"ix_{GROUPS}_user_id", GROUPS, ["user", "id"])


def downgrade() -> None:
    op.drop_table(GROUPS)
