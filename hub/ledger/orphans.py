"""The orphan rule (docs/faults.md), for the reconciler (``hub/reconcile/reconciler.py``).

The hub records a job id the moment ``sbatch`` returns (the spawner writes it to its
JupyterHub state and to the ledger's session). A job that carries the portal's tag (a
comment starting ``hpchub:``, see ``spawners.slurm.script.job_comment``) on a project's
account and that no portal session records is an orphan:

- the hub died between ``sbatch`` returning and the record being committed, or
- a user submitted it by hand with a forged tag (``sbatch --comment=hpchub:user=alice,...``), or
- its session belongs to another user than the one the job runs as, or
- its session ended more than the grace ago (the hub stopped tracking it, e.g. a stop
  whose ``scancel`` failed).

Orphans are cancelled (``scancel``) and reported (one line per job, a row in
``hpchub_orphan_jobs``, the metric ``hpchub_orphan_jobs_cancelled_total``); they are never
adopted: the hub adopts only the job id in a server's own saved state, for that server's
owner. Their usage is still charged: while running they are outside jobs (they hold
gpus x time limit x weight), and their final charge comes from sacct like any job's.

The grace: a job submitted less than ``grace`` ago is left alone (the hub may be between
``sbatch`` and its commit); so is a job whose session ended less than ``grace`` ago (the
hub's ``scancel`` may still be under way).

Holds follow the same rule: a session admitted more than ``grace`` + ``STALE_ADMISSION_MARGIN``
ago that still has no job id will never get one (sbatch has a timeout far below that; the hub
died or could not write between admission and the record), so its hold is released.

Pure planning (``find_orphans``, over the jobs ``spawners.slurm.parsers.parse_active_jobs``
reads) plus the ledger's records (``OrphanRecords``, mixed into ``Ledger``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from hub.ledger.errors import NotFound
from hub.ledger.models import OrphanJob, PortalSession, Project
from hub.ledger.outside_jobs import chunks
from hub.ledger.types import (
    SessionState,
    check_account,
    check_aware,
    check_cluster,
    check_job_id,
    check_text,
    check_user,
)

if TYPE_CHECKING:  # the ledger imports nothing of the Slurm layer at run time: jobs are read by duck type
    from spawners.slurm.types import ActiveJob

MAX_TAG_CHARS = 200
# squeue states of a job that is already going away: nothing to cancel.
ENDING_STATES = frozenset({"COMPLETING", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                           "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "SPECIAL_EXIT"})  # fmt: skip
DEFAULT_GRACE = timedelta(seconds=120)
STALE_ADMISSION_MARGIN = timedelta(seconds=60)  # beyond the grace; more than the spawner's sbatch timeout (30 s)


@dataclass(frozen=True)
class PortalRecord:
    """What the ledger knows of a job id: the session's owner, server and end."""

    user: str
    server_name: str
    ended_at: datetime | None


@dataclass(frozen=True)
class Orphan:
    job: ActiveJob
    reason: str

    def line(self, *, dry_run: bool) -> str:
        verb = "would cancel" if dry_run else "cancelled"
        job = self.job
        return (f"{verb} orphan job {job.job_id} on {job.account} ({job.user}), tagged {job.comment[:80]!r}: "
                f"{self.reason}; never adopted, its usage is charged as an outside job")  # fmt: skip


def find_orphans(
    jobs: Iterable[ActiveJob], records: Mapping[str, PortalRecord], now: datetime, grace: timedelta
) -> list[Orphan]:
    """The tagged, still active jobs older than ``grace`` that no session of their own user
    records (module docstring). Only plain job ids (the portal submits nothing else)."""
    orphans = []
    for job in jobs:
        if not job.tagged or job.state in ENDING_STATES or not job.job_id.isdigit():
            continue
        if job.submitted_at is None or now - job.submitted_at < grace:
            continue  # the hub may be between sbatch and its record
        record = records.get(job.job_id)
        if record is None:
            reason = "no portal session records it"
        elif record.user != job.user:
            reason = f"its portal session belongs to {record.user}, not to {job.user}"
        elif record.ended_at is not None and now - record.ended_at >= grace:
            reason = (
                f"its portal session ended at {record.ended_at:%Y-%m-%d %H:%M:%S} UTC and the hub no longer tracks it"
            )
        else:
            continue
        orphans.append(Orphan(job, reason))
    return orphans


