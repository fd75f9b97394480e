"""The call managers' pages (hub admins and the members of ``call_manager_groups``; anyone else 403).

- ``GET|POST /hub/hpchub/calls``: the calls with the hours awarded and available; a form that
  creates a call (``service.call_spec`` checks it as the API does).
- ``GET|POST /hub/hpchub/calls/{name}[?page=N]``: the call's proposals (drafts are the
  applicants' own) with their state, the mean and spread of their scores and their reviewers;
  for each proposal awaiting a decision: assign a reviewer (the candidates are the users whose
  latest login's groups include a reviewer group, each with their conflict with it, and the
  ledger refuses a conflicted one with the reason) and decide: award (hours and a message; the
  award makes the project, its Slurm account and grant, ``award.award``), reject or return.
"""

from __future__ import annotations

from urllib.parse import quote

from tornado import web

from hub.allocation_pages import views
from hub.allocation_pages.base import PAGES_PREFIX, AllocationPageHandler
from hub.allocations import award, notices, service
from hub.api.scopes import MANAGE_CALLS_SCOPE
from hub.ledger import Ledger
from hub.ledger.allocations import Audience, Decision, ProposalState
from hub.ledger.errors import LedgerInputError

PAGE_SIZE = 50
SHOWN_STATES = [s for s in ProposalState if s is not ProposalState.DRAFT]
FLAGS = ("review_required", "reviews_visible", "startup", "report_required")


def calls_page(ledger: Ledger, today) -> list[dict]:
    return [views.call_row(info, ledger.call_awarded_mgs(info.name), today) for info in ledger.calls()]


def call_page(ledger: Ledger, name: str, reviewer_groups: list[str], today, page: int) -> dict:
    call = ledger.call(name)
    criteria = call.spec.criteria
    infos = ledger.proposals(call=name, states=SHOWN_STATES, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE)
    more = len(infos) > PAGE_SIZE
    infos = infos[:PAGE_SIZE]
    candidates = views.reviewer_candidates(ledger.login_groups(), reviewer_groups)
    decidable = [info.id for info in infos if info.state.decidable]
    table = ledger.conflict_table(decidable, candidates) if decidable and candidates else {}
    reviews_of = ledger.reviews_of(info.id for info in infos)
    rows, open_ones = [], []
    for info in infos:
        reviews = reviews_of[info.id]
        line = views.score_line(reviews, criteria)
        row = {**views.proposal_row(info), "reviews": line.count, "mean": line.mean, "spread": line.spread}
        rows.append(row)
        if info.state.decidable:
            known = table.get(info.id, {})
            conflicts = {user: known[user] if user in known else views.UNKNOWN_CONFLICT for user in candidates}
            open_ones.append({**row, "candidates": views.candidate_rows(candidates, conflicts, info.reviewers),
                              "scores": views.score_rows(reviews, criteria),
                              "review_required": call.spec.review_required})  # fmt: skip
    return {"call": call, "call_row": views.call_row(call, ledger.call_awarded_mgs(name), today), "rows": rows,
            "open": open_ones, "page": page, "more": more}  # fmt: skip


class CallsHandler(AllocationPageHandler):
    scope = MANAGE_CALLS_SCOPE

    async def _page(self, *, error: LedgerInputError | None = None, typed: dict | None = None) -> None:
        ledger = await self.ledger()
        await self.run(service.require_manager, await self.actor(ledger), self.allocation_settings)
        rows = await self.run(calls_page, ledger, self.today(ledger))
        if error is not None:
            self.set_status(400)
        html = await self.render_template(
            "hpchub_calls.html", rows=rows, error=error, error_field=error.field if error else None,
            typed=typed or {"audience": ["academic"], "period_months": "12", "review_required": "on"},
            audiences=[a.value for a in Audience],
        )  # fmt: skip
        self.finish(html)

    @web.authenticated
    async def get(self) -> None:
        await self._page()

    @web.authenticated
    async def post(self) -> None:
        ledger = await self.ledger()
        await self.run(service.require_manager, await self.actor(ledger), self.allocation_settings)
        typed = views.typed_fields(self.request.body_arguments, [f for f in views.CALL_FIELDS if f != "audience"])
        typed["audience"] = self.get_body_arguments("audience")
        fields = {**typed, **{flag: bool(typed.get(flag)) for flag in FLAGS}}
        try:
            spec = service.call_spec(fields)
            await self.attempt(ledger.create_call, spec, who=self.who())
        except LedgerInputError as exc:
            await self._page(error=exc, typed=typed)
            return
        self.redirect(f"{self.hub.base_url}hpchub/calls/{spec.name}?done=" + quote(f"Call {spec.name} created."))


