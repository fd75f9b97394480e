"""Why a session ended, for the pages: mixed into ``Ledger`` (uses ``_read``/``_write``).

The budget watcher notes the reason on a running session (``stopped: ...``) before it
asks the hub to stop the server; the note stays on the ended session, and the user's
pages show it for a day. The idle stop notes a warning on a running session that has been
idle for half its timeout (``idle: this session stops at ...``) and clears it once the session
is used again; the home page and the budget meter show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.idle import IDLE_NOTE_PREFIX
from hub.ledger.models import PortalSession, Project
from hub.ledger.types import SessionState, check_text, check_user

STOP_NOTE_PREFIX = "stopped: "


@dataclass(frozen=True)
class StoppedSession:
    """A session stopped with a reason (``stopped: ...``), for the user's banner."""

    project: str
    server_name: str
    reason: str
    job_id: str | None
    ended_at: datetime

    def banner_text(self) -> str:
        """``Your server (default) in vision-lab was stopped: REASON. Slurm job 2 ended
        2026-11-29 12:03 UTC.``: which job and when, so a stop is not taken for the server
        running now."""
        text = f"Your server {self.server_name or '(default)'} in {self.project} was {self.reason}."
        when = self.ended_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        job = f"Slurm job {self.job_id}" if self.job_id else "It"
        return f"{text} {job} ended {when}."


class SessionNotes:
    def note_stop_reason(self, session_id: int, reason: str) -> None:
        """Record why a holding session is being stopped (its message; a refusal keeps its own)."""
        reason = check_text(reason, "reason")
        if not reason.startswith(STOP_NOTE_PREFIX):
            raise LedgerInputError("reason", f"must start with {STOP_NOTE_PREFIX!r}")
        with self._write() as session:
            row = session.get(PortalSession, session_id)
            if row is None:
                raise NotFound("session_id", f"no session {session_id}")
            if row.state is SessionState.REFUSED:
                raise LedgerInputError("session_id", f"session {session_id} was refused")
            row.message = reason

    def withdraw_stop_reason(self, session_id: int, reason: str) -> None:
        """Undo :meth:`note_stop_reason` when the stop did not happen (the hub did not answer)."""
        with self._write() as session:
            row = session.get(PortalSession, session_id)
            if row is not None and row.state is SessionState.RUNNING and row.message == reason:
                row.message = None

    def note_idle(self, session_id: int, notice: str | None) -> bool:
        """Set (``idle: ...``) or clear (None) the idle warning of a running session; any other
        note is left alone. True when something changed (so a pass writes only changes)."""
        if notice is not None:
            notice = check_text(notice, "notice")
            if not notice.startswith(IDLE_NOTE_PREFIX):
                raise LedgerInputError("notice", f"must start with {IDLE_NOTE_PREFIX!r}")
        with self._write() as session:
            row = session.get(PortalSession, session_id)
            if row is None:
                raise NotFound("session_id", f"no session {session_id}")
            current = row.message
            if row.state is not SessionState.RUNNING or current == notice:
                return False
            if current is not None and not current.startswith(IDLE_NOTE_PREFIX):
                return False  # a refusal or stop reason wins
            row.message = notice
            return True

    def recently_stopped(self, user: str, now: datetime, within: timedelta = timedelta(days=1)) -> list[StoppedSession]:
        """The user's sessions stopped with a reason lately (the budget watcher, the idle stop,
        Slurm), newest first: only the latest of each server, so a server stopped twice in a
        day is one banner, not two alike."""
        check_user(user)
        since = now - within
        with self._read() as session:
            rows = session.execute(
                select(Project.name, PortalSession.server_name, PortalSession.message, PortalSession.job_id,
                       PortalSession.ended_at)
                .join(Project, Project.id == PortalSession.project_id)
                .where(PortalSession.user == user, PortalSession.state == SessionState.ENDED,
                       PortalSession.message.like(STOP_NOTE_PREFIX + "%"), PortalSession.ended_at >= since)
                .order_by(PortalSession.ended_at.desc(), PortalSession.id.desc())
            ).all()  # fmt: skip
        answer, seen = [], set()
        for project, server, message, job_id, ended_at in rows:
            if (project, server) not in seen:
                seen.add((project, server))
                answer.append(StoppedSession(project, server, message, job_id, ended_at))
        return answer
