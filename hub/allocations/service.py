"""Who may do what with calls and proposals, and what they see: one place for the API, the pages
and the command line.

Roles (docs/allocations.md): every logged-in user with a cluster account applies; a **call
manager** is a hub admin or a member of ``c.HPCHubAllocations.call_manager_groups``; a
**reviewer** is a member of ``reviewer_groups`` assigned to a proposal. Groups are the identity
provider's at the user's latest login (the ledger records them), so the command line and the
hub see the same.

What a person sees of a proposal (``view_of``): the applicant and its team everything they wrote
and its history, and the reviews without reviewers' names if the call shows reviews; a manager
everything; an assigned reviewer without a conflict the proposal and their own review. Anyone
else: 404, as if it did not exist.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from hub.allocations.settings import HPCHubAllocations
from hub.ledger import Ledger
from hub.ledger import allocations as rules
from hub.ledger import arithmetic as arith
from hub.ledger.allocations import CallInfo, ProposalInfo, ProposalState, Review
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.types import parse_date


class Forbidden(Exception):
    """The user is known but may not do this (the message says which role it needs)."""


@dataclass(frozen=True)
class Actor:
    user: str
    principal: str | None
    groups: frozenset[str]
    admin: bool


class View(enum.Enum):
    APPLICANT = "applicant"  # the applicant and the team
    MANAGER = "manager"
    REVIEWER = "reviewer"


def is_manager(actor: Actor, settings: HPCHubAllocations) -> bool:
    return actor.admin or bool(actor.groups & set(settings.call_manager_groups))


def is_reviewer(actor: Actor, settings: HPCHubAllocations) -> bool:
    return bool(actor.groups & set(settings.reviewer_groups))


def require_manager(actor: Actor, settings: HPCHubAllocations) -> None:
    if not is_manager(actor, settings):
        groups = ", ".join(settings.call_manager_groups) or "(none configured)"
        raise Forbidden(f"managing calls needs a hub admin or a member of {groups}")


def require_decider(actor: Actor, info: ProposalInfo, settings: HPCHubAllocations) -> None:
    """A call manager who is neither the applicant nor on the team decides a proposal."""
    require_manager(actor, settings)
    if info.applicant == actor.user or (actor.principal and actor.principal.lower() in info.content.team):
        raise Forbidden(f"you are the applicant or on the team of proposal #{info.id}: another call manager decides it")


def check_assignable(ledger: Ledger, reviewer: str, settings: HPCHubAllocations) -> None:
    """``reviewer`` holds the reviewer role (their groups at their latest login)."""
    groups = ledger.user_login_groups(reviewer)
    if not groups & set(settings.reviewer_groups):
        raise LedgerInputError("reviewer", f"{reviewer} is not a reviewer (not in {', '.join(settings.reviewer_groups)} "
                                           "at their latest login)")  # fmt: skip


def view_of(
    ledger: Ledger, actor: Actor, proposal_id: object, settings: HPCHubAllocations
) -> tuple[ProposalInfo, View]:
    """The proposal and how ``actor`` sees it, or NotFound."""
    if is_manager(actor, settings):
        return ledger.proposal(_proposal_id(proposal_id)), View.MANAGER
    try:
        info = ledger.proposal(_proposal_id(proposal_id))
    except NotFound:
        raise NotFound("proposal", f"no proposal #{proposal_id}") from None
    if info.applicant == actor.user or (actor.principal and actor.principal.lower() in info.content.team):
        if info.state is not ProposalState.DRAFT or info.applicant == actor.user:
            return info, View.APPLICANT
    if actor.user in info.reviewers:
        return ledger.proposal_for_reviewer(info.id, actor.user), View.REVIEWER
    raise NotFound("proposal", f"no proposal #{proposal_id}")


def _proposal_id(value: object) -> int:
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise LedgerInputError("proposal", f"a proposal number, got {value!r}")


# --- input from forms and JSON -------------------------------------------------------------------


def _flag(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, "", "0", "false", "off", "no"):
        return False
    if value in ("1", "true", "on", "yes"):
        return True
    raise LedgerInputError(field, f"true or false, got {value!r}")


def call_spec(fields: Mapping[str, object]) -> rules.CallSpec:
    """A call from a form or a JSON body (dates YYYY-MM-DD, flags true/false or on)."""
    return rules.check_call_spec(
        name=fields.get("name"), title=fields.get("title"), audiences=fields.get("audience") or fields.get("audiences"),
        opens=parse_date(fields.get("opens") or None, "opens"), closes=parse_date(fields.get("closes") or None, "closes"),
        gpu_hours=fields.get("gpu_hours"), max_request=fields.get("max_request"),
        period_months=fields.get("period_months"), review_required=_flag(fields.get("review_required"), "review_required"),
        criteria=fields.get("criteria"), reviews_visible=_flag(fields.get("reviews_visible"), "reviews_visible"),
        startup=_flag(fields.get("startup"), "startup"), report_required=_flag(fields.get("report_required"), "report_required"),
    )  # fmt: skip


# --- what people see -----------------------------------------------------------------------------


def call_json(info: CallInfo, awarded_mgs: int, today: date) -> dict:
    spec = info.spec
    return {
        "name": spec.name, "title": spec.title, "audiences": [a.value for a in spec.audiences],
        "opens": spec.opens.isoformat(), "closes": spec.closes.isoformat(), "open": info.is_open(today),
        "closed_on": info.closed_at.isoformat() if info.closed_at else None,
        "gpu_hours": arith.gpu_hours_json(spec.available_mgs), "gpu_hours_awarded": arith.gpu_hours_json(awarded_mgs),
        "max_request_gpu_hours": arith.gpu_hours_json(spec.max_request_mgs), "period_months": spec.period_months,
        "review_required": spec.review_required, "criteria": list(spec.criteria),
        "reviews_visible": spec.reviews_visible, "startup": spec.startup, "report_required": spec.report_required,
    }  # fmt: skip


def proposal_json(info: ProposalInfo, view: View, *, reviews: list[Review] | None = None,
                  call: CallInfo | None = None) -> dict:  # fmt: skip
    content = info.content
    awarded = next((e.awarded_mgs for e in reversed(info.events) if e.awarded_mgs is not None), None)
    out = {
        "id": info.id, "call": info.call, "kind": info.kind.value, "state": info.state.value,
        "applicant": info.applicant, "title": content.title, "abstract": content.abstract,
        "field_of_science": content.field_of_science,
        "field_of_science_name": rules.FIELDS_OF_SCIENCE.get(content.field_of_science),
        "gpu_hours": arith.gpu_hours_json(content.gpu_hours_mgs), "period_months": content.period_months,
        "justification": content.justification, "team": list(content.team), "organisation": content.organisation,
        "project_name": content.project_name, "attachment": content.attachment_name, "version": info.version,
        "awarded_gpu_hours": None if awarded is None else arith.gpu_hours_json(awarded),
        "history": [
            {"state": e.state.value, "at": e.at.isoformat(), "by": _by(e.by, info, view), "reason": _reason(e, view)}
            for e in info.events
        ],
    }  # fmt: skip
    if view is View.MANAGER:
        out["reviewers"] = list(info.reviewers)
    if reviews is not None:
        show_names = view is View.MANAGER
        out["reviews"] = [
            {"reviewer": r.reviewer if show_names else f"reviewer {n}", "scores": dict(r.scores), "comment": r.comment,
             "at": r.at.isoformat()}
            for n, r in enumerate(reviews, 1)
        ]  # fmt: skip
        if call is not None:
            out["scores"] = [
                {"criterion": s.criterion, "count": s.count, "mean": s.mean, "spread": s.spread}
                for s in rules.summarise_scores(reviews, call.spec.criteria)
            ]
    return out


def _by(who: str, info: ProposalInfo, view: View) -> str:
    """Applicants see who acted only when it was themselves; a decision reads as the call's."""
    if view is View.MANAGER or who == info.applicant:
        return who
    return "the call's managers"


def _reason(event, view: View) -> str:
    """An assignment names its reviewer only to managers (reviews reach applicants anonymised)."""
    if event.state is ProposalState.IN_REVIEW and view is not View.MANAGER:
        return "a reviewer was assigned"
    return event.reason


def reviews_for(ledger: Ledger, info: ProposalInfo, view: View, actor: Actor, call: CallInfo) -> list[Review] | None:
    """The reviews ``view`` may read: all (managers), own (reviewers), anonymised if the call
    shows them (applicants, once the proposal is decided or returned), else none."""
    if view is View.MANAGER:
        return ledger.reviews(info.id)
    if view is View.REVIEWER:
        return [r for r in ledger.reviews(info.id) if r.reviewer == actor.user]
    if call.spec.reviews_visible and (info.state.final or info.state is ProposalState.RETURNED):
        return ledger.reviews(info.id)
    return None
