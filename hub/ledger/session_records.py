"""The life of a session in the ledger: ``SessionRecords``, the ``Ledger`` mixin that previews and
admits a request (one atomic transaction that locks the project first, see :mod:`hub.ledger.store`),
extends and retracts a hold, records the job id, the start and the end, and imports the final
charge Slurm measured.

Mixed into :class:`hub.ledger.store.Ledger`, which gives the transactions (``_read``,
``_write``), the lookups (``_project``, ``_member``, ``_cap_mgs``, ...) and ``rates``/``cluster``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.ledger import arithmetic as arith
from hub.ledger.admission_sql import (
    _ADMISSION_FIGURES,
    _HOLDING,
    _INSERT_SESSION,
)
from hub.ledger.courses import course_refusal
from hub.ledger.errors import BudgetRefused, LedgerInputError, NotFound
from hub.ledger.models import (
    Charge,
    OutsideJob,
    PortalSession,
    Project,
)  # fmt: skip
from hub.ledger.records import (
    _elapsed_seconds,
)  # fmt: skip
from hub.ledger.types import (
    Booking,
    ChargeKind,
    ChargeSource,
    OutsideJobState,
    ProjectKind,
    Role,
    SessionState,
    check_account,
    check_aware,
    check_cluster,
    check_gpu_type,
    check_job_id,
    check_server_name,
    check_user,
    gpu_type_label,
)


class SessionRecords:
    """Admission and the life of a session (see the module's docstring)."""

    # --- admission and the life of a session -------------------------------------------------------

    def _admission(
        self,
        session: Session,
        project: Project,
        user: str,
        gpu_type: str | None,
        booked: arith.Reservation,
        now: datetime,
        *,
        what: str = "request",
        extending_seconds: int = 0,
        lab_hours_on: bool | None = None,
    ) -> arith.Admission:
        """The one admission check, shared by admit, extend and preview.

        One statement reads every figure (``_ADMISSION_FIGURES``), membership and cap
        included. Writers call it with the project's row lock held (``_project(lock=True)``):
        every change of members, caps, grants and holds takes that lock first, so on
        PostgreSQL (READ COMMITTED: each statement reads what was committed before it
        started) the figures are read after any wait for the lock, and no second row lock
        (a round trip) is needed for the member."""
        connection = session.connection()
        grants = charges = member_charges = member_sessions = 0
        cap: int | None = None
        is_member = False
        costs: list[arith.SessionCost] = []
        member_costs: list[arith.SessionCost] = []
        for kind, row_user, a, b, c, d, e, started_at in connection.execute(
            _ADMISSION_FIGURES, {"project_id": project.id, "user": user}
        ):
            if kind == "f":
                grants, charges, member_charges = int(a), int(b), int(c)
                cap = None if d is None else int(d)
                is_member = is_member or bool(e)
                continue
            booked_row = arith.Reservation(int(a), int(b), int(c))
            elapsed = _elapsed_seconds(started_at, now) if d else 0
            cost = arith.SessionCost(booked_row.mgs, booked_row.cost_so_far_mgs(elapsed))
            costs.append(cost)
            if row_user == user:
                member_costs.append(cost)
                member_sessions += kind == "s"
        if not is_member:
            raise LedgerInputError("project", f"{user} is not an active member of {project.name}")
        closed_reason = self.closed_reason(project, now)
        admission = arith.check_admission(
            project=project.name, user=user, gpu_type=gpu_type, booked=booked,
            project_figures=arith.budget_figures(grants, charges, costs),
            cap_figures=None if cap is None else arith.budget_figures(cap, member_charges, member_costs),
            closed_reason=closed_reason, what=what,
        )  # fmt: skip
        if project.kind is ProjectKind.COURSE and not closed_reason:
            rules, role = self._course_rules_and_role(session, project, user)
            refusal = rules and role is Role.STUDENT and course_refusal(
                project.name, rules, gpu_type=gpu_type, gpus=booked.gpus,
                total_seconds=booked.reserved_seconds + extending_seconds,
                sessions_held=None if what == "extension" else member_sessions, lab_hours_on=lab_hours_on,
            )  # fmt: skip
            if refusal:  # a course rule first: it says what to change
                return replace(admission, allowed=False, message=refusal)
        return admission

    def preview(
        self, name: str, user: str, booking: Booking, now: datetime | None = None,
        *, lab_hours_on: bool | None = None,
    ) -> arith.Admission:  # fmt: skip
        """What admission would answer now, without holding anything (the spawn form's preview)."""
        check_user(user)
        booked = self._booking(booking)
        gpu_type = booking.gpu_type
        now = self._now(now)
        with self._advisory_read() as session:  # admit checks again, under the project's lock
            project = self._project(session, name)
            return self._admission(session, project, user, gpu_type, booked, now, lab_hours_on=lab_hours_on)

    def admit(
        self,
        name: str,
        user: str,
        server_name: str,
        booking: Booking,
        now: datetime | None = None,
        *,
        lab_hours_on: bool | None = None,
    ) -> int:
        """One atomic check-and-hold; returns the session id or raises ``BudgetRefused``.

        A refusal is recorded (state refused, with its message) and then raised.
        ``lab_hours_on``: whether the course's lab hours are on now (the caller read Slurm;
        None: not known), for a course whose students start sessions only then.
        """
        check_user(user)
        check_server_name(server_name)
        booked = self._booking(booking)
        gpu_type = booking.gpu_type
        now = self._now(now)
        with self._write() as session:
            project = self._project(session, name, lock=True)
            admission = self._admission(session, project, user, gpu_type, booked, now, lab_hours_on=lab_hours_on)
            # a core INSERT ... RETURNING (one round trip, no ORM unit of work on the hot path)
            session_id = session.connection().execute(_INSERT_SESSION, {
                "project_id": project.id, "user": user, "server_name": server_name, "cluster": self.cluster,
                "job_id": None, "gpu_type": gpu_type if booked.gpus else None, "gpus": booked.gpus,
                "reserved_seconds": booked.reserved_seconds, "weight_milli": booked.weight_milli,
                "admitted_at": now, "state": SessionState.ADMITTED if admission.allowed else SessionState.REFUSED,
                "message": admission.message or None,
            }).scalar_one()  # fmt: skip
        if not admission.allowed:
            raise BudgetRefused(admission.message, session_id=session_id)
        return session_id

    def extend(self, session_id: int, hours: object, now: datetime | None = None) -> arith.Admission:
        """Reserve ``hours`` more for an admitted or running session (atomic, like admit)."""
        added_seconds = arith.hours_to_seconds(hours)
        now = self._now(now)
        with self._write() as session:
            row = self._session_row(session, session_id)
            project = session.scalars(select(Project).where(Project.id == row.project_id).with_for_update()).one()
            session.refresh(row)  # PostgreSQL: read the session again under the project's lock
            if row.state not in _HOLDING:
                raise LedgerInputError(
                    "session_id", f"session {session_id} is {row.state.value}, not admitted or running"
                )
            booked = arith.Reservation(row.gpus, added_seconds, row.weight_milli)
            admission = self._admission(
                session,
                project,
                row.user,
                row.gpu_type,
                booked,
                now,
                what="extension",
                extending_seconds=row.reserved_seconds,
            )
            if admission.allowed:
                row.reserved_seconds += added_seconds
        if not admission.allowed:
            raise BudgetRefused(admission.message, session_id=session_id)
        return admission

    def retract_extension(self, session_id: int, hours: object) -> bool:
        """Give back ``hours`` of a session's reservation: undo an ``extend`` whose time limit
        Slurm did not accept. What is left must stay > 0 hours. Returns False if the
        session no longer holds (it ended meanwhile: its charge uses its own elapsed time,
        which the reservation only capped).
        """
        removed_seconds = arith.hours_to_seconds(hours)
        with self._write() as session:
            row = self._session_row(session, session_id)
            # the same lock order as extend: the project, then the session read again under it
            session.scalars(select(Project).where(Project.id == row.project_id).with_for_update()).one()
            session.refresh(row)
            if row.state not in _HOLDING:
                return False
            if removed_seconds >= row.reserved_seconds:
                raise LedgerInputError(
                    "hours",
                    f"session {session_id} reserves {arith.format_hours(row.reserved_seconds)} h; "
                    f"cannot give back {arith.format_hours(removed_seconds)} h",
                )
            row.reserved_seconds -= removed_seconds
            return True

    def _session_row(self, session: Session, session_id: int) -> PortalSession:
        if isinstance(session_id, bool) or not isinstance(session_id, int):
            raise LedgerInputError("session_id", f"must be a whole number, got {session_id!r}")
        row = session.get(PortalSession, session_id)
        if row is None:
            raise NotFound("session_id", f"no session {session_id}")
        return row

    def record_job_id(self, session_id: int, job_id: str | int) -> None:
        """Record the job id the moment sbatch returns (idempotent for the same id).

        If the reconciler met the job running before it was recorded (the hub died between
        sbatch and this record, or this write waited out a long lock), it holds as an outside
        job too: that record ends here, in the same transaction, so the job never holds twice."""
        job_id = check_job_id(job_id)
        with self._write() as session:
            row = self._session_row(session, session_id)
            if row.job_id == job_id:
                return
            if row.job_id is not None:
                raise LedgerInputError("job_id", f"session {session_id} already has job {row.job_id}")
            if row.state is SessionState.REFUSED:
                raise LedgerInputError("session_id", f"session {session_id} was refused")
            taken = session.scalars(
                select(PortalSession.id).where(PortalSession.cluster == row.cluster, PortalSession.job_id == job_id)
            ).first()
            if taken is not None:
                raise LedgerInputError("job_id", f"job {job_id} already belongs to session {taken}")
            row.job_id = job_id
            outside = session.scalars(
                select(OutsideJob).where(
                    OutsideJob.cluster == row.cluster, OutsideJob.job_id == job_id,
                    OutsideJob.state == OutsideJobState.RUNNING,
                )
            ).first()  # fmt: skip
            if outside is not None:
                outside.state, outside.ended_at = OutsideJobState.ENDED, self._now(None)

    def session_started(self, session_id: int, started_at: datetime) -> None:
        """admitted -> running from ``started_at`` (the job's start). Idempotent."""
        started_at = check_aware(started_at, "started_at")
        with self._write() as session:
            row = self._session_row(session, session_id)
            if row.state is SessionState.REFUSED:
                raise LedgerInputError("session_id", f"session {session_id} was refused")
            if row.state is SessionState.ADMITTED:
                row.state, row.started_at = SessionState.RUNNING, started_at

    def session_ended(self, session_id: int, ended_at: datetime, elapsed_seconds: int) -> bool:
        """Release the hold and write the observed cost as a provisional portal charge (none
        for a job that never started).

        Returns False if the session had already ended (nothing changes: idempotent),
        e.g. because its final charge was imported first.
        """
        ended_at = check_aware(ended_at, "ended_at")
        elapsed = arith.check_elapsed_seconds(elapsed_seconds)
        with self._write() as session:
            row = self._session_row(session, session_id)
            if row.state is SessionState.REFUSED:
                raise LedgerInputError("session_id", f"session {session_id} was refused")
            if row.state is SessionState.ENDED:
                return False
            if row.job_id is None and elapsed > 0:
                raise LedgerInputError("elapsed_seconds", f"session {session_id} has no job id, so it cannot have run")
            row.state, row.ended_at, row.elapsed_seconds = SessionState.ENDED, ended_at, elapsed
            # A job that never started (cancelled while pending) costs nothing and sacct has no
            # charge to replace it with: no row, rather than a provisional 0 that stays forever.
            if row.job_id is not None and (elapsed > 0 or row.started_at is not None):
                booked = arith.Reservation(row.gpus, row.reserved_seconds, row.weight_milli)
                session.add(Charge(
                    cluster=row.cluster, job_id=row.job_id, user=row.user, project_id=row.project_id,
                    gpu_type=row.gpu_type or "", gpus=row.gpus, start_at=row.started_at, end_at=ended_at,
                    elapsed_seconds=elapsed, weighted_mgs=booked.cost_so_far_mgs(elapsed),
                    source=ChargeSource.PORTAL, kind=ChargeKind.PROVISIONAL, session_id=row.id, recorded_at=ended_at,
                ))  # fmt: skip
            return True

    def import_final_charge(
        self,
        cluster: str,
        job_id: str | int,
        user: str,
        account: str,
        gpu_type_counts: Mapping[str, int],
        start: datetime | None,
        end: datetime | None,
        elapsed_seconds: int,
        now: datetime | None = None,
    ) -> bool:
        """Record a finished job's final charge from sacct (portal job or not).

        Idempotent per (cluster, job id): returns False if it was already imported. A
        portal session of that job still holding budget is ended by it (hold released).
        """
        check_cluster(cluster)
        job_id = check_job_id(job_id)
        check_user(user)
        check_account(account)
        for gpu_type in gpu_type_counts:
            check_gpu_type(gpu_type, "gpu_type_counts")
        weighted = arith.final_charge_mgs(elapsed_seconds, gpu_type_counts, self.rates)
        start = None if start is None else check_aware(start, "start")
        end = None if end is None else check_aware(end, "end")
        now = self._now(now)
        try:
            with self._write() as session:
                project = session.scalars(select(Project).where(Project.slurm_account == account)).one_or_none()
                if project is None:
                    raise NotFound("account", f"no project has the Slurm account {account!r}")
                existing = session.scalars(
                    select(Charge.id).where(
                        Charge.cluster == cluster, Charge.job_id == job_id, Charge.kind == ChargeKind.FINAL
                    )
                ).first()
                if existing is not None:
                    return False
                portal = session.scalars(
                    select(PortalSession).where(PortalSession.cluster == cluster, PortalSession.job_id == job_id)
                ).first()
                if portal is not None and portal.state in _HOLDING:
                    portal.state, portal.ended_at = SessionState.ENDED, end or now
                    portal.elapsed_seconds = elapsed_seconds
                outside = session.scalars(
                    select(OutsideJob).where(OutsideJob.cluster == cluster, OutsideJob.job_id == job_id)
                ).first()
                if outside is not None and outside.state is OutsideJobState.RUNNING:
                    outside.state, outside.ended_at = OutsideJobState.ENDED, end or now
                session.add(Charge(
                    cluster=cluster, job_id=job_id, user=user, project_id=project.id,
                    gpu_type=gpu_type_label(gpu_type_counts), gpus=sum(gpu_type_counts.values()),
                    start_at=start, end_at=end, elapsed_seconds=elapsed_seconds, weighted_mgs=weighted,
                    source=ChargeSource.SACCT, kind=ChargeKind.FINAL,
                    session_id=None if portal is None else portal.id, recorded_at=now,
                ))  # fmt: skip
                return True
        except IntegrityError:  # a concurrent import of the same job won (PostgreSQL)
            return False
