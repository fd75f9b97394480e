"""What the allocation pages show, built from the ledger's frozen values (pure: no database, no
framework; the handlers read the ledger and pass its answers here, the unit tests call these).

Figures are GPU-hours as ``hpchub usage`` prints them (``format_gpu_hours``); every row is a
plain dict the templates render with autoescape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from hub.ledger import allocations as rules
from hub.ledger import arithmetic as arith
from hub.ledger.allocations import CallInfo, ConflictKind, ProposalInfo, ProposalState, Review

# The proposal form's fields, in the order the form shows them.
PROPOSAL_FIELDS = ("title", "abstract", "field_of_science", "gpu_hours", "period_months", "justification", "team",
                   "organisation", "project_name")  # fmt: skip
CALL_FIELDS = ("name", "title", "audience", "opens", "closes", "gpu_hours", "max_request", "period_months",
               "criteria", "review_required", "reviews_visible", "startup", "report_required")  # fmt: skip
STATE_WORDS = {
    ProposalState.DRAFT: "draft (not submitted)",
    ProposalState.SUBMITTED: "submitted",
    ProposalState.IN_REVIEW: "in review",
    ProposalState.AWARDED: "awarded",
    ProposalState.REJECTED: "rejected",
    ProposalState.RETURNED: "returned for changes",
    ProposalState.WITHDRAWN: "withdrawn",
}


def hours(mgs: int | None) -> str:
    return "-" if mgs is None else arith.format_gpu_hours(mgs)


def when(moment: object) -> str:
    """``2027-01-11 09:00 UTC`` for a time, the ISO date for a date, ``-`` for None."""
    if isinstance(moment, datetime):
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(moment, date):
        return moment.isoformat()
    return "-"


def fields_of_science() -> list[tuple[str, str]]:
    """The OECD list as (code, "code name") for the select."""
    return [(code, f"{code} {name}") for code, name in rules.FIELDS_OF_SCIENCE.items()]


def call_row(info: CallInfo, awarded_mgs: int, today: date) -> dict:
    spec = info.spec
    left = max(spec.available_mgs - awarded_mgs, 0)
    return {
        "name": spec.name, "title": spec.title, "audiences": ", ".join(a.value for a in spec.audiences),
        "opens": spec.opens.isoformat(), "closes": spec.closes.isoformat(), "open": info.is_open(today),
        "state": "open" if info.is_open(today) else ("closed" if info.closed_at or today > spec.closes else "not open yet"),
        "largest": hours(spec.max_request_mgs), "available": hours(spec.available_mgs), "awarded": hours(awarded_mgs),
        "left": hours(left), "left_value": arith.gpu_hours_json(left), "period_months": spec.period_months,
        "startup": spec.startup, "review_required": spec.review_required,
        "kind": "start-up: awarded at once" if spec.startup else ("reviewed" if spec.review_required else "decided by the managers"),
    }  # fmt: skip


def awarded_mgs(info: ProposalInfo) -> int | None:
    return next((e.awarded_mgs for e in reversed(info.events) if e.awarded_mgs is not None), None)


def proposal_row(info: ProposalInfo) -> dict:
    return {
        "id": info.id, "title": info.content.title, "call": info.call, "kind": info.kind.value,
        "state": info.state.value, "state_words": STATE_WORDS[info.state], "applicant": info.applicant,
        "project": info.content.project_name or "-", "requested": hours(info.content.gpu_hours_mgs),
        "awarded": hours(awarded_mgs(info)), "updated": when(info.events[-1].at if info.events else None),
        "reviewers": ", ".join(info.reviewers) or "-",
    }  # fmt: skip


def form_values(info: ProposalInfo | None, typed: Mapping[str, str] | None = None, *,
                project_name: str = "") -> dict[str, str]:  # fmt: skip
    """The form's values: what was typed (a refused post keeps it), else the saved version, else empty
    (``project_name`` prefilled for a renewal)."""
    if typed is not None:
        return {key: str(typed.get(key, "")) for key in PROPOSAL_FIELDS}
    if info is None:
        return {**dict.fromkeys(PROPOSAL_FIELDS, ""), "project_name": project_name}
    content = info.content
    return {
        "title": content.title, "abstract": content.abstract, "field_of_science": content.field_of_science,
        "gpu_hours": arith.format_gpu_hours(content.gpu_hours_mgs) if content.gpu_hours_mgs else "",
        "period_months": str(content.period_months), "justification": content.justification,
        "team": "\n".join(content.team), "organisation": content.organisation, "project_name": content.project_name,
    }  # fmt: skip


def history_rows(info: ProposalInfo, show_names: bool) -> list[dict]:
    """The proposal's events; an applicant sees who acted only when it was themselves, and no
    reviewer's name (an assignment reads "a reviewer was assigned")."""

    def reason(e) -> str:
        return "a reviewer was assigned" if not show_names and e.state is ProposalState.IN_REVIEW else e.reason

    return [
        {"state": STATE_WORDS[e.state], "at": when(e.at), "reason": reason(e),
         "by": e.by if show_names or e.by == info.applicant else "the call's managers",
         "awarded": hours(e.awarded_mgs) if e.awarded_mgs is not None else None}
        for e in info.events
    ]  # fmt: skip


