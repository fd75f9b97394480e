"""Allocation calls and proposals in the REST API: ``/calls`` and ``/proposals`` under
``/hub/api/hpchub/v1/`` (reviews, decisions and project reports: :mod:`hub.api.allocation_reviews`).

Every handler checks the JupyterHub scope first (``custom:hpchub:apply``, ``review`` or
``manage-calls``, :mod:`hub.api.scopes`), then the rule of :mod:`hub.allocations.service` (who is
a call manager, who may see a proposal and how): anyone who may not see a proposal gets the
same 404 as for one that does not exist. Errors are JSON ``{"status": N, "message": "field:
rule"}``; nothing is stored unless every field passes.

The caller's principal and identity-provider groups are the ones the ledger recorded at their
latest login, so the API, the pages and the command line judge roles alike.
"""

from __future__ import annotations

import pwd
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from jupyterhub.scopes import has_scope, needs_scope
from tornado import web

from hub.allocations import attachments, service
from hub.allocations import award as awarding
from hub.allocations.service import Actor, Forbidden, View
from hub.allocations.settings import HPCHubAllocations
from hub.api import views
from hub.api.handlers import _NAME, API_PREFIX, LedgerAPIHandler
from hub.api.scopes import APPLY_SCOPE, MANAGE_CALLS_SCOPE, REVIEW_SCOPE
from hub.ledger import Ledger
from hub.ledger import arithmetic as arith
from hub.ledger.allocations import ProposalInfo, ProposalKind, ProposalState, check_call_name
from hub.ledger.errors import LedgerInputError, NotFound

T = TypeVar("T")
CALL_KEYS = (
    "name", "title", "audience", "audiences", "opens", "closes", "gpu_hours", "max_request", "period_months",
    "review_required", "criteria", "reviews_visible", "startup", "report_required",
)  # fmt: skip
CALL_EXAMPLE = (
    '{"name": "2027-academic", "title": "Academic call 2027", "audience": ["academic"], "opens": "2027-01-01", '
    '"closes": "2027-03-31", "gpu_hours": 5000, "max_request": 500, "period_months": 12, "review_required": true}'
)
CONTENT_KEYS = (
    "title", "abstract", "field_of_science", "gpu_hours", "period_months", "justification", "team", "organisation",
    "project_name",
)  # fmt: skip
PROPOSAL_EXAMPLE = '{"call": "2027-academic", "title": "...", "gpu_hours": 40, "project_name": "fiona-lab"}'
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def actor_of(ledger: Ledger, user: str, admin: bool) -> Actor:
    """The hub user as the allocation rules see them (principal and groups of their latest login)."""
    try:
        return Actor(user, ledger.login_principal(user), ledger.user_login_groups(user), admin)
    except LedgerInputError:  # a hub name the ledger cannot hold: no groups, no principal
        return Actor(user, None, frozenset(), admin)


def content_fields(info: ProposalInfo) -> dict[str, object]:
    """The latest version's fields as ``save_proposal`` takes them (to save it again unchanged)."""
    content = info.content
    return {
        "title": content.title, "abstract": content.abstract, "field_of_science": content.field_of_science,
        "gpu_hours": str(arith.round_gpu_hours(content.gpu_hours_mgs)) if content.gpu_hours_mgs else None,
        "period_months": content.period_months, "justification": content.justification, "team": list(content.team),
        "organisation": content.organisation, "project_name": content.project_name,
    }  # fmt: skip


def proposal_number(value: str) -> int:
    """A proposal's number from the path (400 naming ``proposal`` otherwise)."""
    if not (isinstance(value, str) and value.isdigit() and len(value) < 12 and int(value) > 0):
        raise LedgerInputError("proposal", f"a proposal number, got {str(value)[:20]!r}")
    return int(value)


