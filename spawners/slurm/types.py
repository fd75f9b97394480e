"""Typed domain objects shared by the Slurm spawner's pure modules.

Nothing here talks to Slurm or JupyterHub: these are plain values that the
validator produces, the script renderer consumes and the watcher caches.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class JobState(enum.Enum):
    """What the portal knows about one Slurm job.

    ``UNKNOWN`` means the scheduler could not be asked (or did not answer):
    it is never read as "the job is gone".
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETING = "completing"
    ENDED = "ended"  # in sacct or squeue with a terminal state
    GONE = "gone"  # neither squeue nor sacct knows the job (after a successful query)
    UNKNOWN = "unknown"

    @property
    def is_active(self) -> bool:
        """True while the job holds (or waits for) resources."""
        return self in (JobState.PENDING, JobState.RUNNING, JobState.COMPLETING)


# Slurm's long state names (squeue %T, sacct State) mapped to ours.
SLURM_STATE_MAP: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "SUSPENDED": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "COMPLETING": JobState.COMPLETING,
    "COMPLETED": JobState.ENDED,
    "CANCELLED": JobState.ENDED,
    "FAILED": JobState.ENDED,
    "TIMEOUT": JobState.ENDED,
    "NODE_FAIL": JobState.ENDED,
    "PREEMPTED": JobState.ENDED,
    "BOOT_FAIL": JobState.ENDED,
    "DEADLINE": JobState.ENDED,
    "OUT_OF_MEMORY": JobState.ENDED,
    "REVOKED": JobState.ENDED,
    "SPECIAL_EXIT": JobState.ENDED,
}


def job_state_from_slurm(slurm_state: str) -> JobState:
    """Map a Slurm state word (``CANCELLED by 1000`` is fine) to a JobState."""
    word = slurm_state.strip().split(" ", 1)[0].rstrip("+").upper()
    return SLURM_STATE_MAP.get(word, JobState.UNKNOWN)


@dataclass(frozen=True)
class JobStatus:
    """One job as the watcher last saw it (plain values, safe to cache)."""

    job_id: str
    state: JobState
    slurm_state: str = ""  # Slurm's own word, e.g. "PENDING", "TIMEOUT"
    reason: str = ""  # Slurm's reason, e.g. "Resources", "AssocGrpBillingMinutes"
    node: str = ""  # batch host (squeue %B), "" while pending
    start_time: str = ""  # ISO time: actual start, or Slurm's estimate while pending
    end_time: str = ""  # ISO time: expected or actual end
    exit_code: str = ""  # sacct ExitCode, e.g. "0:0"


UNKNOWN_STATUS_REASON = "scheduler did not answer"


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as the cluster offers it (from ``sinfo``)."""

    name: str
    is_default: bool
    max_minutes: int | None  # None: no limit ("infinite")
    # GPU type -> most GPUs of that type on a single node of the partition
    gpus_per_node: dict[str, int] = field(default_factory=dict)
    nodes: tuple[str, ...] = ()

    def __hash__(self) -> int:  # dict field: hash by name
        return hash(self.name)


@dataclass(frozen=True)
class ClusterInfo:
    """What the cluster offers: partitions by name."""

    partitions: dict[str, PartitionInfo]

    @property
    def default_partition(self) -> PartitionInfo | None:
        for partition in self.partitions.values():
            if partition.is_default:
                return partition
        return None


@dataclass(frozen=True)
class JobRequest:
    """A validated spawn request: the only thing the script renderer sees."""

    project: str  # the Slurm account charged
    partition: str
    gpu_type: str | None  # None only on a partition without GPUs
    gpus: int
    hours: Decimal  # multiple of 0.25
    environment: str  # catalogue id (or project:NAME later)
    account: str | None = None  # the project's Slurm account when it differs from its name
    reservation: str | None = None  # a course's lab-hours reservation while it is active (set by the hub)

    @property
    def slurm_account(self) -> str:
        return self.account or self.project

    @property
    def time_limit_minutes(self) -> int:
        return int(self.hours * 60)

    def to_options(self) -> dict:
        """Plain JSON-able user_options (what the form would send)."""
        return {
            "project": self.project,
            "partition": self.partition,
            "gpu_type": self.gpu_type,
            "gpus": self.gpus,
            "hours": float(self.hours),
            "environment": self.environment,
        }


# The start of every portal job's comment (``spawners.slurm.script.job_comment``): its tag.
JOB_TAG_PREFIX = "hpchub:"


@dataclass(frozen=True)
class ActiveJob:
    """A job Slurm still holds (pending, running, completing, ...) on one of the portal's accounts,
    as ``squeue --account=...`` lists it (``spawners.slurm.parsers.parse_active_jobs``)."""

    job_id: str  # 123, or an array task 123_4
    account: str
    user: str
    state: str  # Slurm's word: PENDING, RUNNING, COMPLETING, ...
    submitted_at: datetime | None  # UTC; None: Slurm printed none
    comment: str  # the tag; may hold anything a user typed, "|" included

    @property
    def tagged(self) -> bool:
        """Whether the job carries the portal's tag (a forged one included)."""
        return self.comment.startswith(JOB_TAG_PREFIX)


@dataclass(frozen=True)
class SlurmAssociation:
    """One association of ``sacctmgr show associations`` (``spawners.slurm.parsers.parse_associations``)."""

    cluster: str
    account: str
    user: str | None  # None: the account's own association
    partition: str | None
    max_submit_jobs: int | None  # None: no limit


@dataclass(frozen=True)
class AccountingRecord:
    """One job allocation from ``sacct`` for the ledger's reconciler (all users, by account)."""

    job_id: str  # 123, an array task 123_4, or a heterogeneous job's component 123+1
    user: str
    account: str
    state: JobState  # RUNNING or ENDED for the states the reconciler asks for
    slurm_state: str  # Slurm's word: COMPLETED, CANCELLED, TIMEOUT, RUNNING, ...
    elapsed_seconds: int  # ElapsedRaw (so far, for a running job)
    gpu_type_counts: dict[str, int]  # from AllocTRES gres/gpu:TYPE=N; {} without typed GPUs
    untyped_gpus: int  # AllocTRES gres/gpu=N (all GPUs, typed or not)
    start: datetime | None  # None: never started
    end: datetime | None  # None: still running
    cluster: str
    time_limit_minutes: int | None  # TimelimitRaw; None: no limit


@dataclass(frozen=True)
class AssociationUsage:
    """An association's billing figures from ``scontrol show assoc_mgr flags=assoc``.

    Minutes are Slurm billing minutes: ``GrpTRESMins=...billing=LIMIT(USED)`` and
    ``GrpTRESRunMins=...billing=LIMIT(RUNNING)``, where RUNNING is what running jobs still
    reserve (billing x time left).
    """

    cluster: str
    account: str
    user: str | None  # None: the account's own association
    partition: str | None
    billing_limit_minutes: int | None  # GrpTRESMins billing limit; None: no limit ("N")
    billing_used_minutes: int
    billing_running_minutes: int

    @property
    def used_and_running_minutes(self) -> int:
        """S of the Slurm mirror's formula (docs/ledger.md)."""
        return self.billing_used_minutes + self.billing_running_minutes
