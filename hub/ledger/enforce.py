"""Budget warnings and exhaustion: what users are told, and which sessions stop.

Pure decisions over the ledger's figures (no I/O here):

* :func:`warnings_for` -- the 80 % / 95 % / exhausted banners a user sees for each
  project they belong to (the project's budget and their own cap).
* :class:`ExhaustionTracker` -- which running sessions to stop: a session stops once
  its project (or its member's cap) has been exhausted, or its project closed or past
  its period (a course's term end), for longer than the grace.
  Used can reach 100 % only through a reduced grant or late-imported outside usage,
  since admission never holds more than is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hub.ledger.arithmetic import (
    BudgetWarning,
    Rounding,
    format_gpu_hours,
    warning_level,
)
from hub.ledger.period import ProjectStatus, ending_text, project_status, renewal_path, warning_threshold
from hub.ledger.types import ProjectInfo, ProjectUsage, SessionInfo

STOP_NOTE = "stopped: "
STOP_REASON_PROJECT = "stopped: {project}'s GPU-hour budget is used up ({used} of {budget} GPU-h)"
STOP_REASON_CAP = "stopped: {user}'s cap in {project} is used up ({used} of {cap} GPU-h)"


@dataclass(frozen=True)
class Banner:
    """One warning line for a page: ``level`` is 80, 95 or 100."""

    project: str
    level: int
    text: str
    link: str | None = None  # the whole text links there (a renewal request)

    @property
    def css_class(self) -> str:
        return "alert-danger" if self.level >= 95 else "alert-warning"


def _percent_text(level: BudgetWarning) -> str:
    return "used up" if level is BudgetWarning.EXHAUSTED else f"{level.percent} % used"


def warnings_for(user: str, usages: Iterable[ProjectUsage]) -> list[Banner]:
    """Banners for ``user``: each project budget and the user's own cap at 80 % or more."""
    banners: list[Banner] = []
    for usage in usages:
        level = warning_level(usage.used_mgs, usage.grants_mgs)
        if level is not BudgetWarning.NONE:
            left = format_gpu_hours(max(0, usage.remaining_mgs), Rounding.FLOOR)
            text = f"{usage.project}: the GPU-hour budget is {_percent_text(level)} ({left} GPU-h left)."
            if level is BudgetWarning.EXHAUSTED:
                text += " Running sessions stop after the grace period; save your work."
            banners.append(Banner(usage.project, level.percent, text))
        member = next((m for m in usage.members if m.user == user), None)
        if member is not None and member.cap_mgs is not None:
            cap_level = warning_level(member.used_mgs, member.cap_mgs)
            if cap_level is not BudgetWarning.NONE:
                left = format_gpu_hours(max(0, member.cap_remaining_mgs or 0), Rounding.FLOOR)
                text = f"{usage.project}: your cap is {_percent_text(cap_level)} ({left} GPU-h left)."
                banners.append(Banner(usage.project, cap_level.percent, text))
    return sorted(banners, key=lambda banner: (-banner.level, banner.project))


def period_banners(projects: Iterable[ProjectInfo], today: date) -> list[Banner]:
    """Banners for projects whose period ends within 30 days (``vision-lab ends on 2027-01-07, in
    7 days: request a renewal``, linked to the renewal request) or has ended (expired)."""
    banners = []
    for info in projects:
        if info.period_end is None:
            continue
        status = project_status(info.state, info.period_end, today)
        renewal = renewal_path(info.name, info.kind)
        if status is ProjectStatus.EXPIRED:
            text = f"{info.name}'s period ended on {info.period_end.isoformat()}: no new sessions."
            banners.append(Banner(info.name, 100, text + (" Request a renewal." if renewal else ""), renewal))
        elif status is ProjectStatus.ACTIVE and (threshold := warning_threshold(info.period_end, today)):
            text = ending_text(info.name, info.period_end, today, renewal)
            banners.append(Banner(info.name, 95 if threshold <= 7 else 80, text, renewal))
    return sorted(banners, key=lambda banner: (-banner.level, banner.project))


def exhaustion_reasons(usage: ProjectUsage) -> tuple[str | None, dict[str, str]]:
    """(reason if the project is exhausted, {user: reason} for members whose cap is exhausted)."""
    project_reason = None
    if usage.grants_mgs >= 0 and warning_level(usage.used_mgs, usage.grants_mgs) is BudgetWarning.EXHAUSTED:
        project_reason = STOP_REASON_PROJECT.format(
            project=usage.project, used=format_gpu_hours(usage.used_mgs), budget=format_gpu_hours(usage.grants_mgs)
        )
    member_reasons = {}
    for member in usage.members:
        if member.cap_mgs is not None and warning_level(member.used_mgs, member.cap_mgs) is BudgetWarning.EXHAUSTED:
            member_reasons[member.user] = STOP_REASON_CAP.format(
                user=member.user,
                project=usage.project,
                used=format_gpu_hours(member.used_mgs),
                cap=format_gpu_hours(member.cap_mgs),
            )
    return project_reason, member_reasons


@dataclass
class ExhaustionTracker:
    """Remembers since when each project / member cap is exhausted; says what to stop.

    ``grace``: how long a running session may go on after its budget is used up
    (default 5 minutes), so users can save their work.
    """

    grace: timedelta = timedelta(minutes=5)
    exhausted_since: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (project, user or "")

    def sessions_to_stop(
        self,
        usages: Mapping[str, ProjectUsage],
        running: Iterable[SessionInfo],
        now: datetime,
        closed: Mapping[str, str] | None = None,
        dropped: Mapping[tuple[str, str], str] | None = None,
    ) -> list[tuple[SessionInfo, str]]:
        """``closed``: project -> why it takes no sessions now (closed, or its period, e.g. a
        course's term, has ended): its running sessions stop after the same grace.
        ``dropped``: (course, user) -> the reason, for students dropped from a course that
        stops their sessions (``Ledger.dropped_students_to_stop``): after the same grace."""
        current: dict[tuple[str, str], str] = {
            (project, ""): STOP_NOTE + reason for project, reason in (closed or {}).items()
        }
        current.update(dropped or {})
        for project, usage in usages.items():
            project_reason, member_reasons = exhaustion_reasons(usage)
            if project_reason and (project, "") not in current:
                current[(project, "")] = project_reason
            for user, reason in member_reasons.items():
                current[(project, user)] = reason
        # forget what is no longer exhausted (a new grant); start the clock for what now is
        self.exhausted_since = {key: self.exhausted_since.get(key, now) for key in current}
        stops = []
        for session in running:
            for key in ((session.project, ""), (session.project, session.user)):
                since = self.exhausted_since.get(key)
                if since is not None and now - since >= self.grace:
                    stops.append((session, current[key]))
                    break
        return stops

    def seconds_until_stop(self, project: str, user: str, now: datetime) -> float | None:
        """For banners: how long a session of ``user`` in ``project`` has left, if it is to stop."""
        times = [self.exhausted_since.get(key) for key in ((project, ""), (project, user))]
        since = min((t for t in times if t is not None), default=None)
        if since is None:
            return None
        return max(0.0, (since + self.grace - now).total_seconds())
