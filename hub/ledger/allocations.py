"""Allocation calls, proposals and reviews: the vocabulary and the rules (pure).

A **call** is a round of GPU-hours with an audience, open and close dates, a largest request and
an allocation period. A **proposal** asks a call for hours; its content is saved as appended
versions (a draft may be saved many times, nothing is edited in place) and its life is a list
of appended events, each with who, when and why. The current state is the last event's:

====================  ==========================================  =====================
from                  to                                          who
====================  ==========================================  =====================
(new)                 ``draft``                                   the applicant
``draft``             ``submitted``                               the applicant
``returned``          ``submitted``                               the applicant
``submitted``         ``in_review`` (first reviewer assigned)     a call manager
``submitted``,        ``awarded`` | ``rejected`` | ``returned``   a call manager (a call
``in_review``                                                     without review: at once)
any before decision   ``withdrawn``                               the applicant
====================  ==========================================  =====================

``awarded``, ``rejected`` and ``withdrawn`` are final: a second decision is refused.

A reviewer with a **conflict of interest** (on the team, the same institution domain as the
applicant or a team member, the same organisation, or their own declaration) can neither read
nor score the proposal (``conflict_reason``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError
from hub.ledger.types import check_project_name

MAX_TITLE = 200
MAX_ABSTRACT = 5000
MAX_JUSTIFICATION = 20000
MAX_ORGANISATION = 200
MAX_TEAM = 50
MAX_CRITERIA = 10
MAX_COMMENT = 10000
MAX_MESSAGE = 2000
MAX_PERIOD_MONTHS = 60
MAX_CALL_GPU_HOURS = 100_000_000  # a round larger than this is a typing error
SCORE_MIN, SCORE_MAX = 1, 5
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
DEFAULT_CRITERIA = ("scientific or business merit", "technical readiness", "need for GPUs")

CALL_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
PRINCIPAL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,63}")
CRITERION_RE = re.compile(r"[^\x00-\x1f\x7f,;=]{2,80}")
DOI_RE = re.compile(r"10\.\d{4,9}/[^\s\x00-\x1f]{1,300}")

# OECD Fields of Science and Technology (FOS 2007), the 2-digit level.
FIELDS_OF_SCIENCE: Mapping[str, str] = {
    "1.1": "Mathematics", "1.2": "Computer and information sciences", "1.3": "Physical sciences",
    "1.4": "Chemical sciences", "1.5": "Earth and related environmental sciences", "1.6": "Biological sciences",
    "1.7": "Other natural sciences",
    "2.1": "Civil engineering", "2.2": "Electrical engineering, electronic engineering, information engineering",
    "2.3": "Mechanical engineering", "2.4": "Chemical engineering", "2.5": "Materials engineering",
    "2.6": "Medical engineering", "2.7": "Environmental engineering", "2.8": "Environmental biotechnology",
    "2.9": "Industrial biotechnology", "2.10": "Nano-technology", "2.11": "Other engineering and technologies",
    "3.1": "Basic medicine", "3.2": "Clinical medicine", "3.3": "Health sciences", "3.4": "Medical biotechnology",
    "3.5": "Other medical sciences",
    "4.1": "Agriculture, forestry, and fisheries", "4.2": "Animal and dairy science", "4.3": "Veterinary science",
    "4.4": "Agricultural biotechnology", "4.5": "Other agricultural sciences",
    "5.1": "Psychology", "5.2": "Economics and business", "5.3": "Educational sciences", "5.4": "Sociology",
    "5.5": "Law", "5.6": "Political science", "5.7": "Social and economic geography",
    "5.8": "Media and communications", "5.9": "Other social sciences",
    "6.1": "History and archaeology", "6.2": "Languages and literature", "6.3": "Philosophy, ethics and religion",
    "6.4": "Arts", "6.5": "Other humanities",
}  # fmt: skip


class Audience(enum.Enum):
    ACADEMIC = "academic"
    STARTUP = "startup"
    SME = "sme"
    INDUSTRY = "industry"
    EDUCATION = "education"


class ProposalKind(enum.Enum):
    NEW = "new"
    RENEWAL = "renewal"  # more hours and a later end for a project
    SUPPLEMENT = "supplement"  # more hours within the project's period


class ProposalState(enum.Enum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    AWARDED = "awarded"
    REJECTED = "rejected"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"

    @property
    def final(self) -> bool:
        return self in (ProposalState.AWARDED, ProposalState.REJECTED, ProposalState.WITHDRAWN)

    @property
    def decidable(self) -> bool:
        return self in (ProposalState.SUBMITTED, ProposalState.IN_REVIEW)

    @property
    def editable(self) -> bool:
        return self in (ProposalState.DRAFT, ProposalState.RETURNED)


class Decision(enum.Enum):
    AWARD = "award"
    REJECT = "reject"
    RETURN = "return"

    @property
    def state(self) -> ProposalState:
        return {Decision.AWARD: ProposalState.AWARDED, Decision.REJECT: ProposalState.REJECTED,
                Decision.RETURN: ProposalState.RETURNED}[self]  # fmt: skip


class ConflictKind(enum.Enum):
    TEAM = "team"
    INSTITUTION = "institution"
    ORGANISATION = "organisation"
    DECLARED = "declared"


# --- field rules ---------------------------------------------------------------------------------


def check_call_name(value: object, field: str = "call") -> str:
    if not isinstance(value, str) or not CALL_NAME_RE.fullmatch(value):
        raise LedgerInputError(field, f"2 to 40 characters: lower-case letters, digits or '-', got {value!r}")
    return value


def check_line(value: object, field: str, limit: int, *, required: bool = True) -> str:
    """One line of text (no control characters), stripped, at most ``limit`` characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise LedgerInputError(field, f"must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise LedgerInputError(field, "is required")
    if len(value) > limit:
        raise LedgerInputError(field, f"at most {limit} characters, got {len(value)}")
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise LedgerInputError(field, "one line of text without control characters")
    return value


def check_paragraphs(value: object, field: str, limit: int, *, required: bool = True) -> str:
    """Text of several lines (tabs and newlines allowed, no other control characters)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise LedgerInputError(field, f"must be text, got {type(value).__name__}")
    value = value.replace("\r\n", "\n").strip()
    if required and not value:
        raise LedgerInputError(field, "is required")
    if len(value) > limit:
        raise LedgerInputError(field, f"at most {limit} characters, got {len(value)}")
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", value):
        raise LedgerInputError(field, "text without control characters")
    return value


def check_principal(value: object, field: str = "team") -> str:
    if not isinstance(value, str) or not PRINCIPAL_RE.fullmatch(value.strip()):
        raise LedgerInputError(field, f"each member is a login such as name@institution.example, got {value!r}")
    return value.strip().lower()


def check_team(values: object, applicant_principal: str | None = None, field: str = "team") -> tuple[str, ...]:
    """The team's principals (the applicant is not repeated), sorted, at most ``MAX_TEAM``."""
    if values is None or values == "":
        return ()
    if isinstance(values, str):
        values = [v for v in re.split(r"[\s,;]+", values) if v]
    if not isinstance(values, (list, tuple)):
        raise LedgerInputError(field, "a list of logins (name@institution.example)")
    team = sorted({check_principal(v, field) for v in values} - {(applicant_principal or "").lower()})
    if len(team) > MAX_TEAM:
        raise LedgerInputError(field, f"at most {MAX_TEAM} members, got {len(team)}")
    return tuple(team)


def check_field_of_science(value: object, field: str = "field_of_science") -> str:
    if not isinstance(value, str) or value not in FIELDS_OF_SCIENCE:
        raise LedgerInputError(field, f"one of the OECD fields of science ({', '.join(list(FIELDS_OF_SCIENCE)[:3])}, "
                                      f"... 6.5), got {value!r}")  # fmt: skip
    return value


def check_months(value: object, field: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PERIOD_MONTHS:
        raise LedgerInputError(field, f"a whole number of months from 1 to {MAX_PERIOD_MONTHS}, got {value!r}")
    return value


def check_hours(value: object, field: str, *, limit_mgs: int | None = None, limit_name: str = "") -> int:
    """Positive GPU-hours (at most 4 decimals) as mgs, at most ``limit_mgs``."""
    mgs = arith.gpu_hours_to_mgs(value, field, allow_zero=False)
    ceiling = arith.gpu_hours_to_mgs(MAX_CALL_GPU_HOURS, field)
    if mgs > ceiling:
        raise LedgerInputError(field, f"at most {MAX_CALL_GPU_HOURS:,} GPU-h, got {arith.format_gpu_hours(mgs)}")
    if limit_mgs is not None and mgs > limit_mgs:
        raise LedgerInputError(field, f"at most {arith.format_gpu_hours(limit_mgs)} GPU-h ({limit_name}), "
                                      f"got {arith.format_gpu_hours(mgs)}")  # fmt: skip
    return mgs


def check_audiences(values: object, field: str = "audience") -> tuple[Audience, ...]:
    if isinstance(values, str):
        values = [v for v in re.split(r"[\s,]+", values) if v]
    if not isinstance(values, (list, tuple)) or not values:
        raise LedgerInputError(field, f"one or more of {', '.join(a.value for a in Audience)}")
    out = set()
    for value in values:
        try:
            out.add(Audience(value))
        except ValueError:
            raise LedgerInputError(field, f"one or more of {', '.join(a.value for a in Audience)}, "
                                          f"got {value!r}") from None  # fmt: skip
    return tuple(a for a in Audience if a in out)


def check_criteria(values: object, field: str = "criteria") -> tuple[str, ...]:
    if values is None or values == "" or values == []:
        return DEFAULT_CRITERIA
    if isinstance(values, str):
        values = [v.strip() for v in re.split(r"[\n;]+", values) if v.strip()]
    if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= MAX_CRITERIA:
        raise LedgerInputError(field, f"1 to {MAX_CRITERIA} criteria")
    out = []
    for value in values:
        if not isinstance(value, str) or not CRITERION_RE.fullmatch(value.strip()):
            raise LedgerInputError(field, f"each criterion 2 to 80 characters without , ; or =, got {value!r}")
        if value.strip() not in out:
            out.append(value.strip())
    return tuple(out)


def check_doi(value: object, field: str = "doi") -> str:
    """A DOI's syntax (``10.NNNN/suffix``; a leading ``https://doi.org/`` or ``doi:`` is dropped)."""
    if not isinstance(value, str):
        raise LedgerInputError(field, f"a DOI such as 10.1234/abc, got {value!r}")
    text = value.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    if not DOI_RE.fullmatch(text):
        raise LedgerInputError(field, f"a DOI such as 10.1234/abc, got {value!r}")
    return text


def principal_domain(principal: str) -> str:
    return principal.rpartition("@")[2].lower()


# --- frozen values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallSpec:
    """A call as its manager asks for it (checked by ``check_call_spec``)."""

    name: str
    title: str
    audiences: tuple[Audience, ...]
    opens: date
    closes: date  # inclusive
    available_mgs: int
    max_request_mgs: int
    period_months: int
    review_required: bool
    criteria: tuple[str, ...]
    reviews_visible: bool
    startup: bool  # awarded at once on submission, once per user per period
    report_required: bool  # a final report before a renewal is accepted


@dataclass(frozen=True)
class CallInfo:
    id: int
    spec: CallSpec
    closed_at: date | None  # closed early by a manager
    created_by: str

    @property
    def name(self) -> str:
        return self.spec.name

    def is_open(self, today: date) -> bool:
        return self.closed_at is None and self.spec.opens <= today <= self.spec.closes


@dataclass(frozen=True)
class ProposalContent:
    """What the applicant wrote (one appended version)."""

    title: str
    abstract: str
    field_of_science: str
    gpu_hours_mgs: int
    period_months: int
    justification: str
    team: tuple[str, ...]
    organisation: str
    project_name: str  # the project to create, or (renewal, supplement) the one it extends
    attachment_sha256: str | None = None
    attachment_name: str | None = None


@dataclass(frozen=True)
class ProposalEvent:
    state: ProposalState
    at: object  # datetime
    by: str
    reason: str
    awarded_mgs: int | None = None


@dataclass(frozen=True)
class ProposalInfo:
    id: int
    call: str
    kind: ProposalKind
    applicant: str  # the Unix user
    applicant_principal: str
    state: ProposalState
    content: ProposalContent
    version: int
    events: tuple[ProposalEvent, ...]
    reviewers: tuple[str, ...]


@dataclass(frozen=True)
class Review:
    proposal_id: int
    reviewer: str
    scores: Mapping[str, int]
    comment: str
    at: object


def check_call_spec(
    *, name: object, title: object, audiences: object, opens: date | None, closes: date | None, gpu_hours: object,
    max_request: object, period_months: object, review_required: bool, criteria: object = None,
    reviews_visible: bool = False, startup: bool = False, report_required: bool = False,
) -> CallSpec:  # fmt: skip
    name = check_call_name(name, "name")
    title = check_line(title, "title", MAX_TITLE)
    audiences = check_audiences(audiences)
    if opens is None:
        raise LedgerInputError("opens", "is required (YYYY-MM-DD)")
    if closes is None:
        raise LedgerInputError("closes", "is required (YYYY-MM-DD)")
    if closes < opens:
        raise LedgerInputError("closes", f"{closes.isoformat()} is before the opening date {opens.isoformat()}")
    available = check_hours(gpu_hours, "gpu_hours")
    largest = check_hours(max_request, "max_request", limit_mgs=available, limit_name="the hours of the round")
    period = check_months(period_months, "period_months")
    if startup and review_required:
        raise LedgerInputError("review_required", "a start-up call awards at once: it has no review")
    return CallSpec(
        name=name, title=title, audiences=audiences, opens=opens, closes=closes, available_mgs=available,
        max_request_mgs=largest, period_months=period, review_required=bool(review_required),
        criteria=check_criteria(criteria), reviews_visible=bool(reviews_visible), startup=bool(startup),
        report_required=bool(report_required),
    )  # fmt: skip


def check_content(fields: Mapping[str, object], *, call: CallSpec, applicant_principal: str,
                  kind: ProposalKind, complete: bool) -> ProposalContent:  # fmt: skip
    """The proposal's fields checked against the call. ``complete``: submitting (every field
    required); a draft may leave text fields empty but what is there must be valid."""
    required = complete
    title = check_line(fields.get("title"), "title", MAX_TITLE, required=True)
    abstract = check_paragraphs(fields.get("abstract"), "abstract", MAX_ABSTRACT, required=required)
    fos = fields.get("field_of_science") or ""
    if fos or required:
        fos = check_field_of_science(fos)
    hours = fields.get("gpu_hours")
    if hours in (None, "") and not required:
        hours_mgs = 0
    else:
        hours_mgs = check_hours(hours, "gpu_hours", limit_mgs=call.max_request_mgs,
                                limit_name=f"the largest request of call {call.name}")  # fmt: skip
    months = fields.get("period_months")
    period = call.period_months if months in (None, "") else check_months(months, "period_months")
    if period > call.period_months:
        raise LedgerInputError("period_months", f"at most {call.period_months} months (the period of call "
                                                f"{call.name}), got {period}")  # fmt: skip
    justification = check_paragraphs(fields.get("justification"), "justification", MAX_JUSTIFICATION,
                                     required=required and not call.startup)  # fmt: skip
    team = check_team(fields.get("team"), applicant_principal)
    organisation = check_line(fields.get("organisation"), "organisation", MAX_ORGANISATION, required=False)
    project = fields.get("project_name")
    if project in (None, "") and not required:
        project = ""
    else:
        project = check_project_name(project, "project_name")
    del kind  # every kind has the same fields; the project must exist for a renewal (the store checks)
    return ProposalContent(
        title=title, abstract=abstract, field_of_science=fos, gpu_hours_mgs=hours_mgs, period_months=period,
        justification=justification, team=team, organisation=organisation, project_name=project,
    )  # fmt: skip


def check_scores(scores: object, criteria: Sequence[str], field: str = "scores") -> dict[str, int]:
    """One whole score from 1 to 5 for each of the call's criteria, no others."""
    if not isinstance(scores, Mapping):
        raise LedgerInputError(field, "an object {criterion: score}")
    unknown = sorted(set(scores) - set(criteria))
    if unknown:
        raise LedgerInputError(field, f"unknown criterion {unknown[0]!r}; the call's criteria: {', '.join(criteria)}")
    out = {}
    for criterion in criteria:
        value = scores.get(criterion)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not SCORE_MIN <= value <= SCORE_MAX:
            raise LedgerInputError(f"{field}.{criterion}", f"a whole number from {SCORE_MIN} to {SCORE_MAX}, "
                                                           f"got {value!r}")  # fmt: skip
        out[criterion] = value
    return out


def conflict_reason(
    *, reviewer: str, reviewer_principal: str | None, applicant: str, applicant_principal: str,
    team: Iterable[str], organisation: str, reviewer_organisations: Iterable[str] = (), declared: bool = False,
) -> ConflictKind | None:  # fmt: skip
    """Why ``reviewer`` may not review the proposal, or None."""
    if declared:
        return ConflictKind.DECLARED
    team = {p.lower() for p in team}
    principal = (reviewer_principal or "").lower()
    if reviewer == applicant or (principal and (principal == applicant_principal.lower() or principal in team)):
        return ConflictKind.TEAM
    if principal:
        domain = principal_domain(principal)
        if domain in {principal_domain(applicant_principal)} | {principal_domain(p) for p in team}:
            return ConflictKind.INSTITUTION
    own = {o.strip().lower() for o in reviewer_organisations if o and o.strip()}
    if organisation and organisation.strip().lower() in own:
        return ConflictKind.ORGANISATION
    return None


CONFLICT_WORDS = {
    ConflictKind.TEAM: "is the applicant or on the proposal's team",
    ConflictKind.INSTITUTION: "shares the institution of the applicant or a team member",
    ConflictKind.ORGANISATION: "belongs to the applicant's organisation",
    ConflictKind.DECLARED: "declared a conflict of interest",
}


@dataclass(frozen=True)
class ScoreSummary:
    """The scores of a proposal per criterion: count, mean and spread (max - min)."""

    criterion: str
    count: int
    mean: float | None
    spread: int | None


def summarise_scores(reviews: Iterable[Review], criteria: Sequence[str]) -> tuple[ScoreSummary, ...]:
    reviews = list(reviews)
    out = []
    for criterion in criteria:
        values = [r.scores[criterion] for r in reviews if criterion in r.scores]
        out.append(ScoreSummary(criterion, len(values), round(sum(values) / len(values), 2) if values else None,
                                (max(values) - min(values)) if values else None))  # fmt: skip
    return tuple(out)


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def award_period(today: date, months: int, *, current_end: date | None = None, kind: ProposalKind) -> tuple[date, date]:
    """(start, inclusive end) of an award: a new project runs ``months`` from today; a renewal
    moves the end ``months`` past the later of today and the current end; a supplement keeps
    the current end (or, for a project without one, runs ``months`` from today)."""
    if kind is ProposalKind.NEW or current_end is None:
        return today, add_months(today, months) - timedelta(days=1)
    if kind is ProposalKind.SUPPLEMENT:
        return today, current_end
    base = max(today, current_end)
    return today, add_months(base, months)