def parse_page(limit: str | None, offset: str | None) -> tuple[int, int]:
    def number(value: str | None, field: str, default: int, low: int, high: int) -> int:
        if value is None or value == "":
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise LedgerInputError(field, f"a whole number from {low} to {high}, got {value[:20]!r}")
        return int(value)

    return number(limit, "limit", DEFAULT_PAGE, 1, MAX_PAGE), number(offset, "offset", 0, 0, 10**9)


def parse_states(value: str | None) -> list[ProposalState] | None:
    if not value:
        return None
    states = []
    for word in value.split(","):
        try:
            states.append(ProposalState(word.strip()))
        except ValueError:
            raise LedgerInputError("state", f"one or more of {', '.join(s.value for s in ProposalState)}, "
                                            f"got {word[:30]!r}") from None  # fmt: skip
    return states


class AllocationAPIHandler(LedgerAPIHandler):
    """Shared by the allocation endpoints: the site's settings, the caller as an ``Actor``,
    service refusals as HTTP errors."""

    @property
    def allocation_settings(self) -> HPCHubAllocations:
        return HPCHubAllocations(config=self.settings["config"])

    @staticmethod
    def parsed(function: Callable[..., T], *args: Any) -> T:
        """``function(*args)``, a bad input a 400 naming the field."""
        try:
            return function(*args)
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None

    def holds(self, scope: str) -> bool:
        """Whether the request's credentials hold ``scope`` (for answers that depend on the query)."""
        return bool(has_scope(scope, getattr(self, "parsed_scopes", {}), db=self.db))

    def require_scope(self, scope: str, what: str) -> None:
        if not self.holds(scope):
            raise web.HTTPError(403, f"{what} needs the scope {scope}")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await super().run(function, *args, **kwargs)
        except Forbidden as exc:
            raise web.HTTPError(403, str(exc)) from None

    async def actor(self, ledger: Ledger) -> Actor:
        caller = self.caller()
        if caller.name is None:
            raise web.HTTPError(403, "allocations answer hub users: use a user's login or token")
        return await self.run(actor_of, ledger, caller.name, caller.is_admin)

    async def applicant(self, ledger: Ledger) -> Actor:
        """The caller as an applicant: a Unix account on the cluster (a Slurm association is not needed:
        an award makes the first) and a recorded login principal."""
        actor = await self.actor(ledger)
        try:
            pwd.getpwnam(actor.user)
        except KeyError:
            raise web.HTTPError(403, f"applying needs a cluster account; {actor.user} does not exist yet") from None
        if not actor.principal:
            raise web.HTTPError(403, f"no login of {actor.user} is recorded yet: log out and in again to apply")
        return actor

    async def view(self, ledger: Ledger, actor: Actor, proposal_id: str) -> tuple[ProposalInfo, View]:
        return await self.run(service.view_of, ledger, actor, proposal_id, self.allocation_settings)

    def answer_proposal(self, info: ProposalInfo, view: View, status: int = 200) -> None:
        self.send_json(service.proposal_json(info, view), status)

    def award_context(self, ledger: Ledger) -> awarding.AwardContext:
        return awarding.context_from_config(self.settings["config"], log=self.log, ledger=ledger)

    async def awarding(self, step: Callable[[], Any]) -> Any:
        """An award (or a start-up submission that awards): its failures as HTTP errors, the failed
        step named (409 when a rule stopped it, 502 when Slurm or the system failed)."""
        try:
            return await step()
        except awarding.AwardFailed as exc:
            raise web.HTTPError(409 if exc.refused else 502, str(exc)) from None
        except NotFound as exc:
            raise web.HTTPError(404, exc.message) from None
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None

    @staticmethod
    def today(ledger: Ledger, now: datetime | None = None):
        return (now or ledger.clock()).astimezone(ledger.site_timezone).date()


# --- calls -----------------------------------------------------------------------------------------


def _calls_json(ledger: Ledger, manager: bool) -> list[dict]:
    today = AllocationAPIHandler.today(ledger)
    calls = [info for info in ledger.calls() if manager or info.is_open(today)]
    return [service.call_json(info, ledger.call_awarded_mgs(info.name), today) for info in calls]


