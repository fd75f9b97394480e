"""What a reconcile pass decides, as pure functions over Slurm's figures and the ledger's: which
jobs are charged and which still run (the accounting plan), and the limit each association of
the Slurm mirror gets. :mod:`hub.reconcile.reconciler` reads Slurm and the ledger, calls these
and applies what they say; the steps and their reasons are in its docstring and docs/ledger.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerError
from hub.ledger.types import (
    MirrorFigures,
    ProjectInfo,
    check_job_id,
    check_user,
)
from spawners.slurm.types import AccountingRecord, AssociationUsage, JobState

LOOKBACK = timedelta(days=30)  # sacct window for projects without a period start
ENDED_AFTER_S_MARGIN = timedelta(seconds=5)  # clock difference allowed between slurmctld and the portal


class ReconcileError(Exception):
    """The pass cannot go on (Slurm failed or answered something unreadable): one line."""


# --- pure: which jobs are charged, which run --------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One job or account the pass could not handle; ``account``'s limits stay as they are."""

    account: str | None
    message: str


@dataclass(frozen=True)
class AccountingPlan:
    """sacct's jobs sorted out: ended jobs to charge, running jobs, and problems."""

    charges: tuple[AccountingRecord, ...]
    running: tuple[AccountingRecord, ...]
    problems: tuple[Problem, ...]


def counting_start(project: ProjectInfo, tz: tzinfo) -> datetime | None:
    """Jobs that ended before this are not the project's: its period start (midnight in the
    site's time zone), else its creation."""
    if project.period_start is not None:
        return datetime.combine(project.period_start, time(0), tzinfo=tz)
    return project.created_at


def sacct_window_start(projects: Iterable[ProjectInfo], now: datetime, tz: tzinfo) -> datetime:
    """The earliest project start, where a project without a period start counts from 30 days
    ago; never later than now (a period that starts tomorrow still sees today's running jobs)."""
    starts = [
        datetime.combine(p.period_start, time(0), tzinfo=tz) if p.period_start is not None else now - LOOKBACK
        for p in projects
    ]
    return min([*starts, now])


def weighted_gpus_milli(gpu_type_counts: dict[str, int], rates: arith.ChargeRates) -> int:
    """Sum of count x weight (milli) over GPU types: mgs per second of the job."""
    return sum(count * rates.weight_milli(gpu_type) for gpu_type, count in gpu_type_counts.items())


def _job_problem(record: AccountingRecord, cluster: str, rates: arith.ChargeRates) -> str | None:
    try:
        check_job_id(record.job_id)
        check_user(record.user)
    except LedgerError as exc:
        return f"job {record.job_id} on {record.account}: {exc}"
    if record.cluster != cluster:
        return f"job {record.job_id} on {record.account}: cluster {record.cluster!r}, expected {cluster!r}"
    unknown = sorted(set(record.gpu_type_counts) - set(rates.weights))
    if unknown:
        known = ", ".join(rates.gpu_types)
        return f"job {record.job_id} on {record.account}: unknown GPU type {', '.join(unknown)} (known: {known})"
    if record.untyped_gpus > sum(record.gpu_type_counts.values()):
        return (
            f"job {record.job_id} on {record.account}: {record.untyped_gpus} GPUs, "
            f"{sum(record.gpu_type_counts.values())} of them with a type: GPUs without a type cannot be weighted"
        )
    return None


def plan_accounting(
    records: Iterable[AccountingRecord],
    projects: Iterable[ProjectInfo],
    cluster: str,
    rates: arith.ChargeRates,
    tz: tzinfo,
) -> AccountingPlan:
    """Ended jobs that ran (and ended after their project's start) -> charges; running jobs ->
    running; anything the ledger cannot weigh -> problems. Jobs on other accounts are ignored."""
    by_account = {project.slurm_account: project for project in projects}
    charges, running, problems = [], [], []
    for record in records:
        project = by_account.get(record.account)
        if project is None:
            continue
        if record.state is JobState.ENDED:
            since = counting_start(project, tz)
            if record.start is None:  # never ran
                continue
            if since is not None and record.end is not None and record.end < since:  # not this project's
                continue
        elif record.state is not JobState.RUNNING:
            continue
        problem = _job_problem(record, cluster, rates)
        if problem is not None:
            problems.append(Problem(record.account, problem))
        else:
            (running if record.state is JobState.RUNNING else charges).append(record)
    return AccountingPlan(tuple(charges), tuple(running), tuple(problems))


def running_time_limit_seconds(record: AccountingRecord) -> int:
    """A running job's time limit; a job without one reserves what it used so far."""
    if record.time_limit_minutes is None:
        return record.elapsed_seconds
    return record.time_limit_minutes * 60


def reservation_mgs(record: AccountingRecord, rates: arith.ChargeRates) -> int:
    """gpus x time limit x weight of a running job."""
    return weighted_gpus_milli(record.gpu_type_counts, rates) * running_time_limit_seconds(record)


