"""``hpchub reconcile``: final charges from Slurm accounting, and the Slurm mirror.

One pass (the budget arithmetic of docs/ledger.md):

1. **Slurm's figures at one instant**: one ``scontrol show assoc_mgr accounts=A,B,...
   flags=assoc`` gives, for every account and user association of the project accounts,
   the ``GrpTRESMins`` billing limit and used minutes and the ``GrpTRESRunMins`` billing
   minutes that running jobs still reserve. S = used + running. The records also name the
   cluster (``ClusterName``).
2. **Accounting**: one ``sacct`` for every job on the project accounts (all users, portal
   or not) that ended or runs since the earliest project start (30 days back for a project
   without a start). See ``SlurmClient.sacct_accounts``.
3. **Final charges**: every ended job that ran is imported with
   ``Ledger.import_final_charge`` (ElapsedRaw x ``gres/gpu:TYPE`` count x weight), once:
   jobs that already have a final charge are not written again. Jobs without GPUs (the
   ``cpu`` partition) are imported too, at 0: the charge list then shows every job that
   ran on the account, and a portal session without GPUs ends like any other. Jobs that
   never started (cancelled while pending) and jobs that ended before the project's
   start (its period start, else its creation) are not the project's.
4. **Running jobs the portal did not start** are recorded (``Ledger.sync_outside_jobs``):
   until they end they hold gpus x time limit x weight against the project and the user's
   cap, in admission, ``usage`` and the API alike.
5. **The mirror**, per project account and per user association on it:
   L = S + floor(120 x (grants - charges - reservations of every job running on the
   account)), never below S (``arithmetic.slurm_mirror_limit``), set with ``sacctmgr``
   only when it differs from the current limit. For a user the cap replaces the grants
   and only their jobs count; a user without a cap gets no limit (``-1`` clears one). A
   project outside its period gets L = S: nothing new starts in Slurm either. A **closed**
   project is no longer mirrored: a limit above S is lowered to S once (what was used), and
   nothing else is ever set on its associations again (a limit an admin cleared or changed
   stays as they left it). Limits are set only on a project's own **leaf** account
   (``course_accounts.mirror_refusal``, from Slurm's account tree read in the same pass):
   never on ``root`` or on a parent of other accounts, whose limits would bind every account
   under it; such a project is one problem line and its associations are left alone.
6. **Orphans** (``hub/ledger/orphans.py``, the orphan rule of docs/faults.md): one ``squeue`` of the
   active jobs on the project accounts with their comments; a job tagged ``hpchub:`` that no
   portal session of its own user records, submitted more than the grace ago, is cancelled
   (``scancel``, as the reconciler's user: root or a Slurm operator), noted in the ledger and
   reported; never adopted. A session admitted long before (grace + 60 s) that never got a job
   id has its hold released. Off when ``orphan_grace`` is None.
7. **Memberships -> associations** (``hub/reconcile/memberships.py``): one ``sacctmgr show
   associations`` for every project account; an active member without a user association
   gets one, an ended membership first blocks new jobs (``MaxSubmitJobs=0``) and, in a later
   pass when no job of the user is active on the account (the orphan step's ``squeue``, else
   one of its own), loses it. Each
   change is one sacctmgr command, a failure one problem line for that association.

After a pass, ``run_reconcile``'s ``after_pass`` runs the watches that ``hpchub reconcile`` wires in
(hub/commands/ledger.py): the budget watch and the idle stop, then the **notices**
(``hub/reconcile/notices.py``): the period check (30/7/1-day warnings, expired projects, spaces due
for archiving), the budget warnings by mail, and sending the queued mail to ``c.HPCHubMail``'s relay.

Why S is read first: Slurm's figures and the ledger cannot be read at the same instant.
A job that starts after S was read is subtracted by the ledger but not yet in S (L is a
little low until the next pass: safe). A job that ends after S was read is in S with the
rest of its reservation while the ledger already holds only its charge; for such jobs
(sacct End at or after S's read, minus 5 s for clocks) the mirror also subtracts
the unused part of their reservation, so Slurm cannot overspend in between either.

A failed or unreadable Slurm answer stops the pass (never read as "no jobs"). A problem
with one job (an unknown GPU type, GPUs without a type) is reported, and that account's
limits are left as they are until it is fixed. Exit 0 ok, 1 on any problem.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from hub.ledger import arithmetic as arith
from hub.ledger.course_accounts import mirror_refusal
from hub.ledger.errors import LedgerError
from hub.ledger.orphans import STALE_ADMISSION_MARGIN, find_orphans
from hub.ledger.store import Ledger
from hub.ledger.types import (
    OutsideJobSeen,
    ProjectInfo,
    ProjectState,
)
from hub.reconcile.memberships import (
    AssociationChange,
    Verb,
    apply_change,
    plan_memberships,
)
from hub.reconcile.plan import (
    AccountingPlan,
    LimitChange,
    Problem,
    ReconcileError,
    closed_limit,
    counting_start,
    held_beside_ledger,
    limit_change,
    mirror_limit,
    plan_accounting,
    running_time_limit_seconds,
    sacct_window_start,
    slurm_cluster,
    weighted_gpus_milli,
)
from spawners.slurm.accounts import AccountTree, parse_account_tree
from spawners.slurm.client import SlurmClient, SlurmCommandError
from spawners.slurm.parsers import (
    parse_accounting,
    parse_active_jobs,
    parse_assoc_mgr,
    parse_associations,
)
from spawners.slurm.types import AccountingRecord, ActiveJob, AssociationUsage

SLURM_TIMEOUT_SECONDS = 120.0  # sacct over weeks of jobs takes longer than a squeue


T = TypeVar("T")


# --- lines ----------------------------------------------------------------------------------------


def _gpus(gpu_type_counts: dict[str, int]) -> str:
    used = {t: n for t, n in sorted(gpu_type_counts.items()) if n}
    return " + ".join(f"{n} x {t}" for t, n in used.items()) or "0 GPUs"


def charge_line(record: AccountingRecord, mgs: int, *, dry_run: bool) -> str:
    verb = "would charge" if dry_run else "charged"
    what = f"{_gpus(record.gpu_type_counts)} x {record.elapsed_seconds} s"
    gpu_hours = arith.format_gpu_hours(mgs)
    return f"{verb} job {record.job_id} on {record.account} ({record.user}): {what} = {gpu_hours} GPU-h"


def outside_line(job_id: str, account: str, user: str, held_mgs: int | None, *, dry_run: bool) -> str:
    prefix = "would record " if dry_run else ""
    if held_mgs is None:
        return f"{prefix}outside job {job_id} on {account} ({user}) no longer running"
    return f"{prefix}outside job {job_id} on {account} ({user}) running: holds {arith.format_gpu_hours(held_mgs)} GPU-h"


# --- one pass (thin I/O) ----------------------------------------------------------------------------


@dataclass
class PassReport:
    lines: list[str] = field(default_factory=list)  # one per change (stdout)
    problems: list[Problem] = field(default_factory=list)  # one line each (stderr)


async def _slurm(what: str, call: Awaitable[str], parse: Callable[[str], T]) -> T:
    """Await a Slurm query and parse it; a failure or an unreadable answer stops the pass."""
    try:
        text = await call
    except SlurmCommandError as exc:
        raise ReconcileError(str(exc)) from None
    try:
        return parse(text)
    except ValueError as exc:
        raise ReconcileError(f"{what}: unreadable answer: {exc}") from None


async def reconcile_pass(
    ledger: Ledger,
    client: SlurmClient,
    *,
    cluster: str | None = None,
    dry_run: bool = False,
    prune_unknown_associations: bool = False,
    orphan_grace: timedelta | None = None,
) -> PassReport:
    """One pass (module docstring). Raises ReconcileError when Slurm fails; per-job and
    per-account problems are in the report. ``dry_run`` changes neither the ledger nor Slurm.
    ``prune_unknown_associations``: also block and remove user associations on project accounts
    of users who never were members (default: the site's own associations are left alone).
    ``orphan_grace``: cancel tagged jobs no session records once they are that old (None: off)."""
    report = PassReport()
    projects = ledger.projects()
    if not projects:
        return report
    accounts = sorted(project.slurm_account for project in projects)

    slurm_read_at = ledger.clock()  # S first: see "Why S is read first"
    associations = await _slurm("scontrol show assoc_mgr", client.assoc_mgr(accounts), parse_assoc_mgr)
    cluster = slurm_cluster(associations, cluster)
    window = sacct_window_start(projects, ledger.clock(), ledger.site_timezone)
    records = await _slurm("sacct", client.sacct_accounts(accounts, start=window, cluster=cluster), parse_accounting)
    plan = plan_accounting(records, projects, cluster, ledger.rates, ledger.site_timezone)
    report.problems.extend(plan.problems)
    tree = await _slurm("sacctmgr show associations (the account tree)", client.account_tree(),
                        parse_account_tree)  # fmt: skip
    foreign = _not_own_leaf(projects, tree, report)

    pending = _import_charges(ledger, cluster, plan, report, dry_run=dry_run)
    portal = ledger.portal_job_ids(cluster, [record.job_id for record in plan.running])
    outside = [record for record in plan.running if record.job_id not in portal]
    try:
        report.lines.extend(_sync_outside(ledger, cluster, accounts, outside, dry_run=dry_run))
    except LedgerError as exc:  # the mirror takes running jobs from sacct, not from this record
        report.problems.append(Problem(None, f"running jobs the portal did not start not recorded: {exc}"))

    active = None
    if orphan_grace is not None:
        active = await _cancel_orphans(ledger, client, cluster, accounts, orphan_grace, report, dry_run=dry_run)

    held = held_beside_ledger(plan, portal, slurm_read_at, ledger.rates)
    running_ids = {(cluster, record.job_id) for record in plan.running}
    by_association = {(usage.account, usage.user): usage for usage in associations if usage.partition is None}
    skipped = {problem.account for problem in report.problems}
    for project in projects:
        account = project.slurm_account
        if account in foreign:
            continue
        if account in skipped:
            report.problems.append(Problem(account, f"{account}: Slurm limits left as they are (problems above)"))
        elif dry_run and pending[account]:
            waiting = pending[account]
            report.lines.append(f"{account}: limits not computed in a dry run ({waiting} charges to import first)")
        elif (account, None) not in by_association:
            report.problems.append(Problem(account, f"{account}: no Slurm association on cluster {cluster}"))
        else:
            for change in _mirror_changes(ledger, project, by_association, held, running_ids, report):
                await _apply(client, change, report, dry_run=dry_run)
    await _sync_memberships(
        ledger, client, [p for p in projects if p.slurm_account not in foreign], cluster, held, running_ids, report,
        dry_run=dry_run, prune_unknown=prune_unknown_associations, active=active,
    )  # fmt: skip
    return report


def _not_own_leaf(projects: Sequence[ProjectInfo], tree: AccountTree, report: PassReport) -> set[str]:
    """The project accounts the pass leaves alone (no limits, no associations): root and parents
    of other accounts (``course_accounts.mirror_refusal``); one problem line each for an open
    project (a closed one is no longer mirrored anyway)."""
    foreign = set()
    for project in projects:
        refusal = mirror_refusal(project.slurm_account, tree)
        if refusal is None:
            continue
        foreign.add(project.slurm_account)
        if project.state is not ProjectState.CLOSED:
            report.problems.append(Problem(project.slurm_account, f"project {project.name}: {refusal}"))
    return foreign


async def _cancel_orphans(
    ledger: Ledger,
    client: SlurmClient,
    cluster: str,
    accounts: list[str],
    grace: timedelta,
    report: PassReport,
    *,
    dry_run: bool,
) -> list[ActiveJob] | None:
    """Step 6: release stale holds; cancel, note and report the orphans; returns the listing
    (None if squeue failed, which is one problem line: the rest of the pass goes on)."""
    if not dry_run:
        try:
            stale = ledger.release_stale_admissions(cluster, ledger.clock() - grace - STALE_ADMISSION_MARGIN)
        except (LedgerError, SQLAlchemyError) as exc:
            report.problems.append(Problem(None, f"stale holds not released: {exc}"))
        else:
            report.lines += [f"released the hold of session {sid} ({project}, {user}/{server}): admitted at "
                             f"{admitted:%Y-%m-%d %H:%M:%S} UTC, the hub never recorded a job for it"
                             for sid, project, user, server, admitted in stale]  # fmt: skip
    try:
        jobs = parse_active_jobs(await client.squeue_account_jobs(accounts))
    except SlurmCommandError as exc:
        report.problems.append(Problem(None, f"orphan check skipped: {exc}"))
        return None
    except ValueError as exc:
        report.problems.append(Problem(None, f"orphan check skipped: squeue: unreadable answer: {exc}"))
        return None
    tagged = [job for job in jobs if job.tagged and job.job_id.isdigit()]
    records = ledger.portal_records(cluster, [job.job_id for job in tagged]) if tagged else {}
    for orphan in find_orphans(tagged, records, ledger.clock(), grace):
        job = orphan.job
        if not dry_run:
            try:
                await client.scancel(job.job_id)
            except SlurmCommandError as exc:
                report.problems.append(Problem(None, f"orphan job {job.job_id} on {job.account}: not cancelled: {exc}"))
                continue
            try:
                ledger.record_orphan(cluster, job.job_id, account=job.account, user=job.user, tag=job.comment,
                                     reason=orphan.reason, submitted_at=job.submitted_at)  # fmt: skip
            except LedgerError as exc:
                report.problems.append(Problem(None, f"orphan job {job.job_id} cancelled but not noted: {exc}"))
        report.lines.append(orphan.line(dry_run=dry_run))
    return jobs


def _import_charges(
    ledger: Ledger, cluster: str, plan: AccountingPlan, report: PassReport, *, dry_run: bool
) -> dict[str, int]:
    """Import the final charges not imported yet (one read finds them); returns, per account,
    how many there were."""
    imported = ledger.final_charge_job_ids(cluster, [record.job_id for record in plan.charges])
    pending: dict[str, int] = defaultdict(int)
    for record in plan.charges:
        if record.job_id in imported:
            continue
        pending[record.account] += 1
        if not dry_run:
            try:
                ledger.import_final_charge(
                    cluster, record.job_id, record.user, record.account, record.gpu_type_counts,
                    record.start, record.end, record.elapsed_seconds,
                )  # fmt: skip
            except LedgerError as exc:
                report.problems.append(Problem(record.account, f"job {record.job_id} on {record.account}: {exc}"))
                continue
        mgs = arith.final_charge_mgs(record.elapsed_seconds, record.gpu_type_counts, ledger.rates)
        report.lines.append(charge_line(record, mgs, dry_run=dry_run))
    return pending


def _is_open(ledger: Ledger, project: ProjectInfo) -> bool:
    return arith.project_closed_reason(
        project.name, state=project.state.value, state_reason=project.state_reason,
        period_start=project.period_start, period_end=project.period_end,
        today=ledger.clock().astimezone(ledger.site_timezone).date(),
    ) is None  # fmt: skip


def _mirror_changes(
    ledger: Ledger,
    project: ProjectInfo,
    by_association: dict[tuple[str, str | None], AssociationUsage],
    held: dict[tuple[str, str | None], int],
    running_ids: set[tuple[str, str]],
    report: PassReport,
) -> list[LimitChange]:
    """The limit changes of one project's account association and its user associations."""
    account = project.slurm_account
    is_open = _is_open(ledger, project)
    closed = project.state is ProjectState.CLOSED
    users = sorted(user for (acc, user) in by_association if acc == account and user is not None)
    changes = []
    try:
        for user in [None, *users]:
            usage = by_association[(account, user)]
            if closed:
                new = closed_limit(usage)
            else:
                figures = ledger.mirror_figures(project.name, user, running_job_ids=running_ids)
                new = mirror_limit(usage, figures, held.get((account, user), 0), is_open=is_open, rates=ledger.rates)
            change = limit_change(usage, new)
            if change is not None:
                changes.append(change)
    except LedgerError as exc:
        report.problems.append(Problem(account, f"{account}: {exc}"))
        return []
    return changes


async def _apply(client: SlurmClient, change: LimitChange, report: PassReport, *, dry_run: bool) -> None:
    if not dry_run:
        try:
            if change.user is None:
                await client.sacctmgr_modify(
                    "account", change.account, cluster=change.cluster, settings={"GrpTRESMins": change.setting}
                )
            else:
                await client.sacctmgr_modify(
                    "user", change.user, account=change.account, cluster=change.cluster,
                    settings={"GrpTRESMins": change.setting},
                )  # fmt: skip
        except SlurmCommandError as exc:
            report.problems.append(Problem(change.account, f"{change.where}: {exc}"))
            return
    report.lines.append(("would set " if dry_run else "") + change.describe())


async def _sync_memberships(
    ledger: Ledger,
    client: SlurmClient,
    projects: Sequence[ProjectInfo],
    cluster: str,
    held: dict[tuple[str, str | None], int],
    running_ids: set[tuple[str, str]],
    report: PassReport,
    *,
    dry_run: bool,
    prune_unknown: bool,
    active: list[ActiveJob] | None = None,
) -> None:
    """Step 7: user associations follow the memberships (``hub/reconcile/memberships.py``). Runs after
    the mirror (a removed association must not be modified by it). A failed read is one problem
    line and changes nothing; a failed change is one line for that association."""
    accounts = sorted(project.slurm_account for project in projects)
    try:
        associations = parse_associations(await client.sacctmgr_associations(accounts, cluster=cluster))
    except SlurmCommandError as exc:
        report.problems.append(Problem(None, f"associations not synced with memberships: {exc}"))
        return
    except ValueError as exc:
        report.problems.append(Problem(None, f"associations not synced with memberships: unreadable answer: {exc}"))
        return
    plan = plan_memberships(ledger.membership_states(), associations, accounts, cluster, prune_unknown=prune_unknown)
    changes = list(plan.changes)
    if plan.removals:
        removal_accounts = sorted({change.account for change in plan.removals})
        try:
            if active is not None:  # the orphan step's listing covers every project account
                busy = {(job.account, job.user) for job in active}
            else:
                busy = {(job.account, job.user)
                        for job in parse_active_jobs(await client.squeue_account_jobs(removal_accounts))}  # fmt: skip
        except (SlurmCommandError, ValueError) as exc:
            for change in plan.removals:
                report.problems.append(
                    Problem(change.account, f"{change.where}: association not removed: squeue: {exc}")
                )
        else:
            changes += [change for change in plan.removals if (change.account, change.user) not in busy]
    by_account = {project.slurm_account: project for project in projects}
    for change in changes:
        try:
            if change.verb is Verb.ADD:
                change = _with_cap_limit(ledger, by_account[change.account], change, held, running_ids)
            if not dry_run:
                await apply_change(client, change)
        except (SlurmCommandError, ValueError, LedgerError) as exc:
            report.problems.append(Problem(change.account, f"{change.where}: {exc}"))
            continue
        report.lines.append(change.describe(dry_run=dry_run))


def _with_cap_limit(
    ledger: Ledger,
    project: ProjectInfo,
    change: AssociationChange,
    held: dict[tuple[str, str | None], int],
    running_ids: set[tuple[str, str]],
) -> AssociationChange:
    """A new association of a member with a cap gets its mirror limit at once (S = 0: a new
    association has used nothing in Slurm), so the cap holds before the next pass. A closed
    project's new associations get none (it is no longer mirrored)."""
    if project.state is ProjectState.CLOSED:
        return change
    figures = ledger.mirror_figures(project.name, change.user, running_job_ids=running_ids)
    fresh = AssociationUsage(change.cluster, change.account, change.user, None, None, 0, 0)
    limit = mirror_limit(fresh, figures, held.get((change.account, change.user), 0),
                         is_open=_is_open(ledger, project), rates=ledger.rates)  # fmt: skip
    if limit is None:
        return change
    return AssociationChange(change.verb, change.cluster, change.account, change.user, change.member,
                             {"GrpTRESMins": f"billing={limit}"})  # fmt: skip


def _sync_outside(
    ledger: Ledger, cluster: str, accounts: list[str], outside: list[AccountingRecord], *, dry_run: bool
) -> list[str]:
    seen = [
        OutsideJobSeen(
            job_id=record.job_id,
            user=record.user,
            account=record.account,
            gpu_type_counts=record.gpu_type_counts,
            started_at=record.start or ledger.clock(),
            time_limit_seconds=running_time_limit_seconds(record),
        )  # fmt: skip
        for record in outside
        if any(record.gpu_type_counts.values())
    ]
    if not dry_run:
        changes = ledger.sync_outside_jobs(cluster, accounts, seen)
        started = [outside_line(j.job_id, j.project, j.user, j.reservation_mgs, dry_run=False) for j in changes.started]
        return started + [outside_line(j.job_id, j.project, j.user, None, dry_run=False) for j in changes.ended]
    known = {job.job_id: job for job in ledger.outside_jobs() if job.cluster == cluster}
    charged = ledger.final_charge_job_ids(cluster, [job.job_id for job in seen])
    listed = {job.job_id for job in seen if job.job_id not in charged}
    lines = [
        outside_line(job.job_id, job.account, job.user,
                     weighted_gpus_milli(job.gpu_type_counts, ledger.rates) * job.time_limit_seconds, dry_run=True)
        for job in seen if job.job_id in listed and job.job_id not in known
    ]  # fmt: skip
    gone = [job for job in known.values() if job.job_id not in listed]
    lines += [outside_line(job.job_id, job.project, job.user, None, dry_run=True) for job in gone]
    return lines


# --- the command ----------------------------------------------------------------------------------


def _say(line: str, *, stamped: bool = False, stream=None) -> None:
    """One log line; the daemon's lines carry the UTC time (its log file has no other clock)."""
    if stamped:
        line = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S}Z {line}"
    print(line, file=stream or sys.stdout, flush=True)


