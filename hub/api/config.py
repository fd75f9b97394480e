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
  else of the ledger (no read, manage or extend);
- allocations: ``custom:hpchub:apply`` for every user (the same grant); two roles,
  ``hpchub-reviewer`` (``custom:hpchub:review``) for the JupyterHub groups named by
  ``c.HPCHubAllocations.reviewer_groups`` and ``hpchub-call-manager``
  (``custom:hpchub:manage-calls`` and review) for ``call_manager_groups``. The login's
  ``manage_groups`` copies the identity provider's groups into JupyterHub's at each login, so
  membership follows the provider. JupyterHub's built-in ``admin`` role cannot be changed (it
  holds no custom scope), so the call-manager role also goes to the authenticator's
  ``admin_groups`` and ``admin_users``: admins manage calls. The scopes only let a request
  through; who may see or change which proposal is :mod:`hub.allocations.service`'s rule.
"""

from __future__ import annotations

from hub.allocations.settings import HPCHubAllocations
from hub.api import ROUTES
from hub.api.scopes import (
    CALL_MANAGER_ROLE,
    HPCHUB_SCOPES,
    MANAGE_CALLS_SCOPE,
    OWN_SERVER_SCOPES,
    REVIEW_SCOPE,
    REVIEWER_ROLE,
    SERVER_TOKEN_SCOPES,
    USER_SCOPES,
)

# Where a hub configuration names its admins (the login is an OAuthenticator).
_AUTHENTICATOR_SECTIONS = ("Authenticator", "OAuthenticator", "GenericOAuthenticator", "HPCHubOIDCAuthenticator")


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


def _configured(c, sections: tuple[str, ...], name: str) -> list[str]:
    values: set[str] = set()
    for section in sections:
        if section in c and name in c[section]:
            values |= set(c[section][name] or ())
    return sorted(values)


def _grant_allocation_roles(c) -> None:
    """The reviewers' and call managers' roles, given to their identity-provider groups (and,
    for call managers, to the hub's admins), replacing earlier definitions of the same names."""
    settings = HPCHubAllocations(config=c)
    admin_groups = _configured(c, _AUTHENTICATOR_SECTIONS, "admin_groups")
    admin_users = _configured(c, _AUTHENTICATOR_SECTIONS, "admin_users")
    ours = [
        {
            "name": REVIEWER_ROLE,
            "description": "reviewers of allocation proposals (c.HPCHubAllocations.reviewer_groups)",
            "scopes": [REVIEW_SCOPE],
            "groups": sorted(set(settings.reviewer_groups)),
        },
        {
            "name": CALL_MANAGER_ROLE,
            "description": "allocation call managers (c.HPCHubAllocations.call_manager_groups) and the hub's admins",
            "scopes": [MANAGE_CALLS_SCOPE, REVIEW_SCOPE],
            "groups": sorted(set(settings.call_manager_groups) | set(admin_groups)),
            "users": admin_users,
        },
    ]
    roles = [dict(role) for role in c.JupyterHub.load_roles] if "load_roles" in c.JupyterHub else []
    names = {role["name"] for role in ours}
    c.JupyterHub.load_roles = [role for role in roles if role.get("name") not in names] + ours


def configure_api(c) -> None:
    """Add the ledger API's handlers, scopes and user-role grants to a hub configuration
    (idempotent)."""
    handlers = list(c.JupyterHub.extra_handlers) if "extra_handlers" in c.JupyterHub else []
    handlers += [route for route in ROUTES if route not in handlers]
    c.JupyterHub.extra_handlers = handlers

    scopes = dict(c.JupyterHub.custom_scopes) if "custom_scopes" in c.JupyterHub else {}
    scopes.update(HPCHUB_SCOPES)
    c.JupyterHub.custom_scopes = scopes

    _grant_user_scopes(c)
    _grant_server_token_scope(c)
    _grant_allocation_roles(c)