def _call_json(ledger: Ledger, name: str, manager: bool) -> dict:
    info = ledger.call(name)
    out = service.call_json(info, ledger.call_awarded_mgs(name), AllocationAPIHandler.today(ledger))
    if manager:
        out["proposals"] = ledger.count_proposals(call=name)
    return out


class CallListHandler(AllocationAPIHandler):
    """``GET /calls``: the open calls (a call manager: every call); ``POST /calls``: a new call."""

    @needs_scope(APPLY_SCOPE, MANAGE_CALLS_SCOPE)
    async def get(self) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        manager = service.is_manager(actor, self.allocation_settings) and self.holds(MANAGE_CALLS_SCOPE)
        self.send_json({"calls": await self.run(_calls_json, ledger, manager)})

    @needs_scope(MANAGE_CALLS_SCOPE)
    async def post(self) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        await self.run(service.require_manager, actor, self.allocation_settings)
        spec = self.body(lambda body: service.call_spec(views.json_object(body, CALL_KEYS, CALL_EXAMPLE)))
        info = await self.run(ledger.create_call, spec, who=self.caller().who)
        self.log.info("%s created call %s", self.caller().who, info.name)
        self.send_json(await self.run(_call_json, ledger, info.name, True), 201)


class CallHandler(AllocationAPIHandler):
    """``GET /calls/{name}``: one call."""

    @needs_scope(APPLY_SCOPE, MANAGE_CALLS_SCOPE)
    async def get(self, name: str) -> None:
        self.checked(check_call_name, name, "call")
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        manager = service.is_manager(actor, self.allocation_settings) and self.holds(MANAGE_CALLS_SCOPE)
        self.send_json(await self.run(_call_json, ledger, name, manager))


class CallCloseHandler(AllocationAPIHandler):
    """``POST /calls/{name}/close`` ``{"reason": "..."}``: no more submissions from today."""

    @needs_scope(MANAGE_CALLS_SCOPE)
    async def post(self, name: str) -> None:
        self.checked(check_call_name, name, "call")
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        await self.run(service.require_manager, actor, self.allocation_settings)
        body = self.body(lambda body: views.json_object(body, ("reason",), '{"reason": "the round is full"}'))
        await self.run(ledger.close_call, name, reason=body.get("reason"), who=self.caller().who)
        self.send_json(await self.run(_call_json, ledger, name, True))


# --- proposals -------------------------------------------------------------------------------------


def parse_proposal_body(body: object, *, new: bool) -> tuple[str | None, ProposalKind, dict[str, object]]:
    allowed = (*CONTENT_KEYS, "call", "kind") if new else CONTENT_KEYS
    body = views.json_object(body, allowed, PROPOSAL_EXAMPLE)
    kind = body.get("kind") or ProposalKind.NEW.value
    try:
        kind = ProposalKind(kind)
    except ValueError:
        raise LedgerInputError("kind", f"one of {', '.join(k.value for k in ProposalKind)}, got {kind!r}") from None
    if new:
        check_call_name(body.get("call"), "call")
    return body.get("call"), kind, {key: body[key] for key in CONTENT_KEYS if key in body}


def _assigned(ledger: Ledger, reviewer: str, limit: int, offset: int) -> list[ProposalInfo]:
    """The reviewer's assigned proposals they may read (a conflicted one is left out; the
    conflicts of the whole page in one read)."""
    proposals = ledger.proposals(reviewer=reviewer, limit=limit, offset=offset)
    conflicts = ledger.conflicts_of(reviewer, (info.id for info in proposals))
    return [info for info in proposals if conflicts.get(info.id) is None]


