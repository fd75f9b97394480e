"""Awards, invitations and reports in the ledger: mixed into ``Ledger`` beside
``AllocationRecords`` (whose lookups it uses).

``plan_award`` checks everything an award needs before anything is made; ``record_award`` writes
the ledger's half of it in one transaction (the project or its new grant and end date, the PI's
membership, the team's invitations, the award and its event) after re-checking the plan under
the proposal's lock. The Slurm account and the project space are made before it by
``hub.allocations.award``, which undoes them if this transaction fails.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.ledger import allocations as rules
from hub.ledger import arithmetic as arith
from hub.ledger.allocation_models import (
    Award,
    Call,
    FinalReport,
    Invitation,
    InvitationAnswer,
    Proposal,
    ProposalEvent,
)
from hub.ledger.allocation_records import _content, _spec
from hub.ledger.allocations import Decision, ProposalInfo, ProposalKind, ProposalState
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.models import Grant, Member, Project
from hub.ledger.records import _project_info
from hub.ledger.types import ProjectInfo, ProjectKind, Role, check_text, check_user


@dataclass(frozen=True)
class AwardPlan:
    """What an award will make, checked before anything is made (Slurm first, then the ledger)."""

    proposal_id: int
    kind: ProposalKind
    project: str
    account: str
    pi: str
    amount_mgs: int
    new_project: bool
    project_kind: ProjectKind
    period_start: date
    period_end: date
    team: tuple[str, ...]


@dataclass(frozen=True)
class AwardResult:
    plan: AwardPlan
    project: ProjectInfo
    invitations: Mapping[str, str]  # principal -> the invitation's link token (shown once)


@dataclass(frozen=True)
class InvitationInfo:
    project: str
    principal: str
    role: Role
    state: str  # invited | accepted | declined
    user: str | None


@dataclass(frozen=True)
class AwardRecord:
    proposal_id: int
    call: str
    kind: ProposalKind
    amount_mgs: int
    period_start: date
    period_end: date
    at: datetime
    by: str
    message: str


@dataclass(frozen=True)
class ReportRecord:
    project: str
    narrative: str
    outputs: Mapping[str, tuple[str, ...]]
    at: datetime
    by: str


REPORT_OUTPUTS = ("publications", "datasets", "models", "software")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AwardRecords:
    # --- decisions -------------------------------------------------------------------------------

    def decide(self, proposal_id: int, decision: Decision | str, *, who: str, message: str,
               now: datetime | None = None) -> ProposalInfo:  # fmt: skip
        """Reject or return (an award goes through ``plan_award``/``record_award``)."""
        decision = Decision(decision) if not isinstance(decision, Decision) else decision
        if decision is Decision.AWARD:
            raise LedgerInputError("decision", "an award is made with plan_award and record_award")
        who, now = check_text(who, "who"), self._now(now)
        message = rules.check_paragraphs(message, "message", rules.MAX_MESSAGE)
        with self._write() as session:
            proposal = self._proposal_row(session, proposal_id, lock=True)
            self._check_decidable(session, proposal)
            session.add(ProposalEvent(proposal_id=proposal.id, state=decision.state, at=now, by=who, reason=message))
            session.flush()
            return self._proposal_info(session, proposal)

    def plan_award(self, proposal_id: int, *, gpu_hours: object = None, slurm_account: str | None = None,
                   now: datetime | None = None) -> AwardPlan:  # fmt: skip
        """Everything an award needs checked, before Slurm or the ledger is touched."""
        now = self._now(now)
        with self._read() as session:
            return self._plan(session, self._proposal_row(session, proposal_id), gpu_hours, slurm_account, now)

    def record_award(self, plan: AwardPlan, *, who: str, message: str, now: datetime | None = None) -> AwardResult:
        """The ledger's half of an award, all in one transaction; re-checks the plan under the lock."""
        who, now = check_text(who, "who"), self._now(now)
        message = rules.check_paragraphs(message, "message", rules.MAX_MESSAGE, required=False) or "awarded"
        with self._write() as session:
            proposal = self._proposal_row(session, plan.proposal_id, lock=True)
            fresh = self._plan(session, proposal, arith.round_gpu_hours(plan.amount_mgs), plan.account, now)
            if replace(fresh, period_start=plan.period_start) != plan:
                raise LedgerInputError("proposal", f"#{proposal.id} changed while the award was being made; try again")
            call = session.get(Call, proposal.call_id)
            reason = f"award: call {call.name}, proposal #{proposal.id}"
            if plan.new_project:
                info = self._insert_project(
                    session, plan.project, account=plan.account, kind=plan.project_kind, gpu_hours=0, who=who,
                    start=plan.period_start, end=plan.period_end, now=now,
                )  # fmt: skip
                project = self._project(session, plan.project, lock=True)
                session.add(Member(project_id=project.id, user=plan.pi, role=Role.PI, active=True, added_at=now,
                                   added_by=reason))  # fmt: skip
            else:
                project = self._project(session, plan.project, lock=True)
                if plan.period_end != project.period_end:
                    project.period_end = plan.period_end
            grant = Grant(project_id=project.id, amount_mgs=plan.amount_mgs, reason=reason)
            grant.granted_by, grant.granted_at = who, now
            session.add(grant)
            session.flush()
            session.add(Award(proposal_id=proposal.id, project_id=project.id, grant_id=grant.id,
                              amount_mgs=plan.amount_mgs, period_start=plan.period_start, period_end=plan.period_end,
                              at=now, by=who, message=message))  # fmt: skip
            session.add(ProposalEvent(proposal_id=proposal.id, state=ProposalState.AWARDED, at=now, by=who,
                                      reason=message, awarded_mgs=plan.amount_mgs))  # fmt: skip
            tokens = {}
            for principal in plan.team:
                taken = select(Invitation.id).where(Invitation.project_id == project.id,
                                                    Invitation.principal == principal)  # fmt: skip
                if session.scalars(taken).first() is not None:
                    continue
                token = secrets.token_urlsafe(24)
                session.add(Invitation(project_id=project.id, proposal_id=proposal.id, principal=principal,
                                       role=Role.MEMBER, token_sha256=_token_hash(token), created_at=now,
                                       created_by=who))  # fmt: skip
                tokens[principal] = token
            session.flush()
            if not plan.new_project:
                info = _project_info(project)
            return AwardResult(plan, info, tokens)

    # --- invitations -----------------------------------------------------------------------------

    def accept_invitations(self, principal: str, user: str, *, now: datetime | None = None) -> list[tuple[str, str]]:
        """At a login of ``principal`` (mapped to ``user``): each open invitation becomes a
        membership. Returns (project, role) joined."""
        principal = rules.check_principal(principal, "principal")
        check_user(user)
        now = self._now(now)
        with self._read() as session:
            pending = session.execute(
                select(Invitation.id).where(Invitation.principal == principal,
                                            ~Invitation.id.in_(select(InvitationAnswer.invitation_id)))
            ).scalars().all()  # fmt: skip
        return [joined for invitation_id in pending if (joined := self._answer(invitation_id, user, True, now))]

    def open_invitations(self, principal: str) -> list[str]:
        """The projects ``principal`` is invited to and has not answered (e.g. before their first login)."""
        principal = rules.check_principal(principal, "principal")
        with self._read() as session:
            return list(session.execute(
                select(Project.name).join(Invitation, Invitation.project_id == Project.id)
                .where(Invitation.principal == principal, ~Invitation.id.in_(select(InvitationAnswer.invitation_id)))
                .order_by(Invitation.id)
            ).scalars())  # fmt: skip

    def answer_invitation(self, token: str, *, user: str, principal: str, accept: bool,
                          now: datetime | None = None) -> tuple[str, str] | None:  # fmt: skip
        """The invitation's link: only the invited principal may answer it."""
        principal = rules.check_principal(principal, "principal")
        if not isinstance(token, str) or not 10 <= len(token) <= 100:
            raise NotFound("invitation", "unknown or answered invitation")
        with self._read() as session:
            row = session.scalars(select(Invitation).where(Invitation.token_sha256 == _token_hash(token))).first()
        if row is None or row.principal != principal:
            raise NotFound("invitation", "unknown invitation, or it is for another login")
        return self._answer(row.id, user, accept, self._now(now))

    def invitation_for(self, token: str, principal: str) -> InvitationInfo:
        """The invitation behind a link, for the principal it was made for only (else NotFound)."""
        principal = rules.check_principal(principal, "principal")
        if not isinstance(token, str) or not 10 <= len(token) <= 100:
            raise NotFound("invitation", "unknown invitation")
        with self._read() as session:
            row = session.scalars(select(Invitation).where(Invitation.token_sha256 == _token_hash(token))).first()
            if row is None or row.principal != principal:
                raise NotFound("invitation", "unknown invitation, or it is for another login")
            project = session.get(Project, row.project_id).name
            answer = session.scalars(select(InvitationAnswer).where(InvitationAnswer.invitation_id == row.id)).first()
        state = "invited" if answer is None else ("accepted" if answer.accepted else "declined")
        return InvitationInfo(project, row.principal, row.role, state, answer.user if answer else None)

    def _answer(self, invitation_id: int, user: str, accept: bool, now: datetime) -> tuple[str, str] | None:
        with self._write() as session:
            invitation = session.get(Invitation, invitation_id)
            project = session.get(Project, invitation.project_id)
            self._project(session, project.name, lock=True)
            if session.scalars(
                select(InvitationAnswer.id).where(InvitationAnswer.invitation_id == invitation_id)
            ).first():
                return None
            session.add(InvitationAnswer(invitation_id=invitation_id, user=user, accepted=accept, at=now))
            if not accept:
                return None
            if self._member(session, project, user) is None:
                session.add(Member(project_id=project.id, user=user, role=invitation.role, active=True, added_at=now,
                                   added_by=f"invitation to {project.name}"))  # fmt: skip
            return project.name, invitation.role.value

    def invitations(self, project: str) -> list[InvitationInfo]:
        with self._read() as session:
            row = self._project(session, project)
            answers = {a.invitation_id: a for a in session.scalars(
                select(InvitationAnswer).join(Invitation, Invitation.id == InvitationAnswer.invitation_id)
                .where(Invitation.project_id == row.id))}  # fmt: skip
            out = []
            for invitation in session.scalars(select(Invitation).where(Invitation.project_id == row.id)
                                              .order_by(Invitation.id)):  # fmt: skip
                answer = answers.get(invitation.id)
                state = "invited" if answer is None else ("accepted" if answer.accepted else "declined")
                out.append(InvitationInfo(project, invitation.principal, invitation.role, state,
                                          answer.user if answer else None))  # fmt: skip
            return out

    # --- history and reports ---------------------------------------------------------------------

    def awards(self, project: str) -> list[AwardRecord]:
        with self._read() as session:
            row = self._project(session, project)
            rows = session.execute(
                select(Award, Proposal.kind, Call.name).join(Proposal, Proposal.id == Award.proposal_id)
                .join(Call, Call.id == Proposal.call_id).where(Award.project_id == row.id).order_by(Award.id)
            ).all()  # fmt: skip
            return [AwardRecord(a.proposal_id, call, kind, a.amount_mgs, a.period_start, a.period_end, a.at, a.by,
                                a.message) for a, kind, call in rows]  # fmt: skip

    def submit_report(self, project: str, *, who: str, narrative: str, outputs: Mapping[str, object],
                      now: datetime | None = None) -> ReportRecord:  # fmt: skip
        narrative = rules.check_paragraphs(narrative, "narrative", rules.MAX_JUSTIFICATION)
        who, now = check_text(who, "who"), self._now(now)
        checked = _check_outputs(outputs)
        with self._write() as session:
            row = self._project(session, project, lock=True)
            session.add(
                FinalReport(project_id=row.id, narrative=narrative, outputs=json.dumps(checked), at=now, by=who)
            )
        return ReportRecord(project, narrative, {k: tuple(v) for k, v in checked.items()}, now, who)

    def reports(self, project: str) -> list[ReportRecord]:
        with self._read() as session:
            row = self._project(session, project)
            rows = session.scalars(select(FinalReport).where(FinalReport.project_id == row.id).order_by(FinalReport.id))
            return [ReportRecord(project, r.narrative, {k: tuple(v) for k, v in json.loads(r.outputs).items()}, r.at,
                                 r.by) for r in rows]  # fmt: skip

    def _plan(self, session: Session, proposal: Proposal, gpu_hours: object, slurm_account: str | None,
              now: datetime) -> AwardPlan:  # fmt: skip
        state = self._check_decidable(session, proposal)
        call_row = session.get(Call, proposal.call_id)
        spec = _spec(call_row)
        if spec.review_required and state is ProposalState.SUBMITTED:
            raise LedgerInputError("decision", f"call {spec.name} requires review: assign a reviewer first")
        content = _content(self._latest_version(session, proposal.id))
        if gpu_hours in (None, ""):
            amount = content.gpu_hours_mgs
        else:
            amount = rules.check_hours(gpu_hours, "gpu_hours", limit_mgs=content.gpu_hours_mgs,
                                       limit_name="the hours requested")  # fmt: skip
        left = spec.available_mgs - self._awarded_in_call(session, call_row.id)
        if amount > left:
            raise LedgerInputError("gpu_hours", f"call {spec.name} has {arith.format_gpu_hours(max(left, 0))} GPU-h "
                                                f"left in its round; {arith.format_gpu_hours(amount)} asked")  # fmt: skip
        existing = self._check_project_for(session, proposal, content.project_name, spec)
        if spec.startup:
            refusal = self._startup_refusal(session, proposal, now)
            if refusal:
                raise LedgerInputError("call", refusal)
        start, end = rules.award_period(self._today(now), content.period_months,
                                        current_end=existing.period_end if existing else None,
                                        kind=proposal.kind)  # fmt: skip
        if existing is None:
            account = slurm_account or content.project_name
            owner = session.scalars(select(Project.name).where(Project.slurm_account == account)).first()
            if owner is not None:
                raise LedgerInputError("account", f"{account} is already the account of project {owner}")
            kind = ProjectKind.LAB if spec.audiences == (rules.Audience.EDUCATION,) else ProjectKind.RESEARCH
        else:
            account, kind = existing.slurm_account, existing.kind
        return AwardPlan(
            proposal_id=proposal.id, kind=proposal.kind, project=content.project_name, account=account,
            pi=proposal.applicant, amount_mgs=amount, new_project=existing is None, project_kind=kind,
            period_start=start, period_end=end, team=content.team,
        )  # fmt: skip


def _check_outputs(outputs: Mapping[str, object]) -> dict[str, list[str]]:
    """The report's outputs: DOIs for publications (syntax checked), short lines for the rest."""
    if not isinstance(outputs, Mapping):
        raise LedgerInputError("outputs", f"an object with {', '.join(REPORT_OUTPUTS)}")
    unknown = sorted(set(outputs) - set(REPORT_OUTPUTS))
    if unknown:
        raise LedgerInputError("outputs", f"unknown kind {unknown[0]!r}; one of {', '.join(REPORT_OUTPUTS)}")
    checked: dict[str, list[str]] = {}
    for kind in REPORT_OUTPUTS:
        values = outputs.get(kind) or []
        if isinstance(values, str):
            values = [v for v in values.replace(",", "\n").split("\n") if v.strip()]
        if not isinstance(values, (list, tuple)) or len(values) > 200:
            raise LedgerInputError(f"outputs.{kind}", "a list of at most 200 entries")
        if kind == "publications":
            checked[kind] = [rules.check_doi(v, f"outputs.{kind}") for v in values]
        else:
            checked[kind] = [rules.check_line(v, f"outputs.{kind}", 500) for v in values]
    return checked
