"""The ledger's vocabulary (pure): enums, name rules and the plain records the store returns."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from hub.ledger.errors import LedgerInputError
from spawners import names


class ProjectKind(enum.Enum):
    RESEARCH = "research"
    COURSE = "course"
    LAB = "lab"


class ProjectState(enum.Enum):
    ACTIVE = "active"
    CLOSED = "closed"


class Role(enum.Enum):
    PI = "pi"
    MANAGER = "manager"
    MEMBER = "member"
    INSTRUCTOR = "instructor"
    TA = "ta"
    STUDENT = "student"


class SessionState(enum.Enum):
    ADMITTED = "admitted"  # held, job not (yet) running
    RUNNING = "running"
    ENDED = "ended"  # hold released; a charge was written if it ran
    REFUSED = "refused"  # a recorded refusal: never held anything

    @property
    def holds_budget(self) -> bool:
        return self in (SessionState.ADMITTED, SessionState.RUNNING)


class OutsideJobState(enum.Enum):
    RUNNING = "running"  # holds gpus x time limit x weight
    ENDED = "ended"  # no longer running (its final charge comes from sacct like any job's)


class ChargeSource(enum.Enum):
    PORTAL = "portal"  # what the portal observed (provisional)
    SACCT = "sacct"  # Slurm accounting (final)


class ChargeKind(enum.Enum):
    PROVISIONAL = "provisional"
    FINAL = "final"


# --- names ---------------------------------------------------------------------------------------

PROJECT_NAME_RE = names.anchored(names.PROJECT)
ACCOUNT_RE = names.anchored(names.LEDGER_ACCOUNT)
USER_RE = names.anchored(names.LEDGER_USER)
GPU_TYPE_RE = names.anchored(names.GPU_TYPE)
CLUSTER_RE = names.anchored(names.LEDGER_CLUSTER)
SERVER_NAME_RE = names.anchored(names.SERVER_NAME)  # "" is the default server
JOB_ID_RE = names.anchored(names.JOB_ID)  # 123, array task 123_4, het part 123+1
MAX_TEXT = 500


def _check(pattern: re.Pattern[str], value: object, field: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise LedgerInputError(field, f"{rule}, got {value!r}")
    return value


def check_project_name(value: object, field: str = "project") -> str:
    rule = "2 to 40 characters: a lower-case letter, then lower-case letters, digits or '-'"
    return _check(PROJECT_NAME_RE, value, field, rule)


def check_account(value: object, field: str = "account") -> str:
    rule = "a Slurm account: up to 40 lower-case letters, digits, '_' or '-', starting with a letter"
    return _check(ACCOUNT_RE, value, field, rule)


def check_user(value: object, field: str = "user") -> str:
    return _check(USER_RE, value, field, "a Unix user name: up to 32 lower-case letters, digits, '_', '.' or '-'")


def check_gpu_type(value: object, field: str = "gpu_type") -> str:
    return _check(GPU_TYPE_RE, value, field, "a GPU type: up to 32 lower-case letters, digits, '_' or '-'")


def check_cluster(value: object, field: str = "cluster") -> str:
    return _check(CLUSTER_RE, value, field, "a Slurm ClusterName: up to 40 lower-case letters, digits, '_' or '-'")


def check_server_name(value: object, field: str = "server_name") -> str:
    return _check(SERVER_NAME_RE, value, field, "letters, digits, '.', '_' or '-' (empty for the default server)")


def check_job_id(value: object, field: str = "job_id") -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _check(JOB_ID_RE, value, field, "a Slurm job id (digits, optionally _TASK or +COMPONENT)")


def gpu_type_label(gpu_type_counts: Mapping[str, int]) -> str:
    """``{"h200": 2}`` -> ``h200``; several types -> ``a100:2,h200:1``; none -> ``""``."""
    used = {t: n for t, n in sorted(gpu_type_counts.items()) if n}
    if len(used) == 1:
        return next(iter(used))
    return ",".join(f"{t}:{n}" for t, n in used.items())


def check_text(value: object, field: str) -> str:
    """A reason or a who: one line, 1 to 500 printable characters."""
    if not isinstance(value, str) or not value.strip():
        raise LedgerInputError(field, "must not be empty")
    if len(value) > MAX_TEXT:
        raise LedgerInputError(field, f"at most {MAX_TEXT} characters, got {len(value)}")
    if any(not ch.isprintable() for ch in value):
        raise LedgerInputError(field, "one line of printable characters")
    return value.strip()


def check_enum(enum_type: type[enum.Enum], value: object, field: str):
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = "|".join(member.value for member in enum_type)
        raise LedgerInputError(field, f"one of {allowed}, got {value!r}") from None


def check_aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise LedgerInputError(field, f"a timezone-aware datetime, got {value!r}")
    return value


def parse_date(value: object, field: str) -> date | None:
    """ISO ``YYYY-MM-DD`` (or a date, or None)."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise LedgerInputError(field, f"an ISO date YYYY-MM-DD, got {value!r}")


