"""The ledger's REST API: JupyterHub API handlers under ``/hub/api/hpchub/v1/``.

Every handler authenticates like the rest of JupyterHub's API (a token in the
``Authorization`` header, or the hub's cookie with the ``X-XSRFToken`` header), checks
the JupyterHub scope with ``needs_scope``, then the caller's role in the project with
:mod:`hub.api.access`, and answers JSON (errors as ``{"status": N, "message": "..."}``).

The ledger is synchronous SQLAlchemy: every call runs in a worker thread
(``asyncio.to_thread``) so the hub's event loop never waits for the database. The hub's
own objects (``current_user``) are read on the event loop before that.

See docs/api.md and docs/api.yaml.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from jupyterhub.apihandlers import APIHandler
from jupyterhub.scopes import define_custom_scopes, needs_scope
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from hub.ledger import Ledger
from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.runtime import ledger_from_config
from hub.ledger.types import MemberUsage, Role, check_project_name, check_user

from . import views
from .access import (
    NOT_FOUND_MESSAGE,
    ProjectAccess,
    Refusal,
    check_cap_change,
    check_member_change,
    project_access,
    refuse_cap_changes,
    refuse_member_changes,
)
from .config import HPCHUB_SCOPES, MANAGE_SCOPE, READ_SCOPE, HPCHubAPI

# ``needs_scope`` refuses scopes it does not know when the class body runs, and the hub
# defines ``c.JupyterHub.custom_scopes`` only later (at start). Defining the same
# scopes now is idempotent: JupyterHub accepts a redefinition that is identical.
define_custom_scopes(HPCHUB_SCOPES)

T = TypeVar("T")
API_PREFIX = r"/api/hpchub/v1"
_NAME = r"([^/]+)"  # validated in the handler (400 naming the field), not by the route


@dataclass(frozen=True)
class Caller:
    """Who is asking: a hub user (name, admin flag) or a service (no name)."""

    name: str | None
    is_admin: bool

    @property
    def who(self) -> str:
        """What the ledger records as the author of a change."""
        return f"{self.name or 'a service'} (hpchub API)"


class LedgerAPIHandler(APIHandler):
    """Shared by every ledger endpoint (and the spawner's session endpoints to come)."""

    def caller(self) -> Caller:
        user = self.current_user
        if user is not None and getattr(user, "kind", None) == "user":
            return Caller(user.name, bool(user.admin))
        return Caller(None, False)

    @property
    def api_settings(self) -> HPCHubAPI:
        return HPCHubAPI(config=self.settings["config"])

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A ledger call in a worker thread; ledger errors become HTTP errors."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except NotFound as exc:
            raise web.HTTPError(404, exc.message) from None
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None
        except SQLAlchemyError as exc:
            self.log.error("hpchub API: ledger database error: %s", str(getattr(exc, "orig", None) or exc)[:500])
            raise web.HTTPError(503, "the GPU-hour ledger is not answering; try again shortly") from None

    async def ledger(self) -> Ledger:
        ledger = await self.run(ledger_from_config, self.settings["config"])
        if ledger is None:
            raise web.HTTPError(503, "the GPU-hour ledger is not configured on this hub (HPCHubLedger.db_url)")
        return ledger

    @staticmethod
    def checked(check: Callable[..., str], value: object, field: str) -> str:
        try:
            return check(value, field)
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None

    def body(self, parse: Callable[[object], T]) -> T:
        try:
            return parse(self.get_json_body())
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None

    @staticmethod
    def refuse(refusal: Refusal | None) -> None:
        if refusal is not None:
            raise web.HTTPError(refusal.status, refusal.message)

    def send_json(self, model: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model))


