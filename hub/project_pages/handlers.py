"""The project and admin pages: JupyterHub page handlers (cookie login, like the home page).

- ``GET /hub/hpchub/projects/{p}``: budget, used, held, remaining, the burn-down chart,
  members (as the viewer's role allows), recent sessions, the CSV link.
- ``GET /hub/hpchub/projects/{p}/charges.csv``: the charges as ``hpchub charges --csv``
  (a plain page download: a browser follows the link with its login cookie).
- ``GET /hub/hpchub/admin/projects[?sort=COLUMN&dir=asc|desc]``: every project, for admins, and the
  expired projects whose space is due for archiving (``c.HPCHubAllocations.data_grace_days``).
- ``GET /hub/hpchub/courses/{p}``: the course dashboard: rules, term, each student's
  use against their cap, flags, pending roster entries, the lab hours, extend and switch controls;
  ``.../live``: its live part alone (the page's script fetches it every 30 s);
  ``.../report.csv``: the course report as ``hpchub course report --csv``.
- ``GET /hub/hpchub/new-course``: the form that creates a course through ``POST
  /hub/api/hpchub/v1/courses`` (admins; instructors of a course when the site allows).

Ledger reads run in a worker thread (``asyncio.to_thread``), the chart is drawn in one and
cached briefly (``HPCHubPages.chart_cache_seconds``). An unknown project and one the viewer
may not see are the same 404; a malformed name or sort parameter a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from jupyterhub.handlers import BaseHandler
from tornado import web

from hub.allocations.settings import HPCHubAllocations
from hub.api.handlers import ledger_call
from hub.api.lab_hours_state import HPCHubCourses, read_lab_hours
from hub.api.scopes import READ_SCOPE
from hub.api.settings import HPCHubAPI
from hub.envs.config import HPCHubEnvironments
from hub.ledger import Ledger
from hub.ledger.errors import LedgerInputError
from hub.ledger.runtime import ledger_from_config
from hub.ledger.types import Role
from hub.project_pages import course_gather, gather, tables
from hub.project_pages.chart import project_chart
from hub.project_pages.settings import HPCHubPages
from spawners.slurm.cluster import SlurmCluster

T = TypeVar("T")
PAGES_PREFIX = r"/hpchub"
_NAME = r"([^/]+)"  # validated by the handler (400 naming the field), not by the route


class LedgerPageHandler(BaseHandler):
    """Shared by hpchub's pages: the ledger in a worker thread, its errors as HTTP errors."""

    @property
    def page_settings(self) -> HPCHubPages:
        return HPCHubPages(config=self.settings["config"])

    def viewer(self) -> gather.Viewer:
        user = self.current_user
        if READ_SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, f"your login lacks the scope {READ_SCOPE}; ask the site's admins")
        return gather.Viewer(user.name, bool(user.admin))

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await ledger_call(self.log, "hpchub pages", function, *args, **kwargs)

    async def ledger(self) -> Ledger:
        ledger = await self.run(ledger_from_config, self.settings["config"])
        if ledger is None:
            raise web.HTTPError(404, "GPU-hour budgets are not configured on this hub (HPCHubLedger.db_url)")
        return ledger


class ProjectPageHandler(LedgerPageHandler):
    @web.authenticated
    async def get(self, project: str) -> None:
        viewer = self.viewer()
        ledger = await self.ledger()
        settings = self.page_settings
        page = await self.run(gather.project_page, ledger, project, viewer, recent=settings.recent_sessions)
        try:
            chart = await project_chart(
                page.info.name,
                lambda: gather.chart_data(ledger, page),
                settings.chart_cache_seconds,
                figures=page.project_figures,
                now=page.now,
            )
        except Exception as exc:  # noqa: BLE001  (the page without its chart rather than no page)
            self.log.warning("hpchub pages: the chart of %s: %s", page.info.name, exc, exc_info=True)
            chart = None
        html = await self.render_template(
            "hpchub_project.html", page=page, chart=chart,
            period=tables.period_text(page.info.period_start, page.info.period_end),
            environments_enabled=bool(HPCHubEnvironments(config=self.settings["config"]).project_root),
        )  # fmt: skip
        self.finish(html)


