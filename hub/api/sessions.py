"""A notebook session's figures and the extend rules (pure: no database, no framework).

Shared by the REST API (``GET .../session``, ``POST .../extend``) and the home page's
"Your sessions" table, so both show the same numbers. Times are aware datetimes (UTC);
GPU-hours come from the ledger's exact arithmetic (integer mgs), rounded only for JSON.

Budget arithmetic (contract): reservation = gpus x hours x weight; cost so far = gpus x
elapsed x weight (never above the reservation); held = reservation - cost so far. An
extension of H hours reserves gpus x H x weight more and raises the job's time limit to
the session's hours + H, which may not exceed the partition's MaxTime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.api.views import json_object
from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError
from hub.ledger.idle import IDLE_NOTE_PREFIX
from hub.ledger.types import ProjectUsage, SessionInfo, SessionState

EXTEND_KEYS = ("hours",)
SECONDS_PER_MINUTE = 60


@dataclass(frozen=True)
class JobView:
    """What the hub knows of the session's Slurm job besides the ledger."""

    state: str = ""  # pending | running | completing | ended | gone | unknown ("" : not known)
    node: str = ""
    partition: str | None = None
    reason: str = ""  # Slurm's pending reason, if any


def parse_extend_body(body: object) -> int:
    """``{"hours": H}`` -> the added seconds (H > 0, a multiple of 0.25); 400 naming the key."""
    body = json_object(body, EXTEND_KEYS, example='{"hours": 1}')
    if "hours" not in body:
        raise LedgerInputError("hours", f"required: more hours, a multiple of {arith.HOURS_STEP} (> 0)")
    return arith.hours_to_seconds(body["hours"], "hours")


def extended_time_limit_minutes(
    reserved_seconds: int, added_seconds: int, max_minutes: int | None, partition: str | None
) -> int:
    """The job's new total time limit in minutes, or ``hours`` 400 naming the partition's limit.

    ``max_minutes`` None: the partition has no MaxTime (only the ledger's sanity bound applies).
    """
    total_seconds = reserved_seconds + added_seconds
    if total_seconds % SECONDS_PER_MINUTE:
        raise LedgerInputError("hours", f"the new time limit must be whole minutes, got {total_seconds} s")
    if max_minutes is not None and total_seconds > max_minutes * SECONDS_PER_MINUTE:
        where = f"partition {partition}" if partition else "the partition"
        limit = arith.format_hours(max_minutes * SECONDS_PER_MINUTE)
        have = arith.format_hours(reserved_seconds)
        room = max(0, max_minutes * SECONDS_PER_MINUTE - reserved_seconds)
        more = (f"at most {arith.format_hours(room - room % 900)} h more" if room >= 900
                else "no more hours")  # fmt: skip
        raise LedgerInputError(
            "hours",
            f"{where} allows jobs of at most {limit} h (MaxTime); this session has {have} h, so {more} "
            f"(asked for {arith.format_hours(added_seconds)})",
        )
    return total_seconds // SECONDS_PER_MINUTE


def extension_cost_mgs(gpus: int, weight_milli: int, added_seconds: int) -> int:
    """What an extension reserves: gpus x hours x weight (mgs)."""
    return arith.Reservation(gpus, added_seconds, weight_milli).mgs


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def session_json(
    info: SessionInfo,
    now: datetime,
    job: JobView = JobView(),
    extend_hours: int = 1,
    project: ProjectUsage | None = None,
) -> dict[str, Any]:
    """The ``GET .../session`` answer (and the home page's row) for one ledger session.

    ``start`` is the job's start (null while pending), ``end`` = start + time limit (the
    session's reserved hours); ``elapsed_seconds`` and ``seconds_left`` count from ``now``.
    ``extend_cost_gpu_hours`` is what ``extend_hours`` more hours would reserve.
    ``project`` (the project's figures at ``now``) adds ``project_budget_gpu_hours`` and
    ``project_remaining_gpu_hours`` (what ``hpchub usage`` shows), for the notebook's
    budget meter: the server's own token may read its session but not the project.
    """
    booked = arith.Reservation(info.gpus, info.reserved_seconds, info.weight_milli)
    running = info.state is SessionState.RUNNING and info.started_at is not None
    elapsed = max(0, int((now - info.started_at).total_seconds())) if running else 0
    elapsed = min(elapsed, info.reserved_seconds)
    cost = booked.cost_so_far_mgs(elapsed) if running else 0
    end = info.started_at + timedelta(seconds=info.reserved_seconds) if running else None
    state = job.state or ("running" if running else "pending")
    added = extend_hours * arith.SECONDS_PER_HOUR
    answer: dict[str, Any] = {
        "user": info.user,
        "server": info.server_name,
        "project": info.project,
        "job_id": info.job_id,
        "node": job.node or None,
        "state": state,
        "pending_reason": job.reason or None if state == "pending" else None,
        "partition": job.partition,
        "gpu_type": info.gpu_type,
        "gpus": info.gpus,
        "start": _iso(info.started_at if running else None),
        "end": _iso(end),
        "hours_reserved": float(arith.format_hours(info.reserved_seconds)),
        "time_limit_minutes": info.reserved_seconds // SECONDS_PER_MINUTE,
        "elapsed_seconds": elapsed,
        "seconds_left": info.reserved_seconds - elapsed if running else None,
        "reserved_gpu_hours": arith.gpu_hours_json(booked.mgs),
        "cost_so_far_gpu_hours": arith.gpu_hours_json(cost),
        "held_gpu_hours": arith.gpu_hours_json(booked.mgs - cost),
        "extend_hours": extend_hours,
        "extend_cost_gpu_hours": arith.gpu_hours_json(extension_cost_mgs(info.gpus, info.weight_milli, added)),
        # the idle stop's warning (hub/ledger/idle.py): "idle: this session stops at HH:MM UTC unless used ..."
        "idle_notice": info.message if running and (info.message or "").startswith(IDLE_NOTE_PREFIX) else None,
    }
    if project is not None:
        answer["project_budget_gpu_hours"] = arith.gpu_hours_json(project.grants_mgs)
        answer["project_remaining_gpu_hours"] = arith.gpu_hours_json(project.remaining_mgs)
    return answer


def format_duration(seconds: int | None) -> str:
    """``1 h 05 min``, ``12 min``, ``0 min``; ``-`` for None (for the page)."""
    if seconds is None:
        return "-"
    minutes = max(0, seconds) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
