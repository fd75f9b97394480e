"""A project's period: its state as people see it, the warnings before its end, the renewal
link and when its space is due for archiving. Pure functions over dates (the site's time zone's
"today"); no I/O.

States (derived, no column of their own): ``active`` (open, and not past ``period_end``),
``expired`` (open in the ledger but past its inclusive end date: no new sessions, running ones
stop after the grace, what is left of the budget is not usable) and ``closed`` (an admin closed
it). A renewal that moves the end date makes an expired project active again.

Warnings go to the project's leaders 30, 7 and 1 days before the end (``PERIOD_WARNING_DAYS``):
at each pass the threshold reached is the smallest of those at or above the days left, and its
mail is queued once per project, threshold and end date (a moved end date warns again).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from hub.ledger.types import ProjectKind, ProjectState

PERIOD_WARNING_DAYS = (30, 7, 1)
RENEWAL_PATH = "/hub/hpchub/apply?renew={project}"
DEFAULT_DATA_GRACE_DAYS = 90


class ProjectStatus(enum.Enum):
    ACTIVE = "active"
    EXPIRED = "expired"
    CLOSED = "closed"


def project_status(state: ProjectState | str, period_end: date | None, today: date) -> ProjectStatus:
    """closed (an admin's), expired (open but past its inclusive end), else active."""
    if ProjectState(state) is ProjectState.CLOSED:
        return ProjectStatus.CLOSED
    if period_end is not None and today > period_end:
        return ProjectStatus.EXPIRED
    return ProjectStatus.ACTIVE


def days_left(period_end: date | None, today: date) -> int | None:
    """Days until the end date (0 on the last day, negative once past); None without an end."""
    return None if period_end is None else (period_end - today).days


def warning_threshold(period_end: date | None, today: date) -> int | None:
    """The warning reached today: 30, 7 or 1 (the smallest at or above the days left), or None
    (no end, more than 30 days left, or already past the end)."""
    left = days_left(period_end, today)
    if left is None or left < 0:
        return None
    reached = [days for days in PERIOD_WARNING_DAYS if left <= days]
    return min(reached) if reached else None


def renewal_path(project: str, kind: ProjectKind | str) -> str | None:
    """Where the project's leaders request a renewal; None for a course (a new term is a new course)."""
    if ProjectKind(kind) is ProjectKind.COURSE:
        return None
    return RENEWAL_PATH.format(project=project)


def in_days(left: int) -> str:
    if left <= 0:
        return "today (its last day)"
    return "tomorrow" if left == 1 else f"in {left} days"


def ending_text(project: str, period_end: date, today: date, renewal: str | None) -> str:
    """``vision-lab ends on 2027-01-07, in 7 days: request a renewal`` (a course: no renewal)."""
    text = f"{project} ends on {period_end.isoformat()}, {in_days((period_end - today).days)}"
    return f"{text}: request a renewal" if renewal else f"{text}."


def ended_text(project: str, period_end: date, renewal: str | None) -> str:
    """The refusal of a spawn after the end, naming the date and where to renew."""
    text = f"{project}'s period ended on {period_end.isoformat()}."
    return f"{text} Request a renewal: {renewal}" if renewal else text


def warning_key(project: str, threshold: int, period_end: date) -> str:
    """The event of a period warning (the mail's key before its recipient): once per project,
    threshold and end date."""
    return f"period-{threshold}:{project}:{period_end.isoformat()}"


def expired_key(project: str, period_end: date) -> str:
    return f"period-expired:{project}:{period_end.isoformat()}"


def archive_from(period_end: date, grace_days: int) -> date:
    """The first day the project's space is due for archiving: the data grace after the end."""
    return period_end + timedelta(days=grace_days + 1)


def archive_due(status: ProjectStatus, period_end: date | None, today: date, grace_days: int) -> bool:
    """An expired or closed project whose end lies more than ``grace_days`` back. The portal deletes
    nothing: the admin page lists these for the site to archive."""
    if status is ProjectStatus.ACTIVE or period_end is None:
        return False
    return today >= archive_from(period_end, grace_days)


@dataclass(frozen=True)
class PeriodFinding:
    """What the period check sees for one project with an end date: its status, the warning
    reached (active projects) and, for an expired or closed one, since when its space is due for
    archiving (None: not yet)."""

    project: str
    kind: ProjectKind
    status: ProjectStatus
    period_end: date
    days_left: int
    threshold: int | None
    archive_from: date | None

    @property
    def renewal(self) -> str | None:
        return renewal_path(self.project, self.kind)

    def describe(self) -> str:
        """One line for ``hpchub project expire-check``."""
        end = self.period_end.isoformat()
        if self.status is ProjectStatus.ACTIVE:
            return f"{self.project}: ends on {end}, {in_days(self.days_left)} (the {self.threshold}-day warning)"
        line = f"{self.project}: {self.status.value}, its period ended on {end}"
        if self.archive_from is not None:
            line += f"; its project space is due for archiving since {self.archive_from.isoformat()}"
        return line


def period_finding(
    project: str, kind: ProjectKind | str, state: ProjectState | str, period_end: date | None, today: date,
    grace_days: int,
) -> PeriodFinding | None:  # fmt: skip
    """The finding of one project, or None when there is nothing to say (no end date, more than
    30 days left, or closed within the data grace)."""
    if period_end is None:
        return None
    status = project_status(state, period_end, today)
    threshold = warning_threshold(period_end, today) if status is ProjectStatus.ACTIVE else None
    due = archive_due(status, period_end, today, grace_days)
    if threshold is None and status is not ProjectStatus.EXPIRED and not due:
        return None
    return PeriodFinding(
        project, ProjectKind(kind), status, period_end, (period_end - today).days, threshold,
        archive_from(period_end, grace_days) if due else None,
    )  # fmt: skip
