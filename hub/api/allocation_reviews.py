"""Review and decision of proposals, and the allocation side of a project, in the REST API.

- ``POST /proposals/{id}/reviewers`` ``{"reviewer": U}``: a call manager assigns a reviewer (one
  who holds the reviewer role and has no conflict of interest: 400 naming the rule otherwise).
- ``POST /proposals/{id}/conflict`` ``{"reason": "..."}``: an assigned reviewer declares a
  conflict; from then on they can neither read nor score the proposal.
- ``GET|POST /proposals/{id}/reviews``: the reviews the caller may read; an assigned reviewer
  without a conflict scores each of the call's criteria once.
- ``POST /proposals/{id}/decision`` ``{"decision": "award|reject|return", "gpu_hours": H,
  "message": "..."}``: a call manager (not the applicant nor on the team) decides; an award makes
  the project, its Slurm account, the PI's association, the grant, the space and the team's
  invitations all or nothing (:func:`hub.allocations.award.award`).
- ``GET|POST /projects/{p}/reports``: a project's outcome reports (its PI or a manager file them).
- ``GET /projects/{p}/allocation``: its awards, invitations and reports, for the project page.
- ``POST /invitations/{token}`` ``{"accept": true|false}``: the invited principal answers the link.
"""

from __future__ import annotations

from jupyterhub.scopes import needs_scope
from tornado import web

from hub.allocations import award as awarding
from hub.allocations import notices, service
from hub.allocations.service import View
from hub.api import views
from hub.api.allocations import AllocationAPIHandler, proposal_number
from hub.api.handlers import _NAME, API_PREFIX, ProjectAPIHandler
from hub.api.scopes import APPLY_SCOPE, MANAGE_CALLS_SCOPE, READ_SCOPE, REVIEW_SCOPE
from hub.ledger import Ledger
from hub.ledger import arithmetic as arith
from hub.ledger.allocations import Decision
from hub.ledger.award_records import REPORT_OUTPUTS, AwardRecord, InvitationInfo, ReportRecord
from hub.ledger.errors import LedgerInputError
from hub.ledger.types import Role, check_project_name

DECISION_EXAMPLE = '{"decision": "award", "gpu_hours": 40, "message": "well argued"}'
REVIEW_EXAMPLE = '{"scores": {"technical readiness": 4, ...}, "comment": "..."}'
REPORT_EXAMPLE = '{"narrative": "...", "outputs": {"publications": ["10.1234/abc"]}}'


def parse_decision(body: object) -> tuple[Decision, object, str]:
    body = views.json_object(body, ("decision", "gpu_hours", "message"), DECISION_EXAMPLE)
    try:
        decision = Decision(body.get("decision"))
    except ValueError:
        raise LedgerInputError("decision", f"one of {', '.join(d.value for d in Decision)}, "
                                           f"got {str(body.get('decision'))[:30]!r}") from None  # fmt: skip
    if decision is not Decision.AWARD and body.get("gpu_hours") is not None:
        raise LedgerInputError("gpu_hours", f"only an award gives GPU-hours, not {decision.value}")
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise LedgerInputError("message", "must be text")
    return decision, body.get("gpu_hours"), message or ""


def award_json(record: AwardRecord) -> dict:
    return {
        "proposal": record.proposal_id, "call": record.call, "kind": record.kind.value,
        "gpu_hours": arith.gpu_hours_json(record.amount_mgs), "period_start": record.period_start.isoformat(),
        "period_end": record.period_end.isoformat(), "at": record.at.isoformat(), "by": record.by,
        "message": record.message,
    }  # fmt: skip


def invitation_json(invitation: InvitationInfo) -> dict:
    return {"principal": invitation.principal, "role": invitation.role.value, "state": invitation.state,
            "user": invitation.user}  # fmt: skip


def report_json(report: ReportRecord) -> dict:
    return {"narrative": report.narrative, "outputs": {kind: list(report.outputs.get(kind, ())) for kind in
            REPORT_OUTPUTS}, "at": report.at.isoformat(), "by": report.by}  # fmt: skip


