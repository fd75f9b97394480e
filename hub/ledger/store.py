"""The ledger's store: ``Ledger`` (a thin class over the ORM and the pure arithmetic) and
``upgrade`` (runs the Alembic migrations in code, version table ``hpchub_alembic_version``).

Atomic admission. ``admit`` and ``extend`` read the figures and write the hold in one
transaction that first locks the project:

- SQLite: pysqlite's own transaction handling is switched off and every ledger write
  transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write lock
  before anything is read (reads use a plain deferred ``BEGIN``). Writers queue on the
  lock (busy timeout 30 s), so admissions are serialised.
- PostgreSQL: ``SELECT ... FOR UPDATE`` on the project row in READ COMMITTED: the next
  admission for the project waits for the lock and then reads the committed holds. Every
  write that changes a project's figures (members, caps, grants, holds) takes the
  project's lock first, so that one lock serialises them all.

The record mixins hold the rest: the life of a session (``admit``, ``extend``, the job's start
and end, the final charge) is :mod:`hub.ledger.session_records`; outside jobs, orphans, notes,
activity, courses, history and the mail outbox have their own.

Every method takes ``now`` (default: the injected clock) and validates its input first:
bad input raises ``LedgerInputError`` naming the field and nothing changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone, tzinfo

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.ledger import arithmetic as arith
from hub.ledger.activity_reports import ActivityReports
from hub.ledger.admission_sql import (
    _CHARGES_SUM,
    _HOLDING,
    _MEMBER_CHARGES_SUM,
)
from hub.ledger.allocation_records import AllocationRecords
from hub.ledger.award_records import AwardRecords
from hub.ledger.course_groups import CourseGroups
from hub.ledger.course_records import CourseRecords
from hub.ledger.engine import (  # noqa: F401  (re-exported)
    _WRITE,
    alembic_config,
    make_engine,
    schema_revision,
    upgrade,
)
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.history import ProjectHistory
from hub.ledger.mail_outbox import MailOutbox
from hub.ledger.models import (
    AppendOnlySession,
    CapEntry,
    Charge,
    Grant,
    Member,
    OutsideJob,
    PortalSession,
    Project,
    effective_charges,
)  # fmt: skip
from hub.ledger.orphans import OrphanRecords
from hub.ledger.outside_jobs import OutsideJobRecords, outside_cost
from hub.ledger.period import ProjectStatus, project_status, renewal_path
from hub.ledger.records import (  # noqa: F401  (MembershipState and usage_json: re-exported)
    MembershipState,
    _charge_record,
    _elapsed_seconds,
    _project_info,
    _session_cost,
    _session_info,
    period_json,
    usage_json,
)  # fmt: skip
from hub.ledger.session_notes import SessionNotes
from hub.ledger.session_records import SessionRecords
from hub.ledger.types import (
    Booking,
    ChargeRecord,
    MemberUsage,
    MirrorFigures,
    OutsideJobState,
    ProjectInfo,
    ProjectKind,
    ProjectState,
    ProjectUsage,
    Role,
    SessionInfo,
    SessionState,
    check_account,
    check_aware,
    check_cluster,
    check_enum,
    check_gpu_type,
    check_project_name,
    check_text,
    check_user,
    parse_date,
)

DEFAULT_CLUSTER = "hpchub"


class Ledger(
    SessionRecords,
    OutsideJobRecords,
    OrphanRecords,
    SessionNotes,
    ActivityReports,
    CourseRecords,
    CourseGroups,
    ProjectHistory,
    AllocationRecords,
    AwardRecords,
    MailOutbox,
):
    """Projects, grants, members, caps, holds and charges in one database.

    ``db``: a URL (``sqlite:////path/ledger.sqlite``, ``postgresql+psycopg://...``) or an
    engine from ``make_engine``. Call ``upgrade(db)`` once before (the hub does at start).
    """

    def __init__(
        self,
        db: str | Engine,
        *,
        rates: arith.ChargeRates = arith.DEFAULT_RATES,
        cluster: str = DEFAULT_CLUSTER,
        clock: Callable[[], datetime] | None = None,
        site_timezone: tzinfo = timezone.utc,
    ) -> None:
        self._owns_engine = isinstance(db, str)
        self.engine = make_engine(db) if isinstance(db, str) else db
        self.rates = rates
        self.cluster = check_cluster(cluster)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.site_timezone = site_timezone
        self._sessions = sessionmaker(self.engine, class_=AppendOnlySession, expire_on_commit=False)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # --- transactions and lookups -----------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A read-only transaction: one consistent snapshot for all of its queries (SQLite's
        deferred transaction; REPEATABLE READ on PostgreSQL)."""
        with self._sessions.begin() as session:
            if self.engine.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    @contextmanager
    def _advisory_read(self) -> Iterator[Session]:
        """Reads whose answer is advice, re-checked before anything is written (the spawn
        form's preview). PostgreSQL: autocommit, so no BEGIN and no COMMIT round trips; each
        statement reads its own committed snapshot. SQLite: ``_read`` (no round trips)."""
        if self.engine.dialect.name != "postgresql":
            with self._read() as session:
                yield session
            return
        with self.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            with Session(bind=connection, expire_on_commit=False) as session:
                yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction. SQLite: BEGIN IMMEDIATE (the write lock before any read).
        PostgreSQL: READ COMMITTED on purpose: after waiting for a row lock, the next
        statement sees what the previous holder committed (REPEATABLE READ would keep the
        snapshot taken before the wait and miss the other admission's hold)."""
        with self._sessions.begin() as session:
            session.connection(execution_options={_WRITE: True})
            yield session

    def _now(self, now: datetime | None) -> datetime:
        return check_aware(self.clock() if now is None else now, "now")

    def _project(self, session: Session, name: str, *, lock: bool = False) -> Project:
        check_project_name(name)
        query = select(Project).where(Project.name == name)
        row = session.scalars(query.with_for_update() if lock else query).one_or_none()
        if row is None:
            raise NotFound("project", f"unknown project {name!r}")
        return row

    def _member(self, session: Session, project: Project, user: str) -> Member | None:
        """The active membership (callers that change it hold the project's lock)."""
        query = select(Member).where(Member.project_id == project.id, Member.user == user, Member.active.is_(True))
        return session.scalars(query).one_or_none()

    def _cap_mgs(self, session: Session, project: Project, user: str) -> int | None:
        query = (
            select(CapEntry.cap_mgs)
            .where(CapEntry.project_id == project.id, CapEntry.user == user)
            .order_by(CapEntry.id.desc())
            .limit(1)
        )
        return session.execute(query).scalar_one_or_none()

    def _grants_mgs(self, session: Session, project: Project) -> int:
        query = select(func.coalesce(func.sum(Grant.amount_mgs), 0)).where(Grant.project_id == project.id)
        return int(session.execute(query).scalar_one())

    def _charges_mgs(self, session: Session, project: Project, user: str | None = None) -> int:
        """The effective charges' sum: final charges + provisional ones no final one replaced
        (one statement, built once; see ``UNREPLACED_PROVISIONAL_CHARGES``)."""
        query = _CHARGES_SUM if user is None else _MEMBER_CHARGES_SUM
        return int(session.execute(query, {"project_id": project.id, "user": user}).scalar_one())

    def _holding_sessions(self, session: Session, project: Project, user: str | None = None) -> list[PortalSession]:
        query = select(PortalSession).where(PortalSession.project_id == project.id, PortalSession.state.in_(_HOLDING))
        if user is not None:
            query = query.where(PortalSession.user == user)
        return list(session.scalars(query))

    def _running_outside_jobs(self, session: Session, project: Project, user: str | None = None) -> list[OutsideJob]:
        query = select(OutsideJob).where(
            OutsideJob.project_id == project.id, OutsideJob.state == OutsideJobState.RUNNING
        )
        if user is not None:
            query = query.where(OutsideJob.user == user)
        return list(session.scalars(query))

    def _project_totals(
        self, session: Session, project: Project, now: datetime
    ) -> tuple[arith.BudgetFigures, list[PortalSession], list[OutsideJob]]:
        """The project's grants, used and held at ``now`` (and the holding sessions and running
        outside jobs they count): the totals of ``figures``, also read alone for every project."""
        holding = self._holding_sessions(session, project)
        outside = self._running_outside_jobs(session, project)
        totals = arith.budget_figures(
            self._grants_mgs(session, project),
            self._charges_mgs(session, project),
            [_session_cost(row, now) for row in holding] + [outside_cost(row, now) for row in outside],
        )
        return totals, holding, outside

    def closed_reason(self, project: Project | ProjectInfo, now: datetime) -> str | None:
        """Why the project takes no new sessions at ``now`` (closed, before or after its period), or None."""
        return arith.project_closed_reason(
            project.name, state=project.state.value, state_reason=project.state_reason,
            period_start=project.period_start, period_end=project.period_end,
            today=now.astimezone(self.site_timezone).date(), renewal=renewal_path(project.name, project.kind),
        )  # fmt: skip

    def today(self, now: datetime | None = None) -> date:
        """The site's date at ``now`` (default: the clock): what period ends are compared with."""
        return self._now(now).astimezone(self.site_timezone).date()

    def status(self, project: Project | ProjectInfo, now: datetime | None = None) -> ProjectStatus:
        """active, expired (past its end date) or closed (``hub.ledger.period``)."""
        return project_status(project.state, project.period_end, self.today(now))

    def _booking(self, booking: Booking) -> arith.Reservation:
        if not isinstance(booking, Booking):
            raise LedgerInputError("booking", f"must be a Booking(gpu_type, gpus, hours), got {type(booking).__name__}")
        gpu_type, gpus = booking.gpu_type, arith.check_gpus(booking.gpus)
        seconds = arith.hours_to_seconds(booking.hours)
        if gpus == 0:
            return arith.Reservation(0, seconds, 0)
        if gpu_type is None:
            raise LedgerInputError("gpu_type", "required when gpus > 0")
        return arith.Reservation(gpus, seconds, self.rates.weight_milli(check_gpu_type(gpu_type)))

    # --- projects, grants, members, caps ----------------------------------------------------------

    def create_project(
        self,
        name: str,
        *,
        account: str,
        kind: ProjectKind | str,
        gpu_hours: object,
        who: str,
        start: date | str | None = None,
        end: date | str | None = None,
        now: datetime | None = None,
    ) -> ProjectInfo:
        """A new active project with its first grant (none if ``gpu_hours`` is 0)."""
        now = self._now(now)
        with self._write() as session:
            return self._insert_project(
                session, name, account=account, kind=kind, gpu_hours=gpu_hours, who=who, start=start, end=end, now=now
            )

    def _insert_project(
        self, session: Session, name: str, *, account: str, kind: ProjectKind | str, gpu_hours: object, who: str,
        start: date | str | None, end: date | str | None, now: datetime,
    ) -> ProjectInfo:  # fmt: skip
        check_project_name(name)
        check_account(account)
        kind = check_enum(ProjectKind, kind, "kind")
        amount = arith.gpu_hours_to_mgs(gpu_hours, "gpu_hours")
        who = check_text(who, "who")
        start, end = parse_date(start, "start"), parse_date(end, "end")
        if start is not None and end is not None and end < start:
            raise LedgerInputError("end", f"{end.isoformat()} is before the start {start.isoformat()}")
        if session.scalars(select(Project.id).where(Project.name == name)).first() is not None:
            raise LedgerInputError("project", f"{name} already exists")
        owner = session.scalars(select(Project.name).where(Project.slurm_account == account)).first()
        if owner is not None:
            raise LedgerInputError("account", f"{account} is already the account of project {owner}")
        project = Project(
            name=name, slurm_account=account, kind=kind, state=ProjectState.ACTIVE, state_reason=None,
            period_start=start, period_end=end, created_at=now, created_by=who,
        )  # fmt: skip
        session.add(project)
        try:
            session.flush()
        except IntegrityError:  # a concurrent create (PostgreSQL) won the unique name or account
            raise LedgerInputError("project", f"{name} (or account {account}) already exists") from None
        if amount:
            first = Grant(project_id=project.id, amount_mgs=amount, reason="initial budget")
            first.granted_by, first.granted_at = who, now
            session.add(first)
        return _project_info(project)

    def close_project(self, name: str, *, reason: str, who: str, now: datetime | None = None) -> ProjectInfo:
        """No new sessions from now on (running ones continue); the reason is shown."""
        reason = check_text(reason, "reason")
        check_text(who, "who")
        self._now(now)
        with self._write() as session:
            project = self._project(session, name, lock=True)
            project.state, project.state_reason = ProjectState.CLOSED, reason
            return _project_info(project)

    def grant(self, name: str, gpu_hours: object, *, reason: str, who: str, now: datetime | None = None) -> int:
        """Append a signed grant; returns the new budget in mgs. The budget never goes below 0."""
        amount = arith.gpu_hours_to_mgs(gpu_hours, "gpu_hours", allow_negative=True, allow_zero=False)
        reason, who = check_text(reason, "reason"), check_text(who, "who")
        now = self._now(now)
        with self._write() as session:
            project = self._project(session, name, lock=True)
            total = self._grants_mgs(session, project) + amount
            if total < 0:
                raise LedgerInputError(
                    "gpu_hours",
                    f"would make {name}'s budget negative ({arith.format_gpu_hours(total)} GPU-h); "
                    f"it is {arith.format_gpu_hours(total - amount)}",
                )
            session.add(Grant(project_id=project.id, amount_mgs=amount, reason=reason, granted_by=who, granted_at=now))
            return total

    def add_member(
        self,
        name: str,
        user: str,
        *,
        role: Role | str,
        who: str,
        cap_gpu_hours: object | None = None,
        now: datetime | None = None,
    ) -> None:
        check_user(user)
        role = check_enum(Role, role, "role")
        cap = None if cap_gpu_hours is None else arith.gpu_hours_to_mgs(cap_gpu_hours, "cap_gpu_hours")
        who = check_text(who, "who")
        now = self._now(now)
        try:
            with self._write() as session:
                project = self._project(session, name, lock=True)
                existing = self._member(session, project, user)
                if existing is not None:
                    raise LedgerInputError("user", f"{user} is already a member of {name} ({existing.role.value})")
                session.add(
                    Member(project_id=project.id, user=user, role=role, active=True, added_at=now, added_by=who)
                )
                if cap is None and role is Role.STUDENT:
                    cap = self._default_student_cap(session, project)  # a course's per-student cap
                if cap is not None or self._cap_mgs(session, project, user) is not None:
                    # a re-added member starts from the cap given now (or none), not an old one
                    session.add(CapEntry(
                        project_id=project.id, user=user, cap_mgs=cap, reason="set when added", set_by=who, set_at=now
                    ))  # fmt: skip
        except IntegrityError:
            raise LedgerInputError("user", f"{user} is already a member of {name}") from None

    def set_cap(
        self, name: str, user: str, cap_gpu_hours: object | None, *, reason: str, who: str, now: datetime | None = None
    ) -> None:
        """Append a cap entry (None removes the cap). Only for active members."""
        check_user(user)
        cap = None if cap_gpu_hours is None else arith.gpu_hours_to_mgs(cap_gpu_hours, "cap_gpu_hours")
        reason, who = check_text(reason, "reason"), check_text(who, "who")
        now = self._now(now)
        with self._write() as session:
            project = self._project(session, name, lock=True)
            if self._member(session, project, user) is None:
                raise NotFound("user", f"{user} is not a member of {name}")
            session.add(CapEntry(project_id=project.id, user=user, cap_mgs=cap, reason=reason, set_by=who, set_at=now))

    def remove_member(self, name: str, user: str, *, who: str, now: datetime | None = None) -> None:
        """End the membership (kept as history). Running sessions are not stopped here."""
        check_user(user)
        who = check_text(who, "who")
        now = self._now(now)
        with self._write() as session:
            project = self._project(session, name, lock=True)
            member = self._member(session, project, user)
            if member is None:
                raise NotFound("user", f"{user} is not a member of {name}")
            member.active, member.ended_at, member.ended_by = False, now, who

    # --- reading ----------------------------------------------------------------------------------

    def project(self, name: str) -> ProjectInfo:
        with self._read() as session:
            return _project_info(self._project(session, name))

    def projects(self) -> list[ProjectInfo]:
        with self._read() as session:
            return [_project_info(row) for row in session.scalars(select(Project).order_by(Project.name))]

    def memberships(self, user: str) -> list[tuple[ProjectInfo, Role]]:
        """The user's active memberships (project, role), by project name."""
        check_user(user)
        with self._read() as session:
            rows = session.execute(
                select(Project, Member.role).join(Member, Member.project_id == Project.id)
                .where(Member.user == user, Member.active.is_(True)).order_by(Project.name)
            )  # fmt: skip
            return [(_project_info(project), role) for project, role in rows]

    def active_members(self, name: str) -> list[str]:
        """The users with an active membership of the project, by name (one indexed query:
        what a spawn needs for the project's Unix group, not the figures of each member)."""
        with self._read() as session:
            project = self._project(session, name)
            return list(session.scalars(
                select(Member.user).where(Member.project_id == project.id, Member.active.is_(True)).order_by(Member.user)
            ))  # fmt: skip

    def membership_states(self) -> dict[tuple[str, str], MembershipState]:
        """Every (Slurm account, user) that has or had a membership: whether one is active and
        whether one ended (for the reconciler's association sync)."""
        with self._read() as session:
            rows = session.execute(
                select(Project.slurm_account, Member.user, Member.active).join(Member, Member.project_id == Project.id)
            )  # fmt: skip
            states: dict[tuple[str, str], MembershipState] = {}
            for account, user, active in rows:
                seen = states.get((account, user), MembershipState(False, False))
                states[(account, user)] = MembershipState(seen.active or bool(active), seen.ended or not active)
            return states

    def figures(self, name: str, now: datetime | None = None, *, every_member: bool = False) -> ProjectUsage:
        """The project's and each active member's figures at ``now`` (exact, in mgs);
        ``every_member``: also those whose membership ended (their latest role)."""
        now = self._now(now)
        with self._read() as session:
            return self._figures(session, self._project(session, name), now, every_member=every_member)

    def _figures(self, session: Session, project: Project, now: datetime, *, every_member: bool) -> ProjectUsage:
        """The body of ``figures``, inside the caller's read transaction."""
        project_figures, holding, outside = self._project_totals(session, project, now)
        charges_by_user = dict(
            session.execute(
                select(Charge.user, func.sum(Charge.weighted_mgs))
                .where(Charge.project_id == project.id, effective_charges()).group_by(Charge.user)
            ).all()
        )  # fmt: skip
        latest_cap = select(func.max(CapEntry.id)).where(CapEntry.project_id == project.id).group_by(CapEntry.user)
        caps = dict(session.execute(select(CapEntry.user, CapEntry.cap_mgs).where(CapEntry.id.in_(latest_cap))).all())
        costs_by_user: dict[str, list[arith.SessionCost]] = defaultdict(list)
        for row in holding:
            costs_by_user[row.user].append(_session_cost(row, now))
        for row in outside:
            costs_by_user[row.user].append(outside_cost(row, now))
        member_query = select(Member.user, Member.role).where(Member.project_id == project.id)
        if not every_member:
            member_query = member_query.where(Member.active.is_(True))
        members = list(dict(session.execute(member_query.order_by(Member.id)).all()).items())  # latest role
        role_order = list(Role)
        member_usage = []
        for user, role in sorted(members, key=lambda m: (role_order.index(m[1]), m[0])):
            figures = arith.budget_figures(0, int(charges_by_user.get(user, 0)), costs_by_user[user])
            member_usage.append(MemberUsage(user, role, caps.get(user), figures.used_mgs, figures.held_mgs))
        return ProjectUsage(
            project.name, project_figures.grants_mgs, project_figures.used_mgs, project_figures.held_mgs,
            tuple(member_usage),
        )  # fmt: skip

    def usage(self, name: str, now: datetime | None = None) -> dict:
        """The ``hpchub usage --json`` shape: GPU-hours as JSON numbers with 4 decimals, and the
        project's ``state`` (active, expired or closed) and ``period_end`` (inclusive, or null)."""
        now = self._now(now)
        with self._read() as session:  # one snapshot: the figures and the state
            project = self._project(session, name)
            figures = self._figures(session, project, now, every_member=False)
            return {**usage_json(figures), **period_json(_project_info(project), self.today(now))}

    def mirror_figures(
        self, name: str, user: str | None = None, *, running_job_ids: Collection[tuple[str, str]] = ()
    ) -> MirrorFigures:
        """What the Slurm mirror subtracts (see ``arithmetic.slurm_mirror_limit``): grants (or
        the member's cap), effective charges, and the reservations of running portal jobs.
        Admitted but still pending sessions are left out: their room stays open for them;
        an admitted session whose (cluster, job id) is in ``running_job_ids`` (Slurm runs it,
        the portal has not noticed yet) counts as running. Running jobs the portal did not
        start are the caller's to add (the reconciler takes them from the same sacct)."""
        running_now = set(running_job_ids)
        with self._read() as session:
            project = self._project(session, name)
            if user is None:
                limit = self._grants_mgs(session, project)
            else:
                check_user(user)
                limit = self._cap_mgs(session, project, user)
            running = [
                row.reservation_mgs
                for row in self._holding_sessions(session, project, user)
                if row.state is SessionState.RUNNING or (row.cluster, row.job_id) in running_now
            ]
            return MirrorFigures(limit, self._charges_mgs(session, project, user), sum(running))

    def charges(self, name: str) -> list[ChargeRecord]:
        """Each job's effective charge (final if imported, else provisional), oldest first
        (jobs without an end time first, on every backend: PostgreSQL sorts NULL last)."""
        with self._read() as session:
            project = self._project(session, name)
            rows = session.scalars(
                select(Charge).where(Charge.project_id == project.id, effective_charges())
                .order_by(Charge.end_at.asc().nulls_first(), Charge.id)
            )  # fmt: skip
            return [_charge_record(row, project.name) for row in rows]

    def session(self, session_id: int) -> SessionInfo:
        with self._read() as session:
            row = self._session_row(session, session_id)
            return _session_info(row, session.get(Project, row.project_id).name)

    def active_sessions(self, user: str | None = None) -> list[SessionInfo]:
        """Admitted and running sessions (all, or one user's): what the hub re-adopts at start."""
        with self._read() as session:
            query = (
                select(PortalSession, Project.name).join(Project, Project.id == PortalSession.project_id)
                .where(PortalSession.state.in_(_HOLDING)).order_by(PortalSession.id)
            )  # fmt: skip
            if user is not None:
                query = query.where(PortalSession.user == check_user(user))
            return [_session_info(row, project) for row, project in session.execute(query)]
