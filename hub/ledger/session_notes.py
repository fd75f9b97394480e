"""Why a session ended, for the pages: mixed into ``Ledger`` (uses ``_read``/``_write``).

The budget watcher notes the reason on a running session (``stopped: ...``) before it
asks the hub to stop the server; the note stays on the ended session, and the user's
pages show it for a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from .errors import LedgerInputError, NotFound
from .models import PortalSession, Project
from .types import SessionState, check_text, check_user

STOP_NOTE_PREFIX = "stopped: "


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

    def recently_stopped(self, user: str, now: datetime, within: timedelta = timedelta(days=1)) -> list[tuple[str, str, str]]:
        """(project, server name, reason) of the user's sessions stopped by the budget watcher lately."""
        check_user(user)
        since = now - within
        with self._read() as session:
            rows = session.execute(
                select(Project.name, PortalSession.server_name, PortalSession.message)
                .join(Project, Project.id == PortalSession.project_id)
                .where(PortalSession.user == user, PortalSession.state == SessionState.ENDED,
                       PortalSession.message.like(STOP_NOTE_PREFIX + "%"), PortalSession.ended_at >= since)
                .order_by(PortalSession.ended_at.desc())
            ).all()  # fmt: skip
        return [(project, server, message) for project, server, message in rows]
