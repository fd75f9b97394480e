"""Running jobs on a project's account that the portal did not start (the reconciler's).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "hpchub_outside_jobs"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("gpu_type", sa.String(length=200), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("weighted_gpus_milli", sa.Integer(), nullable=False),
        sa.Column("time_limit_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name=f"fk_{TABLE}_project_id_hpchub_projects"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("cluster", "job_id", name=f"uq_{TABLE}_cluster_job_id"),
        sa.CheckConstraint("state IN ('running', 'ended')", name=f"ck_{TABLE}_state"),
    )
    op.create_index(f"ix_{TABLE}_project_id_state", TABLE, ["project_id", "state"])


def downgrade() -> None:
    op.drop_table(TABLE)