class ReviewersHandler(AllocationAPIHandler):
    """``POST /proposals/{id}/reviewers`` ``{"reviewer": "rev1"}``."""

    @needs_scope(MANAGE_CALLS_SCOPE)
    async def post(self, proposal_id: str) -> None:
        body = self.body(lambda body: views.json_object(body, ("reviewer",), '{"reviewer": "rev1"}'))
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        settings = self.allocation_settings
        await self.run(service.require_manager, actor, settings)
        info, _view = await self.view(ledger, actor, proposal_id)
        reviewer = body.get("reviewer")
        if not isinstance(reviewer, str) or not reviewer:
            raise web.HTTPError(400, "reviewer: a user name is required")
        await self.run(service.check_assignable, ledger, reviewer, settings)
        info = await self.run(ledger.assign_reviewer, info.id, reviewer, who=self.caller().who)
        self.log.info("%s assigned %s to review proposal #%s", self.caller().who, reviewer, info.id)
        await self.run(notices.queue, ledger, notices.assigned(info, reviewer, settings.portal_url))
        self.answer_proposal(info, View.MANAGER)


class ConflictHandler(AllocationAPIHandler):
    """``POST /proposals/{id}/conflict`` ``{"reason": "..."}``: the assigned reviewer's own declaration."""

    @needs_scope(REVIEW_SCOPE)
    async def post(self, proposal_id: str) -> None:
        body = self.body(lambda body: views.json_object({} if body is None else body, ("reason",)))
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        reason = body.get("reason") or "declared by the reviewer"
        await self.run(ledger.declare_conflict, self.parsed(proposal_number, proposal_id), actor.user,
                       reason=reason)  # fmt: skip
        self.log.info("%s declared a conflict of interest with proposal #%s", actor.user, proposal_id)
        self.send_json(
            {"proposal": proposal_number(proposal_id), "reviewer": actor.user, "conflict": "declared", "reason": reason}
        )


class ReviewsHandler(AllocationAPIHandler):
    """``GET`` the reviews the caller may read (with each criterion's count, mean and spread for
    managers); ``POST`` ``{"scores": {criterion: 1-5}, "comment": "..."}`` an assigned reviewer's review."""

    @needs_scope(APPLY_SCOPE, REVIEW_SCOPE, MANAGE_CALLS_SCOPE)
    async def get(self, proposal_id: str) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        info, view = await self.view(ledger, actor, proposal_id)
        call = await self.run(ledger.proposal_call, info.id)
        reviews = await self.run(service.reviews_for, ledger, info, view, actor, call)
        shown = service.proposal_json(info, view, reviews=reviews or [], call=call if view is View.MANAGER else None)
        self.send_json({"proposal": info.id, "state": info.state.value, "criteria": list(call.spec.criteria),
                        "reviews": shown["reviews"] if reviews is not None else [],
                        "scores": shown.get("scores", [])})  # fmt: skip

    @needs_scope(REVIEW_SCOPE)
    async def post(self, proposal_id: str) -> None:
        body = self.body(lambda body: views.json_object(body, ("scores", "comment"), REVIEW_EXAMPLE))
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        number = self.parsed(proposal_number, proposal_id)
        review = await self.run(ledger.submit_review, number, actor.user, scores=body.get("scores"),
                                comment=body.get("comment") or "")  # fmt: skip
        self.log.info("%s reviewed proposal #%s", actor.user, number)
        self.send_json({"proposal": number, "reviewer": review.reviewer, "scores": dict(review.scores),
                        "comment": review.comment, "at": review.at.isoformat()}, 201)  # fmt: skip


class DecisionHandler(AllocationAPIHandler):
    """``POST /proposals/{id}/decision``: award (the project is made, all or nothing), reject or return."""

    @needs_scope(MANAGE_CALLS_SCOPE)
    async def post(self, proposal_id: str) -> None:
        decision, gpu_hours, message = self.body(parse_decision)
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        settings = self.allocation_settings
        await self.run(service.require_manager, actor, settings)
        info, _view = await self.view(ledger, actor, proposal_id)
        await self.run(service.require_decider, actor, info, settings)
        who = self.caller().who
        if decision is not Decision.AWARD:
            info = await self.run(ledger.decide, info.id, decision, who=who, message=message)
            self.log.info("%s decided proposal #%s: %s", who, info.id, decision.value)
            await self.run(notices.queue, ledger, notices.decided(info, settings.portal_url))
            self.send_json({"proposal": service.proposal_json(info, View.MANAGER), "award": None})
            return
        context = self.award_context(ledger)
        result = await self.awarding(lambda: awarding.award(ledger, info.id, context, who=who, message=message,
                                                            gpu_hours=gpu_hours))  # fmt: skip
        plan = result.plan
        self.log.info("%s awarded proposal #%s: %s GPU-h to %s (account %s, PI %s, %d invited)", who, info.id,
                      arith.format_gpu_hours(plan.amount_mgs), plan.project, plan.account, plan.pi,
                      len(result.invitations))  # fmt: skip
        info = await self.run(ledger.proposal, info.id)
        self.send_json({
            "proposal": service.proposal_json(info, View.MANAGER),
            "award": {
                "project": plan.project, "account": plan.account, "pi": plan.pi, "new_project": plan.new_project,
                "gpu_hours": arith.gpu_hours_json(plan.amount_mgs), "period_start": plan.period_start.isoformat(),
                "period_end": plan.period_end.isoformat(), "invited": sorted(result.invitations),
            },
        })  # fmt: skip


