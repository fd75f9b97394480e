"""The allocation tables: calls, proposals (versions and events), reviews, awards, invitations,
final reports. Every one is append-only: a proposal's state is its latest event, its content its
latest version, a call's closure an appended row (``AppendOnlyRecord``)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.ledger.allocations import ProposalKind, ProposalState
from hub.ledger.models import AppendOnlyRecord, Base, UtcDateTime, _enum
from hub.ledger.types import Role


class Call(AppendOnlyRecord, Base):
    __tablename__ = "hpchub_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    audiences: Mapped[str] = mapped_column(String(100))  # comma-separated Audience values
    opens: Mapped[date] = mapped_column(Date)
    closes: Mapped[date] = mapped_column(Date)  # inclusive
    available_mgs: Mapped[int] = mapped_column(BigInteger)
    max_request_mgs: Mapped[int] = mapped_column(BigInteger)
    period_months: Mapped[int] = mapped_column(Integer)
    review_required: Mapped[bool] = mapped_column(Boolean)
    criteria: Mapped[str] = mapped_column(Text)  # newline-separated
    reviews_visible: Mapped[bool] = mapped_column(Boolean)
    startup: Mapped[bool] = mapped_column(Boolean)
    report_required: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(500))


class CallClosure(AppendOnlyRecord, Base):
    """A call closed before its closing date by a manager."""

    __tablename__ = "hpchub_call_closures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("hpchub_calls.id"), unique=True)
    closed_on: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)


class Proposal(AppendOnlyRecord, Base):
    __tablename__ = "hpchub_proposals"
    __table_args__ = (
        Index("ix_hpchub_proposals_applicant", "applicant"),
        Index("ix_hpchub_proposals_call_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("hpchub_calls.id"))
    kind: Mapped[ProposalKind] = mapped_column(_enum(ProposalKind, "kind"))
    applicant: Mapped[str] = mapped_column(String(32))
    applicant_principal: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProposalVersion(AppendOnlyRecord, Base):
    """What the applicant wrote, one row per save; the latest is the proposal."""

    __tablename__ = "hpchub_proposal_versions"
    __table_args__ = (UniqueConstraint("proposal_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("hpchub_proposals.id"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    abstract: Mapped[str] = mapped_column(Text)
    field_of_science: Mapped[str] = mapped_column(String(8))
    gpu_hours_mgs: Mapped[int] = mapped_column(BigInteger)
    period_months: Mapped[int] = mapped_column(Integer)
    justification: Mapped[str] = mapped_column(Text)
    team: Mapped[str] = mapped_column(Text)  # newline-separated principals
    organisation: Mapped[str] = mapped_column(String(200))
    project_name: Mapped[str] = mapped_column(String(40))
    attachment_sha256: Mapped[str | None] = mapped_column(String(64))
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    saved_by: Mapped[str] = mapped_column(String(500))


class ProposalEvent(AppendOnlyRecord, Base):
    """A state change: who, when, why (and for an award the hours)."""

    __tablename__ = "hpchub_proposal_events"
    __table_args__ = (Index("ix_hpchub_proposal_events_proposal_id_id", "proposal_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("hpchub_proposals.id"))
    state: Mapped[ProposalState] = mapped_column(_enum(ProposalState, "state"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    awarded_mgs: Mapped[int | None] = mapped_column(BigInteger)


class ReviewAssignment(AppendOnlyRecord, Base):
    __tablename__ = "hpchub_review_assignments"
    __table_args__ = (
        UniqueConstraint("proposal_id", "reviewer"),
        Index("ix_hpchub_review_assignments_reviewer", "reviewer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("hpchub_proposals.id"))
    reviewer: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(500))


class ConflictDeclaration(AppendOnlyRecord, Base):
    """A reviewer's own declaration of a conflict of interest for one proposal."""

    __tablename__ = "hpchub_conflict_declarations"
    __table_args__ = (UniqueConstraint("proposal_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("hpchub_proposals.id"))
    reviewer: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)


class ProposalReview(AppendOnlyRecord, Base):
    """One reviewer's scores (``criterion=score`` lines) and comment; one per reviewer."""

    __tablename__ = "hpchub_reviews"
    __table_args__ = (UniqueConstraint("proposal_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("hpchub_proposals.id"))
    reviewer: Mapped[str] = mapped_column(String(32))
    scores: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoginPrincipal(AppendOnlyRecord, Base):
    """The principal a user logged in as (a row when it changes): a reviewer's institution."""

    __tablename__ = "hpchub_login_principals"
    __table_args__ = (Index("ix_hpchub_login_principals_user_id", "user", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(32))
    principal: Mapped[str] = mapped_column(String(255))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Award(AppendOnlyRecord, Base):
    """An award: the grant it appended and the project's period after it."""

    __tablename__ = "hpchub_awards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("hpchub_proposals.id"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"), index=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("hpchub_grants.id"))
    amount_mgs: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(500))
    message: Mapped[str] = mapped_column(Text)


class Invitation(AppendOnlyRecord, Base):
    """A principal invited to a project (by an award's team); answered at their login or by link."""

    __tablename__ = "hpchub_invitations"
    __table_args__ = (
        UniqueConstraint("project_id", "principal"),
        Index("ix_hpchub_invitations_principal", "principal"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("hpchub_proposals.id"))
    principal: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(500))


class InvitationAnswer(AppendOnlyRecord, Base):
    __tablename__ = "hpchub_invitation_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("hpchub_invitations.id"), unique=True)
    user: Mapped[str] = mapped_column(String(32))
    accepted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class FinalReport(AppendOnlyRecord, Base):
    """A project's report of outcomes (a new row per submission; the latest counts)."""

    __tablename__ = "hpchub_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"), index=True)
    narrative: Mapped[str] = mapped_column(Text)
    outputs: Mapped[str] = mapped_column(Text)  # JSON: {"publications": [DOI...], "datasets": [...], ...}
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by: Mapped[str] = mapped_column(String(500))
