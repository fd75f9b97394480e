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

from hub.api import sessions as session_views
from hub.api import views
from hub.api.access import (
    NOT_FOUND_MESSAGE,
    ProjectAccess,
    Refusal,
    check_cap_change,
    check_member_change,
    project_access,
    refuse_cap_changes,
    refuse_member_changes,
)
from hub.api.scopes import (
    EXTEND_SCOPE,
    HPCHUB_SCOPES,
    MANAGE_SCOPE,
    READ_SCOPE,
    SESSION_SCOPE,
)
from hub.api.settings import HPCHubAPI
from hub.ledger import Booking, BudgetRefused, Ledger
from hub.ledger import arithmetic as arith
from hub.ledger import offers as budget_offers
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.runtime import ledger_from_config
from hub.ledger.types import (
    MemberUsage,
    Role,
    SessionInfo,
    SessionState,
    check_project_name,
    check_user,
)
from spawners.slurm.client import SlurmCommandError, SlurmTimeoutError
from spawners.slurm.form_budget import preview_answer
from spawners.slurm.options import OptionsError
from spawners.slurm.types import JobState

# ``needs_scope`` refuses scopes it does not know when the class body runs, and the hub
# defines ``c.JupyterHub.custom_scopes`` only later (at start). Defining the same
# scopes now is idempotent: JupyterHub accepts a redefinition that is identical.
define_custom_scopes(HPCHUB_SCOPES)

T = TypeVar("T")
API_PREFIX = r"/api/hpchub/v1"
_NAME = r"([^/]+)"  # validated in the handler (400 naming the field), not by the route