def unused_reservation_mgs(record: AccountingRecord, rates: arith.ChargeRates) -> int:
    """What an ended job did not use of its reservation: gpus x (time limit - elapsed) x weight."""
    if record.time_limit_minutes is None:
        return 0
    unused_seconds = max(0, record.time_limit_minutes * 60 - record.elapsed_seconds)
    return weighted_gpus_milli(record.gpu_type_counts, rates) * unused_seconds


def held_beside_ledger(
    plan: AccountingPlan,
    portal_job_ids: set[str],
    slurm_read_at: datetime,
    rates: arith.ChargeRates,
) -> dict[tuple[str, str | None], int]:
    """What the mirror subtracts besides ``Ledger.mirror_figures``, per (account, user) and per
    (account, None): reservations of running jobs the portal did not start, and the unused
    reservations of jobs that ended after Slurm's figures were read (S still has them)."""
    held: dict[tuple[str, str | None], int] = defaultdict(int)

    def add(record: AccountingRecord, mgs: int) -> None:
        held[(record.account, None)] += mgs
        held[(record.account, record.user)] += mgs

    for record in plan.running:
        if record.job_id not in portal_job_ids:
            add(record, reservation_mgs(record, rates))
    for record in plan.charges:
        if record.end is not None and record.end >= slurm_read_at - ENDED_AFTER_S_MARGIN:
            add(record, unused_reservation_mgs(record, rates))
    return held


# --- pure: the mirror ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitChange:
    """A ``GrpTRESMins`` billing limit to set on an account (``user`` None) or user association."""

    cluster: str
    account: str
    user: str | None
    old_minutes: int | None  # None: no limit now
    new_minutes: int | None  # None: clear the limit (-1)
    slurm_minutes: int  # S

    @property
    def where(self) -> str:
        return self.account if self.user is None else f"{self.account}/{self.user}"

    @property
    def setting(self) -> str:
        return f"billing={-1 if self.new_minutes is None else self.new_minutes}"

    def describe(self) -> str:
        def shown(minutes: int | None) -> str:
            return "none" if minutes is None else str(minutes)

        why = "no cap" if self.new_minutes is None else f"Slurm used+running {self.slurm_minutes}"
        return f"{self.where}: GrpTRESMins billing limit {shown(self.old_minutes)} -> {shown(self.new_minutes)} ({why})"


def mirror_limit(
    usage: AssociationUsage,
    figures: MirrorFigures,
    held_beside_mgs: int,
    *,
    is_open: bool,
    rates: arith.ChargeRates,
) -> int | None:
    """L for one association (None: no limit, for a user without a cap). A project that is
    closed or outside its period gets L = S."""
    if figures.limit_mgs is None:
        return None
    slurm_minutes = usage.used_and_running_minutes
    if not is_open:
        return slurm_minutes
    return arith.slurm_mirror_limit(
        slurm_used_and_running_minutes=slurm_minutes,
        grants_mgs=figures.limit_mgs,
        charges_mgs=figures.charges_mgs,
        running_reservations_mgs=figures.running_reservations_mgs + held_beside_mgs,
        rates=rates,
    )


def closed_limit(usage: AssociationUsage) -> int | None:
    """The limit a closed project's association gets: S when Slurm's limit is above S (what was
    used: nothing new starts), else the limit Slurm has, unchanged; none stays none. The
    reconciler no longer mirrors a closed project: it never raises, sets again or re-creates a
    limit there, so an admin who clears or changes it by hand has the last word."""
    current = usage.billing_limit_minutes
    if current is not None and current > usage.used_and_running_minutes:
        return usage.used_and_running_minutes
    return current


def limit_change(usage: AssociationUsage, new_minutes: int | None) -> LimitChange | None:
    """The change to make, or None when Slurm already has that limit."""
    if usage.billing_limit_minutes == new_minutes:
        return None
    return LimitChange(
        usage.cluster, usage.account, usage.user, usage.billing_limit_minutes, new_minutes,
        usage.used_and_running_minutes,
    )  # fmt: skip


def slurm_cluster(associations: Sequence[AssociationUsage], wanted: str | None) -> str:
    """The cluster slurmctld answered for (``--cluster`` must agree with it)."""
    names = sorted({usage.cluster for usage in associations})
    if len(names) > 1:
        raise ReconcileError(f"scontrol show assoc_mgr answered for several clusters: {', '.join(names)}")
    if wanted is not None and names and names[0] != wanted:
        raise ReconcileError(f"--cluster {wanted}: slurmctld of this SLURM_CONF is cluster {names[0]}")
    if not names and wanted is None:
        raise ReconcileError("slurmctld has no association for any project account (use --cluster to import anyway)")
    return names[0] if names else wanted  # type: ignore[return-value]
