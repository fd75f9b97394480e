"""The admission's prebuilt statements (built once at import): the effective charges' sums
(``_CHARGES_SUM``, ``_MEMBER_CHARGES_SUM``), every figure the admission check reads in one
statement (``_ADMISSION_FIGURES``) and the session insert (``_INSERT_SESSION``). Used by
``store.Ledger``; kept apart from ``store`` so that the SQL reads on its own.
"""

from __future__ import annotations

from sqlalchemy import (
    String,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
)

from hub.ledger.models import (
    UNREPLACED_PROVISIONAL_CHARGES,
    CapEntry,
    Charge,
    Grant,
    Member,
    OutsideJob,
    PortalSession,
    UtcDateTime,
)  # fmt: skip
from hub.ledger.types import ChargeKind, OutsideJobState, SessionState

_HOLDING = (SessionState.ADMITTED, SessionState.RUNNING)


def _charges_sum(by_user: bool):
    def part(condition):
        query = select(func.coalesce(func.sum(Charge.weighted_mgs), 0))
        query = query.where(Charge.project_id == bindparam("project_id"), condition)
        return (query.where(Charge.user == bindparam("user")) if by_user else query).scalar_subquery()

    return select(part(Charge.kind == ChargeKind.FINAL) + part(UNREPLACED_PROVISIONAL_CHARGES))


_CHARGES_SUM, _MEMBER_CHARGES_SUM = _charges_sum(False), _charges_sum(True)


def _admission_figures():
    """Everything the admission check reads, in one statement (built once) of three kinds of
    rows, told apart by the first column:

    - ``s``: each holding session of the project (user, gpus, reserved_seconds,
      weight_milli, running 1/0, started_at);
    - ``o``: each running outside job of the project (user, 1, time_limit_seconds,
      weighted_gpus_milli, running 1, started_at), held like a session of one "GPU";
    - ``f``: one row: grants, effective charges (the two sums of ``_charges_sum``), the
      member's effective charges, the member's latest cap (null: none) and whether the
      member is active (1/0).

    The member's sessions and outside jobs are the project's of that user (in Python).
    """
    project_id, user = bindparam("project_id"), bindparam("user")

    def charges(condition, by_user: bool):
        query = select(func.coalesce(func.sum(Charge.weighted_mgs), 0))
        query = query.where(Charge.project_id == project_id, condition)
        return (query.where(Charge.user == user) if by_user else query).scalar_subquery()

    grants = select(func.coalesce(func.sum(Grant.amount_mgs), 0)).where(Grant.project_id == project_id)
    cap = (
        select(CapEntry.cap_mgs)
        .where(CapEntry.project_id == project_id, CapEntry.user == user)
        .order_by(CapEntry.id.desc())
        .limit(1)
    )
    member = exists().where(Member.project_id == project_id, Member.user == user, Member.active.is_(True))
    # the figures row first: its column types are the statement's (PostgreSQL resolves the
    # nulls of the later rows against them; SQLAlchemy reads started_at as UtcDateTime)
    figures = select(
        literal_column("'f'"), cast(null(), String), grants.scalar_subquery(),
        charges(Charge.kind == ChargeKind.FINAL, False) + charges(UNREPLACED_PROVISIONAL_CHARGES, False),
        charges(Charge.kind == ChargeKind.FINAL, True) + charges(UNREPLACED_PROVISIONAL_CHARGES, True),
        cap.scalar_subquery(), case((member, 1), else_=0), cast(null(), UtcDateTime),
    )  # fmt: skip
    sessions = select(
        literal_column("'s'"), PortalSession.user, PortalSession.gpus, PortalSession.reserved_seconds,
        PortalSession.weight_milli, case((PortalSession.state == SessionState.RUNNING, 1), else_=0), null(),
        PortalSession.started_at,
    ).where(PortalSession.project_id == project_id, PortalSession.state.in_(_HOLDING))  # fmt: skip
    outside = select(
        literal_column("'o'"), OutsideJob.user, literal_column("1"), OutsideJob.time_limit_seconds,
        OutsideJob.weighted_gpus_milli, literal_column("1"), null(), OutsideJob.started_at,
    ).where(OutsideJob.project_id == project_id, OutsideJob.state == OutsideJobState.RUNNING)  # fmt: skip
    return union_all(figures, sessions, outside)


_ADMISSION_FIGURES = _admission_figures()
_INSERT_SESSION = insert(PortalSession).returning(PortalSession.id)
