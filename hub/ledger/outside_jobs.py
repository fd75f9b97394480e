"""Records for the reconciler (``hub/reconcile/reconciler.py``), mixed into ``Ledger``.

- Which job ids already have a final charge, which ones the portal started: one read
  each, so a pass over 30 days of sacct writes only what is new.
- Running jobs on a project's account that the portal did not start ("outside jobs"):
  ``sync_outside_jobs`` keeps ``hpchub_outside_jobs`` equal to what sacct lists as running.
  While running, such a job holds gpus x time limit x weight like a portal session (the
  budget arithmetic of docs/ledger.md): admission, ``figures`` and ``usage`` count it (see
  ``outside_cost``); its final charge is imported from sacct like any job's and ends it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.models import Charge, OutsideJob, PortalSession, Project
from hub.ledger.types import (
    ChargeKind,
    OutsideJobChanges,
    OutsideJobInfo,
    OutsideJobSeen,
    OutsideJobState,
    check_account,
    check_aware,
    check_cluster,
    check_gpu_type,
    check_job_id,
    check_user,
    gpu_type_label,
)


def outside_cost(row: OutsideJob, now: datetime) -> arith.SessionCost:
    """A running outside job as a session: one "GPU" of the job's summed weight (several
    types add up) reserved for its time limit; its cost so far grows with its elapsed time."""
    booked = arith.Reservation(1, row.time_limit_seconds, row.weighted_gpus_milli)
    return arith.SessionCost(booked.mgs, booked.cost_so_far_mgs(max(0, int((now - row.started_at).total_seconds()))))


def outside_job_info(row: OutsideJob, project: str) -> OutsideJobInfo:
    return OutsideJobInfo(
        cluster=row.cluster, job_id=row.job_id, project=project, user=row.user, gpu_type=row.gpu_type,
        gpus=row.gpus, weighted_gpus_milli=row.weighted_gpus_milli, time_limit_seconds=row.time_limit_seconds,
        started_at=row.started_at, state=row.state, ended_at=row.ended_at,
    )  # fmt: skip


def chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    """IN lists of a bounded size (SQLite's limit on bound parameters)."""
    for index in range(0, len(values), size):
        yield values[index : index + size]


def _final_charge_job_ids(session: Session, cluster: str, job_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(job_ids):
        query = select(Charge.job_id).where(
            Charge.cluster == cluster, Charge.kind == ChargeKind.FINAL, Charge.job_id.in_(chunk)
        )
        found.update(session.scalars(query))
    return found


def _portal_job_ids(session: Session, cluster: str, job_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(job_ids):
        query = select(PortalSession.job_id).where(PortalSession.cluster == cluster, PortalSession.job_id.in_(chunk))
        found.update(session.scalars(query))
    return found


class OutsideJobRecords:
    """The reconciler's part of ``Ledger`` (uses its ``_read``, ``_write``, ``_now``,
    ``_project`` and ``rates``)."""

    def final_charge_job_ids(self, cluster: str, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` already have a final charge on ``cluster`` (one read)."""
        check_cluster(cluster)
        wanted = sorted({check_job_id(job_id) for job_id in job_ids})
        with self._read() as session:
            return _final_charge_job_ids(session, cluster, wanted)

    def portal_job_ids(self, cluster: str, job_ids: Iterable[str]) -> set[str]:
        """Which of ``job_ids`` on ``cluster`` the portal started (a session recorded them)."""
        check_cluster(cluster)
        wanted = sorted({check_job_id(job_id) for job_id in job_ids})
        with self._read() as session:
            return _portal_job_ids(session, cluster, wanted)

    def outside_jobs(self, name: str | None = None, *, running_only: bool = True) -> list[OutsideJobInfo]:
        """Jobs the portal did not start (running ones by default), of one project or all."""
        with self._read() as session:
            query = select(OutsideJob, Project.name).join(Project, Project.id == OutsideJob.project_id)
            if name is not None:
                query = query.where(OutsideJob.project_id == self._project(session, name).id)
            if running_only:
                query = query.where(OutsideJob.state == OutsideJobState.RUNNING)
            rows = session.execute(query.order_by(OutsideJob.id))
            return [outside_job_info(row, project) for row, project in rows]

    def sync_outside_jobs(
        self,
        cluster: str,
        accounts: Collection[str],
        running: Iterable[OutsideJobSeen],
        now: datetime | None = None,
    ) -> OutsideJobChanges:
        """Make the running outside jobs of ``accounts`` on ``cluster`` exactly ``running``.

        ``running``: every job sacct lists as running on those accounts. Jobs the portal
        started (a session has the job id), jobs with a final charge and jobs without GPUs
        are skipped. New ones are recorded, known ones refreshed (time limit, GPUs), and
        running rows of those accounts that are not listed any more end. One transaction.
        """
        check_cluster(cluster)
        accounts = {check_account(account) for account in accounts}
        seen: dict[str, tuple[OutsideJobSeen, int]] = {}
        for job in running:
            check_job_id(job.job_id)
            check_user(job.user)
            if check_account(job.account) not in accounts:
                raise LedgerInputError("account", f"job {job.job_id}'s account {job.account} is not being synced")
            check_aware(job.started_at, "started_at")
            arith.check_elapsed_seconds(job.time_limit_seconds, "time_limit_seconds")
            weighted = sum(
                arith.check_gpus(count, f"gpus[{gpu_type}]") * self.rates.weight_milli(check_gpu_type(gpu_type))
                for gpu_type, count in job.gpu_type_counts.items()
            )
            if weighted:
                seen[job.job_id] = (job, weighted)
        now = self._now(now)
        started: list[OutsideJobInfo] = []
        ended: list[OutsideJobInfo] = []
        with self._write() as session:
            projects = {
                row.slurm_account: row
                for row in session.scalars(select(Project).where(Project.slurm_account.in_(sorted(accounts))))
            }
            names = {row.id: row.name for row in projects.values()}
            ids = sorted(seen)
            skip = _portal_job_ids(session, cluster, ids) | _final_charge_job_ids(session, cluster, ids)
            existing = {
                row.job_id: row
                for chunk in chunks(ids)
                for row in session.scalars(
                    select(OutsideJob).where(OutsideJob.cluster == cluster, OutsideJob.job_id.in_(chunk))
                )
            }
            for job_id in ids:
                if job_id in skip:
                    continue
                job, weighted = seen[job_id]
                project = projects.get(job.account)
                if project is None:
                    raise NotFound("account", f"no project has the Slurm account {job.account!r}")
                fields = {
                    "project_id": project.id, "user": job.user, "gpu_type": gpu_type_label(job.gpu_type_counts),
                    "gpus": sum(job.gpu_type_counts.values()), "weighted_gpus_milli": weighted,
                    "time_limit_seconds": job.time_limit_seconds, "started_at": job.started_at,
                    "state": OutsideJobState.RUNNING, "last_seen_at": now, "ended_at": None,
                }  # fmt: skip
                row = existing.get(job_id)
                if row is None:
                    row = OutsideJob(cluster=cluster, job_id=job_id, first_seen_at=now, **fields)
                    session.add(row)
                    started.append(outside_job_info(row, project.name))
                else:
                    was_running = row.state is OutsideJobState.RUNNING
                    for key, value in fields.items():
                        setattr(row, key, value)
                    if not was_running:
                        started.append(outside_job_info(row, project.name))
            kept = set(ids) - skip
            gone = session.scalars(
                select(OutsideJob).where(
                    OutsideJob.cluster == cluster, OutsideJob.state == OutsideJobState.RUNNING,
                    OutsideJob.project_id.in_(list(names)),
                )
            )  # fmt: skip
            for row in gone:
                if row.job_id not in kept:
                    row.state, row.ended_at = OutsideJobState.ENDED, now
                    ended.append(outside_job_info(row, names[row.project_id]))
        return OutsideJobChanges(tuple(started), tuple(ended))
