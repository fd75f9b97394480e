"""Project environments in the REST API, under ``/hub/api/hpchub/v1/projects/{p}/environments``.

* ``GET .../environments``: every environment with its versions' states (the ``hpchub env
  list --json`` shape); any caller who sees the project (members use environments).
* ``POST .../environments/{name}`` with ``{"spec": "pkg==1.0\\n..."}``: build the next version
  as a Slurm job running as the caller (a pi, manager or instructor; an admin builds as the
  project's first). 202 with the version, job id and log; the spec is checked first (400).
* ``GET .../environments/{name}/log[?version=V&offset=N]``: the build log from byte ``offset``
  and the version's state, for following a build while it runs (poll with ``next_offset``).
* ``DELETE .../environments/{name}[?version=V]``: remove a version or the whole environment.

Unknown or invisible projects answer 404 like the rest of the API.

Published environments (admins put a project's environment into the images catalogue,
:mod:`hub.envs.publish`), under ``/hub/api/hpchub/v1/catalogue/published``:

* ``GET .../published``: the published entries (anyone with the read scope: everyone may use them).
* ``PUT .../published/{id}`` with ``{"project", "environment", "description"[, "version", "title",
  "gpu"]}``: publish (admins only; 403 for anyone else), 201 with the entry.
* ``DELETE .../published/{id}``: unpublish (admins only).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

from jupyterhub.scopes import needs_scope
from tornado import web

from hub.api.access import MANAGING_ROLES
from hub.api.handlers import _NAME, API_PREFIX, Caller, ProjectAPIHandler
from hub.api.scopes import MANAGE_SCOPE, READ_SCOPE
from hub.envs import publish, service
from hub.envs import space as sp
from hub.envs.config import HPCHubEnvironments
from hub.ledger.types import Role, check_project_name
from hub.numbers import NumberError, parse_whole

MAX_LOG_CHUNK = 256 * 1024


class EnvironmentAPIHandler(ProjectAPIHandler):
    @property
    def environments(self) -> HPCHubEnvironments:
        settings = HPCHubEnvironments(config=self.settings["config"])
        if not settings.project_root:
            raise web.HTTPError(
                404, "project environments are not configured on this hub (c.HPCHubEnvironments.project_root)"
            )
        return settings

    async def service_call(self, function, *args, **kwargs):
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except service.EnvError as exc:
            raise web.HTTPError(exc.status, exc.message) from None

    async def access(self, project: str) -> tuple[object, dict, Role | None, Caller]:
        self.checked(check_project_name, project, "project")
        caller = self.caller()
        ledger = await self.ledger()
        members, role, _access = await self.project_members(ledger, project, caller)
        return ledger, members, role, caller

    @staticmethod
    def refuse_changes(project: str, role: Role | None, caller: Caller) -> None:
        if caller.is_admin or role in MANAGING_ROLES:
            return
        raise web.HTTPError(
            403,
            f"a {role.value if role else 'non-member'} of {project} may not change its "
            "environments; ask a pi, manager or instructor",
        )

    def version_argument(self) -> int | None:
        raw = self.get_argument("version", None)
        if raw is None:
            return None
        try:
            return parse_whole(raw, "version", low=1, high=sp.MAX_VERSION)
        except NumberError as exc:
            raise web.HTTPError(400, str(exc)) from None


class EnvironmentListHandler(EnvironmentAPIHandler):
    @needs_scope(READ_SCOPE)
    async def get(self, project: str) -> None:
        await self.access(project)
        self.send_json(await self.service_call(service.describe, self.environments, project))


class EnvironmentHandler(EnvironmentAPIHandler):
    @needs_scope(MANAGE_SCOPE)
    async def post(self, project: str, name: str) -> None:
        ledger, members, role, caller = await self.access(project)
        self.refuse_changes(project, role, caller)
        body = self.get_json_body()
        if not isinstance(body, dict) or set(body) != {"spec"} or not isinstance(body["spec"], str):
            raise web.HTTPError(400, 'body: must be {"spec": "name==version lines"}')
        settings = self.environments
        member_roles = {user: member.role.value for user, member in members.items()}
        builder_name = caller.name if role in MANAGING_ROLES else None
        builder = await self.service_call(service.choose_builder, builder_name, member_roles, project, "caller")
        account = (await self.run(ledger.project, project)).slurm_account
        submitted = await self.service_call(
            service.create, settings, project=project, account=account, members=list(member_roles), name=name,
            spec_text=body["spec"], builder=builder,
        )  # fmt: skip
        self.send_json(
            {
                "project": project,
                "name": submitted.name,
                "version": submitted.version,
                "job_id": submitted.job_id,
                "builder": submitted.builder,
                "state": "building",
                "log_url": f"{self.hub.base_url}api/hpchub/v1/projects/{project}/environments/"
                f"{submitted.name}/log?version={submitted.version}",
            },
            202,
        )

    @needs_scope(MANAGE_SCOPE)
    async def delete(self, project: str, name: str) -> None:
        _ledger, _members, role, caller = await self.access(project)
        self.refuse_changes(project, role, caller)
        message = await self.service_call(service.remove, self.environments, project, name, self.version_argument())
        self.send_json({"message": message})


class EnvironmentLogHandler(EnvironmentAPIHandler):
    @needs_scope(READ_SCOPE)
    async def get(self, project: str, name: str) -> None:
        await self.access(project)
        settings = self.environments
        name = await self.service_call(service.checked_name, name)
        wanted = self.version_argument()
        try:
            offset = parse_whole(self.get_argument("offset", "0"), "offset", low=0)  # bytes
        except NumberError as exc:
            raise web.HTTPError(400, str(exc)) from None
        space = sp.ProjectSpace(Path(settings.project_root), project)

        def read() -> dict:
            info = sp.read_environment(space, name)
            if not info.versions:
                raise service.EnvError("name", f"{project} has no environment {name}", 404)
            version = info.versions[-1] if wanted is None else info.version(wanted)
            if version is None:
                raise service.EnvError("version", f"{project}/{name} has no version {wanted}", 404)
            if version.state is sp.VersionState.BUILDING:
                version = sp.read_environment(space, name, service.refreshed(settings, space)).version(version.version)
            log = sp.read_log(space, name, version.version, offset=offset, limit=MAX_LOG_CHUNK)
            answer = {
                "version": version.version,
                "state": version.state.value,
                "detail": version.detail,
                "log": log.data.decode("utf-8", errors="replace"),
                "next_offset": offset + len(log.data),
            }
            if log.problem:  # a symlink, a hard link or someone else's file: never its content
                answer["log_problem"] = log.text
            return answer

        self.send_json(await self.service_call(read))


PUBLISH_KEYS = {"project": str, "environment": str, "description": str, "version": int, "title": str, "gpu": bool}
PUBLISH_REQUIRED = ("project", "environment", "description")


def parse_publish_body(body: object) -> dict:
    """The PUT body, checked for keys and types (the values are checked by the service)."""
    if not isinstance(body, dict):
        raise web.HTTPError(400, 'body: must be an object {"project", "environment", "description", ...}')
    unknown = sorted(set(body) - set(PUBLISH_KEYS))
    if unknown:
        raise web.HTTPError(400, f"{unknown[0]}: unknown key; allowed: {', '.join(PUBLISH_KEYS)}")
    for key in PUBLISH_REQUIRED:
        if key not in body:
            raise web.HTTPError(400, f"{key}: required")
    for key, kind in PUBLISH_KEYS.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise web.HTTPError(400, f"{key}: must be {'a whole number' if kind is int else kind.__name__}")
    return body


class PublishedAPIHandler(EnvironmentAPIHandler):
    def published_entry(self, entry, root: str) -> dict:

        return {**asdict(entry), "kernel": entry.kernel, "path": entry.path(root)}

    def admin_only(self) -> Caller:
        caller = self.caller()
        if not caller.is_admin:
            raise web.HTTPError(403, "only the portal's admins publish environments into the catalogue")
        return caller


class PublishedListHandler(PublishedAPIHandler):
    @needs_scope(READ_SCOPE)
    async def get(self) -> None:

        settings = self.environments
        root = settings.published_root
        entries = await self.service_call(publish.read_published, root) if root else []
        self.send_json([self.published_entry(entry, root) for entry in entries])


class PublishedHandler(PublishedAPIHandler):
    @needs_scope(MANAGE_SCOPE)
    async def put(self, catalogue_id: str) -> None:

        caller = self.admin_only()
        body = parse_publish_body(self.get_json_body())
        self.checked(check_project_name, body["project"], "project")
        settings = self.environments
        ledger = await self.ledger()
        await self.read_project(ledger.project, body["project"])  # 404 for an unknown project
        reserved = await asyncio.to_thread(publish.catalogue_ids_of, self.settings["config"])
        entry = await self.service_call(
            publish.publish, settings, project=body["project"], name=body["environment"],
            version=body.get("version"), catalogue_id=catalogue_id, description=body["description"],
            title=body.get("title"), gpu=bool(body.get("gpu", False)), reserved_ids=reserved, who=caller.who,
        )  # fmt: skip
        self.log.info(
            "%s published %s/%s v%s as %s", caller.who, entry.project, entry.environment, entry.version, entry.id
        )
        self.send_json(self.published_entry(entry, settings.published_root), 201)

    @needs_scope(MANAGE_SCOPE)
    async def delete(self, catalogue_id: str) -> None:

        caller = self.admin_only()
        message = await self.service_call(publish.unpublish, self.environments, catalogue_id)
        self.log.info("%s: %s", caller.who, message)
        self.send_json({"message": message})


ROUTES = [
    (rf"{API_PREFIX}/projects/{_NAME}/environments", EnvironmentListHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/environments/{_NAME}", EnvironmentHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/environments/{_NAME}/log", EnvironmentLogHandler),
    (rf"{API_PREFIX}/catalogue/published", PublishedListHandler),
    (rf"{API_PREFIX}/catalogue/published/{_NAME}", PublishedHandler),
]
