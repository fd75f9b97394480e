"""Allocations: calls, proposals (appended versions and events), review assignments, conflict
declarations, reviews, the principals users log in as, awards, invitations and final reports.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

Self-contained like 0001: the schema as it is at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("hpchub_calls",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(length=40), nullable=False),
    sa.Column("title", sa.String(length=200), nullable=False),
    sa.Column("audiences", sa.String(length=100), nullable=False),
    sa.Column("opens", sa.Date(), nullable=False),
    sa.Column("closes", sa.Date(), nullable=False),
    sa.Column("available_mgs", sa.BigInteger(), nullable=False),
    sa.Column("max_request_mgs", sa.BigInteger(), nullable=False),
    sa.Column("period_months", sa.Integer(), nullable=False),
    sa.Column("review_required", sa.Boolean(), nullable=False),
    sa.Column("criteria", sa.Text(), nullable=False),
    sa.Column("reviews_visible", sa.Boolean(), nullable=False),
    sa.Column("startup", sa.Boolean(), nullable=False),
    sa.Column("report_required", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_calls"),
    sa.UniqueConstraint("name", name="uq_hpchub_calls_name")
    )
    op.create_table("hpchub_login_principals",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("user", sa.String(length=32), nullable=False),
    sa.Column("principal", sa.String(length=255), nullable=False),
    sa.Column("seen_at", sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_login_principals")
    )
    op.create_index("ix_hpchub_login_principals_user_id", "hpchub_login_principals", ["user", "id"], unique=False)
    op.create_table("hpchub_call_closures",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("call_id", sa.Integer(), nullable=False),
    sa.Column("closed_on", sa.Date(), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("by", sa.String(length=500), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(["call_id"], ["hpchub_calls.id"], name="fk_hpchub_call_closures_call_id_hpchub_calls"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_call_closures"),
    sa.UniqueConstraint("call_id", name="uq_hpchub_call_closures_call_id")
    )
    op.create_table("hpchub_proposals",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("call_id", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("applicant", sa.String(length=32), nullable=False),
    sa.Column("applicant_principal", sa.String(length=255), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["call_id"], ["hpchub_calls.id"], name="fk_hpchub_proposals_call_id_hpchub_calls"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_proposals"),
        sa.CheckConstraint("kind IN ('new', 'renewal', 'supplement')", name="ck_hpchub_proposals_kind"),
    )
    op.create_index("ix_hpchub_proposals_applicant", "hpchub_proposals", ["applicant"], unique=False)
    op.create_index("ix_hpchub_proposals_call_id", "hpchub_proposals", ["call_id"], unique=False)
    op.create_table("hpchub_reports",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("narrative", sa.Text(), nullable=False),
    sa.Column("outputs", sa.Text(), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("by", sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name="fk_hpchub_reports_project_id_hpchub_projects"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_reports")
    )
    op.create_index("ix_hpchub_reports_project_id", "hpchub_reports", ["project_id"], unique=False)
    op.create_table("hpchub_awards",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("proposal_id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("grant_id", sa.Integer(), nullable=False),
    sa.Column("amount_mgs", sa.BigInteger(), nullable=False),
    sa.Column("period_start", sa.Date(), nullable=False),
    sa.Column("period_end", sa.Date(), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("by", sa.String(length=500), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(["grant_id"], ["hpchub_grants.id"], name="fk_hpchub_awards_grant_id_hpchub_grants"),
    sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name="fk_hpchub_awards_project_id_hpchub_projects"),
    sa.ForeignKeyConstraint(["proposal_id"], ["hpchub_proposals.id"], name="fk_hpchub_awards_proposal_id_hpchub_proposals"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_awards"),
    sa.UniqueConstraint("proposal_id", name="uq_hpchub_awards_proposal_id")
    )
    op.create_index("ix_hpchub_awards_project_id", "hpchub_awards", ["project_id"], unique=False)
    op.create_table("hpchub_conflict_declarations",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("proposal_id", sa.Integer(), nullable=False),
    sa.Column("reviewer", sa.String(length=32), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(["proposal_id"], ["hpchub_proposals.id"], name="fk_hpchub_conflict_declarations_proposal_id_hpchub_proposals"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_conflict_declarations"),
    sa.UniqueConstraint("proposal_id", "reviewer", name="uq_hpchub_conflict_declarations_proposal_id_reviewer")
    )
    op.create_table("hpchub_invitations",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("proposal_id", sa.Integer(), nullable=True),
    sa.Column("principal", sa.String(length=255), nullable=False),
    sa.Column("role", sa.String(length=16), nullable=False),
    sa.Column("token_sha256", sa.String(length=64), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(["project_id"], ["hpchub_projects.id"], name="fk_hpchub_invitations_project_id_hpchub_projects"),
    sa.ForeignKeyConstraint(["proposal_id"], ["hpchub_proposals.id"], name="fk_hpchub_invitations_proposal_id_hpchub_proposals"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_invitations"),
    sa.UniqueConstraint("project_id", "principal", name="uq_hpchub_invitations_project_id_principal"),
    sa.UniqueConstraint("token_sha256", name="uq_hpchub_invitations_token_sha256"),
        sa.CheckConstraint("role IN ('pi', 'manager', 'member', 'instructor', 'ta', 'student')", name="ck_hpchub_invitations_role"),
    )
    op.create_index("ix_hpchub_invitations_principal", "hpchub_invitations", ["principal"], unique=False)
    op.create_table("hpchub_proposal_events",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("proposal_id", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(length=16), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("by", sa.String(length=500), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("awarded_mgs", sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(["proposal_id"], ["hpchub_proposals.id"], name="fk_hpchub_proposal_events_proposal_id_hpchub_proposals"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_proposal_events"),
        sa.CheckConstraint("state IN ('draft', 'submitted', 'in_review', 'awarded', 'rejected', 'returned', 'withdrawn')", name="ck_hpchub_proposal_events_state"),
    )
    op.create_index("ix_hpchub_proposal_events_proposal_id_id", "hpchub_proposal_events", ["proposal_id", "id"], unique=False)
    op.create_table("hpchub_proposal_versions",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("proposal_id", sa.Integer(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("title", sa.String(length=200), nullable=False),
    sa.Column("abstract", sa.Text(), nullable=False),
    sa.Column("field_of_science", sa.String(length=8), nullable=False),
    sa.Column("gpu_hours_mgs", sa.BigInteger(), nullable=False),
    sa.Column("period_months", sa.Integer(), nullable=False),
    sa.Column("justification", sa.Text(), nullable=False),
    sa.Column("team", sa.Text(), nullable=False),
    sa.Column("organisation", sa.String(length=200), nullable=False),
    sa.Column("project_name", sa.String(length=40), nullable=False),
    sa.Column("attachment_sha256", sa.String(length=64), nullable=True),
    sa.Column("attachment_name", sa.String(length=200), nullable=True),
    sa.Column("saved_at", sa.DateTime(), nullable=False),
    sa.Column("saved_by", sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(["proposal_id"], ["hpchub_proposals.id"], name="fk_hpchub_proposal_versions_proposal_id_hpchub_proposals"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_proposal_versions"),
    sa.UniqueConstraint("proposal_id", "version", name="uq_hpchub_proposal_versions_proposal_id_version")
    )
    op.create_table("hpchub_review_assignments",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("proposal_id", sa.Integer(), nullable=False),
    sa.Column("reviewer", sa.String(length=32), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("by", sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(["proposal_id"], ["hpchub_proposals.id"], name="fk_hpchub_review_assignments_proposal_id_hpchub_proposals"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_review_assignments"),
    sa.UniqueConstraint("proposal_id", "reviewer", name="uq_hpchub_review_assignments_proposal_id_reviewer")
    )
    op.create_index("ix_hpchub_review_assignments_reviewer", "hpchub_review_assignments", ["reviewer"], unique=False)
    op.create_table("hpchub_reviews",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("proposal_id", sa.Integer(), nullable=False),
    sa.Column("reviewer", sa.String(length=32), nullable=False),
    sa.Column("scores", sa.Text(), nullable=False),
    sa.Column("comment", sa.Text(), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["proposal_id"], ["hpchub_proposals.id"], name="fk_hpchub_reviews_proposal_id_hpchub_proposals"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_reviews"),
    sa.UniqueConstraint("proposal_id", "reviewer", name="uq_hpchub_reviews_proposal_id_reviewer")
    )
    op.create_table("hpchub_invitation_answers",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("invitation_id", sa.Integer(), nullable=False),
    sa.Column("user", sa.String(length=32), nullable=False),
    sa.Column("accepted", sa.Boolean(), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["invitation_id"], ["hpchub_invitations.id"], name="fk_hpchub_invitation_answers_invitation_id_hpchub_invitations"),
    sa.PrimaryKeyConstraint("id", name="pk_hpchub_invitation_answers"),
    sa.UniqueConstraint("invitation_id", name="uq_hpchub_invitation_answers_invitation_id")
    )


def downgrade() -> None:
    op.drop_table("hpchub_invitation_answers")
    op.drop_table("hpchub_reviews")
    op.drop_table("hpchub_review_assignments")
    op.drop_table("hpchub_proposal_versions")
    op.drop_table("hpchub_proposal_events")
    op.drop_table("hpchub_invitations")
    op.drop_table("hpchub_conflict_declarations")
    op.drop_table("hpchub_awards")
    op.drop_table("hpchub_reports")
    op.drop_table("hpchub_proposals")
    op.drop_table("hpchub_call_closures")
    op.drop_table("hpchub_login_principals")
    op.drop_table("hpchub_calls")
