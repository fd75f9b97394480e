"""Wiring the ledger REST API into JupyterHub: ``configure_api(c)`` in a hub configuration.

It adds, without touching anything else in ``c``:

- the handlers under ``/hub/api/hpchub/v1/`` (``c.JupyterHub.extra_handlers``, the course's
  lab hours from :mod:`hub.api.lab_hours` among them; JupyterHub
  logs that this option is deprecated in favour of services, but it is the way to serve
  API handlers inside the hub, with its cookies, tokens and scopes);
- the custom scopes ``custom:hpchub:read`` and ``custom:hpchub:manage`` (the latter
  implies the former) in ``c.JupyterHub.custom_scopes``;
- both scopes for every user (the built-in ``user`` role). JupyterHub 6 merges a ``user``
  role given in ``load_roles`` with its default *shallowly*: a ``scopes`` list there
  replaces the default ``["self"]`` instead of adding to it. So: if ``load_roles``
  already defines the ``user`` role, our scopes are added to it (with ``self`` kept);
  otherwise they go into ``c.JupyterHub.extra_user_scopes``, JupyterHub 6's option for
  adding scopes to the default role without redefining it. (JupyterHub ignores
  ``extra_user_scopes`` once a ``user`` role with scopes appears in ``load_roles``; call
  ``configure_api`` after any such definition.)

What each project role may do beyond the scopes is in :mod:`hub.api.access`.
- ``custom:hpchub:session`` (read a notebook server's session) and ``custom:hpchub:extend``
  (extend it; implies session) for every user, through the same grant;
- ``custom:hpchub:report-activity`` (report what a server is doing, for the idle stop) for
  every user, through the same grant;
- ``Spawner.server_token_scopes``: JupyterHub's default for server tokens (the ``server``
  role's ``users:activity!user`` and ``access:servers!server``) plus
  ``custom:hpchub:session!server`` and ``custom:hpchub:report-activity!server``, so a job's
  ``$JUPYTERHUB_API_TOKEN`` reads its own session and reports its own activity, and nothing
  else of the ledger (no read, manage or extend).
"""

from __future__ import annotations

from traitlets import Float, Integer, Unicode, Union, validate
from traitlets.config import Configurable

from hub.ledger import arithmetic as arith

READ_SCOPE = "custom:hpchub:read"
MANAGE_SCOPE = "custom:hpchub:manage"
HPCHUB_SCOPES: dict[str, dict] = {
    READ_SCOPE: {
        "description": "Read the GPU-hour budgets, members and charges of your projects "
        "(as far as your role in each project allows) and preview what a session would cost.",
    },
    MANAGE_SCOPE: {
        "description": "Add and remove members and change caps in projects you manage "
        "(as far as your role in each project allows).",
        "subscopes": [READ_SCOPE],
    },
}
SESSION_SCOPE = "custom:hpchub:session"
EXTEND_SCOPE = "custom:hpchub:extend"
HPCHUB_SCOPES[SESSION_SCOPE] = {
    "description": "Read your notebook servers' sessions: project, job, node, start and end, cost so far and "
    "held GPU-hours. A server's own token gets it for that server only.",
}
HPCHUB_SCOPES[EXTEND_SCOPE] = {
    "description": "Extend your running notebook servers' time limits, charged to the project's GPU-hour budget.",
    "subscopes": [SESSION_SCOPE],
}
ACTIVITY_SCOPE = "custom:hpchub:report-activity"
HPCHUB_SCOPES[ACTIVITY_SCOPE] = {
    "description": "Report what your notebook servers are doing (kernels and terminals at work, your last "
    "activity, GPU use) for the idle stop. A server's own token gets it for that server only.",
}
USER_SCOPES = (READ_SCOPE, MANAGE_SCOPE, SESSION_SCOPE, EXTEND_SCOPE, ACTIVITY_SCOPE)
# JupyterHub 6's default for the server token ($JUPYTERHUB_API_TOKEN): the built-in
# ``server`` role's scopes. Ours adds reading the server's own session (never extending) and
# reporting its own activity.
DEFAULT_SERVER_TOKEN_SCOPES = ("users:activity!user", "access:servers!server")
OWN_SERVER_SCOPES = (f"{SESSION_SCOPE}!server", f"{ACTIVITY_SCOPE}!server")
SERVER_TOKEN_SCOPES = (*DEFAULT_SERVER_TOKEN_SCOPES, *OWN_SERVER_SCOPES)