async def ledger_call(log, where: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function`` (a ledger read or write) in a worker thread; its errors as HTTP errors:
    ``NotFound`` 404, ``LedgerInputError`` 400 (both name the field), a database failure 503
    (logged without SQL parameters). Shared by the API and the pages."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except NotFound as exc:
        raise web.HTTPError(404, exc.message) from None
    except LedgerInputError as exc:
        raise web.HTTPError(400, exc.message) from None
    except SQLAlchemyError as exc:
        log.error("%s: ledger database error: %s", where, str(getattr(exc, "orig", None) or exc)[:500])
        raise web.HTTPError(503, "the GPU-hour ledger is not answering; try again shortly") from None


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
        return await ledger_call(self.log, "hpchub API", function, *args, **kwargs)

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

    async def ta_course_rules(self, ledger: Ledger, project: str, role: Role | None):
        """A course's rules when the caller is its ta (its own TA extension limit applies), else None."""
        return await self.run(ledger.course_rules, project) if role is Role.TA else None

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
                course_rules=await self.ta_course_rules(ledger, project, role),
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
    cap = (
        change.cap
        if change.cap_given
        else (None if current.cap_mgs is None else arith.round_gpu_hours(current.cap_mgs))
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
            course_rules=await self.ta_course_rules(ledger, project, role),
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
        spawner = self.current_user.spawners[""]
        if not hasattr(spawner, "request_context"):
            self.send_json(await self.basic_preview(caller.name, options, ledger))
            return

        try:
            try:
                context = await spawner.request_context()  # what the spawn checks the same options against
            except LedgerInputError:  # a hub user name the ledger cannot hold has no project
                raise OptionsError("project", "project: you have no project (Slurm account) to charge") from None
            request = context.validate(options)
            _reservation, lab_hours_on = await spawner.course_lab_hours(request.project)
            answer = await self.run(preview_answer, context, options, ledger, lab_hours_on)
        except OptionsError as exc:
            message = str(exc)
            if not message.startswith(f"{exc.field}:"):  # e.g. "unknown option 'x'; allowed: ..."
                message = f"{exc.field}: {message}"
            raise web.HTTPError(400, message) from None
        except SlurmCommandError as exc:
            raise web.HTTPError(503, f"Slurm is not answering, try again shortly ({exc.summary})") from None
        self.send_json(answer)

    async def basic_preview(self, user: str, options: dict, ledger: Ledger) -> dict:
        """The ledger-only preview (``views.basic_spawn_request``) when the hub's spawner cannot
        describe the cluster; the GPU types an offer may use are the ones the ledger prices."""
        try:
            check_user(user)
            memberships = await self.run(ledger.memberships, user)
        except LedgerInputError:
            memberships = []
        projects = [project.name for project, _role in memberships]
        try:
            request = views.basic_spawn_request(options, projects=projects, gpu_types=ledger.rates.gpu_types)
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None
        choices = [(t, max(1, request["gpus"])) for t in ledger.rates.gpu_types]
        admission = await self.run(
            ledger.preview, request["project"], user,
            Booking(request["gpu_type"], request["gpus"], str(Decimal(str(request["hours"])))),
        )  # fmt: skip
        offers = budget_offers.refusal_offers(
            request["gpus"], arith.hours_to_seconds(request["hours"]), admission, choices, ledger.rates
        )
        return budget_offers.preview_json(user, request, admission, offers)


# --- a notebook server's session (the spawner's part) --------------------------------------------------

NO_SESSION_MESSAGE = "no running or pending session for server {server!r} of {user}"
_HOLDING = (SessionState.ADMITTED, SessionState.RUNNING)
_EXTEND_LOCKS: dict[tuple[str, str], asyncio.Lock] = {}


def session_job_view(spawner: Any, info: SessionInfo) -> session_views.JobView:
    """What the spawner knows of the session's job: state and reason from the shared watcher,
    the node, the partition (from the validated options, also after a hub restart)."""
    options = dict(getattr(spawner, "user_options", None) or {})
    request = getattr(spawner, "job_request", None)
    partition = request.partition if request is not None else options.get("partition")
    state, node, reason = "", getattr(spawner, "job_node", "") or "", ""
    if info.job_id and hasattr(spawner, "watcher"):
        status = spawner.watcher.status(info.job_id)
        if status.state is JobState.UNKNOWN:
            status = spawner.watcher.last_known(info.job_id) or status
        if status.state is not JobState.UNKNOWN:
            state = status.state.value
            node = status.node or node
            reason = status.reason if status.state is JobState.PENDING else ""
    elif not info.job_id:
        state = "submitting"
    return session_views.JobView(state=state, node=node, partition=partition, reason=reason)


class SessionAPIHandler(LedgerAPIHandler):
    """``/users/{user}/servers/{server}/...``: one notebook server's ledger session.

    The arguments are named ``user_name`` and ``server_name`` so that ``needs_scope`` filters
    on the server: a server's own token (``custom:hpchub:session!server=user/name``) reads
    its own session only. The default server is ``server_name`` "" (routes below).
    """

    def allowed_or_404(self, user_name: str, server_name: str) -> Caller:
        """The user themself (or their server's token) and admins; anyone else: 404."""
        caller = self.caller()
        if caller.is_admin or (caller.name is not None and caller.name == user_name):
            return caller
        raise web.HTTPError(404, NO_SESSION_MESSAGE.format(server=server_name, user=user_name))

    async def find_session(self, ledger: Ledger, user_name: str, server_name: str) -> tuple[Any, SessionInfo]:
        """The server's spawner and its holding ledger session (404 if none)."""
        missing = web.HTTPError(404, NO_SESSION_MESSAGE.format(server=server_name, user=user_name))
        user = self.find_user(user_name)
        if user is None or server_name not in user.orm_spawners:
            raise missing
        spawner = user.spawners[server_name]
        session_id = getattr(spawner, "ledger_session", None)
        if session_id is None or not spawner.active:
            raise missing
        try:
            info = await self.run(ledger.session, session_id)
        except web.HTTPError as exc:
            if exc.status_code == 404:
                raise missing from None
            raise
        if info.user != user_name or info.server_name != server_name or info.state not in _HOLDING:
            raise missing
        return spawner, info

    async def session_answer(self, ledger: Ledger, spawner: Any, info: SessionInfo) -> dict:
        """The session with its project's budget and remaining GPU-hours at the same instant
        (the notebook's budget meter reads them with the server's own token)."""
        now = ledger.clock()
        project = await self.run(ledger.figures, info.project, now)
        return session_views.session_json(info, now, session_job_view(spawner, info), project=project)


class SessionHandler(SessionAPIHandler):
    """``GET .../session``: project, job, node, state, start, end, cost so far, held, hours."""

    @needs_scope(SESSION_SCOPE)
    async def get(self, user_name: str, server_name: str = "") -> None:
        self.allowed_or_404(user_name, server_name)
        ledger = await self.ledger()
        spawner, info = await self.find_session(ledger, user_name, server_name)
        self.send_json(await self.session_answer(ledger, spawner, info))


class ExtendHandler(SessionAPIHandler):
    """``POST .../extend`` ``{"hours": H}``: a new hold, then the job's new time limit in Slurm.

    In order, for one server at a time (a lock per server in this hub process, so that two
    extensions cannot set Slurm's limit out of order): the partition's MaxTime (400), the
    ledger's atomic check-and-hold (``Ledger.extend``: 403 with its message), then
    ``scontrol update JobId=N TimeLimit=MINUTES``. If Slurm refuses (502) or does not answer
    (503), the hold is given back (``Ledger.retract_extension``) and the answer says so.
    """

    @needs_scope(EXTEND_SCOPE)
    async def post(self, user_name: str, server_name: str = "") -> None:
        caller = self.allowed_or_404(user_name, server_name)
        added_seconds = self.body(session_views.parse_extend_body)
        hours = arith.format_hours(added_seconds)
        ledger = await self.ledger()
        spawner, info = await self.find_session(ledger, user_name, server_name)
        lock = _EXTEND_LOCKS.setdefault((user_name, server_name), asyncio.Lock())
        async with lock:
            info = await self.run(ledger.session, info.id)  # again, under the lock
            if info.state not in _HOLDING:
                raise web.HTTPError(404, NO_SESSION_MESSAGE.format(server=server_name, user=user_name))
            if not info.job_id:
                raise web.HTTPError(409, "the job is not submitted to Slurm yet; try again in a moment")
            minutes = await self.new_time_limit(spawner, info, added_seconds)
            try:
                await self.run(ledger.extend, info.id, hours)
            except BudgetRefused as exc:
                raise web.HTTPError(403, exc.message) from None
            try:
                await spawner.client.update_time_limit(info.job_id, minutes)
            except Exception as exc:  # noqa: BLE001  (any failure: give the hold back)
                await self.run(ledger.retract_extension, info.id, hours)
                raise self.slurm_failure(exc, info.job_id) from None
            self.log.info(
                "%s extended %s/%s (job %s, session %s) by %s h to %s min",
                caller.who, user_name, server_name, info.job_id, info.id, hours, minutes,
            )  # fmt: skip
        if hasattr(spawner, "watcher"):
            spawner.watcher.poke()  # the new end time on the next squeue
        info = await self.run(ledger.session, info.id)
        self.send_json(await self.session_answer(ledger, spawner, info))

    async def new_time_limit(self, spawner: Any, info: SessionInfo, added_seconds: int) -> int:
        """The job's new total time limit (minutes), within the partition's MaxTime (else 400)."""
        partition = session_job_view(spawner, info).partition
        max_minutes = None
        if hasattr(spawner, "cluster_info"):
            try:
                cluster = await spawner.cluster_info()
            except SlurmCommandError as exc:
                raise web.HTTPError(503, f"Slurm is not answering, try again shortly ({exc.summary})") from None
            known = cluster.partitions.get(partition) if partition else cluster.default_partition
            if known is None:
                raise web.HTTPError(409, f"partition {partition!r} of this session is not offered any more")
            partition, max_minutes = known.name, known.max_minutes
        try:
            return session_views.extended_time_limit_minutes(
                info.reserved_seconds, added_seconds, max_minutes, partition
            )
        except LedgerInputError as exc:
            raise web.HTTPError(400, exc.message) from None

    def slurm_failure(self, exc: Exception, job_id: str) -> web.HTTPError:

        self.log.warning("scontrol update of job %s failed: %s", job_id, exc)
        if isinstance(exc, SlurmTimeoutError):
            return web.HTTPError(
                503,
                f"Slurm did not answer in time, the time limit is unchanged and nothing "
                f"was charged; try again shortly ({exc.summary})",
            )
        if isinstance(exc, SlurmCommandError):
            return web.HTTPError(
                502, f"Slurm refused the new time limit, nothing was charged: {exc.first_stderr_line or exc.summary}"
            )
        return web.HTTPError(502, f"the new time limit could not be set, nothing was charged: {exc}")


# Routes, relative to the hub's prefix (JupyterHub adds /hub). The project and user
# parts are validated by the handlers, so that a bad name is a 400 naming the field.
ROUTES: list[tuple[str, type[APIHandler]]] = [
    (rf"{API_PREFIX}/projects", ProjectListHandler),
    (rf"{API_PREFIX}/projects/{_NAME}", ProjectHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/charges", ChargesHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/members/{_NAME}", MemberHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/members/{_NAME}/cap", CapHandler),
    (rf"{API_PREFIX}/preview", PreviewHandler),
    # A notebook server's session. Like JupyterHub's own API, the default server is
    # /users/{u}/server (and, shorter, /users/{u}/session); a named one /users/{u}/servers/{s}
    # ("" there is the default server too).
    (rf"{API_PREFIX}/users/{_NAME}/servers/([^/]*)/session", SessionHandler),
    (rf"{API_PREFIX}/users/{_NAME}/server/session", SessionHandler),
    (rf"{API_PREFIX}/users/{_NAME}/session", SessionHandler),
    (rf"{API_PREFIX}/users/{_NAME}/servers/([^/]*)/extend", ExtendHandler),
    (rf"{API_PREFIX}/users/{_NAME}/server/extend", ExtendHandler),
    (rf"{API_PREFIX}/users/{_NAME}/extend", ExtendHandler),
]
