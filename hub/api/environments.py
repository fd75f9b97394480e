"""Project environments in the REST API (issue 8), under ``/hub/api/hpchub/v1/projects/{p}/environments``.

* ``GET .../environments``: every environment with its versions' states (the ``hpchub env
  list --json`` shape); any caller who sees the project (members use environments).
* ``POST .../environments/{name}`` with ``{"spec": "pkg==1.0\\n..."}``: build the next version
  as a Slurm job running as the caller (a pi, manager or instructor; an admin builds as the
  project's first). 202 with the version, job id and log; the spec is checked first (400).
* ``GET .../environments/{name}/log[?version=V&offset=N]``: the build log from byte ``offset``
  and the version's state, for following a build while it runs (poll with ``next_offset``).
* ``DELETE .../environments/{name}[?version=V]``: remove a version or the whole environment.

Unknown or invisible projects answer 404 like the rest of the API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from jupyterhub.scopes import needs_scope
from tornado import web

from hub.envs import service
from hub.envs import space as sp
from hub.envs.config import HPCHubEnvironments
from hub.ledger.types import Role, check_project_name

from .access import MANAGING_ROLES
from .config import MANAGE_SCOPE, READ_SCOPE
from .handlers import _NAME, API_PREFIX, Caller, ProjectAPIHandler

MAX_LOG_CHUNK = 256 * 1024


class EnvironmentAPIHandler(ProjectAPIHandler):
    @property
    def environments(self) -> HPCHubEnvironments:
        settings = HPCHubEnvironments(config=self.settings["config"])
        if not settings.project_root:
            raise web.HTTPError(404, "project environments are not configured on this hub "
                                     "(c.HPCHubEnvironments.project_root)")
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
        raise web.HTTPError(403, f"a {role.value if role else 'non-member'} of {project} may not change its "
                                 "environments; ask a pi, manager or instructor")

    def version_argument(self) -> int | None:
        raw = self.get_argument("version", None)
        if raw is None:
            return None
        if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
            raise web.HTTPError(400, f"version: a whole number from 1; got {raw[:20]!r}")
        return int(raw)


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
        self.send_json({"project": project, "name": submitted.name, "version": submitted.version,
                        "job_id": submitted.job_id, "builder": submitted.builder, "state": "building",
                        "log_url": f"{self.hub.base_url}api/hpchub/v1/projects/{project}/environments/"
                                   f"{submitted.name}/log?version={submitted.version}"}, 202)

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
        offset_text = self.get_argument("offset", "0")
        if not offset_text.isdigit():
            raise web.HTTPError(400, f"offset: a whole number of bytes from 0; got {offset_text[:20]!r}")
        space = sp.ProjectSpace(Path(settings.project_root), project)

        def read() -> dict:
            info = sp.read_environment(space, name)
            if not info.versions:
                raise service.EnvError("name", f"{project} has no environment {name}", 404)
            version = info.versions[-1] if wanted is None else info.version(wanted)
            if version is None:
                raise service.EnvError("version", f"{project}/{name} has no version {wanted}", 404)
            if version.state is sp.VersionState.BUILDING and version.job_id:
                jobs = service.active_jobs(settings, [version.job_id])
                version = sp.read_environment(space, name, jobs).version(version.version)
            try:
                with open(version.log_file, "rb") as handle:
                    handle.seek(int(offset_text))
                    chunk = handle.read(MAX_LOG_CHUNK)
            except FileNotFoundError:
                chunk = b""
            return {"version": version.version, "state": version.state.value, "detail": version.detail,
                    "log": chunk.decode("utf-8", errors="replace"), "next_offset": int(offset_text) + len(chunk)}

        self.send_json(await self.service_call(read))


ROUTES = [
    (rf"{API_PREFIX}/projects/{_NAME}/environments", EnvironmentListHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/environments/{_NAME}", EnvironmentHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/environments/{_NAME}/log", EnvironmentLogHandler),
]
