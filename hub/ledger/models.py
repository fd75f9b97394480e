"""The ledger's tables (SQLAlchemy 2 ORM), all prefixed ``hpchub_`` so they can share a
database with JupyterHub's own (the Alembic version table is ``hpchub_alembic_version``).

Money-like records are append-only: grants, cap entries and charges are only ever
inserted (``AppendOnlySession`` refuses to update or delete them). A final charge
replaces the provisional one for the same (cluster, job id) by *being there*: the
effective charge of a job is its final row if one exists, else its provisional row
(``effective_charges``); no row is changed or deleted.

Quantities are integers in weighted milli-GPU-seconds (``_mgs``, see arithmetic).
Times are stored as naive UTC and read back timezone-aware (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    and_,
    event,
    exists,
    or_,
    select,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, aliased, mapped_column
from sqlalchemy.types import TypeDecorator

from hub.ledger.types import (
    ChargeKind,
    ChargeSource,
    OutsideJobState,
    ProjectKind,
    ProjectState,
    Role,
    SessionState,
)

TABLE_PREFIX = "hpchub_"
VERSION_TABLE = "hpchub_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the ledger stores only timezone-aware times")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def _enum(enum_type, name: str) -> SAEnum:
    """An enum stored as its value in a VARCHAR with a CHECK constraint (portable)."""
    return SAEnum(
        enum_type,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Project(Base):
    __tablename__ = "hpchub_projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    slurm_account: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[ProjectKind] = mapped_column(_enum(ProjectKind, "kind"))
    state: Mapped[ProjectState] = mapped_column(_enum(ProjectState, "state"))
    state_reason: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)  # inclusive
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(500))


class Grant(Base):
    """Append-only: the budget is the sum of a project's grants (signed)."""

    __tablename__ = "hpchub_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"), index=True)
    amount_mgs: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    granted_by: Mapped[str] = mapped_column(String(500))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Member(Base):
    """One membership period: ended memberships stay (active false, ended_at set)."""

    __tablename__ = "hpchub_members"
    __table_args__ = (
        # at most one active membership per (project, user)
        Index(
            "uq_hpchub_members_active_project_id_user",
            "project_id",
            "user",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
        Index("ix_hpchub_members_user", "user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    user: Mapped[str] = mapped_column(String(32))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    active: Mapped[bool] = mapped_column(Boolean)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    added_by: Mapped[str] = mapped_column(String(500))
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(500))


class CapEntry(Base):
    """Append-only: a member's cap is the latest entry for (project, user); null: no cap."""

    __tablename__ = "hpchub_cap_entries"
    __table_args__ = (Index("ix_hpchub_cap_entries_project_id_user_id", "project_id", "user", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    user: Mapped[str] = mapped_column(String(32))
    cap_mgs: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    set_by: Mapped[str] = mapped_column(String(500))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PortalSession(Base):
    """A portal session and its hold: gpus x reserved_seconds x weight_milli/1000.

    admitted (held, job pending or not yet submitted) -> running -> ended; refused rows
    record refusals and never hold anything. The weight is the one at admission.
    """

    __tablename__ = "hpchub_sessions"
    __table_args__ = (
        Index("ix_hpchub_sessions_project_id_state", "project_id", "state"),
        Index("ix_hpchub_sessions_cluster_job_id", "cluster", "job_id"),
        Index("ix_hpchub_sessions_user_server_name_state", "user", "server_name", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    user: Mapped[str] = mapped_column(String(32))
    server_name: Mapped[str] = mapped_column(String(255))
    cluster: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(32))  # null until sbatch returns
    gpu_type: Mapped[str | None] = mapped_column(String(32))
    gpus: Mapped[int] = mapped_column(Integer)
    reserved_seconds: Mapped[int] = mapped_column(Integer)
    weight_milli: Mapped[int] = mapped_column(Integer)
    state: Mapped[SessionState] = mapped_column(_enum(SessionState, "state"))
    message: Mapped[str | None] = mapped_column(Text)  # the refusal, for refused rows
    admitted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    elapsed_seconds: Mapped[int | None] = mapped_column(Integer)

    @property
    def reservation_mgs(self) -> int:
        return self.gpus * self.reserved_seconds * self.weight_milli


class Charge(Base):
    """Append-only: one row per (cluster, job id, kind); see ``effective_charges``."""

    __tablename__ = "hpchub_charges"
    __table_args__ = (
        UniqueConstraint("cluster", "job_id", "kind"),
        # covers both sums of the admission check (project, and project + user)
        Index("ix_hpchub_charges_project_id_user_kind_weighted_mgs", "project_id", "user", "kind", "weighted_mgs"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str] = mapped_column(String(32))
    user: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    gpu_type: Mapped[str] = mapped_column(String(200))
    gpus: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    elapsed_seconds: Mapped[int] = mapped_column(Integer)
    weighted_mgs: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[ChargeSource] = mapped_column(_enum(ChargeSource, "source"))
    kind: Mapped[ChargeKind] = mapped_column(_enum(ChargeKind, "kind"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("hpchub_sessions.id"))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutsideJob(Base):
    """A job on a project's account that the portal did not start, seen running by the
    reconciler (sacct). While running it holds ``weighted_gpus_milli`` x ``time_limit_seconds``
    mgs like a portal session; it ends when its final charge is imported or when it is no
    longer listed as running. One row per (cluster, job id); the state changes in place."""

    __tablename__ = "hpchub_outside_jobs"
    __table_args__ = (
        UniqueConstraint("cluster", "job_id"),
        Index("ix_hpchub_outside_jobs_project_id_state", "project_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    user: Mapped[str] = mapped_column(String(32))
    gpu_type: Mapped[str] = mapped_column(String(200))
    gpus: Mapped[int] = mapped_column(Integer)
    weighted_gpus_milli: Mapped[int] = mapped_column(Integer)  # sum over types of count x weight milli
    time_limit_seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[OutsideJobState] = mapped_column(_enum(OutsideJobState, "state"))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def reservation_mgs(self) -> int:
        return self.weighted_gpus_milli * self.time_limit_seconds


class CourseRule(Base):
    """A course's rules (one row per course project; see ``courses.CourseRules``). Changed in
    place by admins; the caps it hands out are append-only cap entries like any other."""

    __tablename__ = "hpchub_course_rules"

    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"), primary_key=True)
    per_student_mgs: Mapped[int] = mapped_column(BigInteger)
    gpu_types: Mapped[str] = mapped_column(String(200))  # comma-separated; "" = any
    max_gpus: Mapped[int | None] = mapped_column(Integer)
    max_seconds: Mapped[int | None] = mapped_column(Integer)
    max_sessions: Mapped[int | None] = mapped_column(Integer)
    reservation: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(500))


class CourseSetting(Base):
    """Append-only: an instructor's setting of a course (``courses.SETTINGS``: the TA extension
    limit, ...); the latest row of each (project, setting) is in force. An empty value: unset."""

    __tablename__ = "hpchub_course_settings"
    __table_args__ = (Index("ix_hpchub_course_settings_project_id_setting_id", "project_id", "setting", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    setting: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    set_by: Mapped[str] = mapped_column(String(500))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoginGroups(Base):
    """Append-only: the identity provider's groups of a user as a login (or the refresh before a
    spawn) showed them, one row each time they changed (newline-separated, sorted). The
    claims reach the hub only at logins: ``hpchub course sync`` reads the latest row."""

    __tablename__ = "hpchub_login_groups"
    __table_args__ = (Index("ix_hpchub_login_groups_user_id", "user", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(32))
    groups: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RosterEntry(Base):
    """A principal on a course's roster (CSV upload) who has not logged in yet: a pending
    member. At the principal's first login the entry becomes a membership of the Unix user
    the login maps to (``user`` and ``joined_at`` set); entries are never deleted."""

    __tablename__ = "hpchub_roster"
    __table_args__ = (UniqueConstraint("project_id", "principal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    principal: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    added_by: Mapped[str] = mapped_column(String(500))
    user: Mapped[str | None] = mapped_column(String(32))
    joined_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OrphanJob(Base):
    """A job carrying the portal's tag (``hpchub:`` comment) on a project's account that no
    portal session records (or one recorded for another user, or whose session ended):
    the reconciler cancels it and records it here, once per (cluster, job id). Never
    adopted; its usage is charged like any outside job's (``hpchub_outside_jobs``, sacct)."""

    __tablename__ = "hpchub_orphan_jobs"
    __table_args__ = (UniqueConstraint("cluster", "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int] = mapped_column(ForeignKey("hpchub_projects.id"))
    user: Mapped[str] = mapped_column(String(32))
    tag: Mapped[str] = mapped_column(String(200))  # the job's comment as Slurm showed it (cut to 200)
    reason: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SessionActivity(Base):
    """A session's latest activity report (its own server's push, ``hub/api/activity.py``): one row
    per session, replaced by a newer report. What the idle stop reads; no money or hours
    depend on it (the charge is sacct's elapsed time), so it is not append-only."""

    __tablename__ = "hpchub_session_activity"

    session_id: Mapped[int] = mapped_column(ForeignKey("hpchub_sessions.id"), primary_key=True)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    kernels_busy: Mapped[int] = mapped_column(Integer)
    terminals_busy: Mapped[int] = mapped_column(Integer)
    last_activity: Mapped[datetime] = mapped_column(UtcDateTime)
    gpu_percent: Mapped[int | None] = mapped_column(Integer)


def _replaced_by_a_final_charge():
    final = aliased(Charge)
    return exists(
        select(final.id).where(
            and_(final.cluster == Charge.cluster, final.job_id == Charge.job_id, final.kind == ChargeKind.FINAL)
        )
    )


# Built once (constructing them took a noticeable part of an admission check).
_REPLACED = _replaced_by_a_final_charge()
_EFFECTIVE = or_(Charge.kind == ChargeKind.FINAL, ~_REPLACED)
# The provisional charges no final charge replaced. Sums of effective charges on the hot
# path add the final charges (from the covering index alone) to these, rather than summing
# under ``effective_charges()``: for that OR, PostgreSQL visits every charge row of the
# project or hashes every final charge of the table (benchmarks/budget.py).
UNREPLACED_PROVISIONAL_CHARGES = and_(Charge.kind == ChargeKind.PROVISIONAL, ~_REPLACED)


def effective_charges():
    """A WHERE clause selecting each job's effective charge: final, or provisional while no
    final row exists for the same (cluster, job id)."""
    return _EFFECTIVE


class AppendOnlyRecord:
    """A marker for tables defined in other modules whose rows are only ever inserted."""


APPEND_ONLY = (Grant, CapEntry, Charge, CourseSetting, LoginGroups, AppendOnlyRecord)


class AppendOnlySession(Session):
    """The ledger's ORM session: refuses to update or delete append-only records."""


@event.listens_for(AppendOnlySession, "before_flush")
def _refuse_rewriting_history(session: Session, flush_context, instances) -> None:
    for instance in list(session.dirty) + list(session.deleted):
        if isinstance(instance, APPEND_ONLY) and (instance in session.deleted or session.is_modified(instance)):
            raise RuntimeError(f"{type(instance).__name__} rows are append-only: never updated or deleted")
