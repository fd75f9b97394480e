"""The spawner's link to the GPU-hour ledger: ``LedgerLink``, a mixin of ``SlurmGPUSpawner``
(admission, the job id, the session's end and a course's lab hours). Kept apart from
``spawner``, which stays about JupyterHub's spawn protocol; the ledger's own rules are in ``hub.ledger``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from sqlalchemy.exc import SQLAlchemyError

from hub.ledger import Booking, LedgerError
from hub.ledger.types import Role
from spawners.slurm.client import SlurmCommandError
from spawners.slurm.errors import SpawnError, database_detail
from spawners.slurm.progress import parse_slurm_time
from spawners.slurm.reservations import cached_reservation, forget_reservation
from spawners.slurm.types import JobRequest, JobState, JobStatus

LAB_HOURS_TTL_SECONDS = 10.0  # how long a read of a course's reservation is reused


def _students_reservation(ledger, project: str, user: str) -> tuple[str | None, bool]:
    """The lab-hours reservation of ``project`` if it is a course and ``user`` one of its
    students, and whether the course lets them start sessions only during the lab hours."""

    if not any(info.name == project and role is Role.STUDENT for info, role in ledger.memberships(user)):
        return None, False
    rules = ledger.course_rules(project)
    return (rules.reservation, rules.lab_hours_only) if rules is not None else (None, False)


class LedgerLink:
    """The spawner's side of the GPU-hour ledger: the hold at admission, the job id, the end;
    a course's lab hours. Mixed into ``SlurmGPUSpawner`` (which gives ``ledger``, ``client``,
    ``log``, ``user``, ``name``, ``job_id`` and ``ledger_session``)."""

    async def admit(self, request: JobRequest, *, lab_hours_on: bool | None = None) -> None:
        """One atomic check-and-hold of gpus x hours x weight (raises BudgetRefused).
        ``lab_hours_on``: for a course whose students start sessions only in its lab hours."""
        ledger = self.ledger
        self.ledger_session = None
        if ledger is None:
            return
        self.ledger_session = await asyncio.to_thread(
            ledger.admit,
            request.project,
            self.user.name,
            self.name or "",
            Booking(request.gpu_type, request.gpus, request.hours),
            lab_hours_on=lab_hours_on,
        )
        # The hold is in the server's saved state before any job exists: a hub that dies from
        # here on releases it at restart (poll), whether sbatch returned or not.
        self._starting = True
        self._save_state_now()

    async def course_lab_hours(self, project: str) -> tuple[str | None, bool | None]:
        """(the course's lab-hours reservation if the user is one of its students, and for a
        course whose students start sessions only in its lab hours whether they are on now,
        else None). The admission refuses such a student while they are off (None: not known,
        e.g. Slurm did not answer); a refusal is never decided on a cached read. Anyone else:
        (None, None)."""
        ledger = self.ledger
        if ledger is None:
            return None, None
        name, only_then = await asyncio.to_thread(_students_reservation, ledger, project, self.user.name)
        if not name or not only_then:
            return name, None
        return name, await self.lab_hours_active(project, name)

    async def lab_hours_active(self, project: str, name: str) -> bool | None:
        """Is the course's reservation active now? While it is, its students' sessions run in it
        (``--reservation``) and start at once on the reserved nodes. An active answer is reused
        for 10 s (if it ended meanwhile, sbatch says so and the job is submitted without it); an
        "off" answer is read again (the lab hours may have just begun: a job submitted without
        the reservation would wait behind it on its own course's nodes). A failure to read it is
        logged: None (the session then queues normally)."""
        try:
            found = await cached_reservation(self.client, name, LAB_HOURS_TTL_SECONDS)
            if not (found and found.active_at(datetime.now(timezone.utc))):
                forget_reservation(self.client, name)
                found = await cached_reservation(self.client, name, LAB_HOURS_TTL_SECONDS)
        except (SlurmCommandError, ValueError) as exc:
            self.log.warning("lab hours of %s: cannot read reservation %s: %s", project, name, exc)
            return None
        return bool(found and found.active_at(datetime.now(timezone.utc)))

    async def _ledger_call(self, what: str, *args) -> None:
        """Tell the ledger; a ledger failure is logged (the reconciler's sacct import settles the
        charge). Recording the job id is not done here: see ``_record_job_id``."""
        ledger = self.ledger
        if ledger is None or self.ledger_session is None:
            return
        try:
            await asyncio.to_thread(getattr(ledger, what), self.ledger_session, *args)
        except LedgerError as exc:
            self.log.error("%s: ledger %s failed for session %s: %s", self._log_name, what, self.ledger_session, exc)
        except SQLAlchemyError as exc:
            self.log.error("%s: ledger %s failed for session %s: database: %s", self._log_name, what,
                           self.ledger_session, database_detail(exc))  # fmt: skip

    async def _record_job_id(self) -> None:
        """The ledger records the job id the moment sbatch returns, or the start fails (and
        start() cancels the job): no job runs that the ledger does not know."""
        ledger = self.ledger
        if ledger is None or self.ledger_session is None:
            return
        try:
            await asyncio.to_thread(ledger.record_job_id, self.ledger_session, self.job_id)
        except (LedgerError, SQLAlchemyError) as exc:
            detail = database_detail(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
            self.log.error("%s: ledger could not record job %s: %s", self._log_name, self.job_id, detail)
            raise SpawnError(
                f"The GPU-hour ledger could not record Slurm job {self.job_id} ({detail}); the job is "
                "cancelled and nothing is charged. Try again shortly.",
                reason="ledger",
            ) from None

    async def _ledger_session_ended(self, status: JobStatus | None) -> None:
        """Release the hold and record the observed cost (provisional until sacct's final charge)."""
        if self.ledger_session is None:
            return
        now = datetime.now(timezone.utc)
        started = parse_slurm_time(status.start_time) if status and status.state is not JobState.PENDING else None
        ended = parse_slurm_time(status.end_time) if status and status.state is JobState.ENDED else None
        ended = min(ended or now, now)
        elapsed = max(0, int((ended - started).total_seconds())) if started and self.job_id else 0
        await self._ledger_call("session_ended", ended, elapsed)
        self.ledger_session = None
