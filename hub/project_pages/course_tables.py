"""What the course dashboard shows (pure: no database, no framework, no clock of its own).

- Each student's row: use against the cap as a bar (a ``<meter>`` with the figures in words
  beside it, never colour alone), flags ("running now", "starting", "never started" (students
  and members only), "near the cap"), extensions, sessions.
- Who sees which rows: instructors, TAs and admins every member's; a student their own only
  (the API's rule, :mod:`hub.api.access`).
- The roster's pending principals (never logged in), for the staff only.
- The lab hours' state in words from the course's Slurm reservation.

GPU-hours are the ledger's exact figures (mgs), shown as ``hpchub usage`` shows them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from hub.api.access import ProjectAccess
from hub.ledger import arithmetic as arith
from hub.ledger.course_records import ReportRow
from hub.ledger.types import MemberUsage, Role, SessionInfo, SessionState
from hub.project_pages.tables import hours_text, percent_tenths, percent_text

NEAR_CAP_TENTHS = 800  # "near the cap" from 80.0 % of the cap used (the budget warnings' first level)
HIGH_CAP_TENTHS = 950  # the meter's "high" region (the second warning level)
ROLE_ORDER = (Role.STUDENT, Role.MEMBER, Role.TA, Role.INSTRUCTOR, Role.MANAGER, Role.PI)
LEARNER_ROLES = (Role.STUDENT.value, Role.MEMBER.value)  # "never started" is about them, not the staff


class Flag(Enum):
    RUNNING = "running now"
    STARTING = "starting"
    NEVER_STARTED = "never started"
    NEAR_CAP = "near the cap"

    @property
    def key(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True)
class Bar:
    """Use against the cap: a ``<meter>`` (value clamped to the cap) and the same in words."""

    value: float  # GPU-h used, at most ``maximum``
    maximum: float  # the cap, GPU-h
    low: float
    high: float
    text: str  # "3.25 of 5.0 GPU-h (65.0 %)"


@dataclass(frozen=True)
class StudentRow:
    user: str
    role: str
    used_mgs: int
    held_mgs: int
    cap_mgs: int | None
    sessions: int  # ever (refused ones not counted), as the course report counts them
    running: int  # sessions running now
    starting: int  # admitted, not running yet
    extensions: int  # cap changes after the first cap

    @property
    def cap_tenths(self) -> int | None:
        """Used / cap in tenths of a percent (rounded down); None without a cap."""
        return None if self.cap_mgs is None else percent_tenths(self.used_mgs, self.cap_mgs)

    @property
    def flags(self) -> tuple[Flag, ...]:
        flags = []
        if self.running:
            flags.append(Flag.RUNNING)
        if self.starting:
            flags.append(Flag.STARTING)
        if self.sessions == 0 and not self.running and not self.starting and self.role in LEARNER_ROLES:
            flags.append(Flag.NEVER_STARTED)
        if self.cap_mgs is not None and (self.cap_mgs <= 0 or self.used_mgs * 1000 >= NEAR_CAP_TENTHS * self.cap_mgs):
            flags.append(Flag.NEAR_CAP)
        return tuple(flags)

    @property
    def flag_keys(self) -> str:
        """For ``data-flags`` (tests and styles): ``running near-cap``."""
        return " ".join(flag.key for flag in self.flags)

    @property
    def bar(self) -> Bar | None:
        if self.cap_mgs is None:
            return None
        tenths = self.cap_tenths
        text = f"{hours_text(self.used_mgs)} of {hours_text(self.cap_mgs)} GPU-h ({percent_text(tenths)})"
        if tenths is None:  # a cap of 0
            text = f"{hours_text(self.used_mgs)} GPU-h used, cap 0 GPU-h"
        return Bar(
            value=arith.gpu_hours_json(max(0, min(self.used_mgs, self.cap_mgs))),
            maximum=arith.gpu_hours_json(self.cap_mgs),
            low=arith.gpu_hours_json(self.cap_mgs * NEAR_CAP_TENTHS // 1000),
            high=arith.gpu_hours_json(self.cap_mgs * HIGH_CAP_TENTHS // 1000),
            text=text,
        )

    @property
    def cap_left_mgs(self) -> int | None:
        return None if self.cap_mgs is None else self.cap_mgs - self.used_mgs - self.held_mgs

    @property
    def cells(self) -> dict[str, str]:
        left = self.cap_left_mgs
        return {
            "used": hours_text(self.used_mgs), "held": hours_text(self.held_mgs),
            "cap": "none" if self.cap_mgs is None else hours_text(self.cap_mgs),
            "cap_left": "-" if left is None else hours_text(left),
            "flags": ", ".join(flag.value for flag in self.flags) or "-",
        }  # fmt: skip

    @property
    def values(self) -> dict[str, float | None]:
        """JSON numbers (``data-value``): what ``hpchub usage --json`` says."""
        return {
            "used": arith.gpu_hours_json(self.used_mgs), "held": arith.gpu_hours_json(self.held_mgs),
            "cap": None if self.cap_mgs is None else arith.gpu_hours_json(self.cap_mgs),
        }  # fmt: skip

    @property
    def cap_exact(self) -> str:
        """The cap as an exact decimal (up to 4 places) for the page's "extend" arithmetic; '' without one."""
        return "" if self.cap_mgs is None else hours_text(self.cap_mgs)


