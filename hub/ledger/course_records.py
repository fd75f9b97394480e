"""Courses in the ledger: mixed into ``Ledger`` (uses ``_read``/``_write``/``_project``).

``create_course`` makes the project (kind course, with its period and budget) and its rules
in one transaction; ``import_roster`` records principals (pending members) all or nothing;
``join_roster`` turns a principal's pending entries into memberships at their login (the IdP
groups: ``course_groups``);
``course_report`` is the instructor's final report. The admission reads the rules through
``_course_rules_and_role`` inside its own locked transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from hub.ledger import arithmetic as arith
from hub.ledger.course_accounts import check_course_account, check_course_reservation
from hub.ledger.courses import (
    PRINCIPAL_RE,
    SETTING_IDLE_STOP,
    SETTINGS,
    STOP_REASON_DROPPED,
    CourseRules,
    OnDrop,
    RosterRow,
    make_rules,
)
from hub.ledger.errors import LedgerInputError
from hub.ledger.models import (
    CapEntry,
    CourseRule,
    CourseSetting,
    Member,
    PortalSession,
    Project,
    RosterEntry,
)
from hub.ledger.types import (
    ProjectInfo,
    ProjectKind,
    Role,
    SessionState,
    check_account,
    check_project_name,
    check_text,
    check_user,
)  # fmt: skip
from spawners.slurm.accounts import AccountTree


@dataclass(frozen=True)
class RosterImport:
    added: tuple[str, ...]  # principals now pending
    unchanged: tuple[str, ...]  # already on the roster with that role


@dataclass(frozen=True)
class ReportRow:
    user: str
    role: str
    sessions: int
    used_mgs: int  # effective charges plus running sessions' cost so far
    cap_mgs: int | None
    extensions: int  # cap entries after the first one


def rules_of(row: CourseRule) -> CourseRules:
    return CourseRules(
        per_student_mgs=row.per_student_mgs, gpu_types=tuple(t for t in row.gpu_types.split(",") if t),
        max_gpus=row.max_gpus, max_seconds=row.max_seconds, max_sessions=row.max_sessions, reservation=row.reservation,
    )  # fmt: skip


class CourseRecords:
    def create_course(
        self,
        name: str,
        *,
        account: str,
        start: date | str,
        end: date | str,
        gpu_hours: object,
        rules: CourseRules,
        who: str,
        now: datetime | None = None,
        instructor: str | None = None,
    ) -> ProjectInfo:
        """A course: a project of kind course over [start, end] with its budget, and its rules
        (and ``instructor`` as its instructor), in one transaction."""
        if instructor is not None:
            check_user(instructor, "instructor")
        if start is None:
            raise LedgerInputError("start", "a course needs a start date")
        if end is None:
            raise LedgerInputError("end", "a course needs an end date")
        now = self._now(now)
        with self._write() as session:
            info = self._insert_project(
                session, name, account=account, kind=ProjectKind.COURSE, gpu_hours=gpu_hours, who=who,
                start=start, end=end, now=now,
            )  # fmt: skip
            project_id = session.scalars(select(Project.id).where(Project.name == name)).one()
            session.add(CourseRule(
                project_id=project_id, per_student_mgs=rules.per_student_mgs, gpu_types=",".join(rules.gpu_types),
                max_gpus=rules.max_gpus, max_seconds=rules.max_seconds, max_sessions=rules.max_sessions,
                reservation=rules.reservation, updated_at=now, updated_by=check_text(who, "who"),
            ))  # fmt: skip
            self._append_settings(session, project_id, CourseRules(rules.per_student_mgs).settings(), rules.settings(),
                                  reason="set when created", who=who, now=now)  # fmt: skip
            if instructor is not None:
                session.add(Member(project_id=project_id, user=instructor, role=Role.INSTRUCTOR, active=True,
                                   added_at=now, added_by=who))  # fmt: skip
            return info

    def set_course_settings(
        self, name: str, rules: CourseRules, *, reason: str, who: str, now: datetime | None = None
    ) -> tuple[CourseRules, list[str]]:
        """Record the instructor's settings in ``rules`` (``CourseRules.settings``) that differ
        from those in force: one appended row each. Returns the rules now and the names of the
        settings that changed."""
        reason, who = check_text(reason, "reason"), check_text(who, "who")
        now = self._now(now)
        with self._write() as session:
            project = self._project(session, name, lock=True)
            row = session.get(CourseRule, project.id)
            if row is None:
                raise LedgerInputError("project", f"{name} is a {project.kind.value} project, not a course")
            current = rules_of(row).with_settings(self._course_settings(session, project.id))
            current.with_settings(rules.settings()).check()
            changed = self._append_settings(session, project.id, current.settings(), rules.settings(), reason=reason,
                                            who=who, now=now)  # fmt: skip
            return current.with_settings(rules.settings()), changed

    def _append_settings(self, session, project_id: int, current: Mapping[str, str], wanted: Mapping[str, str], *,
                         reason: str, who: str, now: datetime) -> list[str]:  # fmt: skip
        changed = [setting for setting in SETTINGS if wanted[setting] != current[setting]]
        for setting in changed:
            session.add(CourseSetting(
                project_id=project_id, setting=setting, value=wanted[setting], reason=reason, set_by=who, set_at=now,
            ))  # fmt: skip
        return changed

    def _course_settings(self, session, project_id: int) -> dict[str, str]:
        """The settings in force: the latest row of each name."""
        latest = (
            select(func.max(CourseSetting.id)).where(CourseSetting.project_id == project_id)
            .group_by(CourseSetting.setting)
        )  # fmt: skip
        rows = session.execute(select(CourseSetting.setting, CourseSetting.value).where(CourseSetting.id.in_(latest)))
        return {setting: value for setting, value in rows if setting in SETTINGS}

    def course_setting_history(self, name: str) -> list[tuple[str, str, str, str, datetime]]:
        """Every recorded setting: (setting, value, reason, set_by, set_at), oldest first."""
        with self._read() as session:
            project = self._project(session, name)
            rows = session.execute(
                select(CourseSetting.setting, CourseSetting.value, CourseSetting.reason, CourseSetting.set_by,
                       CourseSetting.set_at).where(CourseSetting.project_id == project.id).order_by(CourseSetting.id)
            ).all()  # fmt: skip
        return [tuple(row) for row in rows]

    def course_rules(self, name: str) -> CourseRules | None:
        """The course's rules; None for a project that is not a course."""
        with self._read() as session:
            project = self._project(session, name)
            row = session.get(CourseRule, project.id)
            return None if row is None else rules_of(row).with_settings(self._course_settings(session, project.id))

    def _course_rules_and_role(self, session, project: Project, user: str) -> tuple[CourseRules | None, Role | None]:
        """Inside a transaction: the course's rules and the user's active role (one statement)."""
        role = (
            select(Member.role)
            .where(Member.project_id == project.id, Member.user == user, Member.active.is_(True))
            .scalar_subquery()
        )
        found = session.execute(select(CourseRule, role).where(CourseRule.project_id == project.id)).first()
        if found is None:
            return None, None
        return rules_of(found[0]).with_settings(self._course_settings(session, project.id)), found[1]

    def _default_student_cap(self, session, project: Project) -> int | None:
        row = session.get(CourseRule, project.id) if project.kind is ProjectKind.COURSE else None
        return None if row is None else row.per_student_mgs

    def dropped_students_to_stop(self) -> dict[tuple[str, str], str]:
        """(course, user) -> the stop reason, for each running or starting session of a student
        whose membership ended (a roster sync, an IdP group, ``member remove``) in a course whose
        on-drop setting is stop. The budget watch stops them after its grace (``enforce``)."""
        with self._read() as session:
            holding = session.execute(
                select(Project.id, Project.name, PortalSession.user).join(Project, Project.id == PortalSession.project_id)
                .join(CourseRule, CourseRule.project_id == Project.id)
                .where(PortalSession.state.in_((SessionState.ADMITTED, SessionState.RUNNING)))
                .where(~select(Member.id).where(Member.project_id == Project.id, Member.user == PortalSession.user,
                                                Member.active.is_(True)).exists())
            ).all()  # fmt: skip
            stops: dict[tuple[str, str], str] = {}
            settings: dict[int, dict[str, str]] = {}
            for project_id, course, user in holding:
                if project_id not in settings:
                    settings[project_id] = self._course_settings(session, project_id)
                if settings[project_id].get("on-drop") != OnDrop.STOP.value or (course, user) in stops:
                    continue
                last = session.execute(
                    select(Member.role, Member.ended_by).where(Member.project_id == project_id, Member.user == user)
                    .order_by(Member.id.desc()).limit(1)
                ).first()  # fmt: skip
                if last is not None and last.role is Role.STUDENT:
                    how = f"membership ended by {last.ended_by}" if last.ended_by else "membership ended"
                    stops[(course, user)] = STOP_REASON_DROPPED.format(user=user, course=course, how=how)
        return stops

    def course_idle_timeouts(self) -> dict[str, int]:
        """course -> its own idle stop in minutes, for each course that sets one (idle-stop-after;
        the idle watch's per-session timeout: ``idle.effective_idle_timeout``)."""
        with self._read() as session:
            latest = (
                select(func.max(CourseSetting.id)).where(CourseSetting.setting == SETTING_IDLE_STOP)
                .group_by(CourseSetting.project_id)
            )  # fmt: skip
            rows = session.execute(
                select(Project.name, CourseSetting.value).join(Project, Project.id == CourseSetting.project_id)
                .where(CourseSetting.id.in_(latest), CourseSetting.value != "")
            ).all()  # fmt: skip
        return {name: int(value) for name, value in rows}

    # --- the roster -------------------------------------------------------------------------------

    def import_roster(self, name: str, rows: list[RosterRow], *, who: str, now: datetime | None = None) -> RosterImport:
        """Put principals on the course's roster (pending until they log in), all or nothing.

        A principal already on the roster with another role is an error (nothing imported):
        change a member's role by removing and adding them. Importing the same file again
        changes nothing."""
        who = check_text(who, "who")
        now = self._now(now)
        added, unchanged = [], []
        with self._write() as session:
            project = self._project(session, name, lock=True)
            if project.kind is not ProjectKind.COURSE:
                raise LedgerInputError("project", f"{name} is a {project.kind.value} project, not a course")
            existing = {
                entry.principal: entry
                for entry in session.scalars(select(RosterEntry).where(RosterEntry.project_id == project.id))
            }
            conflicts = [
                f"line {row.line}: {row.principal} is on the roster as {existing[row.principal].role.value}, "
                f"not {row.role.value}"
                for row in rows
                if row.principal in existing and existing[row.principal].role is not row.role
            ]
            if conflicts:
                raise LedgerInputError("csv", "; ".join(conflicts[:20]))
            for row in rows:
                if row.principal in existing:
                    unchanged.append(row.principal)
                    continue
                session.add(RosterEntry(
                    project_id=project.id, principal=row.principal, role=row.role, added_at=now, added_by=who,
                ))  # fmt: skip
                added.append(row.principal)
        return RosterImport(tuple(added), tuple(unchanged))

    def roster(self, name: str) -> list[tuple[str, str, str | None]]:
        """(principal, role, user or None while pending), in the order they were added."""
        with self._read() as session:
            project = self._project(session, name)
            rows = session.execute(
                select(RosterEntry.principal, RosterEntry.role, RosterEntry.user)
                .where(RosterEntry.project_id == project.id)
                .order_by(RosterEntry.id)
            ).all()
        return [(principal, role.value, user) for principal, role, user in rows]

    def join_roster(self, principal: str, user: str, *, now: datetime | None = None) -> list[tuple[str, str]]:
        """At a login of ``principal`` (mapped to Unix ``user``): each pending roster entry of
        an active course becomes a membership (students get the course's per-student cap).
        Returns (course, role) of what was joined. Idempotent."""
        principal = principal.lower()
        if not PRINCIPAL_RE.fullmatch(principal):
            raise LedgerInputError("principal", f"{principal!r} is not a principal like name@uni.example")
        check_user(user)
        now = self._now(now)
        with self._read() as session:
            pending = session.execute(
                select(Project.name).join(RosterEntry, RosterEntry.project_id == Project.id)
                .where(RosterEntry.principal == principal, RosterEntry.user.is_(None))
            ).scalars().all()  # fmt: skip
        joined = []
        for course in pending:
            with self._write() as session:
                project = self._project(session, course, lock=True)
                entry = session.scalars(
                    select(RosterEntry).where(RosterEntry.project_id == project.id, RosterEntry.principal == principal)
                ).one()
                if entry.user is not None:
                    continue  # another login joined it meanwhile
                entry.user, entry.joined_at = user, now
                if self._member(session, project, user) is None:
                    session.add(Member(
                        project_id=project.id, user=user, role=entry.role, active=True, added_at=now,
                        added_by=f"roster of {course}",
                    ))  # fmt: skip
                    cap = self._default_student_cap(session, project) if entry.role is Role.STUDENT else None
                    if cap is not None:
                        session.add(CapEntry(
                            project_id=project.id, user=user, cap_mgs=cap, reason="course per-student cap",
                            set_by=f"roster of {course}", set_at=now,
                        ))  # fmt: skip
                joined.append((course, entry.role.value))
        return joined

    # --- the report ----------------------------------------------------------------------------------

    def course_report(self, name: str, now: datetime | None = None) -> list[ReportRow]:
        """One row per member ever in the course: sessions, GPU-hours used, cap, extensions."""
        now = self._now(now)
        usage = self.figures(name, now, every_member=True)
        with self._read() as session:
            project = self._project(session, name)
            sessions = dict(session.execute(
                select(PortalSession.user, func.count())
                .where(PortalSession.project_id == project.id, PortalSession.state != SessionState.REFUSED)
                .group_by(PortalSession.user)
            ).all())  # fmt: skip
            cap_entries = dict(session.execute(
                select(CapEntry.user, func.count()).where(CapEntry.project_id == project.id).group_by(CapEntry.user)
            ).all())  # fmt: skip
        return [
            ReportRow(
                user=member.user,
                role=member.role.value,
                sessions=sessions.get(member.user, 0),
                used_mgs=member.used_mgs,
                cap_mgs=member.cap_mgs,
                extensions=max(0, cap_entries.get(member.user, 0) - 1),
            )  # fmt: skip
            for member in usage.members
        ]


