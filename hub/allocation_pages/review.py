"""The reviewer's pages.

- ``GET /hub/hpchub/reviews``: the proposals assigned to the reviewer (a conflicted one listed
  without its title, and not openable).
- ``GET|POST /hub/hpchub/reviews/{id}``: the proposal, a score from 1 to 5 for each of the call's
  criteria and a comment, and "Declare a conflict of interest". An unassigned or conflicted
  reviewer gets 404, as for a proposal that does not exist (``Ledger.proposal_for_reviewer``).
"""

from __future__ import annotations

from tornado import web

from hub.allocation_pages import views
from hub.allocation_pages.base import PAGES_PREFIX, AllocationPageHandler
from hub.allocations.service import is_reviewer
from hub.api.scopes import REVIEW_SCOPE
from hub.ledger import Ledger
from hub.ledger import allocations as rules
from hub.ledger.errors import LedgerInputError

_ID = r"([0-9]{1,11})"


def reviews_page(ledger: Ledger, reviewer: str) -> list[dict]:
    """The reviewer's assignments, newest first, each with its state and whether it is theirs to score
    (their conflicts and reviews in one read each, however many)."""
    infos = ledger.proposals(reviewer=reviewer, limit=500)
    ids = [info.id for info in infos]
    try:
        conflicts: dict = ledger.conflicts_of(reviewer, ids)
    except LedgerInputError as exc:  # never logged in: no institution, so no proposal opens
        conflicts = dict.fromkeys(ids, exc.rule)
    reviews = ledger.reviews_of(ids)
    rows = []
    for info in infos:
        conflict = conflicts.get(info.id)
        done = conflict is None and any(r.reviewer == reviewer for r in reviews.get(info.id, []))
        row = views.proposal_row(info)
        if conflict is not None:
            row["title"] = "(not shown: conflict of interest)"
        rows.append({**row, "conflicted": conflict is not None, "reviewed": done,
                     "open": conflict is None and info.state is rules.ProposalState.IN_REVIEW and not done})  # fmt: skip
    return rows


class ReviewsHandler(AllocationPageHandler):
    scope = REVIEW_SCOPE

    @web.authenticated
    async def get(self) -> None:
        ledger = await self.ledger()
        actor = await self.actor(ledger)
        rows = await self.run(reviews_page, ledger, actor.user)
        html = await self.render_template("hpchub_reviews.html", rows=rows, declared=self.get_argument("declared", ""),
                                          reviewer=is_reviewer(actor, self.allocation_settings))  # fmt: skip
        self.finish(html)


class ReviewHandler(AllocationPageHandler):
    scope = REVIEW_SCOPE

    async def _page(self, proposal_id: str, *, error: LedgerInputError | None = None,
                    typed: dict | None = None) -> None:  # fmt: skip
        ledger = await self.ledger()
        user = self.current_user.name
        info = await self.run(ledger.proposal_for_reviewer, proposal_id, user)
        call = await self.run(ledger.call, info.call)
        mine = [r for r in await self.run(ledger.reviews, info.id) if r.reviewer == user]
        if error is not None:
            self.set_status(400)
        html = await self.render_template(
            "hpchub_review.html", info=info, row=views.proposal_row(info), call=call, criteria=call.spec.criteria,
            fos=rules.FIELDS_OF_SCIENCE.get(info.content.field_of_science, ""),
            mine=views.review_rows(mine, call.spec.criteria, True) if mine else None, error=error,
            error_field=error.field if error else None, typed=typed or {}, scores=range(rules.SCORE_MIN, rules.SCORE_MAX + 1),
        )  # fmt: skip
        self.finish(html)

    @web.authenticated
    async def get(self, proposal_id: str) -> None:
        await self._page(proposal_id)

    @web.authenticated
    async def post(self, proposal_id: str) -> None:
        ledger = await self.ledger()
        user = self.current_user.name
        info = await self.run(ledger.proposal_for_reviewer, proposal_id, user)
        action = self.get_body_argument("action", "")
        if action == "conflict":
            reason = self.get_body_argument("reason", "").strip() or "declared by the reviewer"
            await self.run(ledger.declare_conflict, info.id, user, reason=reason)
            self.redirect(f"{self.hub.base_url}hpchub/reviews?declared={info.id}")
            return
        if action != "score":
            raise web.HTTPError(400, f"action: score or conflict, got {action!r}")
        call = await self.run(ledger.call, info.call)
        scores = {c: self.get_body_argument(f"score.{c}", "") for c in call.spec.criteria}
        comment = self.get_body_argument("comment", "")
        try:
            await self.attempt(ledger.submit_review, info.id, user, scores=scores, comment=comment)
        except LedgerInputError as exc:
            await self._page(proposal_id, error=exc, typed={"comment": comment, **scores})
            return
        self.redirect(f"{self.hub.base_url}hpchub/reviews/{info.id}")


ROUTES = [
    (rf"{PAGES_PREFIX}/reviews/?", ReviewsHandler),
    (rf"{PAGES_PREFIX}/reviews/{_ID}/?", ReviewHandler),
]
