"""Course settings: an instructor's choices for a course (the TA extension limit, ...), append-only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SETTINGS = "hpchub_course_settings"


def upgrade() -> None:
    op.create_table(
        SETTINGS,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("setting", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("set_by", sa.String(length=500), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["hpchub_projects.id"], name=f"fk_{SETTINGS}_project_id_hpchub_projects"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{SETTINGS}"),
    )
    op.create_index(f"ix_{SETTINGS}_project_id_setting_id", SETTINGS, ["project_id", "setting", "id"])


def downgrade() -> None:
    op.drop_table(SETTINGS)
