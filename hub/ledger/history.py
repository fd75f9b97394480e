"""A project's history for the pages, mixed into ``Ledger`` (uses ``_read``, ``_project``, ``_now``).

- ``grant_history``: every grant, oldest first (the budget line of the burn-down chart).
- ``charge_timeline``: when each job's effective charge counted and how much (the burn-down).
- ``project_totals``: every project's budget, used and held at one instant (the admin page):
  the project totals of ``figures``, without the per-member breakdown.
- ``recent_sessions``: the latest portal sessions of a project (refusals left out), each
  with what it cost: its effective charge once it ended, its cost so far while it runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError
from hub.ledger.models import Charge, Grant, PortalSession, Project, effective_charges
from hub.ledger.types import (
    GrantRecord,
    ProjectUsage,
    SessionRecord,
    SessionState,
    check_user,
)

MAX_RECENT_SESSIONS = 500


class ProjectHistory:
    def grant_history(self, name: str) -> list[GrantRecord]:
        """The project's grants, oldest first."""
        with self._read() as session:
            project = self._project(session, name)
            rows = session.scalars(select(Grant).where(Grant.project_id == project.id).order_by(Grant.id))
            return [GrantRecord(row.amount_mgs, row.reason, row.granted_by, row.granted_at) for row in rows]

    def project_totals(self, now: datetime | None = None) -> dict[str, ProjectUsage]:
        """Every project's figures at ``now`` in one read transaction, by name; ``members`` empty.
        The same totals as ``figures`` (the same code), far cheaper for many projects."""
        now = self._now(now)
        with self._read() as session:
            answer = {}
            for project in session.scalars(select(Project).order_by(Project.name)):
                totals, _holding, _outside = self._project_totals(session, project, now)
                answer[project.name] = ProjectUsage(
                    project.name, totals.grants_mgs, totals.used_mgs, totals.held_mgs, ()
                )
            return answer

    def charge_timeline(self, name: str) -> list[tuple[datetime, int]]:
        """(when, mgs) of each job's effective charge, oldest first: the job's end, else its
        start, else when the charge was recorded. Two columns only: a project may have many."""
        with self._read() as session:
            project = self._project(session, name)
            when = func.coalesce(Charge.end_at, Charge.start_at, Charge.recorded_at)
            rows = session.execute(
                select(Charge.end_at, Charge.start_at, Charge.recorded_at, Charge.weighted_mgs)
                .where(Charge.project_id == project.id, effective_charges())
                .order_by(when, Charge.id)
            ).all()  # fmt: skip
            return [(end or start or recorded, int(mgs)) for end, start, recorded, mgs in rows]

    def recent_sessions(
        self, name: str, *, limit: int = 20, user: str | None = None, now: datetime | None = None
    ) -> list[SessionRecord]:
        """The project's latest ``limit`` sessions (of one ``user``, or all), newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RECENT_SESSIONS:
            raise LedgerInputError("limit", f"a whole number from 1 to {MAX_RECENT_SESSIONS}, got {limit!r}")
        if user is not None:
            check_user(user)
        now = self._now(now)
        with self._read() as session:
            project = self._project(session, name)
            query = (
                select(PortalSession)
                .where(PortalSession.project_id == project.id, PortalSession.state != SessionState.REFUSED)
                .order_by(PortalSession.admitted_at.desc(), PortalSession.id.desc())
                .limit(limit)
            )  # fmt: skip
            if user is not None:
                query = query.where(PortalSession.user == user)
            rows = list(session.scalars(query))
            jobs = {(row.cluster, row.job_id) for row in rows if row.job_id is not None}
            charged: dict[tuple[str, str], int] = {}
            if jobs:
                charges = session.execute(
                    select(Charge.cluster, Charge.job_id, Charge.weighted_mgs)
                    .where(Charge.project_id == project.id, Charge.job_id.in_({job for _c, job in jobs}),
                           effective_charges())
                ).all()  # fmt: skip
                charged = {(cluster, job): int(mgs) for cluster, job, mgs in charges if (cluster, job) in jobs}
            return [_record(row, charged, now) for row in rows]


def _record(row: PortalSession, charged: dict[tuple[str, str], int], now: datetime) -> SessionRecord:
    booked = arith.Reservation(row.gpus, row.reserved_seconds, row.weight_milli)
    if row.state is SessionState.RUNNING and row.started_at is not None:
        cost = booked.cost_so_far_mgs(max(0, int((now - row.started_at).total_seconds())))
        held = booked.mgs - cost
    elif row.state is SessionState.ADMITTED:
        cost, held = 0, booked.mgs
    else:  # ended: the effective charge, else what it ran (a job that never started: 0)
        cost = charged.get((row.cluster, row.job_id or ""), booked.cost_so_far_mgs(row.elapsed_seconds or 0))
        held = 0
    return SessionRecord(
        id=row.id, user=row.user, server_name=row.server_name, job_id=row.job_id, gpu_type=row.gpu_type,
        gpus=row.gpus, reserved_seconds=row.reserved_seconds, state=row.state, message=row.message,
        admitted_at=row.admitted_at, started_at=row.started_at, ended_at=row.ended_at, cost_mgs=cost, held_mgs=held,
    )  # fmt: skip
