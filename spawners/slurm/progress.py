"""What the spawn's progress page says, in words (pure: no Slurm, no JupyterHub).

The spawner emits JupyterHub progress events from these sentences: "Submitted as Slurm
job N", "Job N pending: waiting for 2 free h200 GPUs. Slurm estimates a start at 14:05
UTC (in about 12 min).", "Running on gpu02 (Slurm job N)", "Starting Jupyter on gpu02
(Slurm job N)", and JupyterHub's own "ready" (the job id stays in view once the job runs). The pending reason and the estimate come from the shared watcher's one
``squeue`` per interval for all jobs (``%r`` and ``%S``: for a pending job ``%S`` is
Slurm's expected start, the figure ``squeue --start`` prints), never from a call per spawn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from spawners.slurm.types import JobRequest

# Slurm's pending reasons (squeue %r) in words; Resources is worded from the request.
PENDING_REASONS = {
    "Resources": "waiting for free resources",
    "Priority": "lower priority than other jobs",
    "QOSMaxWallDurationPerJobLimit": "held: the requested hours exceed the QOS limit",
    "ReqNodeNotAvail": "a required node is not available",
    "PartitionTimeLimit": "the requested hours exceed the partition's time limit",
    "PartitionNodeLimit": "the request needs more nodes than the partition allows",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "NodeDown": "a required node is down",
    "BeginTime": "waiting for its start time",
    "Dependency": "waiting for another job to finish",
    "JobHeldUser": "held by you (scontrol release to go on)",
    "JobHeldAdmin": "held by an administrator",
    "Reservation": "waiting for its reservation",
    "AssocGrpGRES": "the project's limit of GPUs in use at once is reached",
    "AssocGrpBilling": "the project's limit of GPUs in use at once is reached",
    "AssocMaxJobsLimit": "you have as many jobs running as the project allows",
    "AssocGrpJobsLimit": "the project has as many jobs running as it may",
    "QOSMaxGRESPerUser": "you use as many GPUs at once as your QOS allows",
    "InvalidAccount": "the project's Slurm account is not valid for you",
    "None": "waiting for the scheduler",
}
BUDGET_HOLD_WORDS = "held: project budget"
# GrpTRESMins-type limits (the ledger's Slurm mirror, on the project or on a member's cap):
# AssocGrpBillingMinutes, AssocGrpBillingRunMinutes, AssocGrpGRESMinutes, QOSGrpCPUMinutesLimit, ...
_BUDGET_REASON = re.compile(r"(?:Assoc|QOS)Grp[A-Za-z]*(?:Run)?Minutes(?:Limit)?")


def reason_in_words(reason: str, request: JobRequest | None) -> str:
    """Slurm's pending reason for a person: ``Resources`` with the request's numbers
    ("waiting for 2 free h200 GPUs"), budget limits as "held: project budget"; an unknown
    reason is shown as Slurm's word."""
    if reason == "Resources" and request is not None:
        if request.gpu_type and request.gpus:
            plural = "GPU" if request.gpus == 1 else "GPUs"
            return f"waiting for {request.gpus} free {request.gpu_type} {plural}"
        return f"waiting for free CPUs and memory in partition {request.partition}"
    if _BUDGET_REASON.fullmatch(reason):
        return BUDGET_HOLD_WORDS
    return PENDING_REASONS.get(reason or "None", reason)


def parse_slurm_time(text: str) -> datetime | None:
    """Slurm prints local times without a zone (``2026-11-29T02:16:38``); None for N/A and the like."""
    if not text or not text[:1].isdigit():
        return None
    try:
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    except ValueError:
        return None


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "in under a minute"
    if minutes < 60:
        return f"in about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"in about {hours} h {minutes:02d} min"
    return f"in about {round(hours / 24)} days"


def start_estimate_text(start_time: str, now: datetime) -> str:
    """``Slurm estimates a start at 14:05 UTC (in about 12 min).``; a date is added when the
    start is not today (UTC); "" when Slurm has no estimate."""
    start = parse_slurm_time(start_time)
    if start is None:
        return ""
    now = now.astimezone(timezone.utc)
    if start <= now:
        return "Slurm expects it to start any moment."
    when = start.strftime("%H:%M UTC") if start.date() == now.date() else start.strftime("%a %d %b %H:%M UTC")
    return f"Slurm estimates a start at {when} ({_duration(start - now)})."


def pending_message(job_id: str, reason: str, start_time: str, request: JobRequest | None, now: datetime) -> str:
    """``Job 12 pending: waiting for 2 free h200 GPUs. Slurm estimates a start at 14:05 UTC (in about 12 min).``"""
    message = f"Job {job_id} pending: {reason_in_words(reason, request)}."
    estimate = start_estimate_text(start_time, now)
    return f"{message} {estimate}" if estimate else message


def on_node_message(step: str, node: str, job_id: str) -> str:
    """``Running on gpu02 (Slurm job 12)``: a step on the job's node, with the job id, so the page
    still shows which job it is once the job has left the queue (a quick start skips "pending")."""
    return f"{step} on {node} (Slurm job {job_id})"


@dataclass(frozen=True)
class ProgressEvent:
    """One JupyterHub progress event: a percentage and a sentence."""

    progress: int
    message: str

    def to_json(self) -> dict:
        return {"progress": self.progress, "message": self.message}


# Where each step puts the progress bar (JupyterHub's "ready" is 100).
PROGRESS_SUBMITTING = 10
PROGRESS_SUBMITTED = 20
PROGRESS_PENDING = 30
PROGRESS_RUNNING = 60
PROGRESS_STARTING_JUPYTER = 70
PROGRESS_JUPYTER_STARTED = 90


def cancelled_is_not_ready(spawner, ready_event: dict) -> dict:
    """JupyterHub's progress API may send "Server ready" for a start that was cancelled (Stop
    on the progress page, while the job waits in the queue): say what happened instead, and
    keep the page from reloading into a server that is being stopped."""
    if not getattr(spawner, "start_cancelled", False):
        return ready_event
    job = f"Slurm job {spawner.job_id}" if getattr(spawner, "job_id", "") else "The Slurm job"
    return {"progress": 100, "failed": True,
            "message": f"Start cancelled: {job} is cancelled and its GPU-hour hold released."}  # fmt: skip