# What a new course is made of, as the command line and the page name it (``new_course``).
COURSE_FIELDS = (
    "name", "account", "start", "end", "gpu_hours", "per_student", "gpu_types", "max_gpus", "max_hours",
    "max_sessions", "reservation", "ta_extension_limit", "lab_hours_only", "on_drop", "idle_stop_after", "instructor",
)  # fmt: skip
REQUIRED_COURSE_FIELDS = ("name", "account", "start", "end", "gpu_hours", "per_student")


def new_course(
    ledger, fields: Mapping[str, object], *, who: str, slurm_accounts: AccountTree
) -> tuple[ProjectInfo, CourseRules]:
    """Create a course from ``COURSE_FIELDS`` (``hpchub course create`` and ``POST /courses``:
    one validation for both). Every field is checked before anything is written; bad input
    raises ``LedgerInputError`` naming the field (``name`` for the course's name).

    ``slurm_accounts`` is Slurm's account tree as read just before: the course's account must be
    a leaf account of its own (``course_accounts.check_course_account``: not root, no accounts
    under it; no other project has it), and its reservation, if any, the course's own
    ``COURSE-lab``."""
    unknown = [key for key in fields if key not in COURSE_FIELDS]
    if unknown:
        raise LedgerInputError(str(unknown[0])[:64], f"unknown field; allowed: {', '.join(COURSE_FIELDS)}")
    for key in REQUIRED_COURSE_FIELDS:
        if fields.get(key) in (None, ""):
            raise LedgerInputError(key, "required")
    optional = {key: (None if fields.get(key) == "" else fields.get(key)) for key in COURSE_FIELDS}
    check_project_name(fields["name"], "name")
    check_course_account(check_account(fields["account"]), slurm_accounts)
    rules = make_rules(
        per_student=fields["per_student"], gpu_types=optional["gpu_types"], max_gpus=optional["max_gpus"],
        max_hours=optional["max_hours"], max_sessions=optional["max_sessions"], reservation=optional["reservation"],
        ta_extension_limit=optional["ta_extension_limit"], lab_hours_only=optional["lab_hours_only"] or False,
        on_drop=optional["on_drop"], idle_stop_after=optional["idle_stop_after"],
    )  # fmt: skip
    check_course_reservation(fields["name"], rules.reservation)
    info = ledger.create_course(
        fields["name"], account=fields["account"], start=fields["start"], end=fields["end"],
        gpu_hours=fields["gpu_hours"], rules=rules, who=who, instructor=optional["instructor"],
    )  # fmt: skip
    return info, rules


REPORT_COLUMNS = ("user", "role", "sessions", "gpu_hours", "cap_gpu_hours", "extensions")


def report_hours(mgs: int | None) -> str:
    return "" if mgs is None else str(arith.round_gpu_hours(mgs))


def report_csv(rows: Iterable[ReportRow]) -> str:
    """The final report as CSV with a header line (``hpchub course report --csv``, the course page's export)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for row in rows:
        writer.writerow((row.user, row.role, row.sessions, report_hours(row.used_mgs), report_hours(row.cap_mgs),
                         row.extensions))  # fmt: skip
    return out.getvalue()