def decision_message(info: ProposalInfo) -> str | None:
    """The managers' words of the latest decision (award, rejection, return), if any."""
    decided = (ProposalState.AWARDED, ProposalState.REJECTED, ProposalState.RETURNED)
    return next((e.reason for e in reversed(info.events) if e.state in decided), None)


def review_rows(reviews: Sequence[Review], criteria: Sequence[str], show_names: bool) -> list[dict]:
    """Each review: the reviewer's name for managers, else "reviewer N"."""
    return [
        {"reviewer": r.reviewer if show_names else f"reviewer {n}", "comment": r.comment, "at": when(r.at),
         "scores": [(c, r.scores.get(c, "-")) for c in criteria]}
        for n, r in enumerate(reviews, 1)
    ]  # fmt: skip


@dataclass(frozen=True)
class ScoreLine:
    """Across the criteria: the mean of every score and the largest spread of one criterion."""

    count: int
    mean: str
    spread: str


def score_line(reviews: Iterable[Review], criteria: Sequence[str]) -> ScoreLine:
    reviews = list(reviews)
    values = [r.scores[c] for r in reviews for c in criteria if c in r.scores]
    spreads = [s.spread for s in rules.summarise_scores(reviews, criteria) if s.spread is not None]
    if not values:
        return ScoreLine(len(reviews), "-", "-")
    return ScoreLine(len(reviews), f"{sum(values) / len(values):.2f}", str(max(spreads)))


def score_rows(reviews: Sequence[Review], criteria: Sequence[str]) -> list[dict]:
    return [
        {"criterion": s.criterion, "count": s.count, "mean": "-" if s.mean is None else f"{s.mean:.2f}",
         "spread": "-" if s.spread is None else str(s.spread)}
        for s in rules.summarise_scores(reviews, criteria)
    ]  # fmt: skip


def reviewer_candidates(
    login_groups: Mapping[str, tuple[set[str], object]], reviewer_groups: Iterable[str]
) -> list[str]:
    """Users whose latest login's groups include a reviewer group, sorted."""
    wanted = set(reviewer_groups)
    return sorted(user for user, (groups, _seen) in login_groups.items() if groups & wanted)


UNKNOWN_CONFLICT = "unknown: has not logged in since logins record institutions"


def candidate_rows(candidates: Sequence[str], conflicts: Mapping[str, ConflictKind | None | str],
                   assigned: Iterable[str]) -> list[dict]:  # fmt: skip
    """Each candidate with their conflict in words (None: none), and whether assigned already.
    A conflict given as text is one the ledger could not decide (said as is)."""
    assigned = set(assigned)
    rows = []
    for user in candidates:
        conflict = conflicts.get(user)
        words = rules.CONFLICT_WORDS[conflict] if isinstance(conflict, ConflictKind) else conflict
        rows.append({"user": user, "conflict": words, "assigned": user in assigned,
                     "label": f"{user}: " + ("assigned" if user in assigned else "")
                     + ("; " if user in assigned and words else "")
                     + (f"conflicted ({words})" if words else "" if user in assigned else "no conflict known")})  # fmt: skip
    return rows


def typed_fields(arguments: Mapping[str, Sequence[bytes]], names: Iterable[str]) -> dict[str, str]:
    """A posted form's fields as text (the last value of each; bytes decoded as UTF-8, bad bytes replaced)."""
    out = {}
    for name in names:
        values = arguments.get(name) or []
        out[name] = values[-1].decode("utf-8", "replace") if values else ""
    return out
