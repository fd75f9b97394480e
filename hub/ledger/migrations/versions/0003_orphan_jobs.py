"""Tagged jobs no portal session records, cancelled by the reconciler (the orphan rule of docs/faults.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "hpchub_orphan_jobs"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name=f"fk_{TABLE}_project_id_hpchub_projects"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("cluster", "job_id", name=f"uq_{TABLE}_cluster_job_id"),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
