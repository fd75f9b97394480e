"""Idle GPU sessions: which to warn about and which to stop (pure: no I/O, no clock).

A running session *reports* what it is doing: its own Jupyter server extension
(``hpchub_notebook/activity.py``) posts its activity to the hub with the server's own token
(``POST /hub/api/hpchub/v1/users/NAME/servers/SERVER/activity``), every report interval and
at once when a kernel starts a request; the hub keeps the latest report per session in the
ledger (:class:`ActivityReport`, ``reported_at`` on the hub's clock). The reconciler reads
those reports: it never sends a request, let alone a credential, to a process the user
controls. A session is *idle* when no kernel runs a request (a long cell with no output is
busy), no terminal runs a command, its GPUs' utilization is below the threshold or unknown,
and there has been no user activity (a request to a kernel, terminal input or output, a
saved file) for the whole timeout. An open browser tab is not activity. A session without a
report, or whose latest report is older than the report's maximum age (it stopped
reporting: an environment without hpchub, a hub it cannot reach), is UNKNOWN and never
stopped: missing information never stops anyone's work.

A report is the user's own word about the user's own session: it can keep that session
from being stopped as idle (as a running cell would), never touch another's.

A course may set its own, shorter timeout (the instructor's setting idle-stop-after,
``effective_idle_timeout``): GPUs held by idle students are GPUs other students wait for.

Stopping at the timeout is the fair charging: the job ends then, and the project pays
sacct's elapsed time up to the stop, not the walltime the user booked.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

IDLE_REASON = "stopped: idle for {minutes} min (no cell, terminal or GPU use)"
IDLE_REASON_COURSE = "stopped: idle for {minutes} min (the course's idle stop; no cell, terminal or GPU use)"
IDLE_NOTE_PREFIX = "idle: "  # the warning noted on the session (session_notes.py)
IDLE_NOTICE = IDLE_NOTE_PREFIX + "this session stops at {when} unless used (idle since {since})"
DEFAULT_GPU_BUSY_PERCENT = 5
IDLE_TIMEOUT_LIMIT = "from 0 (off) to 10080 minutes"  # a week: every setting of the timeout says this


# A session reports every 60 s by default (c.SlurmGPUSpawner.activity_report_seconds); a report
# older than three intervals means it stopped reporting: UNKNOWN, never stopped.
DEFAULT_REPORT_MAX_AGE_SECONDS = 180
REPORT_MAX_AGE_LIMIT = "from 10 to 86400 seconds"


def report_max_age_allowed(seconds: float) -> bool:
    return 10 <= seconds <= 86400


COURSE_IDLE_LIMIT = "a whole number of minutes from 1 to 10080, or none (the site's idle stop)"


def idle_timeout_allowed(minutes: float) -> bool:
    return 0 <= minutes <= 10080


def effective_idle_timeout(site_minutes: float, course_minutes: int | None) -> float | None:
    """A session's idle timeout in minutes; None: it is never stopped for being idle.

    ``site_minutes``: the site's timeout (0: off); ``course_minutes``: its course's own
    (idle-stop-after; None: not set, or not a course). A course may only make the stop
    shorter, never longer or off, so the site's promise to other projects stands; with the
    site's stop off, a course's own still applies to the course's sessions."""
    if course_minutes is None:
        return site_minutes or None
    return min(site_minutes, course_minutes) if site_minutes else course_minutes


def course_decides(site_minutes: float, course_minutes: int | None) -> bool:
    """Whether the course's setting (not the site's) sets the session's timeout: the stop reason names it."""
    return course_minutes is not None and (not site_minutes or course_minutes < site_minutes)


class IdleState(enum.Enum):
    UNKNOWN = "unknown"  # no answer, or not one we read: never stopped
    ACTIVE = "active"  # computing now (a busy kernel or terminal, a busy GPU)
    IDLE = "idle"  # idle, less than half the timeout
    WARN = "warn"  # idle for half the timeout or more: the user is told when it stops
    STOP = "stop"  # idle for the whole timeout


@dataclass(frozen=True)
class Activity:
    """The extension's answer, read."""

    kernels_busy: int
    terminals_busy: int
    last_activity: datetime
    gpu_percent: int | None  # None: unknown (no nvidia-smi, as on emulated GPUs)


@dataclass(frozen=True)
class Verdict:
    state: IdleState
    idle_since: datetime | None = None
    stop_at: datetime | None = None


@dataclass(frozen=True)
class ActivityReport:
    """A session's latest report, as the hub received it (``reported_at``: the hub's clock, not the node's)."""

    activity: Activity
    reported_at: datetime


def current_activity(report: ActivityReport | None, now: datetime, max_age: timedelta) -> Activity | None:
    """What the session last said it does while that is fresh; None (UNKNOWN: never stopped)
    without a report, or when the latest is older than ``max_age``."""
    if report is None or now - report.reported_at > max_age:
        return None
    return report.activity


class ActivityAnswerError(ValueError):
    """A report that is not the extension's (refused with 400 naming the field; the session stays UNKNOWN)."""


def _count(answer: Mapping[str, Any], name: str) -> int:
    value = answer.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ActivityAnswerError(f"{name}: a whole number >= 0 expected, got {value!r}")
    return value


