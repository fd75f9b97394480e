"""``GET|POST /hub/api/hpchub/v1/projects/{p}/course-settings``: a course's settings (issue 7).

The instructor's settings of a course (``hub.ledger.courses.SETTINGS``): ``GET`` answers them
(anyone who sees the course); ``POST`` changes those given, with a reason, each change an
appended ledger record (instructors of the course and portal admins only). The fields and
their checks are the command line's (``hpchub course settings``): the same ``make``
functions of ``hub.ledger.courses``.

Answers: 400 naming the field; 403 for other roles; 404 as for an unknown project; 409 if
the project is not a course.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from jupyterhub.scopes import needs_scope
from tornado import web

from hub.ledger import arithmetic as arith
from hub.ledger.courses import CourseRules, OnDrop, ta_extension_mgs
from hub.ledger.errors import LedgerInputError
from hub.ledger.types import Role, check_enum, check_project_name, check_text

from . import views
from .config import MANAGE_SCOPE, READ_SCOPE
from .handlers import API_PREFIX, _NAME, ProjectAPIHandler

SETTINGS_KEYS = ("ta_extension_limit_gpu_hours", "lab_hours_only", "on_drop", "reason")
SETTINGS_EXAMPLE = '{"ta_extension_limit_gpu_hours": 2, "reason": "lab week"}'
DEFAULT_REASON = "changed on the course page"


def parse_settings_body(body: object, rules: CourseRules) -> tuple[CourseRules, str]:
    """The rules with the settings the body gives (others unchanged), and the reason.
    ``ta_extension_limit_gpu_hours``: GPU-hours (0: TAs may not extend) or null (no course limit);
    ``lab_hours_only``: true or false (true needs the course's reservation); ``on_drop``:
    finish or stop."""
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


ROUTES = [(rf"{API_PREFIX}/projects/{_NAME}/course-settings", CourseSettingsHandler)]