class ProjectAPIHandler(LedgerAPIHandler):
    """Endpoints of one project: 404 unless the caller may see it."""

    async def read_project(self, read: Callable[[str], T], project: str) -> T:
        """A ledger read of one project; an unknown project is the uniform 404."""
        try:
            return await self.run(read, project)
        except web.HTTPError as exc:
            if exc.status_code == 404:
                raise web.HTTPError(404, NOT_FOUND_MESSAGE.format(project=project)) from None
            raise

    @staticmethod
    def visible(project: str, role: Role | None, caller: Caller) -> ProjectAccess:
        access = project_access(role, is_admin=caller.is_admin)
        if not access.visible:  # the same answer as for an unknown project
            raise web.HTTPError(404, NOT_FOUND_MESSAGE.format(project=project))
        return access

    async def project_usage(
        self, ledger: Ledger, project: str, caller: Caller
    ) -> tuple[dict, Role | None, ProjectAccess]:
        """The project's ``usage`` (every member), the caller's role and what they may do."""
        usage = await self.read_project(ledger.usage, project)
        role = views.caller_role(usage, caller.name)
        return usage, role, self.visible(project, role, caller)

    async def project_members(
        self, ledger: Ledger, project: str, caller: Caller
    ) -> tuple[dict[str, MemberUsage], Role | None, ProjectAccess]:
        """Exact figures of every active member (caps in mgs), the caller's role and access."""
        figures = await self.read_project(ledger.figures, project)
        members = {member.user: member for member in figures.members}
        role = members[caller.name].role if caller.name in members else None
        return members, role, self.visible(project, role, caller)

    async def member_answer(self, ledger: Ledger, project: str, user: str, status: int = 200) -> None:
        usage = await self.run(ledger.usage, project)
        self.send_json(views.member_row(usage, user), status)


# --- the endpoints ----------------------------------------------------------------------------------


class ProjectListHandler(LedgerAPIHandler):
    """``GET /projects``: the caller's projects (an admin: every project)."""

    @needs_scope(READ_SCOPE)
    async def get(self) -> None:
        caller = self.caller()
        ledger = await self.ledger()
        self.send_json(await self.run(_list_projects, ledger, caller))


def _list_projects(ledger: Ledger, caller: Caller) -> list[dict]:
    if caller.is_admin:
        names = [project.name for project in ledger.projects()]
    elif caller.name is None:
        names = []
    else:
        try:
            check_user(caller.name)
        except LedgerInputError:  # a hub name that cannot be a ledger member
            return []
        names = [project.name for project, _role in ledger.memberships(caller.name)]
    answer = []
    for name in names:
        try:
            usage = ledger.usage(name)
        except NotFound:  # gone meanwhile
            continue
        access = project_access(views.caller_role(usage, caller.name), is_admin=caller.is_admin)
        if access.visible:
            answer.append(views.visible_usage(usage, caller.name, access))
    return answer


class ProjectHandler(ProjectAPIHandler):
    """``GET /projects/{p}``: the project's figures as the caller may see them."""

    @needs_scope(READ_SCOPE)
    async def get(self, project: str) -> None:
        self.checked(check_project_name, project, "project")
        caller = self.caller()
        ledger = await self.ledger()
        usage, _role, access = await self.project_usage(ledger, project, caller)
        self.send_json(views.visible_usage(usage, caller.name, access))


class ChargesHandler(ProjectAPIHandler):
    """``GET /projects/{p}/charges[?format=csv]``: one effective charge per job."""

    @needs_scope(READ_SCOPE)
    async def get(self, project: str) -> None:
        self.checked(check_project_name, project, "project")
        answer_format = self.get_argument("format", "json")
        if answer_format not in ("json", "csv"):
            raise web.HTTPError(400, f"format: one of json|csv, got {answer_format[:20]!r}")
        caller = self.caller()
        ledger = await self.ledger()
        _usage, _role, access = await self.project_usage(ledger, project, caller)
        charges = views.visible_charges(await self.run(ledger.charges, project), caller.name, access)
        if answer_format == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="{project}-charges.csv"')
            self.finish(views.charges_csv(charges))
            return
        self.send_json(views.charges_json(project, charges))