def _sort_key(row: StudentRow) -> tuple[int, str]:
    role = Role(row.role)
    return (ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER), row.user)


def student_rows(
    members: Iterable[MemberUsage],
    report: Iterable[ReportRow],
    active: Iterable[SessionInfo],
    *,
    viewer: str | None,
    access: ProjectAccess,
) -> list[StudentRow]:
    """One row per active member (students first, then by name), as the viewer may see them:
    every member's for those who read every member, else the viewer's own row only.

    ``members`` are the course's active members' figures (``Ledger.figures``), ``report`` the
    course report (sessions and extensions per member), ``active`` the course's admitted and
    running sessions."""
    project_sessions = list(active)
    by_user = {row.user: row for row in report}
    running = Counter(info.user for info in project_sessions if info.state is SessionState.RUNNING)
    starting = Counter(info.user for info in project_sessions if info.state is SessionState.ADMITTED)
    rows = []
    for member in members:
        if not access.visible or (not access.read_all_members and member.user != viewer):
            continue
        reported = by_user.get(member.user)
        rows.append(StudentRow(
            user=member.user, role=member.role.value, used_mgs=member.used_mgs, held_mgs=member.held_mgs,
            cap_mgs=member.cap_mgs, sessions=reported.sessions if reported else 0, running=running[member.user],
            starting=starting[member.user], extensions=reported.extensions if reported else 0,
        ))  # fmt: skip
    return sorted(rows, key=_sort_key)


@dataclass(frozen=True)
class Summary:
    students: int
    running: int
    never_started: int
    near_cap: int

    @property
    def text(self) -> str:
        plural = "" if self.students == 1 else "s"
        return (f"{self.students} student{plural}: {self.running} running now, {self.never_started} never started, "
                f"{self.near_cap} near the cap")  # fmt: skip


def summary(rows: Sequence[StudentRow]) -> Summary:
    """The students' counts (members with the role student)."""
    students = [row for row in rows if row.role == Role.STUDENT.value]
    return Summary(
        students=len(students),
        running=sum(1 for row in students if Flag.RUNNING in row.flags),
        never_started=sum(1 for row in students if Flag.NEVER_STARTED in row.flags),
        near_cap=sum(1 for row in students if Flag.NEAR_CAP in row.flags),
    )


def pending_principals(roster: Iterable[tuple[str, str, str | None]], access: ProjectAccess) -> list[tuple[str, str]]:
    """(principal, role) of roster entries that never logged in; none for a viewer who reads only
    their own row (a student never sees the roster)."""
    if not access.read_all_members:
        return []
    return [(principal, role) for principal, role, user in roster if user is None]


@dataclass(frozen=True)
class CourseActions:
    """Which controls the page offers (the API decides; a refused action shows its answer)."""

    extend_caps: bool  # instructor, admin (any cap); ta (raise within the site's limit)
    switch_lab_hours: bool  # instructor, admin
    change_settings: bool = False  # instructor, admin: the course's settings (TA extension limit, ...)


def course_actions(role: Role | None, access: ProjectAccess, *, is_admin: bool) -> CourseActions:
    instructor = is_admin or role is Role.INSTRUCTOR
    return CourseActions(
        extend_caps=access.set_caps or access.raise_caps,
        switch_lab_hours=instructor,
        change_settings=instructor,
    )
