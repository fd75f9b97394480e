"""The environments pages of a project: the list, the create form and a build's live log.

- ``GET /hub/hpchub/projects/{p}/environments``: every environment with its versions and their
  state, for anyone who sees the project (members use environments); a pi, manager or
  instructor (and an admin) also gets the create form and the remove buttons.
- ``POST`` the same address (a plain form: ``name``, ``spec`` text or a ``spec_file`` upload,
  ``_xsrf``): the build is submitted through :func:`hub.envs.service.create`, the one
  implementation behind ``hpchub env create`` and the REST API; a refusal re-renders the form
  (HTTP 400/409) with the message beside the field it is about; success redirects (303) to the
  build page.
- ``GET .../environments/{name}/{version}``: one version's state and build log. While the build
  runs, the page's script follows the log through the REST API
  (``GET /hub/api/hpchub/v1/projects/{p}/environments/{name}/log?version=V&offset=N``) until the
  job ends, then shows the result.

The hub reads the project spaces itself (it runs as root in the demo; see docs/environments.md).
Unknown projects, ones the viewer may not see and (with environments not configured) every
project answer the same 404.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from tornado import web

from hub.api.access import MANAGING_ROLES, NOT_FOUND_MESSAGE
from hub.envs import service
from hub.envs import space as sp
from hub.envs.config import HPCHubEnvironments
from hub.envs.spec import (
    ENV_NAME_PATTERN,
    ENV_NAME_RULE,
    MAX_SPEC_BYTES,
    SpecError,
    check_spec_file_name,
)
from hub.ledger import Ledger
from hub.ledger.errors import NotFound
from hub.ledger.types import Role, check_project_name
from hub.numbers import NumberError, parse_whole
from hub.project_pages.gather import Viewer, _visible
from hub.project_pages.handlers import LedgerPageHandler

LOG_PAGE_BYTES = 256 * 1024  # the build page shows at most the last 256 KiB; the script follows from there
FORM_FIELDS = ("name", "spec")


@dataclass(frozen=True)
class EnvironmentsAccess:
    """The viewer's role in the project, whether they may change its environments, and the
    active members with their roles (``service.choose_builder``'s input)."""

    project: str
    slurm_account: str
    role: Role | None
    can_change: bool
    members: dict[str, str]


def environments_access(ledger: Ledger, project: str, viewer: Viewer) -> EnvironmentsAccess:
    """``NotFound`` (the uniform 404) for an unknown project and one the viewer may not see."""
    check_project_name(project)
    try:
        info = ledger.project(project)
    except NotFound:
        raise NotFound("project", NOT_FOUND_MESSAGE.format(project=project)) from None
    figures = ledger.figures(project)
    members = {member.user: member.role.value for member in figures.members}
    me = viewer.ledger_name
    role = next((member.role for member in figures.members if member.user == me), None)
    _visible(project, role, viewer)
    return EnvironmentsAccess(project, info.slurm_account, role, viewer.is_admin or role in MANAGING_ROLES, members)


def field_of(error: service.EnvError) -> str:
    """Which form field a refusal is about: ``name``, ``spec``, or ``""`` (the form as a whole)."""
    if error.field == "spec" or error.message.startswith("spec"):
        return "spec"
    if error.field == "NAME" or error.message.startswith("NAME:"):
        return "name"
    return ""


def form_message(error: service.EnvError) -> str:
    """The refusal as shown beside its field: without the CLI's ``NAME:``/``spec:`` prefix."""
    message = error.message
    while message.startswith(("NAME: ", "spec: ")):  # the service's field, then the spec module's own
        message = message.split(": ", 1)[1]
    return message


def version_rows(environment: dict) -> list[dict]:
    """The versions of one environment (``service.describe``'s shape), newest first, with labels."""
    rows = []
    for version in reversed(environment["versions"]):
        rows.append({
            **version,
            "label": f"v{version['version']}" + (" (default)" if version["default"] else ""),
            "submitted_label": (version.get("submitted_at") or "-").replace("T", " ").replace("+00:00", " UTC"),
            "page_path": f"hpchub/projects/{environment['project']}/environments/{environment['name']}/"
                         f"{version['version']}",
        })  # fmt: skip
    return rows


def read_log_tail(
    space: sp.ProjectSpace, name: str, version: int, limit: int = LOG_PAGE_BYTES
) -> tuple[str, int, bool]:
    """The last ``limit`` bytes of a build log, the offset after them and whether the start was cut (a log
    that is not the builder's regular file: the one-line reason instead, :func:`hub.envs.space.read_log`)."""
    log = sp.read_log(space, name, version, limit=limit, tail=True)
    if log.problem:
        return log.text, 0, False
    start = max(0, log.size - limit)
    return log.data.decode("utf-8", errors="replace"), start + len(log.data), start > 0


class EnvironmentPageHandler(LedgerPageHandler):
    """Shared by the environments pages: the settings (404 when not configured) and the access."""

    @property
    def environments(self) -> HPCHubEnvironments:
        settings = HPCHubEnvironments(config=self.settings["config"])
        if not settings.project_root:
            raise web.HTTPError(404, "project environments are not configured on this hub")
        return settings

    async def access(self, project: str) -> EnvironmentsAccess:
        viewer = self.viewer()
        ledger = await self.ledger()
        return await self.run(environments_access, ledger, project, viewer)

    async def service_call(self, function, *args, **kwargs):
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except service.EnvError as exc:
            raise web.HTTPError(exc.status, exc.message) from None


class EnvironmentsListPage(EnvironmentPageHandler):
    async def render_list(self, access: EnvironmentsAccess, *, form: dict | None = None,
                          errors: dict | None = None, status: int = 200) -> None:  # fmt: skip
        settings = self.environments
        environments = await self.service_call(service.describe, settings, access.project)
        for environment in environments:
            environment["rows"] = version_rows(environment)
        self.set_status(status)
        html = await self.render_template(
            "hpchub_environments.html", access=access, environments=environments, form=form or {},
            errors=errors or {}, name_rule=ENV_NAME_RULE, name_pattern=ENV_NAME_PATTERN.pattern,
            max_spec_kib=MAX_SPEC_BYTES // 1024, wheelhouse=settings.wheelhouse,
        )  # fmt: skip
        self.finish(html)

    @web.authenticated
    async def get(self, project: str) -> None:
        self.environments  # noqa: B018  (404 before any ledger read when not configured)
        await self.render_list(await self.access(project))

    @web.authenticated
    async def post(self, project: str) -> None:
        settings = self.environments
        access = await self.access(project)
        if not access.can_change:
            raise web.HTTPError(
                403,
                f"a {access.role.value if access.role else 'non-member'} of {project} may not "
                "change its environments; ask a pi, manager or instructor",
            )
        name = self.get_body_argument("name", "").strip()
        spec, spec_error = self.spec_text()
        form = {"name": name, "spec": spec}
        if spec_error:
            await self.render_list(access, form=form, errors={"spec": spec_error}, status=400)
            return
        builder_name = self.current_user.name if access.role in MANAGING_ROLES else None
        try:
            builder = await asyncio.to_thread(service.choose_builder, builder_name, access.members, project, "caller")
            submitted = await asyncio.to_thread(
                service.create, settings, project=project, account=access.slurm_account,
                members=list(access.members), name=name, spec_text=spec, builder=builder,
            )  # fmt: skip
        except service.EnvError as exc:
            if exc.status >= 500:
                raise web.HTTPError(exc.status, exc.message) from None
            await self.render_list(access, form=form, errors={field_of(exc): form_message(exc)}, status=exc.status)
            return
        self.log.info(
            "hpchub pages: %s submitted %s/%s version %s (job %s, as %s)",
            self.current_user.name,
            project,
            submitted.name,
            submitted.version,
            submitted.job_id,
            submitted.builder,
        )
        self.redirect(
            f"{self.hub.base_url}hpchub/projects/{project}/environments/{submitted.name}/{submitted.version}",
            status=303,
        )

    def spec_text(self) -> tuple[str, str]:
        """The spec from the upload (if a file was chosen) or the text box; and an error ('' if none)."""
        uploads = [upload for upload in self.request.files.get("spec_file", []) if upload.get("filename")]
        if not uploads:
            return self.get_body_argument("spec", ""), ""
        try:
            check_spec_file_name(uploads[0]["filename"])
        except SpecError as exc:
            return "", str(exc).removeprefix("spec: ")
        body = uploads[0]["body"]
        if len(body) > MAX_SPEC_BYTES:
            return "", f"the file is larger than {MAX_SPEC_BYTES // 1024} KiB"
        try:
            return body.decode("utf-8"), ""
        except UnicodeDecodeError:
            return "", "the file is not UTF-8 text (a requirements.txt of name==version lines)"


class EnvironmentBuildPage(EnvironmentPageHandler):
    @web.authenticated
    async def get(self, project: str, name: str, version_text: str) -> None:
        settings = self.environments
        access = await self.access(project)
        name = await self.service_call(service.checked_name, name)
        try:
            number = parse_whole(version_text, "version", low=1, high=sp.MAX_VERSION)
        except NumberError as exc:
            raise web.HTTPError(400, str(exc)) from None
        space = sp.ProjectSpace(Path(settings.project_root), project)

        def read() -> tuple[sp.EnvironmentInfo, sp.VersionInfo]:
            info = sp.read_environment(space, name)
            version = info.version(number)
            if version is None:
                raise service.EnvError("version", f"{project}/{name} has no version {number}", 404)
            if version.state is sp.VersionState.BUILDING:
                info = sp.read_environment(space, name, service.refreshed(settings, space))
                version = info.version(number)
            return info, version

        info, version = await self.service_call(read)
        log, offset, cut = await asyncio.to_thread(read_log_tail, space, name, number)
        html = await self.render_template(
            "hpchub_environment_build.html", access=access, info=info, version=version, log=log, offset=offset,
            cut=cut, log_url=f"{self.hub.base_url}api/hpchub/v1/projects/{project}/environments/{name}/log"
                             f"?version={number}",
        )  # fmt: skip
        self.finish(html)


PAGES_PREFIX = r"/hpchub"
_NAME = r"([^/]+)"
ROUTES = [
    (rf"{PAGES_PREFIX}/projects/{_NAME}/environments/?", EnvironmentsListPage),
    (rf"{PAGES_PREFIX}/projects/{_NAME}/environments/{_NAME}/{_NAME}/?", EnvironmentBuildPage),
]
