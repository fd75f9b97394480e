"""The ledger's first tables: projects, grants, members, cap entries, sessions, charges.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Self-contained on purpose (no import of hub.ledger.models): a revision describes the
schema as it was, whatever the models say later. Times are naive UTC ``DateTime``;
enums are ``VARCHAR(16)`` with a named CHECK constraint (portable, no native types).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _enum(table: str, column: str, values: tuple[str, ...]) -> tuple[sa.Column, sa.CheckConstraint]:
    allowed = ", ".join(f"'{value}'" for value in values)
    return (
        sa.Column(column, sa.String(length=16), nullable=False),
        sa.CheckConstraint(f"{column} IN ({allowed})", name=f"ck_{table}_{column}"),
    )


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    name = f"fk_{table}_project_id_hpchub_projects"
    return sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name=name)


def upgrade() -> None:
    kind, kind_check = _enum("hpchub_projects", "kind", ("research", "course", "lab"))
    state, state_check = _enum("hpchub_projects", "state", ("active", "closed"))
    op.create_table(
        "hpchub_projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("slurm_account", sa.String(length=40), nullable=False),
        kind,
        state,
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=500), nullable=False),
        _pk("hpchub_projects"),
        sa.UniqueConstraint("name", name="uq_hpchub_projects_name"),
        sa.UniqueConstraint("slurm_account", name="uq_hpchub_projects_slurm_account"),
        kind_check,
        state_check,
    )

    op.create_table(
        "hpchub_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("amount_mgs", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("granted_by", sa.String(length=500), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        _project_fk("hpchub_grants"),
        _pk("hpchub_grants"),
    )
    op.create_index("ix_hpchub_grants_project_id", "hpchub_grants", ["project_id"])

    role, role_check = _enum("hpchub_members", "role", ("pi", "manager", "member", "instructor", "ta", "student"))
    op.create_table(
        "hpchub_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        role,
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=500), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_by", sa.String(length=500), nullable=True),
        _project_fk("hpchub_members"),
        _pk("hpchub_members"),
        role_check,
    )
    op.create_index("ix_hpchub_members_user", "hpchub_members", ["user"])
    op.create_index(
        "uq_hpchub_members_active_project_id_user",
        "hpchub_members",
        ["project_id", "user"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "hpchub_cap_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("cap_mgs", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("set_by", sa.String(length=500), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        _project_fk("hpchub_cap_entries"),
        _pk("hpchub_cap_entries"),
    )
    op.create_index("ix_hpchub_cap_entries_project_id_user_id", "hpchub_cap_entries", ["project_id", "user", "id"])

    session_state, session_state_check = _enum("hpchub_sessions", "state", ("admitted", "running", "ended", "refused"))
    op.create_table(
        "hpchub_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("server_name", sa.String(length=255), nullable=False),
        sa.Column("cluster", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("gpu_type", sa.String(length=32), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("reserved_seconds", sa.Integer(), nullable=False),
        sa.Column("weight_milli", sa.Integer(), nullable=False),
        session_state,
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("admitted_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("elapsed_seconds", sa.Integer(), nullable=True),
        _project_fk("hpchub_sessions"),
        _pk("hpchub_sessions"),
        session_state_check,
    )
    op.create_index("ix_hpchub_sessions_project_id_state", "hpchub_sessions", ["project_id", "state"])
    op.create_index("ix_hpchub_sessions_cluster_job_id", "hpchub_sessions", ["cluster", "job_id"])
    op.create_index("ix_hpchub_sessions_user_server_name_state", "hpchub_sessions", ["user", "server_name", "state"])

    source, source_check = _enum("hpchub_charges", "source", ("portal", "sacct"))
    charge_kind, charge_kind_check = _enum("hpchub_charges", "kind", ("provisional", "final"))
    op.create_table(
        "hpchub_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("gpu_type", sa.String(length=200), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=True),
        sa.Column("end_at", sa.DateTime(), nullable=True),
        sa.Column("elapsed_seconds", sa.Integer(), nullable=False),
        sa.Column("weighted_mgs", sa.BigInteger(), nullable=False),
        source,
        charge_kind,
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        _project_fk("hpchub_charges"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["hpchub_sessions.id"], name="fk_hpchub_charges_session_id_hpchub_sessions"
        ),
        _pk("hpchub_charges"),
        sa.UniqueConstraint("cluster", "job_id", "kind", name="uq_hpchub_charges_cluster_job_id_kind"),
        source_check,
        charge_kind_check,
    )
    op.create_index(
        "ix_hpchub_charges_project_id_user_kind_weighted_mgs",
        "hpchub_charges",
        ["project_id", "user", "kind", "weighted_mgs"],
    )


def downgrade() -> None:
    for table in (
        "hpchub_charges",
        "hpchub_sessions",
        "hpchub_cap_entries",
        "hpchub_members",
        "hpchub_grants",
        "hpchub_projects",
    ):
        op.drop_table(table)