def parse_activity(answer: object) -> Activity:
    """The extension's JSON report as :class:`Activity`; :class:`ActivityAnswerError` naming the field."""
    if not isinstance(answer, Mapping):
        raise ActivityAnswerError(f"an object expected, got {type(answer).__name__}")
    kernels_busy, terminals_busy = _count(answer, "kernels_busy"), _count(answer, "terminals_busy")
    raw = answer.get("last_activity")
    try:
        last = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        last = None
    if last is None or last.tzinfo is None:
        raise ActivityAnswerError(f"last_activity: an ISO 8601 time with its zone expected, got {raw!r}")
    gpu = answer.get("gpu_utilization_percent")
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int | float) or not 0 <= gpu <= 100):
        raise ActivityAnswerError(f"gpu_utilization_percent: null or 0 to 100 expected, got {gpu!r}")
    return Activity(kernels_busy, terminals_busy, last.astimezone(timezone.utc), None if gpu is None else round(gpu))


def idle_verdict(
    activity: Activity | None,
    now: datetime,
    timeout: timedelta,
    *,
    gpu_busy_percent: int = DEFAULT_GPU_BUSY_PERCENT,
    gpu_idle_since: datetime | None = None,
) -> Verdict:
    """What to do with one session. ``gpu_idle_since``: since when this watcher has seen its
    GPUs below ``gpu_busy_percent`` without a break (None: not seen, or unknown); the idle
    clock starts at the later of that and the last user activity."""
    if activity is None:
        return Verdict(IdleState.UNKNOWN)
    gpu_busy = activity.gpu_percent is not None and activity.gpu_percent >= gpu_busy_percent
    if activity.kernels_busy or activity.terminals_busy or gpu_busy:
        return Verdict(IdleState.ACTIVE)
    since = min(activity.last_activity, now)  # a node clock ahead of ours: no earlier than now
    if activity.gpu_percent is not None:
        since = max(since, gpu_idle_since or now)
    stop_at = since + timeout
    if now >= stop_at:
        state = IdleState.STOP
    elif now >= since + timeout / 2:
        state = IdleState.WARN
    else:
        state = IdleState.IDLE
    return Verdict(state, since, stop_at)


def stop_reason(timeout: timedelta, *, course: bool = False) -> str:
    """Why the session stopped, as its user reads it; ``course``: the course's idle stop set the timeout."""
    return (IDLE_REASON_COURSE if course else IDLE_REASON).format(minutes=f"{timeout.total_seconds() / 60:g}")


def idle_notice(verdict: Verdict) -> str | None:
    """The line a warned session's user sees (home page, budget meter); None otherwise."""
    if verdict.state is not IdleState.WARN or verdict.stop_at is None or verdict.idle_since is None:
        return None
    when, since = verdict.stop_at.strftime("%H:%M UTC"), verdict.idle_since.strftime("%H:%M UTC")
    return IDLE_NOTICE.format(when=when, since=since)


@dataclass
class IdleTracker:
    """Remembers, per running session, since when its GPUs are seen idle (between passes).
    ``timeout``: the site's; ``timeouts``: this pass's per-session ones that differ (a course's);
    ``report_max_age``: a report older than this is no answer (UNKNOWN)."""

    timeout: timedelta
    gpu_busy_percent: int = DEFAULT_GPU_BUSY_PERCENT
    report_max_age: timedelta = timedelta(seconds=DEFAULT_REPORT_MAX_AGE_SECONDS)
    gpu_idle_since: dict[int, datetime] = field(default_factory=dict)
    unanswered_said: set[int] = field(default_factory=set)  # sessions the log already named as not answering
    timeouts: dict[int, timedelta] = field(default_factory=dict)

    def timeout_of(self, session_id: int) -> timedelta:
        return self.timeouts.get(session_id, self.timeout)

    def say_unanswered(self, session_id: int, started_at: datetime | None, now: datetime) -> bool:
        """Once per session, for the log: it has run for a timeout and still does not report
        (an environment without hpchub, or a node that cannot reach the hub), so the idle stop never stops it."""
        if session_id in self.unanswered_said or started_at is None or now - started_at < self.timeout_of(session_id):
            return False
        self.unanswered_said.add(session_id)
        return True

    def still_idle(self, session_id: int, activity: Activity | None, now: datetime | None = None) -> bool:
        """Asked again just before the stop: is it still to stop? (A cell started since the first
        question keeps it.) Not recorded."""
        now = now or datetime.now(timezone.utc)
        return (
            idle_verdict(
                activity,
                now,
                self.timeout_of(session_id),
                gpu_busy_percent=self.gpu_busy_percent,
                gpu_idle_since=self.gpu_idle_since.get(session_id),
            ).state
            is IdleState.STOP
        )

    def verdicts(self, answers: Mapping[int, Activity | None], now: datetime,
                 timeouts: Mapping[int, timedelta] | None = None) -> dict[int, Verdict]:  # fmt: skip
        """``answers``: session id -> its activity (None: no answer). Sessions not in it are forgotten.
        ``timeouts``: session id -> its timeout where it is not the site's (a course's own)."""
        self.timeouts = dict(timeouts or {})
        seen: dict[int, datetime] = {}
        for session_id, activity in answers.items():
            gpu = None if activity is None else activity.gpu_percent
            if gpu is not None and gpu < self.gpu_busy_percent:
                seen[session_id] = self.gpu_idle_since.get(session_id, now)
        self.gpu_idle_since = seen
        self.unanswered_said &= set(answers)
        return {
            session_id: idle_verdict(activity, now, self.timeout_of(session_id), gpu_busy_percent=self.gpu_busy_percent,
                                     gpu_idle_since=seen.get(session_id))
            for session_id, activity in answers.items()
        }  # fmt: skip