def _print_report(report: PassReport, *, stamped: bool = False) -> None:
    for line in report.lines:
        _say(line, stamped=stamped)
    for problem in report.problems:
        _say(f"hpchub reconcile: {problem.message}", stamped=stamped, stream=sys.stderr)


async def run_reconcile(
    ledger: Ledger,
    client: SlurmClient,
    *,
    every: float | None = None,
    cluster: str | None = None,
    dry_run: bool = False,
    after_pass=None,
    pause_file: str | None = None,
    prune_unknown_associations: bool = False,
    orphan_grace: timedelta | None = None,
) -> int:
    """One pass (exit 0, or 1 on any problem), or with ``every`` a pass every so many seconds
    until SIGTERM or SIGINT (exit 0); a failed pass is reported and the next one comes.
    ``after_pass()`` (e.g. the budget watch) runs after each successful pass and returns log lines.
    While ``pause_file`` exists the loop skips its passes (maintenance: Slurm or the ledger
    being worked on); it says so once when it pauses and once when it resumes."""
    if every is None:
        try:
            report = await reconcile_pass(
                ledger,
                client,
                cluster=cluster,
                dry_run=dry_run,
                prune_unknown_associations=prune_unknown_associations,
                orphan_grace=orphan_grace,
            )
        except ReconcileError as exc:
            print(f"hpchub reconcile: {exc}", file=sys.stderr)
            return 1
        _print_report(report)
        if after_pass is not None and not dry_run:
            for line in await asyncio.to_thread(after_pass):
                print(line, flush=True)
        return 1 if report.problems else 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    paused = False
    try:
        while not stop.is_set():
            if pause_file and os.path.exists(pause_file):
                if not paused:
                    _say(f"hpchub reconcile: paused while {pause_file} exists", stamped=True)
                paused = True
                try:
                    await asyncio.wait_for(stop.wait(), min(every, 1.0))
                except TimeoutError:
                    pass
                continue
            if paused:
                _say("hpchub reconcile: resumed", stamped=True)
                paused = False
            try:
                _print_report(
                    await reconcile_pass(
                        ledger,
                        client,
                        cluster=cluster,
                        dry_run=dry_run,
                        prune_unknown_associations=prune_unknown_associations,
                        orphan_grace=orphan_grace,
                    ),
                    stamped=True,
                )
                if after_pass is not None and not dry_run:
                    for line in await asyncio.to_thread(after_pass):
                        _say(line, stamped=True)
            except (ReconcileError, LedgerError) as exc:
                _say(f"hpchub reconcile: {exc}", stamped=True, stream=sys.stderr)
            except SQLAlchemyError as exc:  # e.g. the database is briefly unreachable: the next pass retries
                detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                _say(f"hpchub reconcile: ledger database: {detail}", stamped=True, stream=sys.stderr)
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0


__all__ = [
    "AccountingPlan",
    "LimitChange",
    "PassReport",
    "Problem",
    "ReconcileError",
    "closed_limit",
    "counting_start",
    "held_beside_ledger",
    "limit_change",
    "mirror_limit",
    "plan_accounting",
    "reconcile_pass",
    "run_reconcile",
    "sacct_window_start",
    "slurm_cluster",
]
