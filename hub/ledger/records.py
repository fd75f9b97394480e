"""The ledger's records: ORM rows turned into the frozen records ``Ledger`` answers with
(``ProjectInfo``, ``SessionInfo``, ``ChargeRecord``), a holding session's cost at a time,
a project's figures in the ``hpchub usage --json`` shape and ``MembershipState``. Kept apart
from ``store``, which stays about the ledger's operations; ``hub.ledger.store`` re-exports
``usage_json`` and ``MembershipState``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from hub.ledger import arithmetic as arith
from hub.ledger.models import Charge, PortalSession, Project
from hub.ledger.period import project_status
from hub.ledger.types import (
    ChargeRecord,
    ProjectInfo,
    ProjectUsage,
    SessionInfo,
    SessionState,
)


def _project_info(row: Project) -> ProjectInfo:
    return ProjectInfo(
        row.name, row.slurm_account, row.kind, row.state, row.state_reason, row.period_start, row.period_end,
        row.created_at,
    )  # fmt: skip


def _session_info(row: PortalSession, project: str) -> SessionInfo:
    return SessionInfo(
        id=row.id, project=project, user=row.user, server_name=row.server_name, job_id=row.job_id,
        gpu_type=row.gpu_type, gpus=row.gpus, reserved_seconds=row.reserved_seconds,
        weight_milli=row.weight_milli, state=row.state, message=row.message, admitted_at=row.admitted_at,
        started_at=row.started_at, ended_at=row.ended_at,
    )  # fmt: skip


def _charge_record(row: Charge, project: str) -> ChargeRecord:
    return ChargeRecord(
        cluster=row.cluster, job_id=row.job_id, user=row.user, project=project, gpu_type=row.gpu_type,
        gpus=row.gpus, start=row.start_at, end=row.end_at, elapsed_seconds=row.elapsed_seconds,
        weighted_mgs=row.weighted_mgs, source=row.source, kind=row.kind,
    )  # fmt: skip


def _elapsed_seconds(since: datetime | None, now: datetime) -> int:
    if since is None:
        return 0
    return max(0, int((now - since).total_seconds()))


def _session_cost(row: PortalSession, now: datetime) -> arith.SessionCost:
    booked = arith.Reservation(row.gpus, row.reserved_seconds, row.weight_milli)
    elapsed = _elapsed_seconds(row.started_at, now) if row.state is SessionState.RUNNING else 0
    return arith.SessionCost(booked.mgs, booked.cost_so_far_mgs(elapsed))


def usage_json(figures: ProjectUsage) -> dict:
    """A project's figures in the ``hpchub usage --json`` shape (GPU-hours, 4 decimals): what
    ``Ledger.usage`` answers, for callers that already hold the figures (the pages)."""
    hours = arith.gpu_hours_json
    return {
        "project": figures.project,
        "budget_gpu_hours": hours(figures.grants_mgs),
        "used_gpu_hours": hours(figures.used_mgs),
        "held_gpu_hours": hours(figures.held_mgs),
        "remaining_gpu_hours": hours(figures.remaining_mgs),
        "members": [
            {
                "user": member.user,
                "role": member.role.value,
                "cap_gpu_hours": None if member.cap_mgs is None else hours(member.cap_mgs),
                "used_gpu_hours": hours(member.used_mgs),
                "held_gpu_hours": hours(member.held_mgs),
            }
            for member in figures.members
        ],
    }


def period_json(info: ProjectInfo, today: date) -> dict:
    """A project's state as people see it (``active``, ``expired`` past its end date, ``closed``)
    and its inclusive end date, for ``usage --json`` and the API."""
    return {
        "state": project_status(info.state, info.period_end, today).value,
        "period_end": None if info.period_end is None else info.period_end.isoformat(),
    }


@dataclass(frozen=True)
class MembershipState:
    """A user's memberships in one project: one is active; one (an earlier period) ended."""

    active: bool
    ended: bool
