"""Session activity: each running session's latest activity report (pushed by the session with
its own server token), read by the idle stop instead of asking the sessions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIVITY = "hpchub_session_activity"


def upgrade() -> None:
    op.create_table(
        ACTIVITY,
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("kernels_busy", sa.Integer(), nullable=False),
        sa.Column("terminals_busy", sa.Integer(), nullable=False),
        sa.Column("last_activity", sa.DateTime(), nullable=False),
        sa.Column("gpu_percent", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["hpchub_sessions.id"], name=f"fk_{ACTIVITY}_session_id_hpchub_sessions"
        ),
        sa.PrimaryKeyConstraint("session_id", name=f"pk_{ACTIVITY}"),
    )


def downgrade() -> None:
    op.drop_table(ACTIVITY)