class MemberHandler(ProjectAPIHandler):
    """``PUT`` (add, change role or cap) and ``DELETE`` (end) a membership."""

    @needs_scope(MANAGE_SCOPE)
    async def put(self, project: str, member: str) -> None:
        self.checked(check_project_name, project, "project")
        self.checked(check_user, member, "user")
        caller = self.caller()
        ledger = await self.ledger()
        members, role, _access = await self.project_members(ledger, project, caller)
        self.refuse(refuse_member_changes(project, role, is_admin=caller.is_admin))
        change = self.body(views.parse_member_body)
        current = members.get(member)
        self.refuse(check_member_change(
            project=project, actor=caller.name or "", actor_role=role, is_admin=caller.is_admin,
            target=member, target_role=None if current is None else current.role, new_role=change.role,
        ))  # fmt: skip
        if change.cap_given and current is not None and current.role is change.role:
            # only the cap changes: the cap rules apply as for POST .../cap
            self.refuse(check_cap_change(
                project=project, actor=caller.name or "", actor_role=role, is_admin=caller.is_admin,
                target=member, target_role=current.role, current_cap_mgs=current.cap_mgs,
                new_cap_mgs=change.cap_mgs, ta_limit_mgs=self.api_settings.ta_cap_limit_mgs,
            ))  # fmt: skip
        created = await self.run(_put_member, ledger, project, member, change, current, caller.who)
        await self.member_answer(ledger, project, member, 201 if created else 200)

    @needs_scope(MANAGE_SCOPE)
    async def delete(self, project: str, member: str) -> None:
        self.checked(check_project_name, project, "project")
        self.checked(check_user, member, "user")
        caller = self.caller()
        ledger = await self.ledger()
        members, role, _access = await self.project_members(ledger, project, caller)
        current = members.get(member)
        self.refuse(refuse_member_changes(project, role, is_admin=caller.is_admin))
        if current is None:
            raise web.HTTPError(404, f"user: {member} is not a member of {project}")
        self.refuse(check_member_change(
            project=project, actor=caller.name or "", actor_role=role, is_admin=caller.is_admin,
            target=member, target_role=current.role, new_role=None,
        ))  # fmt: skip
        await self.run(ledger.remove_member, project, member, who=caller.who)
        self.set_status(204)
        self.finish()


def _put_member(
    ledger: Ledger, project: str, user: str, change: views.MemberChange, current: MemberUsage | None, who: str
) -> bool:
    """Apply a PUT; True if the membership is new.

    A role change ends the membership and starts a new one with the new role (the
    ledger keeps one row per membership period), carrying the cap unless the body sets
    one. The two steps are separate transactions.
    """
    if current is None:
        ledger.add_member(project, user, role=change.role, who=who, cap_gpu_hours=change.cap)
        return True
    if current.role is change.role:
        if change.cap_given and change.cap_mgs != current.cap_mgs:
            ledger.set_cap(project, user, change.cap, reason=change.reason or views.API_CAP_REASON, who=who)
        return False
    cap = change.cap if change.cap_given else (
        None if current.cap_mgs is None else arith.round_gpu_hours(current.cap_mgs)
    )
    ledger.remove_member(project, user, who=who)
    ledger.add_member(project, user, role=change.role, who=who, cap_gpu_hours=cap)
    return False


class CapHandler(ProjectAPIHandler):
    """``POST .../members/{user}/cap``: set (or with null remove) a member's cap."""

    @needs_scope(MANAGE_SCOPE)
    async def post(self, project: str, member: str) -> None:
        self.checked(check_project_name, project, "project")
        self.checked(check_user, member, "user")
        caller = self.caller()
        ledger = await self.ledger()
        members, role, _access = await self.project_members(ledger, project, caller)
        self.refuse(refuse_cap_changes(project, role, is_admin=caller.is_admin))
        current = members.get(member)
        if current is None:
            raise web.HTTPError(404, f"user: {member} is not a member of {project}")
        change = self.body(views.parse_cap_body)
        self.refuse(check_cap_change(
            project=project, actor=caller.name or "", actor_role=role, is_admin=caller.is_admin,
            target=member, target_role=current.role, current_cap_mgs=current.cap_mgs,
            new_cap_mgs=change.cap_mgs, ta_limit_mgs=self.api_settings.ta_cap_limit_mgs,
        ))  # fmt: skip
        await self.run(ledger.set_cap, project, member, change.cap, reason=change.reason, who=caller.who)
        await self.member_answer(ledger, project, member)


