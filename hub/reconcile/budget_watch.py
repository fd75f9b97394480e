"""Stop running sessions whose budget is used up, or whose project closed or ended (a
course's term end), or of students dropped from a course that stops them (its on-drop
setting), after the grace; say why.

Runs after each reconcile pass (``hpchub reconcile --every 60 --stop-exhausted-after 300``,
a JupyterHub managed service): late-imported outside usage or a reduced grant is what
can push a project to 100 %. The stop goes through the hub's REST API, so the hub's
own state (the spawner's stop, the hold's release, the provisional charge) stays right;
the reason is noted on the ledger session first and shown on the user's pages.

The idle stop (``--stop-idle-after MINUTES``, hub/ledger/idle.py) runs in the same pass: it
reads each running session's latest activity report (the session pushes it to the hub with
its own server token; the reconciler never sends a request to a session, so its token, which
may stop anyone's server, never reaches a process a user controls), warns at half the
timeout and stops at the timeout, the same way. The token needs only ``delete:servers``. Each session's timeout is the site's unless its course sets a shorter one
(idle-stop-after: ``idle.effective_idle_timeout``); with the site's stop off, only those
courses' sessions are asked.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from hub.ledger.enforce import ExhaustionTracker
from hub.ledger.idle import (
    IDLE_NOTE_PREFIX,
    IdleState,
    IdleTracker,
    course_decides,
    current_activity,
    effective_idle_timeout,
    idle_notice,
    stop_reason,
)
from hub.ledger.store import Ledger
from hub.ledger.types import ProjectState, SessionState


class HubUnavailable(RuntimeError):
    """The hub's API did not answer: nothing is stopped this pass."""


@dataclass(frozen=True)
class HubAPI:
    """The hub's REST API as a managed service sees it (JUPYTERHUB_API_URL / _TOKEN). Only ever
    sent to the hub itself: never to a user's server (the proxy's /user/ routes)."""

    url: str
    token: str

    @classmethod
    def from_environment(cls) -> "HubAPI | None":
        url, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
        return cls(url.rstrip("/"), token) if url and token else None

    def stop_server(self, user: str, server_name: str) -> int:
        path = f"/users/{quote(user)}/servers/{quote(server_name)}" if server_name else f"/users/{quote(user)}/server"
        request = urllib.request.Request(
            self.url + path, method="DELETE", headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the hub's own URL)
                return response.status
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 404):  # not running any more, or gone: nothing to stop
                return exc.code
            raise HubUnavailable(
                f"DELETE {path}: HTTP {exc.code}: {json.loads(exc.read() or b'{}').get('message', '')}"
            )
        except (urllib.error.URLError, OSError) as exc:
            raise HubUnavailable(f"DELETE {path}: {exc}") from None


def stop_exhausted_sessions(
    ledger: Ledger, tracker: ExhaustionTracker, hub: HubAPI, now: datetime | None = None
) -> list[str]:
    """One pass: note the reason and stop each session whose grace has run out. Lines for the log."""
    now = now or datetime.now(timezone.utc)
    projects = ledger.projects()
    usages = {p.name: ledger.figures(p.name, now) for p in projects if p.state is ProjectState.ACTIVE}
    closed = {p.name: reason for p in projects if (reason := ledger.closed_reason(p, now))}
    running = [s for s in ledger.active_sessions() if s.state is SessionState.RUNNING]
    dropped = ledger.dropped_students_to_stop()
    lines = []
    for session, reason in tracker.sessions_to_stop(usages, running, now, closed, dropped):
        ledger.note_stop_reason(session.id, reason)
        status = hub.stop_server(session.user, session.server_name)
        lines.append(
            f"{session.project}: stopped {session.user}/{session.server_name} (job {session.job_id}, "
            f"HTTP {status}): {reason}"
        )
    return lines


def _reported(ledger: Ledger, tracker: IdleTracker, session_ids, now: datetime):
    """session id -> its activity from its latest report while fresh, else None (UNKNOWN)."""
    reports = ledger.activity_reports(session_ids)
    return {sid: current_activity(reports.get(sid), now, tracker.report_max_age) for sid in session_ids}


def stop_idle_sessions(ledger: Ledger, tracker: IdleTracker, hub: HubAPI, now: datetime | None = None) -> list[str]:
    """One pass of the idle stop: read the latest activity report of each running session that
    has a timeout (the site's ``tracker.timeout``, 0: off, or its course's shorter one), warn at
    half its timeout (a note on the session, cleared when it is used again), stop at the
    timeout (read again just before: a cell started since counts). Lines for the log."""
    site = tracker.timeout.total_seconds() / 60
    courses = ledger.course_idle_timeouts()
    running, timeouts, by_course = [], {}, set()
    watched_before = bool(tracker.timeouts)  # a warning to take back when the last course setting went
    for session in ledger.active_sessions() if site or courses or watched_before else ():  # all off: no read
        if session.state is not SessionState.RUNNING or not session.job_id:
            continue
        minutes = effective_idle_timeout(site, courses.get(session.project))
        if minutes is None:
            if (session.message or "").startswith(IDLE_NOTE_PREFIX):
                ledger.note_idle(session.id, None)  # warned under a course setting since removed
            continue
        running.append(session)
        timeouts[session.id] = timedelta(minutes=minutes)
        if course_decides(site, courses.get(session.project)):
            by_course.add(session.id)
    if not running:
        tracker.verdicts({}, now or datetime.now(timezone.utc))
        return []
    now = now or datetime.now(timezone.utc)
    answers = _reported(ledger, tracker, [session.id for session in running], now)
    verdicts = tracker.verdicts(answers, now, timeouts)
    lines = []
    for session in running:
        verdict = verdicts[session.id]
        if verdict.state is IdleState.STOP and tracker.still_idle(
            session.id, _reported(ledger, tracker, [session.id], now)[session.id], now
        ):
            reason = stop_reason(timeouts[session.id], course=session.id in by_course)
            ledger.note_stop_reason(session.id, reason)
            try:
                status = hub.stop_server(session.user, session.server_name)
            except HubUnavailable:
                ledger.withdraw_stop_reason(session.id, reason)  # not stopped: the page must not say it was
                raise
            lines.append(
                f"{session.project}: stopped {session.user}/{session.server_name} (job {session.job_id}, "
                f"HTTP {status}): {reason}"
            )
        elif verdict.state is IdleState.UNKNOWN:
            if tracker.say_unanswered(session.id, session.started_at, now):
                lines.append(
                    f"{session.project}: {session.user}/{session.server_name} (job {session.job_id}) does "
                    "not report what it does (no activity report for "
                    f"{tracker.report_max_age.total_seconds():g} s: an environment without hpchub, or a "
                    "node that cannot reach the hub): the idle stop leaves it alone"
                )
        else:
            notice = idle_notice(verdict)
            noted = session.message if (session.message or "").startswith(IDLE_NOTE_PREFIX) else None
            if notice == noted:
                continue  # nothing to write (a pass writes only changes: SQLite's lock is shared with spawns)
            if ledger.note_idle(session.id, notice) and notice:
                lines.append(f"{session.project}: {session.user}/{session.server_name} (job {session.job_id}) {notice}")
    return lines
