"""Stop running sessions whose budget is used up, or whose project closed or ended (a
course's term end), or of students dropped from a course that stops them (its on-drop
setting), after the grace; say why.

Runs after each reconcile pass (``hpchub reconcile --every 60 --stop-exhausted-after 300``,
a JupyterHub managed service): late-imported outside usage or a reduced grant is what
can push a project to 100 %. The stop goes through the hub's REST API, so the hub's
own state (the spawner's stop, the hold's release, the provisional charge) stays right;
the reason is noted on the ledger session first and shown on the user's pages.

The idle stop (``--stop-idle-after MINUTES``, hub/ledger/idle.py) runs in the same pass: it
asks each running session what it is doing, through the proxy (``$JUPYTERHUB_PUBLIC_URL``;
the token needs ``access:servers``), warns at half the timeout and stops at the timeout,
the same way. Each session's timeout is the site's unless its course sets a shorter one
(idle-stop-after: ``idle.effective_idle_timeout``); with the site's stop off, only those
courses' sessions are asked.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from .enforce import ExhaustionTracker
from .idle import (
    IDLE_NOTE_PREFIX,
    ActivityAnswerError,
    IdleState,
    IdleTracker,
    course_decides,
    effective_idle_timeout,
    idle_notice,
    parse_activity,
    stop_reason,
)
from .store import Ledger
from .types import ProjectState, SessionInfo, SessionState

ACTIVITY_PATH = "api/hpchub/activity"
ACTIVITY_TIMEOUT = 15.0  # seconds per session; no answer in time: UNKNOWN, never stopped
ACTIVITY_WORKERS = 8  # sessions asked at once


class HubUnavailable(RuntimeError):
    """The hub's API did not answer: nothing is stopped this pass."""


@dataclass(frozen=True)
class HubAPI:
    """The hub's REST API as a managed service sees it (JUPYTERHUB_API_URL / _TOKEN)."""

    url: str
    token: str
    public_url: str | None = None  # the proxy, where /user/NAME/ is served ($JUPYTERHUB_PUBLIC_URL)

    @classmethod
    def from_environment(cls) -> "HubAPI | None":
        url, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
        public = (os.environ.get("JUPYTERHUB_PUBLIC_URL") or "").rstrip("/") or None
        return cls(url.rstrip("/"), token, public) if url and token else None

    def activity(self, user: str, server_name: str) -> dict | None:
        """The session's activity answer (hpchub_notebook/activity.py); None when it does not
        answer it (not reachable, not ready, an environment without the extension)."""
        if not self.public_url:
            return None
        server = f"{quote(server_name, safe='')}/" if server_name else ""
        url = f"{self.public_url}/user/{quote(user, safe='')}/{server}{ACTIVITY_PATH}"
        request = urllib.request.Request(url, headers={"Authorization": f"token {self.token}",
                                                       "Accept": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=ACTIVITY_TIMEOUT) as response:  # noqa: S310 (our proxy)
                if response.status != 200 or "json" not in response.headers.get("Content-Type", ""):
                    return None
                return json.loads(response.read().decode())
        except (urllib.error.URLError, OSError, ValueError):
            return None

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
            raise HubUnavailable(f"DELETE {path}: HTTP {exc.code}: {json.loads(exc.read() or b'{}').get('message', '')}")
        except (urllib.error.URLError, OSError) as exc:
            raise HubUnavailable(f"DELETE {path}: {exc}") from None


def stop_exhausted_sessions(ledger: Ledger, tracker: ExhaustionTracker, hub: HubAPI, now: datetime | None = None) -> list[str]:
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
        lines.append(f"{session.project}: stopped {session.user}/{session.server_name} (job {session.job_id}, "
                     f"HTTP {status}): {reason}")
    return lines


def _ask(hub: HubAPI, session: SessionInfo):
    try:
        return parse_activity(hub.activity(session.user, session.server_name))
    except ActivityAnswerError:
        return None  # no answer, or not the extension's: UNKNOWN


def stop_idle_sessions(ledger: Ledger, tracker: IdleTracker, hub: HubAPI, now: datetime | None = None) -> list[str]:
    """One pass of the idle stop: ask each running session that has a timeout (the site's
    ``tracker.timeout``, 0: off, or its course's shorter one), warn at half its timeout (a note
    on the session, cleared when it is used again), stop at the timeout. Lines for the log."""
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
    with ThreadPoolExecutor(max_workers=min(ACTIVITY_WORKERS, len(running))) as pool:
        answers = dict(zip((s.id for s in running), pool.map(lambda s: _ask(hub, s), running), strict=True))
    now = now or datetime.now(timezone.utc)
    verdicts = tracker.verdicts(answers, now, timeouts)
    lines = []
    for session in running:
        verdict = verdicts[session.id]
        if verdict.state is IdleState.STOP and tracker.still_idle(session.id, _ask(hub, session), now):
            reason = stop_reason(timeouts[session.id], course=session.id in by_course)
            ledger.note_stop_reason(session.id, reason)
            try:
                status = hub.stop_server(session.user, session.server_name)
            except HubUnavailable:
                ledger.withdraw_stop_reason(session.id, reason)  # not stopped: the page must not say it was
                raise
            lines.append(f"{session.project}: stopped {session.user}/{session.server_name} (job {session.job_id}, "
                         f"HTTP {status}): {reason}")
        elif verdict.state is IdleState.UNKNOWN:
            if tracker.say_unanswered(session.id, session.started_at, now):
                lines.append(f"{session.project}: {session.user}/{session.server_name} (job {session.job_id}) does "
                             "not say what it does (no activity answer: an environment without hpchub, or a token "
                             "without access:servers): the idle stop leaves it alone")
        else:
            notice = idle_notice(verdict)
            noted = session.message if (session.message or "").startswith(IDLE_NOTE_PREFIX) else None
            if notice == noted:
                continue  # nothing to write (a pass writes only changes: SQLite's lock is shared with spawns)
            if ledger.note_idle(session.id, notice) and notice:
                lines.append(f"{session.project}: {session.user}/{session.server_name} (job {session.job_id}) {notice}")
    return lines