class ProposalListHandler(AllocationAPIHandler):
    """``GET /proposals``: the caller's own; ``?assigned=1`` a reviewer's assigned ones;
    ``?call=C&state=S,S`` (call managers) every proposal; ``?limit=&offset=`` pages (newest first).
    ``POST /proposals``: a new draft."""

    @needs_scope(APPLY_SCOPE, REVIEW_SCOPE, MANAGE_CALLS_SCOPE)
    async def get(self) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        settings = self.allocation_settings
        limit, offset = self.parsed(parse_page, self.get_argument("limit", None), self.get_argument("offset", None))
        call = self.get_argument("call", None)
        states = self.parsed(parse_states, self.get_argument("state", None))
        if self.get_argument("assigned", "") in ("1", "true", "yes"):
            self.require_scope(REVIEW_SCOPE, "the proposals assigned to you")
            found = await self.run(_assigned, ledger, actor.user, limit, offset)
            view = View.REVIEWER
        elif call is not None or states is not None or self.get_argument("all", "") in ("1", "true", "yes"):
            self.require_scope(MANAGE_CALLS_SCOPE, "every proposal of a call")
            await self.run(service.require_manager, actor, settings)
            if call is not None:
                self.checked(check_call_name, call, "call")
            found = await self.run(ledger.proposals, call=call, states=states, limit=limit, offset=offset)
            view = View.MANAGER
        else:
            self.require_scope(APPLY_SCOPE, "your proposals")
            found = await self.run(ledger.proposals, applicant=actor.user, limit=limit, offset=offset)
            view = View.APPLICANT
        self.send_json({
            "proposals": [service.proposal_json(info, view) for info in found], "limit": limit, "offset": offset,
            "next_offset": offset + limit if len(found) == limit else None,
        })  # fmt: skip

    @needs_scope(APPLY_SCOPE)
    async def post(self) -> None:
        call, kind, fields = self.body(lambda body: parse_proposal_body(body, new=True))
        ledger = await self.ledger()
        actor = await self.applicant(ledger)
        info = await self.run(ledger.save_proposal, call=call, applicant=actor.user,
                              applicant_principal=actor.principal, fields=fields, kind=kind)  # fmt: skip
        self.log.info("%s saved proposal #%s (draft) to call %s", actor.user, info.id, call)
        self.answer_proposal(info, View.APPLICANT, 201)


class ProposalHandler(AllocationAPIHandler):
    """``GET /proposals/{id}`` as the caller may see it; ``PUT`` the applicant saves a new version
    of a draft or returned proposal (the body: every field, as for a new draft)."""

    @needs_scope(APPLY_SCOPE, REVIEW_SCOPE, MANAGE_CALLS_SCOPE)
    async def get(self, proposal_id: str) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        info, view = await self.view(ledger, actor, proposal_id)
        self.answer_proposal(info, view)

    @needs_scope(APPLY_SCOPE)
    async def put(self, proposal_id: str) -> None:
        _call, _kind, fields = self.body(lambda body: parse_proposal_body(body, new=False))
        ledger = await self.ledger()
        actor = await self.applicant(ledger)
        info = await self.own(ledger, actor, proposal_id)
        info = await self.run(ledger.save_proposal, call=info.call, applicant=actor.user,
                              applicant_principal=actor.principal, fields=fields, kind=info.kind,
                              proposal_id=info.id)  # fmt: skip
        self.answer_proposal(info, View.APPLICANT)

    async def own(self, ledger: Ledger, actor: Actor, proposal_id: str) -> ProposalInfo:
        """The caller's own proposal (a team member: 403; anyone else: 404)."""
        info, _view = await self.view(ledger, actor, proposal_id)
        if info.applicant != actor.user:
            raise web.HTTPError(403, f"proposal: only its applicant changes proposal #{info.id}")
        return info