class InvitationHandler(AllocationAPIHandler):
    """``POST /invitations/{token}`` ``{"accept": true|false}``: the invited principal answers the
    link of their invitation (a login accepts open invitations anyway); another login: 404."""

    @needs_scope(APPLY_SCOPE)
    async def post(self, token: str) -> None:
        body = self.body(lambda body: views.json_object(body, ("accept",), '{"accept": true}'))
        accept = body.get("accept")
        if not isinstance(accept, bool):
            raise web.HTTPError(400, "accept: true or false")
        ledger = await self.ledger()
        actor = await self.applicant(ledger) if accept else await self.actor(ledger)
        if not actor.principal:
            raise web.HTTPError(404, "invitation: unknown invitation, or it is for another login")
        joined = await self.run(ledger.answer_invitation, token, user=actor.user, principal=actor.principal,
                                accept=accept)  # fmt: skip
        if joined is not None:
            self.log.info("%s (%s) joined %s as %s by the invitation's link", actor.user, actor.principal, *joined)
        project, role = joined if joined is not None else (None, None)
        self.send_json({"accepted": accept, "project": project, "role": role})


class ProjectAllocationHandler(ProjectAPIHandler):
    """A project's allocation: who sees the project sees its awards and reports; its invitations
    to those who see every member."""

    async def project_roles(self, ledger: Ledger, project: str):
        self.checked(check_project_name, project, "project")
        caller = self.caller()
        _usage, role, access = await self.project_usage(ledger, project, caller)
        return role, access

    @needs_scope(READ_SCOPE)
    async def get(self, project: str) -> None:
        ledger = await self.ledger()
        _role, access = await self.project_roles(ledger, project)
        info = await self.run(ledger.project, project)
        awards = await self.run(ledger.awards, project)
        invitations = await self.run(ledger.invitations, project) if access.read_all_members else []
        reports = await self.run(ledger.reports, project)
        self.send_json({
            "project": project, "state": info.state.value,
            "period_start": info.period_start.isoformat() if info.period_start else None,
            "period_end": info.period_end.isoformat() if info.period_end else None,
            "awards": [award_json(a) for a in awards], "invitations": [invitation_json(i) for i in invitations],
            "reports": [report_json(r) for r in reports],
        })  # fmt: skip


class ReportsHandler(ProjectAllocationHandler):
    """``GET /projects/{p}/reports``; ``POST`` ``{"narrative": ..., "outputs": {"publications": [DOI],
    "datasets": [...], "models": [...], "software": [...]}}`` by the project's PI or a manager (or an admin)."""

    @needs_scope(READ_SCOPE)
    async def get(self, project: str) -> None:
        ledger = await self.ledger()
        await self.project_roles(ledger, project)
        self.send_json({"project": project, "reports": [report_json(r) for r in await self.run(ledger.reports,
                                                                                                 project)]})  # fmt: skip

    @needs_scope(APPLY_SCOPE)
    async def post(self, project: str) -> None:
        ledger = await self.ledger()
        role, _access = await self.project_roles(ledger, project)
        caller = self.caller()
        if not (caller.is_admin or role in (Role.PI, Role.MANAGER)):
            raise web.HTTPError(403, f"only the PI or a manager of {project} files its reports")
        body = self.body(lambda body: views.json_object(body, ("narrative", "outputs"), REPORT_EXAMPLE))
        report = await self.run(ledger.submit_report, project, who=caller.who, narrative=body.get("narrative"),
                                outputs=body.get("outputs") or {})  # fmt: skip
        self.log.info("%s filed a report of %s", caller.who, project)
        self.send_json({"project": project, **report_json(report)}, 201)


ROUTES = [
    (rf"{API_PREFIX}/proposals/{_NAME}/reviewers", ReviewersHandler),
    (rf"{API_PREFIX}/proposals/{_NAME}/conflict", ConflictHandler),
    (rf"{API_PREFIX}/proposals/{_NAME}/reviews", ReviewsHandler),
    (rf"{API_PREFIX}/proposals/{_NAME}/decision", DecisionHandler),
    (rf"{API_PREFIX}/invitations/{_NAME}", InvitationHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/reports", ReportsHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/allocation", ProjectAllocationHandler),
]
