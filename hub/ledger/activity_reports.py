"""Sessions' activity reports: mixed into ``Ledger`` (uses ``_read``/``_write``/``_now``).

A running session's own Jupyter server posts what it is doing to the hub (with its own
server token); the hub's handler stores the latest report here, and the reconciler's idle
stop reads it (:mod:`.idle`). One row per session, replaced by newer reports.

Reports come every interval from every session; a report that says what the stored one
says, and whose row is younger than :data:`REFRESH`, writes nothing (SQLite's write lock
is shared with spawns): the stored ``reported_at`` then lags by at most ``REFRESH``, which
the idle stop's maximum report age (180 s by default) allows for.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select

from hub.ledger.errors import NotFound
from hub.ledger.idle import Activity, ActivityReport
from hub.ledger.models import PortalSession, SessionActivity

REFRESH = timedelta(seconds=30)


def _same(row: SessionActivity, activity: Activity) -> bool:
    return (row.kernels_busy, row.terminals_busy, row.last_activity, row.gpu_percent) == (
        activity.kernels_busy, activity.terminals_busy, activity.last_activity, activity.gpu_percent)  # fmt: skip


class ActivityReports:
    def record_activity(self, session_id: int, activity: Activity, now: datetime | None = None) -> bool:
        """Keep ``activity`` as the latest report of a holding session (received ``now``, the
        hub's clock). False when nothing was written: the same report, recently stored.
        :class:`NotFound` for a session that holds nothing (ended, refused, unknown)."""
        now = self._now(now)
        with self._read() as session:
            row = session.get(SessionActivity, session_id)
            if row is not None and _same(row, activity) and now - row.reported_at < REFRESH:
                return False
        with self._write() as session:
            portal_session = session.get(PortalSession, session_id)
            if portal_session is None or not portal_session.state.holds_budget:
                raise NotFound("session_id", f"no running session {session_id}")
            row = session.get(SessionActivity, session_id)
            if row is None:
                row = SessionActivity(session_id=session_id)
                session.add(row)
            row.reported_at, row.kernels_busy, row.terminals_busy = now, activity.kernels_busy, activity.terminals_busy
            row.last_activity, row.gpu_percent = activity.last_activity, activity.gpu_percent
        return True

    def activity_reports(self, session_ids: Collection[int]) -> dict[int, ActivityReport]:
        """The latest report of each of ``session_ids`` that has one."""
        if not session_ids:
            return {}
        with self._read() as session:
            rows = session.scalars(select(SessionActivity).where(SessionActivity.session_id.in_(list(session_ids))))
            return {
                row.session_id: ActivityReport(
                    Activity(row.kernels_busy, row.terminals_busy, row.last_activity, row.gpu_percent), row.reported_at
                )
                for row in rows
            }


__all__ = ["REFRESH", "ActivityReports"]
