"""Stop running sessions whose budget is used up, or whose project closed or ended (a
course's term end), or of students dropped from a course that stops them (its on-drop
setting), after the grace; say why.

Runs after each reconcile pass (``hpchub reconcile --every 60 --stop-exhausted-after 300``,
a JupyterHub managed service): late-imported outside usage or a reduced grant is what
can push a project to 100 %. The stop goes through the hub's REST API, so the hub's
own state (the spawner's stop, the hold's release, the provisional charge) stays right;
the reason is noted on the ledger session first and shown on the user's pages.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from .enforce import ExhaustionTracker
from .store import Ledger
from .types import ProjectState, SessionState


class HubUnavailable(RuntimeError):
    """The hub's API did not answer: nothing is stopped this pass."""


@dataclass(frozen=True)
class HubAPI:
    """The hub's REST API as a managed service sees it (JUPYTERHUB_API_URL / _TOKEN)."""

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
