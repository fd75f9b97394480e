"""``POST /hub/api/hpchub/v1/courses`` creates a course; ``GET|POST .../projects/{p}/course-settings``
are a course's settings.

Creating: the fields of ``hpchub course create`` (``course_records.COURSE_FIELDS``), checked by
the same ``new_course``; admins any, an instructor of a course up to
``c.HPCHubAPI.instructor_course_max_gpu_hours`` and as the new course's instructor
(``access.check_course_creation``). A bad field answers 400 with ``field`` naming it (the
page shows the message next to that field); nothing is created. The account must be a leaf
account of Slurm's tree that no other project has (never root, never a parent of other
accounts), read from Slurm at each request (503 if Slurm cannot be asked); a reservation must be
the course's own ``COURSE-lab`` (``hub.ledger.course_accounts``).

The instructor's settings of a course (``hub.ledger.courses.SETTINGS``): ``GET`` answers them
(anyone who sees the course); ``POST`` changes those given, with a reason, each change an
appended ledger record (instructors of the course and portal admins only). The fields and
their checks are the command line's (``hpchub course settings``): the same ``make``
functions of ``hub.ledger.courses``.

Answers: 400 naming the field; 403 for other roles; 404 as for an unknown project; 409 if
the project is not a course.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from jupyterhub.scopes import needs_scope
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from hub.api import views
from hub.api.access import check_course_creation
from hub.api.handlers import _NAME, API_PREFIX, LedgerAPIHandler, ProjectAPIHandler
from hub.api.scopes import MANAGE_SCOPE, READ_SCOPE
from hub.ledger import arithmetic as arith
from hub.ledger.course_records import COURSE_FIELDS, new_course
from hub.ledger.courses import CourseRules, OnDrop, idle_stop_minutes, ta_extension_mgs
from hub.ledger.errors import LedgerInputError
from hub.ledger.types import Role, check_enum, check_project_name, check_text
from spawners.slurm.accounts import AccountTree, read_account_tree
from spawners.slurm.client import SlurmCommandError
from spawners.slurm.cluster import SlurmCluster

SETTINGS_KEYS = ("ta_extension_limit_gpu_hours", "lab_hours_only", "on_drop", "idle_stop_after_minutes", "reason")
SETTINGS_EXAMPLE = '{"ta_extension_limit_gpu_hours": 2, "reason": "lab week"}'
DEFAULT_REASON = "changed on the course page"


def parse_settings_body(body: object, rules: CourseRules) -> tuple[CourseRules, str]:
    """The rules with the settings the body gives (others unchanged), and the reason.
    ``ta_extension_limit_gpu_hours``: GPU-hours (0: TAs may not extend) or null (no course limit);
    ``lab_hours_only``: true or false (true needs the course's reservation); ``on_drop``:
    finish or stop; ``idle_stop_after_minutes``: 1 to 10080 or null (the site's idle stop)."""
    body: Mapping[str, Any] = views.json_object(body, SETTINGS_KEYS, SETTINGS_EXAMPLE)
    changes: dict[str, object] = {}
    if "ta_extension_limit_gpu_hours" in body:
        value = body["ta_extension_limit_gpu_hours"]
        if isinstance(value, bool):
            raise LedgerInputError("ta_extension_limit_gpu_hours", f"must be GPU-hours or null, got {value!r}")
        changes["ta_extension_mgs"] = ta_extension_mgs(value, "ta_extension_limit_gpu_hours")
    if "lab_hours_only" in body:
        if not isinstance(body["lab_hours_only"], bool):
            raise LedgerInputError("lab_hours_only", f"must be true or false, got {str(body['lab_hours_only'])[:40]!r}")
        changes["lab_hours_only"] = body["lab_hours_only"]
    if "on_drop" in body:
        changes["on_drop"] = check_enum(OnDrop, body["on_drop"], "on_drop")
    if "idle_stop_after_minutes" in body:
        changes["idle_stop_minutes"] = idle_stop_minutes(body["idle_stop_after_minutes"], "idle_stop_after_minutes")
    if not changes:
        raise LedgerInputError("body", f"no setting given; e.g. {SETTINGS_EXAMPLE}")
    reason = body.get("reason")
    reason = DEFAULT_REASON if reason is None or reason == "" else check_text(reason, "reason")
    return replace(rules, **changes).check(), reason


def settings_json(project: str, rules: CourseRules) -> dict:
    limit = rules.ta_extension_mgs
    return {
        "project": project,
        "per_student_gpu_hours": arith.gpu_hours_json(rules.per_student_mgs),
        "ta_extension_limit_gpu_hours": None if limit is None else arith.gpu_hours_json(limit),
        "lab_hours_only": rules.lab_hours_only,
        "on_drop": rules.on_drop.value,
        "idle_stop_after_minutes": rules.idle_stop_minutes,
        "reservation": rules.reservation,
        "rules": rules.describe(),
    }


class CourseSettingsHandler(ProjectAPIHandler):
    async def course(self, project: str, *, changing: bool):
        self.checked(check_project_name, project, "project")
        caller = self.caller()
        ledger = await self.ledger()
        _members, role, _access = await self.project_members(ledger, project, caller)
        if changing and not (caller.is_admin or role is Role.INSTRUCTOR):
            raise web.HTTPError(403, f"only an instructor of {project} or a portal admin may change its settings")
        rules = await self.run(ledger.course_rules, project)
        if rules is None:
            raise web.HTTPError(409, f"{project} is not a course: it has no course settings")
        return ledger, rules, caller

    @needs_scope(READ_SCOPE)
    async def get(self, project: str) -> None:
        _ledger, rules, _caller = await self.course(project, changing=False)
        self.send_json(settings_json(project, rules))

    @needs_scope(MANAGE_SCOPE)
    async def post(self, project: str) -> None:
        ledger, rules, caller = await self.course(project, changing=True)
        wanted, reason = self.body(lambda body: parse_settings_body(body, rules))
        rules, changed = await self.run(ledger.set_course_settings, project, wanted, reason=reason, who=caller.who)
        if changed:
            self.log.info("%s changed %s of %s (%s)", caller.who, ", ".join(changed), project, reason)
        self.send_json({**settings_json(project, rules), "changed": changed})


COURSE_EXAMPLE = (
    '{"name": "cs102", "account": "cs102", "start": "2026-09-01", "end": "2027-01-31", '
    '"gpu_hours": 200, "per_student": 5}'
)
FIELD_OF = {"project": "name"}  # the ledger's field -> the form's


def field_error(exc: LedgerInputError) -> tuple[str, str]:
    """(the form's field, the message naming it) of a refused course."""
    field = FIELD_OF.get(exc.field, exc.field)
    return field, f"{field}: {exc.rule}"


def course_fields(body: object) -> dict[str, Any]:
    """The body's fields (only ``COURSE_FIELDS``; JSON numbers, strings, booleans, null)."""
    return dict(views.json_object(body, COURSE_FIELDS, COURSE_EXAMPLE))


def created_json(info, rules: CourseRules, base_url: str) -> dict:
    return {
        "project": info.name, "account": info.slurm_account, "start": info.period_start.isoformat(),
        "end": info.period_end.isoformat(), "rules": rules.describe(),
        "dashboard": f"{base_url}hpchub/courses/{info.name}",
    }  # fmt: skip


class CourseCreateHandler(LedgerAPIHandler):
    def refuse_field(self, status: int, field: str | None, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status, "message": message, "field": field}))

    async def slurm_accounts(self) -> AccountTree | None:
        """Slurm's account tree, read now: ``new_course`` refuses a course on an account Slurm
        does not have (its budget could not be spent), on root or on a parent of other accounts
        (its limits would cap them all). None (and a 503 sent) if Slurm cannot be asked."""
        try:
            return await read_account_tree(SlurmCluster.from_config(self.settings["config"]).client(log=self.log))
        except (SlurmCommandError, ValueError) as exc:
            detail = exc.summary if isinstance(exc, SlurmCommandError) else str(exc)
            self.log.warning("create course: cannot read Slurm's accounts: %s", detail)
            self.refuse_field(503, "account", f"account: cannot check Slurm's accounts now ({detail}); try again")
            return None

    @needs_scope(MANAGE_SCOPE)
    async def post(self) -> None:
        caller = self.caller()
        ledger = await self.ledger()
        try:
            fields = course_fields(self.get_json_body())
            gpu_hours = arith.gpu_hours_to_mgs(fields.get("gpu_hours", 0) or 0, "gpu_hours")
        except LedgerInputError as exc:
            self.refuse_field(400, *field_error(exc))
            return
        instructs = False
        if caller.name is not None and not caller.is_admin:
            memberships = await self.run(ledger.memberships, caller.name)
            instructs = any(role is Role.INSTRUCTOR for _project, role in memberships)
        refusal = check_course_creation(
            caller=caller.name, is_admin=caller.is_admin, instructs_a_course=instructs,
            max_mgs=self.api_settings.instructor_course_max_mgs, gpu_hours_mgs=gpu_hours,
            instructor=fields.get("instructor"),
        )  # fmt: skip
        if refusal is not None:
            field = refusal.message.split(":")[0] if refusal.message.startswith(("instructor:", "gpu_hours:")) else None
            self.refuse_field(refusal.status, field, refusal.message)
            return
        if not caller.is_admin:
            fields["instructor"] = caller.name
        tree = await self.slurm_accounts()
        if tree is None:
            return
        try:
            info, rules = await asyncio.to_thread(new_course, ledger, fields, who=caller.who, slurm_accounts=tree)
        except LedgerInputError as exc:
            self.refuse_field(400, *field_error(exc))
            return
        except SQLAlchemyError as exc:
            self.log.error("create course: ledger database error: %s", str(getattr(exc, "orig", None) or exc)[:500])
            raise web.HTTPError(503, "the GPU-hour ledger is not answering; try again shortly") from None
        self.log.info("%s created course %s (%s GPU-h)", caller.who, info.name, arith.format_gpu_hours(gpu_hours))
        self.send_json(created_json(info, rules, self.hub.base_url), 201)


ROUTES = [
    (rf"{API_PREFIX}/courses", CourseCreateHandler),
    (rf"{API_PREFIX}/projects/{_NAME}/course-settings", CourseSettingsHandler),
]