# --- records the store returns (plain values, safe to pass around) ------------------------------


@dataclass(frozen=True)
class Booking:
    """What one session asks the ledger to hold: ``gpus`` of ``gpu_type`` for ``hours``.

    ``gpu_type`` is None only with 0 GPUs; ``hours`` is a number of hours (a multiple of
    0.25, as an int, Decimal, float or decimal string): the ledger checks both when it books.
    """

    gpu_type: str | None
    gpus: int
    hours: object


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    slurm_account: str
    kind: ProjectKind
    state: ProjectState
    state_reason: str | None
    period_start: date | None
    period_end: date | None  # inclusive
    created_at: datetime | None = None


@dataclass(frozen=True)
class MemberUsage:
    user: str
    role: Role
    cap_mgs: int | None
    used_mgs: int
    held_mgs: int

    @property
    def cap_remaining_mgs(self) -> int | None:
        return None if self.cap_mgs is None else self.cap_mgs - self.used_mgs - self.held_mgs


@dataclass(frozen=True)
class ProjectUsage:
    """A project's figures at one instant (all in mgs; see arithmetic)."""

    project: str
    grants_mgs: int
    used_mgs: int
    held_mgs: int
    members: tuple[MemberUsage, ...]

    @property
    def remaining_mgs(self) -> int:
        return self.grants_mgs - self.used_mgs - self.held_mgs


@dataclass(frozen=True)
class MirrorFigures:
    """The ledger's side of the Slurm mirror for one account (or one user association)."""

    limit_mgs: int | None  # the project's grants, or the member's cap (None: no cap, no limit)
    charges_mgs: int  # effective charges (final, else provisional)
    running_reservations_mgs: int  # whole reservations of running portal sessions (not outside jobs)


@dataclass(frozen=True)
class ChargeRecord:
    """One job's effective charge (the final one if imported, else the provisional one)."""

    cluster: str
    job_id: str
    user: str
    project: str
    gpu_type: str  # one type, or "a100:2,h200:1" for a job with several types
    gpus: int
    start: datetime | None
    end: datetime | None
    elapsed_seconds: int
    weighted_mgs: int
    source: ChargeSource
    kind: ChargeKind


@dataclass(frozen=True)
class SessionInfo:
    id: int
    project: str
    user: str
    server_name: str
    job_id: str | None
    gpu_type: str | None
    gpus: int
    reserved_seconds: int
    weight_milli: int
    state: SessionState
    message: str | None
    admitted_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def reservation_mgs(self) -> int:
        return self.gpus * self.reserved_seconds * self.weight_milli


@dataclass(frozen=True)
class OutsideJobSeen:
    """A running job on a project's account as sacct shows it (input of ``sync_outside_jobs``)."""

    job_id: str
    user: str
    account: str
    gpu_type_counts: dict[str, int]
    started_at: datetime
    time_limit_seconds: int


@dataclass(frozen=True)
class OutsideJobInfo:
    """A job on a project's account that the portal did not start, while it runs: it holds
    gpus x time limit x weight (``weighted_gpus_milli`` = sum of count x weight in milli)."""

    cluster: str
    job_id: str
    project: str
    user: str
    gpu_type: str  # one type, or "a100:2,h200:1"
    gpus: int
    weighted_gpus_milli: int
    time_limit_seconds: int
    started_at: datetime
    state: OutsideJobState
    ended_at: datetime | None

    @property
    def reservation_mgs(self) -> int:
        return self.weighted_gpus_milli * self.time_limit_seconds


@dataclass(frozen=True)
class OutsideJobChanges:
    """What ``sync_outside_jobs`` changed: jobs first seen running, and jobs no longer running."""

    started: tuple[OutsideJobInfo, ...]
    ended: tuple[OutsideJobInfo, ...]


@dataclass(frozen=True)
class GrantRecord:
    """One appended grant (signed): the project's budget is their sum."""

    amount_mgs: int
    reason: str
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    """A portal session as the project page lists it: ``cost_mgs`` is the job's effective charge
    once it ended (final if imported, else provisional), the cost so far while it runs, 0 before;
    ``held_mgs`` what it still holds. ``message`` is why it stopped (``stopped: ...``), if noted."""

    id: int
    user: str
    server_name: str
    job_id: str | None
    gpu_type: str | None
    gpus: int
    reserved_seconds: int
    state: SessionState
    message: str | None
    admitted_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    cost_mgs: int
    held_mgs: int