class CallHandler(AllocationPageHandler):
    scope = MANAGE_CALLS_SCOPE

    async def _page(self, name: str, *, error: LedgerInputError | None = None, error_for: int | None = None,
                    typed: dict | None = None) -> None:  # fmt: skip
        ledger = await self.ledger()
        await self.run(service.require_manager, await self.actor(ledger), self.allocation_settings)
        page = self.get_argument("page", "0")
        if not page.isdigit() or len(page) > 6:
            raise web.HTTPError(400, f"page: a page number from 0, got {page!r}")
        data = await self.run(call_page, ledger, name, list(self.allocation_settings.reviewer_groups),
                              self.today(ledger), int(page))  # fmt: skip
        if error is not None:
            self.set_status(400)
        in_section = error_for in {p["id"] for p in data["open"]}  # else (decided meanwhile) above the list
        html = await self.render_template(
            "hpchub_call.html", **data, error=error, error_field=error.field if error else None, error_for=error_for,
            error_above=error if error is not None and not in_section else None, typed=typed or {},
            done=self.get_argument("done", ""),
        )  # fmt: skip
        self.finish(html)

    @web.authenticated
    async def get(self, name: str) -> None:
        await self._page(name)

    @web.authenticated
    async def post(self, name: str) -> None:
        ledger = await self.ledger()
        settings = self.allocation_settings
        actor = await self.actor(ledger)
        await self.run(service.require_manager, actor, settings)
        call = await self.run(ledger.call, name)
        proposal_id = self.get_body_argument("proposal", "")
        info, _view = await self.run(service.view_of, ledger, actor, proposal_id, settings)
        if info.call != call.name:
            raise web.HTTPError(404, f"proposal: no proposal #{proposal_id} in call {call.name}")
        action = self.get_body_argument("action", "")
        typed = views.typed_fields(self.request.body_arguments, ("reviewer", "decision", "gpu_hours", "message"))
        try:
            if action == "assign":
                reviewer = typed["reviewer"]
                await self.attempt(service.check_assignable, ledger, reviewer, settings)
                assigned = await self.attempt(ledger.assign_reviewer, info.id, reviewer, who=self.who())
                await self.run(notices.queue, ledger, notices.assigned(assigned, reviewer, settings.portal_url))
                done = f"{reviewer} reviews #{info.id}."
            elif action == "decide":
                await self.run(service.require_decider, actor, info, settings)
                done = await self._decide(ledger, info.id, typed)
            else:
                raise web.HTTPError(400, f"action: assign or decide, got {action!r}")
        except LedgerInputError as exc:
            await self._page(name, error=exc, error_for=info.id, typed=typed)
            return
        except award.AwardFailed as exc:
            await self._page(name, error=LedgerInputError("award", f"{exc.step} failed: {exc.message}; nothing was "
                                                                   "created, try again"), error_for=info.id, typed=typed)  # fmt: skip
            return
        self.redirect(f"{self.hub.base_url}hpchub/calls/{call.name}?done=" + quote(done))

    async def _decide(self, ledger: Ledger, proposal_id: int, typed: dict) -> str:
        try:
            decision = Decision(typed["decision"])
        except ValueError:
            raise LedgerInputError("decision", "award, reject or return") from None
        if decision is Decision.AWARD:
            result = await award.award(ledger, proposal_id, self.award_context(ledger), who=self.who(),
                                       message=typed["message"], gpu_hours=typed["gpu_hours"] or None)  # fmt: skip
            return (f"#{proposal_id} awarded {views.hours(result.plan.amount_mgs)} GPU-h: project "
                    f"{result.project.name} until {result.plan.period_end.isoformat()}.")  # fmt: skip
        decided = await self.attempt(ledger.decide, proposal_id, decision, who=self.who(), message=typed["message"])
        await self.run(notices.queue, ledger, notices.decided(decided, self.allocation_settings.portal_url))
        return f"#{proposal_id} {decision.state.value}."


ROUTES = [
    (rf"{PAGES_PREFIX}/calls/?", CallsHandler),
    (rf"{PAGES_PREFIX}/calls/([^/]+)/?", CallHandler),
]
