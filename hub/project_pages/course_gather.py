"""What the course dashboard shows, read from the ledger (no framework: the handlers call these
in a worker thread; the unit tests on a ledger of their own).

Who sees it is the API's rule (:mod:`hub.api.access`) as for the project page: instructors,
TAs and admins every member's row, the roster's pending principals and the course's figures;
a student their own row and figures only; anyone else the same 404 as for an unknown
project. A project that is not a course answers 404 "no course".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.api.access import NOT_FOUND_MESSAGE, ProjectAccess, project_access
from hub.ledger import Ledger
from hub.ledger import arithmetic as arith
from hub.ledger.course_records import ReportRow, report_csv
from hub.ledger.courses import CourseRules
from hub.ledger.errors import NotFound
from hub.ledger.types import ProjectInfo, ProjectKind, Role, check_project_name
from hub.project_pages import course_tables, tables
from hub.project_pages.gather import Viewer

NOT_A_COURSE = "no course {project!r}: it is a {kind} project (see its project page)"


@dataclass(frozen=True)
class CoursePage:
    info: ProjectInfo
    rules: CourseRules
    role: Role | None  # the viewer's role (None: an admin who is not a member)
    access: ProjectAccess
    actions: course_tables.CourseActions
    figures: dict | None  # the course's budget, used, held, remaining (None: a student, who sees their own only)
    percent_used: str
    rows: list[course_tables.StudentRow]
    summary: course_tables.Summary
    pending: list[tuple[str, str]]  # (principal, role) never logged in (staff only)
    now: datetime

    @property
    def rules_text(self) -> list[str]:
        return self.rules.describe()

    @property
    def settings_text(self) -> dict[str, str]:
        """The settings as the page's form shows them (GPU-hours as typed)."""
        limit = self.rules.ta_extension_mgs
        return {"ta_extension": "" if limit is None else format(arith.round_gpu_hours(limit).normalize(), "f")}

    @property
    def term(self) -> str:
        return tables.period_text(self.info.period_start, self.info.period_end)


def _course(
    ledger: Ledger, project: str, viewer: Viewer
) -> tuple[ProjectInfo, CourseRules, Role | None, ProjectAccess]:
    """The course, its rules, the viewer's role and access; 404 (``NotFound``) as the API answers."""
    check_project_name(project)
    try:
        info = ledger.project(project)
    except NotFound:
        raise NotFound("project", NOT_FOUND_MESSAGE.format(project=project)) from None
    me = viewer.ledger_name
    role = None
    if me is not None:
        role = next((r for p, r in ledger.memberships(me) if p.name == project), None)
    access = project_access(role, is_admin=viewer.is_admin)
    if not access.visible:
        raise NotFound("project", NOT_FOUND_MESSAGE.format(project=project))
    rules = ledger.course_rules(project) if info.kind is ProjectKind.COURSE else None
    if rules is None:
        raise NotFound("project", NOT_A_COURSE.format(project=project, kind=info.kind.value))
    return info, rules, role, access


def course_page(ledger: Ledger, project: str, viewer: Viewer, *, now: datetime | None = None) -> CoursePage:
    """Everything the dashboard shows but the lab hours (read from Slurm by the handler)."""
    info, rules, role, access = _course(ledger, project, viewer)
    now = ledger.clock() if now is None else now
    figures = ledger.figures(project, now)
    report = ledger.course_report(project, now)
    active = [session for session in ledger.active_sessions() if session.project == project]
    rows = course_tables.student_rows(figures.members, report, active, viewer=viewer.ledger_name, access=access)
    pending = course_tables.pending_principals(ledger.roster(project), access)
    return CoursePage(
        info=info, rules=rules, role=role, access=access,
        actions=course_tables.course_actions(role, access, is_admin=viewer.is_admin),
        figures=tables.figures_view(figures) if access.read_all_members else None,
        percent_used=tables.percent_text(tables.percent_tenths(figures.used_mgs, figures.grants_mgs)),
        rows=rows, summary=course_tables.summary(rows), pending=pending, now=now,
    )  # fmt: skip


def course_report_csv(ledger: Ledger, project: str, viewer: Viewer) -> str:
    """The course report as ``hpchub course report NAME --csv`` prints it: every member ever in
    the course for the staff and admins, a student's own row for a student."""
    _info, _rules, _role, access = _course(ledger, project, viewer)
    rows: list[ReportRow] = ledger.course_report(project)
    if not access.read_all_members:
        rows = [row for row in rows if row.user == viewer.ledger_name]
    return report_csv(rows)


@dataclass(frozen=True)
class CourseCreator:
    """Who opens the new-course form: an admin (any budget, names the instructor) or an
    instructor of a course (up to the site's limit, as the new course's instructor)."""

    is_admin: bool
    user: str | None
    max_gpu_hours: str | None  # the limit in words for an instructor; None: an admin (none)


def course_creator(ledger: Ledger, viewer: Viewer, max_mgs: int | None) -> CourseCreator | None:
    """The form's viewer, or None if they may not create courses (the API decides again)."""
    if viewer.is_admin:
        return CourseCreator(True, viewer.ledger_name, None)
    if viewer.ledger_name is None or max_mgs is None:
        return None
    if not any(role is Role.INSTRUCTOR for _p, role in ledger.memberships(viewer.ledger_name)):
        return None
    return CourseCreator(False, viewer.ledger_name, arith.format_gpu_hours(max_mgs))


def is_course(ledger: Ledger, project: str) -> bool:
    """For links: is ``project`` a course (with rules)?"""
    return ledger.course_rules(project) is not None