class ProposalSubmitHandler(ProposalHandler):
    """``POST /proposals/{id}/submit``: every field checked against the call; a start-up call's
    proposal is awarded at once (its project exists when the answer comes)."""

    @needs_scope(APPLY_SCOPE)
    async def post(self, proposal_id: str) -> None:
        ledger = await self.ledger()
        actor = await self.applicant(ledger)
        info = await self.own(ledger, actor, proposal_id)
        context = self.award_context(ledger)
        info = await self.awarding(lambda: awarding.submit(ledger, info.id, context, applicant=actor.user))
        self.log.info("%s submitted proposal #%s (%s)", actor.user, info.id, info.state.value)
        self.answer_proposal(info, View.APPLICANT)


class ProposalWithdrawHandler(ProposalHandler):
    """``POST /proposals/{id}/withdraw`` ``{"reason": "..."}`` (optional): before a decision."""

    @needs_scope(APPLY_SCOPE)
    async def post(self, proposal_id: str) -> None:
        body = self.body(lambda body: views.json_object({} if body is None else body, ("reason",)))
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        info = await self.own(ledger, actor, proposal_id)
        reason = body.get("reason") or "withdrawn by the applicant"
        info = await self.run(ledger.withdraw_proposal, info.id, applicant=actor.user, reason=reason)
        self.answer_proposal(info, View.APPLICANT)


class AttachmentHandler(ProposalHandler):
    """``POST /proposals/{id}/attachment?filename=NAME`` (the body: the PDF's bytes, at most 10 MB,
    starting with ``%PDF-``) saves a new version with it; ``GET`` downloads it (``Content-Disposition:
    attachment``, ``X-Content-Type-Options: nosniff``) for the people who may see the proposal."""

    @needs_scope(APPLY_SCOPE, REVIEW_SCOPE, MANAGE_CALLS_SCOPE)
    async def get(self, proposal_id: str) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        info, _view = await self.view(ledger, actor, proposal_id)
        if not info.content.attachment_sha256:
            raise web.HTTPError(404, f"attachment: proposal #{info.id} has none")
        data = await self.run(attachments.read, self.allocation_settings.attachment_dir, info.content.attachment_sha256)
        name = attachments.safe_filename(info.content.attachment_name)
        self.set_header("Content-Type", "application/pdf")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, no-store")
        self.finish(data)

    @needs_scope(APPLY_SCOPE)
    async def post(self, proposal_id: str) -> None:
        data = self.request.body or b""
        self.parsed(attachments.check_pdf, data)
        name = attachments.safe_filename(self.get_argument("filename", "proposal.pdf"))
        ledger = await self.ledger()
        actor = await self.applicant(ledger)
        info = await self.own(ledger, actor, proposal_id)
        if not info.state.editable:
            raise web.HTTPError(400, f"attachment: proposal #{info.id} is {info.state.value}: only a draft or a "
                                     "returned proposal takes an attachment")  # fmt: skip
        digest = await self.run(attachments.store, self.allocation_settings.attachment_dir, data)
        info = await self.run(ledger.save_proposal, call=info.call, applicant=actor.user,
                              applicant_principal=actor.principal, fields=content_fields(info), kind=info.kind,
                              proposal_id=info.id, attachment=(digest, name))  # fmt: skip
        self.answer_proposal(info, View.APPLICANT)


_ID = _NAME  # checked by the handler: a bad number is a 400 naming ``proposal``
ROUTES = [
    (rf"{API_PREFIX}/calls", CallListHandler),
    (rf"{API_PREFIX}/calls/{_NAME}", CallHandler),
    (rf"{API_PREFIX}/calls/{_NAME}/close", CallCloseHandler),
    (rf"{API_PREFIX}/proposals", ProposalListHandler),
    (rf"{API_PREFIX}/proposals/{_ID}", ProposalHandler),
    (rf"{API_PREFIX}/proposals/{_ID}/submit", ProposalSubmitHandler),
    (rf"{API_PREFIX}/proposals/{_ID}/withdraw", ProposalWithdrawHandler),
    (rf"{API_PREFIX}/proposals/{_ID}/attachment", AttachmentHandler),
]
