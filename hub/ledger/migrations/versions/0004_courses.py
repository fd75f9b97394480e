"""Courses: each course's rules and its roster of principals who have not logged in yet.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RULES, ROSTER = "hpchub_course_rules", "hpchub_roster"


def upgrade() -> None:
    op.create_table(
        RULES,
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("per_student_mgs", sa.BigInteger(), nullable=False),
        sa.Column("gpu_types", sa.String(length=200), nullable=False),
        sa.Column("max_gpus", sa.Integer(), nullable=True),
        sa.Column("max_seconds", sa.Integer(), nullable=True),
        sa.Column("max_sessions", sa.Integer(), nullable=True),
        sa.Column("reservation", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name=f"fk_{RULES}_project_id_hpchub_projects"),
        sa.PrimaryKeyConstraint("project_id", name=f"pk_{RULES}"),
    )
    op.create_table(
        ROSTER,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=500), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=True),
        sa.Column("joined_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name=f"fk_{ROSTER}_project_id_hpchub_projects"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{ROSTER}"),
        sa.UniqueConstraint("project_id", "principal", name=f"uq_{ROSTER}_project_id_principal"),
        sa.CheckConstraint(
            "role IN ('pi', 'manager', 'member', 'instructor', 'ta', 'student')", name=f"ck_{ROSTER}_role"
        ),
    )
    op.create_index(f"ix_{ROSTER}_principal", ROSTER, ["principal"])


def downgrade() -> None:
    op.drop_table(ROSTER)
    op.drop_table(RULES)