@dataclass(frozen=True)
class OrphanJobInfo:
    cluster: str
    job_id: str
    project: str
    user: str
    tag: str
    reason: str
    submitted_at: datetime | None
    cancelled_at: datetime


class OrphanRecords:
    """The orphan rule's part of ``Ledger`` (uses its ``_read``, ``_write`` and ``_now``)."""

    def portal_records(self, cluster: str, job_ids: Iterable[str]) -> dict[str, PortalRecord]:
        """The sessions that recorded ``job_ids`` on ``cluster`` (one read)."""
        check_cluster(cluster)
        wanted = sorted({check_job_id(job_id) for job_id in job_ids})
        found: dict[str, PortalRecord] = {}
        with self._read() as session:
            for chunk in chunks(wanted):
                rows = session.execute(
                    select(PortalSession.job_id, PortalSession.user, PortalSession.server_name,
                           PortalSession.state, PortalSession.ended_at)
                    .where(PortalSession.cluster == cluster, PortalSession.job_id.in_(chunk))
                )  # fmt: skip
                for job_id, user, server_name, state, ended_at in rows:
                    found[job_id] = PortalRecord(user, server_name, ended_at if state is SessionState.ENDED else None)
        return found

    def record_orphan(
        self,
        cluster: str,
        job_id: str,
        *,
        account: str,
        user: str,
        tag: str,
        reason: str,
        submitted_at: datetime | None,
        now: datetime | None = None,
    ) -> bool:
        """Note a cancelled orphan once per (cluster, job id); False if it was noted before."""
        check_cluster(cluster)
        job_id = check_job_id(job_id)
        check_account(account)
        check_user(user)
        reason = check_text(reason, "reason")
        tag = "".join(ch if ch.isprintable() else "?" for ch in tag)[:MAX_TAG_CHARS]
        if submitted_at is not None:
            check_aware(submitted_at, "submitted_at")
        now = self._now(now)
        with self._write() as session:
            known = session.scalars(
                select(OrphanJob.id).where(OrphanJob.cluster == cluster, OrphanJob.job_id == job_id)
            ).first()
            if known is not None:
                return False
            project = session.scalars(select(Project).where(Project.slurm_account == account)).one_or_none()
            if project is None:
                raise NotFound("account", f"no project has the Slurm account {account!r}")
            session.add(OrphanJob(cluster=cluster, job_id=job_id, project_id=project.id, user=user, tag=tag,
                                  reason=reason, submitted_at=submitted_at, cancelled_at=now))  # fmt: skip
        return True

    def release_stale_admissions(
        self, cluster: str, admitted_before: datetime, now: datetime | None = None
    ) -> list[tuple[int, str, str, str, datetime]]:
        """End the holds of sessions admitted before ``admitted_before`` that never got a job id
        (the hub died, or could not write, between admission and sbatch's record): nothing ran,
        nothing is charged. Returns (session id, project, user, server name, admitted at) of each."""
        check_cluster(cluster)
        check_aware(admitted_before, "admitted_before")
        now = self._now(now)
        released = []
        with self._write() as session:
            rows = session.execute(
                select(PortalSession, Project.name).join(Project, Project.id == PortalSession.project_id)
                .where(PortalSession.cluster == cluster, PortalSession.state == SessionState.ADMITTED,
                       PortalSession.job_id.is_(None), PortalSession.admitted_at < admitted_before)
                .order_by(PortalSession.id)
            ).all()  # fmt: skip
            for row, project in rows:
                row.state, row.ended_at, row.elapsed_seconds = SessionState.ENDED, now, 0
                row.message = "stopped: the hub never recorded a job for this start; its hold was released"
                released.append((row.id, project, row.user, row.server_name, row.admitted_at))
        return released

    def orphan_jobs(self, name: str | None = None) -> list[OrphanJobInfo]:
        """The orphans cancelled so far, of one project or all, oldest first."""
        with self._read() as session:
            query = select(OrphanJob, Project.name).join(Project, Project.id == OrphanJob.project_id)
            if name is not None:
                query = query.where(OrphanJob.project_id == self._project(session, name).id)
            return [
                OrphanJobInfo(row.cluster, row.job_id, project, row.user, row.tag, row.reason, row.submitted_at,
                              row.cancelled_at)
                for row, project in session.execute(query.order_by(OrphanJob.id))
            ]  # fmt: skip


__all__ = [
    "DEFAULT_GRACE",
    "Orphan",
    "OrphanJobInfo",
    "OrphanRecords",
    "PortalRecord",
    "find_orphans",
]
