"""What the project and admin pages show, read from the ledger (no framework: the handlers
call these in a worker thread; the unit tests call them on a ledger of their own).

Visibility is the REST API's (:mod:`hub.api.access`): admins see every project; pi, manager,
instructor and ta every member's row and session; member and student their own; anyone else
gets the same "no project" as for an unknown name. The figures are the ledger's
``figures`` in the ``hpchub usage --json`` shape (``usage_json``): the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.api import views as api_views
from hub.api.access import NOT_FOUND_MESSAGE, ProjectAccess, project_access
from hub.ledger import Ledger
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.period import PeriodFinding, ProjectStatus, period_finding, project_status
from hub.ledger.records import period_json
from hub.ledger.store import usage_json
from hub.ledger.types import (
    ProjectInfo,
    ProjectKind,
    ProjectUsage,
    Role,
    check_project_name,
    check_user,
)
from hub.project_pages import tables
from hub.project_pages.burndown import BurnDown, burndown


@dataclass(frozen=True)
class Viewer:
    """Who looks: a hub user's name and whether they are a JupyterHub admin."""

    name: str
    is_admin: bool

    @property
    def ledger_name(self) -> str | None:
        """The name as a ledger member (None: a hub name that cannot be one)."""
        try:
            return check_user(self.name)
        except LedgerInputError:
            return None


@dataclass(frozen=True)
class ProjectPage:
    info: ProjectInfo
    role: Role | None  # the viewer's role in the project (None: an admin who is not a member)
    access: ProjectAccess
    usage: dict  # ``hpchub usage --json`` of the project, members as the viewer may see them
    figures: dict  # budget, used, held, remaining: text and value
    percent_used: str
    members: list[dict]
    sessions: list[dict]
    project_figures: ProjectUsage  # exact, at ``now``: the chart's last point
    now: datetime
    status: ProjectStatus = ProjectStatus.ACTIVE  # active, expired (past its end date) or closed


def _visible(project: str, role: Role | None, viewer: Viewer) -> ProjectAccess:
    access = project_access(role, is_admin=viewer.is_admin)
    if not access.visible:
        raise NotFound("project", NOT_FOUND_MESSAGE.format(project=project))
    return access


def project_page(
    ledger: Ledger, project: str, viewer: Viewer, *, recent: int = 20, now: datetime | None = None
) -> ProjectPage:
    """Everything the project page shows. ``LedgerInputError`` for a malformed name (400),
    ``NotFound`` for an unknown project or one the viewer may not see (the same 404)."""
    check_project_name(project)
    now = ledger.clock() if now is None else now
    try:
        info = ledger.project(project)
    except NotFound:
        raise NotFound("project", NOT_FOUND_MESSAGE.format(project=project)) from None
    figures = ledger.figures(project, now)
    me = viewer.ledger_name
    role = next((member.role for member in figures.members if member.user == me), None)
    access = _visible(project, role, viewer)
    sessions = ledger.recent_sessions(project, limit=recent, user=None if access.read_all_members else me, now=now)
    today = ledger.today(now)
    return ProjectPage(
        info=info, role=role, access=access,
        usage=api_views.visible_usage({**usage_json(figures), **period_json(info, today)}, me, access),
        figures=tables.figures_view(figures),
        percent_used=tables.percent_text(tables.percent_tenths(figures.used_mgs, figures.grants_mgs)),
        members=tables.member_rows(figures, me, access.read_all_members),
        sessions=tables.session_rows(sessions),
        project_figures=figures, now=now, status=project_status(info.state, info.period_end, today),
    )  # fmt: skip


def chart_data(ledger: Ledger, page: ProjectPage) -> BurnDown:
    """The burn-down chart's data for a page already read (its figures are the last point).
    Separate from ``project_page``: it reads every charge, so the hub calls it only when the
    project's chart is not in the cache."""
    name = page.info.name
    return burndown(
        figures=page.project_figures, grants=ledger.grant_history(name), charges=ledger.charge_timeline(name),
        now=page.now, period_start=page.info.period_start, period_end=page.info.period_end, tz=ledger.site_timezone,
    )  # fmt: skip


def charges_csv(ledger: Ledger, project: str, viewer: Viewer) -> str:
    """The project's charges as ``hpchub charges NAME --csv`` prints them: every job's for those
    who read every member, else the viewer's own (the API's ``?format=csv``)."""
    check_project_name(project)
    try:
        usage = ledger.usage(project)
    except NotFound:
        raise NotFound("project", NOT_FOUND_MESSAGE.format(project=project)) from None
    me = viewer.ledger_name
    access = _visible(project, api_views.caller_role(usage, me), viewer)
    return api_views.charges_csv(api_views.visible_charges(ledger.charges(project), me, access))


def admin_rows(ledger: Ledger, now: datetime | None = None) -> list[tables.ProjectRow]:
    """Every project's row for the admin page, at one ``now`` (the ledger's ``project_totals``: the
    totals of ``figures``, one read for every project)."""
    now = ledger.clock() if now is None else now
    infos = ledger.projects()
    totals = ledger.project_totals(now)
    today = ledger.today(now)
    return [tables.project_row(info, totals[info.name], today) for info in infos if info.name in totals]


def archive_rows(ledger: Ledger, data_grace_days: int, now: datetime | None = None) -> list[PeriodFinding]:
    """The expired (or closed) projects whose period ended more than ``data_grace_days`` ago, oldest
    end first: their spaces are due for archiving (the portal deletes nothing)."""
    today = ledger.today(now)
    found = [period_finding(p.name, p.kind, p.state, p.period_end, today, data_grace_days) for p in ledger.projects()]
    return sorted((f for f in found if f is not None and f.archive_from is not None),
                  key=lambda f: (f.period_end, f.project))  # fmt: skip


def my_projects(ledger: Ledger, user: str) -> list[dict]:
    """The home page's "Your projects": each active membership with its figures and page link (and
    for a course its dashboard's, ``course_path``)."""
    me = Viewer(user, False).ledger_name
    if me is None:
        return []
    now = ledger.clock()
    memberships = ledger.memberships(me)
    items = [(info.name, role.value, ledger.figures(info.name, now)) for info, role in memberships]
    rows = tables.project_links(items)
    for row, (info, _role) in zip(rows, memberships, strict=True):
        row["course_path"] = f"hpchub/courses/{info.name}" if info.kind is ProjectKind.COURSE else None
    return rows