class HPCHubAPI(Configurable):
    """Settings of the ledger REST API."""

    ta_cap_limit_gpu_hours = Union(
        [Unicode(), Float(), Integer()],
        default_value=None,
        allow_none=True,
        help="Highest cap (GPU-hours) a ta may raise a student's or member's cap to, in projects and in "
        "courses whose instructors set no TA extension limit of their own (hpchub course settings "
        "--ta-extension-limit, which wins). Default None: TAs may not change caps there. Example: 10.",
    ).tag(config=True)

    instructor_course_max_gpu_hours = Union(
        [Unicode(), Float(), Integer()],
        default_value=None,
        allow_none=True,
        help="Largest budget (GPU-hours) an instructor of a course may give a new course they create from the "
        "course page or POST /courses (they become its instructor). Default None: only the portal's admins "
        "create courses. Example: 500.",
    ).tag(config=True)

    @validate("instructor_course_max_gpu_hours")
    def _check_instructor_max(self, proposal):
        value = proposal["value"]
        if value is not None:
            arith.gpu_hours_to_mgs(value, "HPCHubAPI.instructor_course_max_gpu_hours")
        return value

    @property
    def instructor_course_max_mgs(self) -> int | None:
        value = self.instructor_course_max_gpu_hours
        return None if value is None else arith.gpu_hours_to_mgs(value, "HPCHubAPI.instructor_course_max_gpu_hours")

    @validate("ta_cap_limit_gpu_hours")
    def _check_ta_limit(self, proposal):
        value = proposal["value"]
        if value is not None:
            arith.gpu_hours_to_mgs(value, "HPCHubAPI.ta_cap_limit_gpu_hours")
        return value

    @property
    def ta_cap_limit_mgs(self) -> int | None:
        value = self.ta_cap_limit_gpu_hours
        return None if value is None else arith.gpu_hours_to_mgs(value, "HPCHubAPI.ta_cap_limit_gpu_hours")


def _grant_user_scopes(c) -> None:
    roles = [dict(role) for role in c.JupyterHub.load_roles] if "load_roles" in c.JupyterHub else []
    for role in roles:
        if role.get("name") == "user":
            # JupyterHub replaces the default scopes with this list: keep "self" in it.
            scopes = list(role.get("scopes", ["self"]))
            role["scopes"] = scopes + [scope for scope in USER_SCOPES if scope not in scopes]
            c.JupyterHub.load_roles = roles
            return
    extra = set(c.JupyterHub.extra_user_scopes) if "extra_user_scopes" in c.JupyterHub else set()
    c.JupyterHub.extra_user_scopes = extra | set(USER_SCOPES)


def _grant_server_token_scope(c) -> None:
    """The server's own token may read its session and report its activity:
    ``custom:hpchub:session!server`` and ``custom:hpchub:report-activity!server`` added to
    ``Spawner.server_token_scopes`` (JupyterHub's default, the ``server`` role's scopes, kept).
    A site's own list (on ``Spawner`` or ``SlurmGPUSpawner``) is extended; a callable is left
    alone (the site then adds the scope itself). JupyterHub gives the token only the scopes
    its user holds: users hold both scopes through the ``user`` role."""
    for section in ("SlurmGPUSpawner", "Spawner"):
        if section in c and "server_token_scopes" in c[section]:
            current = c[section].server_token_scopes
            if callable(current):
                return
            scopes = list(current)
            c[section].server_token_scopes = scopes + [s for s in OWN_SERVER_SCOPES if s not in scopes]
            return
    c.Spawner.server_token_scopes = list(SERVER_TOKEN_SCOPES)


def configure_api(c) -> None:
    """Add the ledger API's handlers, scopes and user-role grants to a hub configuration
    (idempotent)."""
    from .activity import ROUTES as ACTIVITY_ROUTES  # noqa: PLC0415
    from .courses import ROUTES as COURSE_ROUTES  # noqa: PLC0415
    from .environments import ROUTES as ENVIRONMENT_ROUTES  # noqa: PLC0415
    from .handlers import ROUTES  # noqa: PLC0415  (imports JupyterHub: only when configuring a hub)
    from .lab_hours import ROUTES as LAB_HOURS_ROUTES  # noqa: PLC0415

    handlers = list(c.JupyterHub.extra_handlers) if "extra_handlers" in c.JupyterHub else []
    handlers += [route for route in [*ROUTES, *ACTIVITY_ROUTES, *LAB_HOURS_ROUTES, *COURSE_ROUTES,
                                              *ENVIRONMENT_ROUTES] if route not in handlers]
    c.JupyterHub.extra_handlers = handlers

    scopes = dict(c.JupyterHub.custom_scopes) if "custom_scopes" in c.JupyterHub else {}
    scopes.update(HPCHUB_SCOPES)
    c.JupyterHub.custom_scopes = scopes

    _grant_user_scopes(c)
    _grant_server_token_scope(c)