class PreviewHandler(LedgerAPIHandler):
    """``POST /preview``: what a spawn with these options would cost, and what is left.

    The options are checked as the spawn checks them (by the hub's spawner, against the
    cluster's partitions and the catalogue) and the figures come from ``Ledger.preview``,
    the admission's own check. A budget refusal is an answer (``allowed: false``), not
    an error.
    """

    @needs_scope(READ_SCOPE)
    async def post(self) -> None:
        caller = self.caller()
        if caller.name is None:
            raise web.HTTPError(403, "the preview answers for a user's own sessions; use a user's token")
        options = self.body(views.preview_options)
        ledger = await self.ledger()
        try:
            check_user(caller.name)
            memberships = await self.run(ledger.memberships, caller.name)
        except LedgerInputError:
            memberships = []
        projects = [project.name for project, _role in memberships]
        request = await self.spawn_request(options, projects, ledger)
        admission = await self.run(
            ledger.preview, request["project"], caller.name, request["gpu_type"], request["gpus"],
            str(Decimal(str(request["hours"]))),
        )  # fmt: skip
        self.send_json(views.preview_json(caller.name, request, admission))

    async def spawn_request(self, options: dict, projects: list[str], ledger: Ledger) -> dict:
        """The spawn's own option check when the spawner can describe the cluster (the
        portal's Slurm spawner), else the ledger-only check of ``views.basic_spawn_request``."""
        spawner = self.current_user.spawners[""]
        if not all(hasattr(spawner, name) for name in ("cluster_info", "catalogue", "default_hours")):
            try:
                return views.basic_spawn_request(options, projects=projects, gpu_types=ledger.rates.gpu_types)
            except LedgerInputError as exc:
                raise web.HTTPError(400, exc.message) from None
        from spawners.catalog import CatalogueError  # noqa: PLC0415
        from spawners.slurm.client import SlurmCommandError  # noqa: PLC0415
        from spawners.slurm.options import OptionsError, validate_user_options  # noqa: PLC0415

        try:
            catalogue = spawner.catalogue()
            request = validate_user_options(
                options,
                cluster=await spawner.cluster_info(),
                projects=projects,
                catalogue_ids=catalogue.ids(),
                default_environment=catalogue.default.id,
                default_hours=Decimal(str(spawner.default_hours)),
            )
        except OptionsError as exc:
            message = str(exc)
            if not message.startswith(f"{exc.field}:"):  # e.g. "unknown option 'x'; allowed: ..."
                message = f"{exc.field}: {message}"
            raise web.HTTPError(400, message) from None
        except SlurmCommandError as exc:
            raise web.HTTPError(503, f"Slurm is not answering, try again shortly ({exc.summary})") from None
        except (OSError, CatalogueError) as exc:
            raise web.HTTPError(500, f"the environment catalogue is broken: {exc}") from None
        return {
            "project": request.project,
            "partition": request.partition,
            "gpu_type": request.gpu_type,
            "gpus": request.gpus,
            "hours": float(request.hours),
            "environment": request.environment,
        }


# Routes, relative to the hub's prefix (JupyterHub adds /hub). The project and user
# parts are validated by the handlers, so that a bad name is a 400 naming the field.
ROUTES: list[tuple[str, type[APIHandler]]] = [
    (rf"{API_PREFIX}/projects", ProjectListHandler),
    (rf"{API_PREFIX}/projects/{_NAME}", ProjectHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/charges", ChargesHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/members/{_NAME}", MemberHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/members/{_NAME}/cap", CapHandler),
    (rf"{API_PREFIX}/preview", PreviewHandler),
    # The spawner's part (not here yet), on LedgerAPIHandler like the above:
    #   GET  {API_PREFIX}/users/{user_name}/servers/{server_name}/session
    #   POST {API_PREFIX}/users/{user_name}/servers/{server_name}/extend   {"hours": H}
    # Name the arguments user_name and server_name so that needs_scope filters on the
    # server (a server token then reads its own session with a "...!server" scope).
]
