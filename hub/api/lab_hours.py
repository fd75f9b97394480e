"""``GET|POST /hub/api/hpchub/v1/projects/{p}/lab-hours``: a course's lab hours.

``GET`` answers the state of the course's Slurm reservation (anyone who sees the course).
``POST {"on": true, "minutes": 60}`` creates it from now on the nodes the site configured
(``c.HPCHubCourses.lab_hours_nodes``) for the course's account; ``POST {"on": false}`` deletes
it. Instructors of the course and portal admins only. While it is active, the spawner puts
the course's students' new sessions into it (``--reservation``).

Answers: 400 naming the field for a bad body; 403 for other roles; 404 as for an unknown
project; 409 if the project is not a course, has no reservation name, or the lab hours are
on already (or the reservation exists for a later time), or the reservation is not the course's
own (named other than ``COURSE-lab``, or Slurm's record of it is for other accounts or users:
the hub never deletes a reservation someone else made, ``course_accounts.foreign_reservation``); 503 when no nodes are configured
or Slurm does not answer; 502 when Slurm refuses (e.g. the hub is not a Slurm operator).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from jupyterhub.scopes import needs_scope
from tornado import web

from hub.api import views
from hub.api.handlers import _NAME, API_PREFIX, ProjectAPIHandler
from hub.api.lab_hours_state import (
    HPCHubCourses,
    lab_hours,
    lab_hours_json,
)
from hub.api.scopes import MANAGE_SCOPE, READ_SCOPE
from hub.ledger.course_accounts import foreign_reservation
from hub.ledger.types import Role, check_project_name
from spawners.slurm.client import SlurmCommandError, SlurmTimeoutError
from spawners.slurm.cluster import SlurmCluster
from spawners.slurm.reservations import (
    create_reservation,
    delete_reservation,
    forget_reservation,
    show_reservation,
)

NO_NODES = (
    "lab hours cannot be switched on from the hub: HPCHubCourses.lab_hours_nodes names no nodes; ask the site's "
    "admins to set it (a reservation made with scontrol create reservation still binds the students)"
)
_LOCKS: dict[str, asyncio.Lock] = {}  # one switch of a course at a time in this hub process


def _clock(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class LabHoursHandler(ProjectAPIHandler):
    async def course(self, project: str, *, switching: bool):
        """(ledger, reservation name, account, caller) of a course the caller may see (and switch)."""
        self.checked(check_project_name, project, "project")
        caller = self.caller()
        ledger = await self.ledger()
        _members, role, _access = await self.project_members(ledger, project, caller)
        if switching and not (caller.is_admin or role is Role.INSTRUCTOR):
            raise web.HTTPError(403, f"only an instructor of {project} or a portal admin may switch its lab hours")
        rules = await self.run(ledger.course_rules, project)
        if rules is None:
            raise web.HTTPError(409, f"{project} is not a course: it has no lab hours")
        if not rules.reservation:
            raise web.HTTPError(409, f"{project} has no lab-hours reservation (give one with hpchub course create "
                                     "... --reservation NAME)")  # fmt: skip
        info = await self.run(ledger.project, project)
        return rules.reservation, info.slurm_account, caller

    def slurm_failure(self, exc: Exception, what: str) -> web.HTTPError:
        self.log.warning("lab hours: %s: %s", what, exc)
        if isinstance(exc, SlurmTimeoutError):
            return web.HTTPError(503, f"Slurm did not answer in time; the lab hours are unchanged ({exc.summary})")
        if isinstance(exc, SlurmCommandError):
            detail = exc.first_stderr_line or exc.summary
            lowered = (exc.stderr or "").lower()
            if any(word in lowered for word in ("access denied", "permission", "not authorized")):
                detail += " (creating or deleting a reservation needs a Slurm operator: the hub's service account)"
            if "in use" in lowered or "busy" in lowered:
                return web.HTTPError(409, f"Slurm keeps the reservation while jobs run in it: {detail}")
            return web.HTTPError(502, f"Slurm refused to {what}: {detail}")
        return web.HTTPError(502, f"could not {what}: {exc}")

    async def state(self, client, reservation: str) -> dict:
        try:
            found = await show_reservation(client, reservation)
        except (SlurmCommandError, ValueError) as exc:
            raise self.slurm_failure(exc, f"read reservation {reservation}") from None
        return lab_hours_json(lab_hours(reservation, found, datetime.now(timezone.utc)))

    @needs_scope(READ_SCOPE)
    async def get(self, project: str) -> None:
        reservation, _account, _caller = await self.course(project, switching=False)
        answer = await self.state(SlurmCluster.from_config(self.settings["config"]).client(log=self.log), reservation)
        self.send_json({"project": project, **answer})

    @needs_scope(MANAGE_SCOPE)
    async def post(self, project: str) -> None:
        reservation, account, caller = await self.course(project, switching=True)
        courses = HPCHubCourses(config=self.settings["config"])
        change = self.body(lambda body: views.parse_lab_hours_body(body, courses.lab_hours_max_minutes))
        if change.on and not courses.lab_hours_nodes:
            raise web.HTTPError(503, NO_NODES)
        client = SlurmCluster.from_config(self.settings["config"]).client(log=self.log)
        lock = _LOCKS.setdefault(project, asyncio.Lock())
        async with lock:
            try:
                found = await show_reservation(client, reservation)
            except (SlurmCommandError, ValueError) as exc:
                raise self.slurm_failure(exc, f"read reservation {reservation}") from None
            refusal = foreign_reservation(project, account, reservation, found)
            if refusal is not None:
                self.log.warning("%s: lab hours of %s not switched: %s", caller.who, project, refusal)
                raise web.HTTPError(409, refusal)
            if change.on:
                if found is not None and found.active_at(datetime.now(timezone.utc)):
                    raise web.HTTPError(409, f"the lab hours of {project} are on already until {_clock(found.end)}; "
                                             "switch them off first")  # fmt: skip
                if found is not None:
                    raise web.HTTPError(409, f"reservation {reservation} exists already ({_clock(found.start)} to "
                                             f"{_clock(found.end)}); switch the lab hours off first")  # fmt: skip
                try:
                    await create_reservation(client, reservation, minutes=change.minutes or 0,
                                             nodes=courses.lab_hours_nodes, accounts=[account])  # fmt: skip
                except (SlurmCommandError, ValueError) as exc:
                    raise self.slurm_failure(exc, f"create reservation {reservation}") from None
                finally:
                    forget_reservation(client, reservation)
                changed = True
            else:
                changed = False
                if found is not None:
                    try:
                        changed = await delete_reservation(client, reservation)
                    except (SlurmCommandError, ValueError) as exc:
                        raise self.slurm_failure(exc, f"delete reservation {reservation}") from None
                    finally:
                        forget_reservation(client, reservation)
            answer = await self.state(client, reservation)
        self.log.info("%s switched the lab hours of %s %s (reservation %s%s)", caller.who, project,
                      "on" if change.on else "off", reservation,
                      f", {change.minutes} min on {','.join(courses.lab_hours_nodes)}" if change.on else "")  # fmt: skip
        self.send_json({"project": project, "changed": changed, **answer})


ROUTES = [(rf"{API_PREFIX}/projects/{_NAME}/lab-hours", LabHoursHandler)]
