"""Calls, proposals, reviews and awards in the ledger: mixed into ``Ledger`` (uses
``_read``/``_write``/``_project``/``_insert_project``).

Every change appends a row (a proposal version, an event, an assignment, a review, an award),
so the history of a proposal is its rows in order. The rules are in ``allocations`` (pure);
here they meet the stored state, inside the transaction that writes the result, so two
managers deciding at once cannot both win (the proposal's last event is re-read under the
write lock: SQLite's BEGIN IMMEDIATE, a row lock on the proposal on PostgreSQL).

Awards, invitations and reports: ``award_records``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.ledger import allocations as rules
from hub.ledger import arithmetic as arith
from hub.ledger.allocation_models import (
    Award,
    Call,
    CallClosure,
    ConflictDeclaration,
    FinalReport,
    LoginPrincipal,
    Proposal,
    ProposalEvent,
    ProposalReview,
    ProposalVersion,
    ReviewAssignment,
)
from hub.ledger.allocations import (
    CallInfo,
    CallSpec,
    ConflictKind,
    ProposalContent,
    ProposalInfo,
    ProposalKind,
    ProposalState,
    Review,
)
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.models import LoginGroups, Project
from hub.ledger.types import Role, check_text, check_user

STARTUP_PERIOD_MONTHS = 12  # a start-up call awards once per user in this many months


def _spec(row: Call) -> CallSpec:
    return CallSpec(
        name=row.name, title=row.title, audiences=tuple(rules.Audience(a) for a in row.audiences.split(",") if a),
        opens=row.opens, closes=row.closes, available_mgs=row.available_mgs, max_request_mgs=row.max_request_mgs,
        period_months=row.period_months, review_required=row.review_required,
        criteria=tuple(c for c in row.criteria.split("\n") if c), reviews_visible=row.reviews_visible,
        startup=row.startup, report_required=row.report_required,
    )  # fmt: skip


def _content(row: ProposalVersion) -> ProposalContent:
    return ProposalContent(
        title=row.title, abstract=row.abstract, field_of_science=row.field_of_science,
        gpu_hours_mgs=row.gpu_hours_mgs, period_months=row.period_months, justification=row.justification,
        team=tuple(p for p in row.team.split("\n") if p), organisation=row.organisation,
        project_name=row.project_name, attachment_sha256=row.attachment_sha256, attachment_name=row.attachment_name,
    )  # fmt: skip


def _scores_text(scores: Mapping[str, int]) -> str:
    return "\n".join(f"{criterion}={score}" for criterion, score in scores.items())


def _scores(text: str) -> dict[str, int]:
    out = {}
    for line in text.split("\n"):
        if "=" in line:
            criterion, _, score = line.rpartition("=")
            out[criterion] = int(score)
    return out


def _unknown_institution(reviewer: str) -> LedgerInputError:
    return LedgerInputError("reviewer", f"{reviewer} has not logged in yet: their institution is unknown, so a "
                                        "conflict of interest cannot be ruled out")  # fmt: skip


class AllocationRecords:
    # --- who users are ---------------------------------------------------------------------------

    def record_login_principal(self, user: str, principal: str, *, now: datetime | None = None) -> bool:
        """Keep the principal ``user`` logged in as (a row when it changes)."""
        check_user(user)
        principal = rules.check_principal(principal, "principal")
        now = self._now(now)
        last = select(LoginPrincipal.principal).where(LoginPrincipal.user == user).order_by(LoginPrincipal.id.desc())
        with self._read() as session:
            if session.scalars(last.limit(1)).first() == principal:
                return False
        with self._write() as session:
            if session.scalars(last.limit(1)).first() == principal:
                return False
            session.add(LoginPrincipal(user=user, principal=principal, seen_at=now))
            return True

    def login_principal(self, user: str) -> str | None:
        with self._read() as session:
            return self._login_principal(session, user)

    def _login_principal(self, session: Session, user: str) -> str | None:
        query = select(LoginPrincipal.principal).where(LoginPrincipal.user == user)
        return session.scalars(query.order_by(LoginPrincipal.id.desc()).limit(1)).first()

    def user_login_groups(self, user: str) -> frozenset[str]:
        """The identity provider's groups at ``user``'s latest login (empty if never seen)."""
        check_user(user)
        query = select(LoginGroups.groups).where(LoginGroups.user == user).order_by(LoginGroups.id.desc()).limit(1)
        with self._read() as session:
            text = session.scalars(query).first()
        return frozenset(g for g in (text or "").split("\n") if g)

    # --- calls -----------------------------------------------------------------------------------

    def create_call(self, spec: CallSpec, *, who: str, now: datetime | None = None) -> CallInfo:
        if not isinstance(spec, CallSpec):
            raise LedgerInputError("call", "must be a CallSpec (allocations.check_call_spec)")
        who, now = check_text(who, "who"), self._now(now)
        with self._write() as session:
            if session.scalars(select(Call.id).where(Call.name == spec.name)).first() is not None:
                raise LedgerInputError("name", f"a call {spec.name} exists already")
            row = Call(
                name=spec.name, title=spec.title, audiences=",".join(a.value for a in spec.audiences),
                opens=spec.opens, closes=spec.closes, available_mgs=spec.available_mgs,
                max_request_mgs=spec.max_request_mgs, period_months=spec.period_months,
                review_required=spec.review_required, criteria="\n".join(spec.criteria),
                reviews_visible=spec.reviews_visible, startup=spec.startup, report_required=spec.report_required,
                created_at=now, created_by=who,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return CallInfo(row.id, spec, None, who)

    def close_call(self, name: str, *, reason: str, who: str, now: datetime | None = None) -> CallInfo:
        """No more submissions from today (proposals submitted already are still decided)."""
        reason, who, now = check_text(reason, "reason"), check_text(who, "who"), self._now(now)
        with self._write() as session:
            row = self._call_row(session, name)
            if session.scalars(select(CallClosure.id).where(CallClosure.call_id == row.id)).first() is not None:
                raise LedgerInputError("call", f"{name} is closed already")
            session.add(CallClosure(call_id=row.id, closed_on=self._today(now), at=now, by=who, reason=reason))
            session.flush()
            return self._call_info(session, row)

    def call(self, name: str) -> CallInfo:
        with self._read() as session:
            return self._call_info(session, self._call_row(session, name))

    def calls(self) -> list[CallInfo]:
        with self._read() as session:
            closures = dict(session.execute(select(CallClosure.call_id, CallClosure.closed_on)).all())
            rows = session.scalars(select(Call).order_by(Call.opens.desc(), Call.name)).all()
            return [CallInfo(row.id, _spec(row), closures.get(row.id), row.created_by) for row in rows]

    def call_awarded_mgs(self, name: str) -> int:
        """The hours awarded so far in the call's round."""
        with self._read() as session:
            return self._awarded_in_call(session, self._call_row(session, name).id)

    def _awarded_in_call(self, session: Session, call_id: int) -> int:
        query = select(func.coalesce(func.sum(Award.amount_mgs), 0)).join(Proposal, Proposal.id == Award.proposal_id)
        return int(session.execute(query.where(Proposal.call_id == call_id)).scalar_one())

    def _call_row(self, session: Session, name: str) -> Call:
        rules.check_call_name(name, "call")
        row = session.scalars(select(Call).where(Call.name == name)).one_or_none()
        if row is None:
            raise NotFound("call", f"unknown call {name!r}")
        return row

    def _call_info(self, session: Session, row: Call) -> CallInfo:
        closed = session.scalars(select(CallClosure.closed_on).where(CallClosure.call_id == row.id)).first()
        return CallInfo(row.id, _spec(row), closed, row.created_by)

    def _today(self, now: datetime) -> date:
        return now.astimezone(self.site_timezone).date()

    # --- proposals -------------------------------------------------------------------------------

    def save_proposal(
        self, *, call: str, applicant: str, applicant_principal: str, fields: Mapping[str, object],
        kind: ProposalKind | str = ProposalKind.NEW, proposal_id: int | None = None,
        attachment: tuple[str, str] | None = None, now: datetime | None = None,
    ) -> ProposalInfo:  # fmt: skip
        """A new draft, or a new version of the applicant's draft (or returned proposal).
        ``attachment``: (sha256, file name) of a PDF stored already (``attachments``); None
        keeps the previous version's."""
        check_user(applicant, "applicant")
        applicant_principal = rules.check_principal(applicant_principal, "applicant")
        kind = ProposalKind(kind) if not isinstance(kind, ProposalKind) else kind
        now = self._now(now)
        with self._write() as session:
            call_row = self._call_row(session, call)
            spec = _spec(call_row)
            content = rules.check_content(fields, call=spec, applicant_principal=applicant_principal, kind=kind,
                                          complete=False)  # fmt: skip
            if proposal_id is None:
                self._check_open(session, call_row, now)
                proposal = Proposal(call_id=call_row.id, kind=kind, applicant=applicant,
                                    applicant_principal=applicant_principal, created_at=now)  # fmt: skip
                session.add(proposal)
                session.flush()
                version = 1
                session.add(ProposalEvent(proposal_id=proposal.id, state=ProposalState.DRAFT, at=now, by=applicant,
                                          reason="draft saved"))  # fmt: skip
            else:
                proposal = self._own_proposal(session, proposal_id, applicant)
                if proposal.call_id != call_row.id:
                    raise LedgerInputError("call", "a proposal stays with the call it was written for")
                state = self._state(session, proposal.id)
                if not state.editable:
                    raise LedgerInputError("proposal", f"#{proposal.id} is {state.value}: only a draft or a "
                                                       "returned proposal can be edited")  # fmt: skip
                last = self._latest_version(session, proposal.id)
                version = last.version + 1
                if attachment is None and last.attachment_sha256:
                    attachment = (last.attachment_sha256, last.attachment_name or "proposal.pdf")
            sha, filename = attachment if attachment else (None, None)
            session.add(ProposalVersion(
                proposal_id=proposal.id, version=version, title=content.title, abstract=content.abstract,
                field_of_science=content.field_of_science, gpu_hours_mgs=content.gpu_hours_mgs,
                period_months=content.period_months, justification=content.justification,
                team="\n".join(content.team), organisation=content.organisation, project_name=content.project_name,
                attachment_sha256=sha, attachment_name=filename, saved_at=now, saved_by=applicant,
            ))  # fmt: skip
            session.flush()
            return self._proposal_info(session, proposal)

    def submit_proposal(self, proposal_id: int, *, applicant: str, now: datetime | None = None) -> ProposalInfo:
        """Check every field of the latest version against the call and the projects, then
        append ``submitted``. A start-up call's proposal is then awarded by the caller
        (``hub.allocations.award``), which checks again."""
        now = self._now(now)
        with self._write() as session:
            proposal = self._own_proposal(session, proposal_id, applicant, lock=True)
            state = self._state(session, proposal.id)
            if not state.editable:
                raise LedgerInputError("proposal", f"#{proposal.id} is {state.value}; only a draft or a returned "
                                                   "proposal can be submitted")  # fmt: skip
            call_row = session.get(Call, proposal.call_id)
            self._check_open(session, call_row, now)
            spec = _spec(call_row)
            version = self._latest_version(session, proposal.id)
            fields = {
                "title": version.title, "abstract": version.abstract, "field_of_science": version.field_of_science,
                "gpu_hours": arith.round_gpu_hours(version.gpu_hours_mgs) if version.gpu_hours_mgs else None,
                "period_months": version.period_months, "justification": version.justification,
                "team": list(version.team.split("\n")) if version.team else [], "organisation": version.organisation,
                "project_name": version.project_name,
            }  # fmt: skip
            content = rules.check_content(fields, call=spec, applicant_principal=proposal.applicant_principal,
                                          kind=proposal.kind, complete=True)  # fmt: skip
            self._check_project_for(session, proposal, content.project_name, spec)
            if spec.startup:
                refusal = self._startup_refusal(session, proposal, now)
                if refusal:
                    raise LedgerInputError("call", refusal)
            session.add(ProposalEvent(proposal_id=proposal.id, state=ProposalState.SUBMITTED, at=now, by=applicant,
                                      reason="submitted"))  # fmt: skip
            session.flush()
            return self._proposal_info(session, proposal)

    def withdraw_proposal(self, proposal_id: int, *, applicant: str, reason: str = "withdrawn by the applicant",
                          now: datetime | None = None) -> ProposalInfo:  # fmt: skip
        reason, now = check_text(reason, "reason"), self._now(now)
        with self._write() as session:
            proposal = self._own_proposal(session, proposal_id, applicant, lock=True)
            state = self._state(session, proposal.id)
            if state.final:
                raise LedgerInputError("proposal", f"#{proposal.id} is {state.value} already")
            session.add(ProposalEvent(proposal_id=proposal.id, state=ProposalState.WITHDRAWN, at=now, by=applicant,
                                      reason=reason))  # fmt: skip
            session.flush()
            return self._proposal_info(session, proposal)

    def proposal(self, proposal_id: int) -> ProposalInfo:
        with self._read() as session:
            return self._proposal_info(session, self._proposal_row(session, proposal_id))

    def proposal_call(self, proposal_id: int) -> CallInfo:
        with self._read() as session:
            row = self._proposal_row(session, proposal_id)
            return self._call_info(session, session.get(Call, row.call_id))

    def proposals(
        self, *, applicant: str | None = None, call: str | None = None, reviewer: str | None = None,
        states: Iterable[ProposalState] | None = None, limit: int = 200, offset: int = 0,
    ) -> list[ProposalInfo]:  # fmt: skip
        """Proposals, newest first, with their latest version and state (in a few queries
        whatever their number: one for the page of proposals, one each for their latest
        versions, events, reviewers and calls)."""
        if not (isinstance(limit, int) and 1 <= limit <= 1000 and isinstance(offset, int) and offset >= 0):
            raise LedgerInputError("limit", "1 to 1000 proposals per page, offset >= 0")
        with self._read() as session:
            query = select(Proposal)
            if applicant is not None:
                query = query.where(Proposal.applicant == applicant)
            if call is not None:
                query = query.where(Proposal.call_id == self._call_row(session, call).id)
            if reviewer is not None:
                assigned = select(ReviewAssignment.proposal_id).where(ReviewAssignment.reviewer == reviewer)
                query = query.where(Proposal.id.in_(assigned))
            if states is not None:
                wanted = [s if isinstance(s, ProposalState) else ProposalState(s) for s in states]
                # Each proposal's latest event, looked up from the proposal (an index probe on
                # (proposal_id, id)), so that the newest page stops after its rows instead of
                # first finding the latest event of every proposal there is.
                current = (
                    select(ProposalEvent.state).where(ProposalEvent.proposal_id == Proposal.id)
                    .order_by(ProposalEvent.id.desc()).limit(1).correlate(Proposal).scalar_subquery()
                )  # fmt: skip
                query = query.where(current.in_(wanted))
            rows = session.scalars(query.order_by(Proposal.id.desc()).limit(limit).offset(offset)).all()
            return self._proposal_infos(session, rows)

    def count_proposals(self, *, call: str | None = None) -> int:
        with self._read() as session:
            query = select(func.count(Proposal.id))
            if call is not None:
                query = query.where(Proposal.call_id == self._call_row(session, call).id)
            return int(session.execute(query).scalar_one())

    # --- review ----------------------------------------------------------------------------------

    def assign_reviewer(
        self, proposal_id: int, reviewer: str, *, who: str, now: datetime | None = None
    ) -> ProposalInfo:
        """Assign ``reviewer`` (the caller checked they hold the reviewer role). Refused when the
        reviewer is conflicted or has never logged in (their institution is unknown)."""
        check_user(reviewer, "reviewer")
        who, now = check_text(who, "who"), self._now(now)
        with self._write() as session:
            proposal = self._proposal_row(session, proposal_id, lock=True)
            state = self._state(session, proposal.id)
            if not state.decidable:
                raise LedgerInputError("proposal", f"#{proposal.id} is {state.value}: reviewers are assigned to "
                                                   "submitted proposals")  # fmt: skip
            conflict = self._conflict(session, proposal, reviewer)
            if conflict is not None:
                raise LedgerInputError("reviewer", f"{reviewer} {rules.CONFLICT_WORDS[conflict]}: conflicted, "
                                                   "cannot review this proposal")  # fmt: skip
            exists = select(ReviewAssignment.id).where(ReviewAssignment.proposal_id == proposal.id,
                                                       ReviewAssignment.reviewer == reviewer)  # fmt: skip
            if session.scalars(exists).first() is not None:
                raise LedgerInputError("reviewer", f"{reviewer} is assigned to #{proposal.id} already")
            session.add(ReviewAssignment(proposal_id=proposal.id, reviewer=reviewer, at=now, by=who))
            if state is ProposalState.SUBMITTED:
                session.add(ProposalEvent(proposal_id=proposal.id, state=ProposalState.IN_REVIEW, at=now, by=who,
                                          reason=f"reviewer {reviewer} assigned"))  # fmt: skip
            session.flush()
            return self._proposal_info(session, proposal)

    def declare_conflict(self, proposal_id: int, reviewer: str, *, reason: str, now: datetime | None = None) -> None:
        """The reviewer's own declaration: from now on they cannot read or score the proposal."""
        check_user(reviewer, "reviewer")
        reason, now = check_text(reason, "reason"), self._now(now)
        with self._write() as session:
            proposal = self._proposal_row(session, proposal_id)
            self._assignment(session, proposal, reviewer)
            exists = select(ConflictDeclaration.id).where(ConflictDeclaration.proposal_id == proposal.id,
                                                          ConflictDeclaration.reviewer == reviewer)  # fmt: skip
            if session.scalars(exists).first() is None:
                session.add(ConflictDeclaration(proposal_id=proposal.id, reviewer=reviewer, at=now, reason=reason))

    def proposal_for_reviewer(self, proposal_id: int, reviewer: str) -> ProposalInfo:
        """The proposal if ``reviewer`` is assigned and not conflicted, else NotFound (a reviewer
        learns nothing of proposals they may not read)."""
        with self._read() as session:
            proposal = self._proposal_row(session, proposal_id)
            self._assignment(session, proposal, reviewer)
            if self._conflict(session, proposal, reviewer) is not None:
                raise NotFound("proposal", f"#{proposal_id}: you declared or have a conflict of interest with it")
            return self._proposal_info(session, proposal)

    def submit_review(self, proposal_id: int, reviewer: str, *, scores: Mapping[str, object], comment: str,
                      now: datetime | None = None) -> Review:  # fmt: skip
        check_user(reviewer, "reviewer")
        comment = rules.check_paragraphs(comment, "comment", rules.MAX_COMMENT, required=False)
        now = self._now(now)
        with self._write() as session:
            proposal = self._proposal_row(session, proposal_id, lock=True)
            self._assignment(session, proposal, reviewer)
            conflict = self._conflict(session, proposal, reviewer)
            if conflict is not None:
                raise LedgerInputError("reviewer", f"you {rules.CONFLICT_WORDS[conflict].replace('is ', 'are ', 1)}: "
                                                   "a conflicted reviewer cannot score")  # fmt: skip
            state = self._state(session, proposal.id)
            if state is not ProposalState.IN_REVIEW:
                raise LedgerInputError("proposal", f"#{proposal.id} is {state.value}: reviews are taken while it is "
                                                   "in review")  # fmt: skip
            criteria = _spec(session.get(Call, proposal.call_id)).criteria
            checked = rules.check_scores(scores, criteria)
            done = select(ProposalReview.id).where(ProposalReview.proposal_id == proposal.id,
                                                   ProposalReview.reviewer == reviewer)  # fmt: skip
            if session.scalars(done).first() is not None:
                raise LedgerInputError("review", f"you reviewed #{proposal.id} already; a review is not changed "
                                                 "once given")  # fmt: skip
            session.add(ProposalReview(proposal_id=proposal.id, reviewer=reviewer, scores=_scores_text(checked),
                                       comment=comment, at=now))  # fmt: skip
            return Review(proposal.id, reviewer, checked, comment, now)

    def reviews(self, proposal_id: int) -> list[Review]:
        with self._read() as session:
            rows = session.scalars(select(ProposalReview).where(ProposalReview.proposal_id == proposal_id)
                                   .order_by(ProposalReview.id)).all()  # fmt: skip
            return [Review(r.proposal_id, r.reviewer, _scores(r.scores), r.comment, r.at) for r in rows]

    def reviews_of(self, proposal_ids: Iterable[int]) -> dict[int, list[Review]]:
        """The reviews of many proposals in one query (the manager's list with its scores)."""
        ids = sorted({int(i) for i in proposal_ids})
        out: dict[int, list[Review]] = {i: [] for i in ids}
        if not ids:
            return out
        query = select(ProposalReview.proposal_id, ProposalReview.reviewer, ProposalReview.scores, ProposalReview.comment,
                       ProposalReview.at)  # fmt: skip
        with self._read() as session:
            rows = session.execute(query.where(ProposalReview.proposal_id.in_(ids)).order_by(ProposalReview.id)).all()
        for proposal_id, reviewer, scores, comment, at in rows:
            out[proposal_id].append(Review(proposal_id, reviewer, _scores(scores), comment, at))
        return out

    def conflicts(self, proposal_id: int, reviewers: Iterable[str]) -> dict[str, ConflictKind | None]:
        """For the manager's page: each candidate reviewer's conflict with the proposal (or None)."""
        with self._read() as session:
            proposal = self._proposal_row(session, proposal_id)
            return {reviewer: self._conflict(session, proposal, reviewer) for reviewer in reviewers}

    def conflicts_of(self, reviewer: str, proposal_ids: Iterable[int]) -> dict[int, ConflictKind | None]:
        """``reviewer``'s conflict with each of many proposals (or None), in one read
        (``conflict_table``): a reviewer's list leaves out those they may not open without a
        round of queries per proposal. Unknown ids are left out; a reviewer who never logged in
        is refused as in ``conflicts``."""
        table = self.conflict_table(proposal_ids, [reviewer])
        if any(reviewer not in conflicts for conflicts in table.values()):
            raise _unknown_institution(reviewer)
        return {proposal_id: conflicts[reviewer] for proposal_id, conflicts in table.items()}

    def conflict_table(
        self, proposal_ids: Iterable[int], reviewers: Iterable[str]
    ) -> dict[int, dict[str, ConflictKind | None]]:
        """Each reviewer's conflict with each proposal (None: none), for the managers' page that
        offers every reviewer for every open proposal: one read, with a query each for the
        proposals, their latest versions, the reviewers' latest login principals and the
        declarations, however many of either. A reviewer who never logged in and has no other
        conflict with a proposal is left out of its dict (their institution is unknown: a
        conflict cannot be ruled out); unknown proposal ids are left out."""
        ids = sorted({int(i) for i in proposal_ids})
        names = sorted({check_user(r, "reviewer") for r in reviewers})
        if not ids:
            return {}
        with self._read() as session:
            rows = session.execute(select(Proposal.id, Proposal.applicant, Proposal.applicant_principal)
                                   .where(Proposal.id.in_(ids))).all()  # fmt: skip
            principals: dict[str, str] = {}
            declared: set[tuple[int, str]] = set()
            if names:
                query = select(LoginPrincipal.user, LoginPrincipal.principal).where(LoginPrincipal.user.in_(names))
                principals = dict(session.execute(query.order_by(LoginPrincipal.id)).all())  # the latest wins
                query = select(ConflictDeclaration.proposal_id, ConflictDeclaration.reviewer)
                declared = set(session.execute(query.where(ConflictDeclaration.proposal_id.in_(ids),
                                                           ConflictDeclaration.reviewer.in_(names))).all())  # fmt: skip
            latest = (
                select(func.max(ProposalVersion.id))
                .where(ProposalVersion.proposal_id.in_(ids))
                .group_by(ProposalVersion.proposal_id)
            )
            versions = {
                v.proposal_id: v
                for v in session.execute(select(*ProposalVersion.__table__.c).where(ProposalVersion.id.in_(latest)))
            }
        out: dict[int, dict[str, ConflictKind | None]] = {}
        for proposal_id, applicant, applicant_principal in rows:
            content = _content(versions[proposal_id])
            conflicts: dict[str, ConflictKind | None] = {}
            for reviewer in names:
                principal = principals.get(reviewer)
                conflict = rules.conflict_reason(
                    reviewer=reviewer, reviewer_principal=principal, applicant=applicant,
                    applicant_principal=applicant_principal, team=content.team, organisation=content.organisation,
                    declared=(proposal_id, reviewer) in declared,
                )  # fmt: skip
                if conflict is not None or principal is not None:
                    conflicts[reviewer] = conflict
            out[proposal_id] = conflicts
        return out

    # --- inside the transactions -----------------------------------------------------------------

    def _proposal_row(self, session: Session, proposal_id: object, *, lock: bool = False) -> Proposal:
        if isinstance(proposal_id, str) and proposal_id.isdigit():
            proposal_id = int(proposal_id)
        if isinstance(proposal_id, bool) or not isinstance(proposal_id, int) or proposal_id < 1:
            raise LedgerInputError("proposal", f"a proposal number, got {proposal_id!r}")
        query = select(Proposal).where(Proposal.id == proposal_id)
        row = session.scalars(query.with_for_update() if lock else query).one_or_none()
        if row is None:
            raise NotFound("proposal", f"no proposal #{proposal_id}")
        return row

    def _own_proposal(self, session: Session, proposal_id: object, applicant: str, *, lock: bool = False) -> Proposal:
        row = self._proposal_row(session, proposal_id, lock=lock)
        if row.applicant != applicant:
            raise NotFound("proposal", f"no proposal #{proposal_id}")
        return row

    def _state(self, session: Session, proposal_id: int) -> ProposalState:
        query = select(ProposalEvent.state).where(ProposalEvent.proposal_id == proposal_id)
        return session.scalars(query.order_by(ProposalEvent.id.desc()).limit(1)).one()

    def _latest_version(self, session: Session, proposal_id: int) -> ProposalVersion:
        query = select(ProposalVersion).where(ProposalVersion.proposal_id == proposal_id)
        return session.scalars(query.order_by(ProposalVersion.version.desc()).limit(1)).one()

    def _check_open(self, session: Session, call_row: Call, now: datetime) -> None:
        info = self._call_info(session, call_row)
        today = self._today(now)
        if not info.is_open(today):
            when = (f"closed on {info.closed_at.isoformat()}" if info.closed_at else
                    f"opens {info.spec.opens.isoformat()}" if today < info.spec.opens else
                    f"closed on {info.spec.closes.isoformat()}")  # fmt: skip
            raise LedgerInputError("call", f"call {info.name} is not open: it {when}")

    def _check_decidable(self, session: Session, proposal: Proposal) -> ProposalState:
        state = self._state(session, proposal.id)
        if not state.decidable:
            raise LedgerInputError("decision", f"#{proposal.id} is {state.value}: "
                                               + ("it was decided already" if state.final else
                                                  "only a submitted proposal is decided"))  # fmt: skip
        return state

    def _check_project_for(self, session: Session, proposal: Proposal, name: str, spec: CallSpec) -> Project | None:
        existing = session.scalars(select(Project).where(Project.name == name)).one_or_none()
        if proposal.kind is ProposalKind.NEW:
            if existing is not None:
                raise LedgerInputError("project_name", f"a project {name} exists already; choose another name")
            return None
        if existing is None:
            raise LedgerInputError("project_name", f"no project {name} to {proposal.kind.value}")
        pi = self._member(session, existing, proposal.applicant)
        if pi is None or pi.role not in (Role.PI, Role.MANAGER):
            raise LedgerInputError("project_name", f"only the PI or a manager of {name} asks for its "
                                                   f"{proposal.kind.value}")  # fmt: skip
        if spec.report_required and proposal.kind is ProposalKind.RENEWAL:
            if session.scalars(select(FinalReport.id).where(FinalReport.project_id == existing.id)).first() is None:
                raise LedgerInputError("report", f"call {spec.name} needs {name}'s report of outcomes before a renewal")
        return existing

    def _startup_refusal(self, session: Session, proposal: Proposal, now: datetime) -> str | None:
        """Why the applicant cannot have another start-up award now (one per user per period)."""
        since = rules.add_months(self._today(now), -STARTUP_PERIOD_MONTHS)
        earlier = session.execute(
            select(Award.at, Call.name).join(Proposal, Proposal.id == Award.proposal_id)
            .join(Call, Call.id == Proposal.call_id)
            .where(Proposal.applicant == proposal.applicant, Call.startup.is_(True), Proposal.id != proposal.id)
            .order_by(Award.at.desc()).limit(1)
        ).first()  # fmt: skip
        if earlier is not None and earlier.at.astimezone(self.site_timezone).date() > since:
            again = rules.add_months(earlier.at.astimezone(self.site_timezone).date(), STARTUP_PERIOD_MONTHS)
            return (f"{proposal.applicant} had a start-up award (call {earlier.name}) on "
                    f"{earlier.at.date().isoformat()}: one per user every {STARTUP_PERIOD_MONTHS} months; the next "
                    f"from {again.isoformat()}")  # fmt: skip
        return None

    def _assignment(self, session: Session, proposal: Proposal, reviewer: str) -> None:
        query = select(ReviewAssignment.id).where(ReviewAssignment.proposal_id == proposal.id,
                                                  ReviewAssignment.reviewer == reviewer)  # fmt: skip
        if session.scalars(query).first() is None:
            raise NotFound("proposal", f"#{proposal.id} is not assigned to you")

    def _conflict(self, session: Session, proposal: Proposal, reviewer: str) -> ConflictKind | None:
        declared = select(ConflictDeclaration.id).where(ConflictDeclaration.proposal_id == proposal.id,
                                                        ConflictDeclaration.reviewer == reviewer)  # fmt: skip
        principal = self._login_principal(session, reviewer)
        content = _content(self._latest_version(session, proposal.id))
        conflict = rules.conflict_reason(
            reviewer=reviewer, reviewer_principal=principal, applicant=proposal.applicant,
            applicant_principal=proposal.applicant_principal, team=content.team, organisation=content.organisation,
            declared=session.scalars(declared).first() is not None,
        )  # fmt: skip
        if conflict is None and principal is None:
            raise _unknown_institution(reviewer)
        return conflict

    def _proposal_info(self, session: Session, proposal: Proposal) -> ProposalInfo:
        return self._proposal_infos(session, [proposal])[0]

    def _proposal_infos(self, session: Session, rows: list[Proposal]) -> list[ProposalInfo]:
        """The proposals' latest versions, events and reviewers in one query each. Rows of
        columns, not ORM objects: a page of 200 has about 2,000 of them, and building
        objects (identity map, instance state) for rows only read would cost most of the time."""
        if not rows:
            return []
        ids = [row.id for row in rows]
        latest = (
            select(func.max(ProposalVersion.id))
            .where(ProposalVersion.proposal_id.in_(ids))
            .group_by(ProposalVersion.proposal_id)
        )
        versions = {
            v.proposal_id: v
            for v in session.execute(select(*ProposalVersion.__table__.c).where(ProposalVersion.id.in_(latest)))
        }
        events: dict[int, list] = {i: [] for i in ids}
        query = select(ProposalEvent.proposal_id, ProposalEvent.state, ProposalEvent.at, ProposalEvent.by,
                       ProposalEvent.reason, ProposalEvent.awarded_mgs)  # fmt: skip
        for proposal_id, *event in session.execute(
            query.where(ProposalEvent.proposal_id.in_(ids)).order_by(ProposalEvent.id)
        ):
            events[proposal_id].append(rules.ProposalEvent(*event))
        reviewers: dict[int, list[str]] = {i: [] for i in ids}
        query = select(ReviewAssignment.proposal_id, ReviewAssignment.reviewer)
        for proposal_id, reviewer in session.execute(
            query.where(ReviewAssignment.proposal_id.in_(ids)).order_by(ReviewAssignment.id)
        ):
            reviewers[proposal_id].append(reviewer)
        calls = dict(session.execute(select(Call.id, Call.name).where(Call.id.in_({r.call_id for r in rows}))).all())
        return [
            ProposalInfo(
                id=row.id,
                call=calls[row.call_id],
                kind=row.kind,
                applicant=row.applicant,
                applicant_principal=row.applicant_principal,
                state=events[row.id][-1].state,
                content=_content(versions[row.id]),
                version=versions[row.id].version,
                events=tuple(events[row.id]),
                reviewers=tuple(reviewers[row.id]),
            )  # fmt: skip
            for row in rows
        ]