class ChargesCSVHandler(LedgerPageHandler):
    @web.authenticated
    async def get(self, project: str) -> None:
        viewer = self.viewer()
        ledger = await self.ledger()
        text = await self.run(gather.charges_csv, ledger, project, viewer)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{project}-charges.csv"')
        self.finish(text)


class AdminProjectsHandler(LedgerPageHandler):
    @web.authenticated
    async def get(self) -> None:
        viewer = self.viewer()
        if not viewer.is_admin:
            raise web.HTTPError(403, "the projects overview is for the portal's admins")
        try:
            sort, direction = tables.parse_sort(self.get_argument("sort", None), self.get_argument("dir", None))
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None
        ledger = await self.ledger()
        rows = tables.sort_rows(await self.run(gather.admin_rows, ledger), sort, direction)
        grace = HPCHubAllocations(config=self.settings["config"]).data_grace_days
        archive = await self.run(gather.archive_rows, ledger, grace)
        project_root = HPCHubEnvironments(config=self.settings["config"]).project_root
        html = await self.render_template(
            "hpchub_admin_projects.html", rows=rows, headers=tables.headers(sort, direction), sort=sort,
            direction=direction, archive=archive, data_grace_days=grace, project_root=project_root,
        )  # fmt: skip
        self.finish(html)


class CoursePageHandler(LedgerPageHandler):
    """The course dashboard; ``live=True``: only its live part (the fragment the script re-fetches)."""

    live = False

    async def course_view(self, project: str) -> dict:
        viewer = self.viewer()
        ledger = await self.ledger()
        page = await self.run(course_gather.course_page, ledger, project, viewer)
        lab = await read_lab_hours(
            SlurmCluster.from_config(self.settings["config"]).client(log=self.log),
            page.rules.reservation,
            datetime.now(timezone.utc),
        )
        # the link to the new-course form (the form and the API decide again)
        can_create = viewer.is_admin or (
            page.role is Role.INSTRUCTOR
            and HPCHubAPI(config=self.settings["config"]).instructor_course_max_mgs is not None
        )
        return {"page": page, "lab": lab, "courses": HPCHubCourses(config=self.settings["config"]),
                "can_create_course": can_create}  # fmt: skip

    @web.authenticated
    async def get(self, project: str) -> None:
        view = await self.course_view(project)
        if self.live:
            self.set_header("Cache-Control", "no-store")
        html = await self.render_template("hpchub_course_live.html" if self.live else "hpchub_course.html", **view)
        self.finish(html)


class CourseLiveHandler(CoursePageHandler):
    live = True


class NewCoursePageHandler(LedgerPageHandler):
    """The form that creates a course (it posts to ``POST /courses``, which decides)."""

    @web.authenticated
    async def get(self) -> None:
        viewer = self.viewer()
        ledger = await self.ledger()
        creator = await self.run(course_gather.course_creator, ledger, viewer,
                                 HPCHubAPI(config=self.settings["config"]).instructor_course_max_mgs)  # fmt: skip
        if creator is None:
            raise web.HTTPError(403, "creating a course is for the portal's admins and the instructors of a course")
        html = await self.render_template("hpchub_course_new.html", creator=creator)
        self.finish(html)


class CourseReportCSVHandler(LedgerPageHandler):
    @web.authenticated
    async def get(self, project: str) -> None:
        viewer = self.viewer()
        ledger = await self.ledger()
        text = await self.run(course_gather.course_report_csv, ledger, project, viewer)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{project}-report.csv"')
        self.finish(text)


# Relative to the hub's prefix (JupyterHub adds /hub).
ROUTES: list[tuple[str, type[BaseHandler]]] = [
    (rf"{PAGES_PREFIX}/new-course/?", NewCoursePageHandler),
    (rf"{PAGES_PREFIX}/courses/{_NAME}/report\.csv", CourseReportCSVHandler),
    (rf"{PAGES_PREFIX}/courses/{_NAME}/live", CourseLiveHandler),
    (rf"{PAGES_PREFIX}/courses/{_NAME}/?", CoursePageHandler),
    (rf"{PAGES_PREFIX}/projects/{_NAME}/charges\.csv", ChargesCSVHandler),
    (rf"{PAGES_PREFIX}/projects/{_NAME}/?", ProjectPageHandler),
    (rf"{PAGES_PREFIX}/admin/projects/?", AdminProjectsHandler),
]
