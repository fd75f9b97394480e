"""Unit tests for ``configure_api`` (hub/api/config.py) on a plain traitlets Config."""

from __future__ import annotations

import pytest
from jupyterhub.roles import get_default_roles
from jupyterhub.scopes import define_custom_scopes, scope_definitions
from traitlets import TraitError
from traitlets.config import Config

from hub.api.config import configure_api
from hub.api.scopes import (
    ACTIVITY_SCOPE,
    EXTEND_SCOPE,
    HPCHUB_SCOPES,
    MANAGE_SCOPE,
    READ_SCOPE,
    SESSION_SCOPE,
    USER_SCOPES,
)
from hub.api.settings import HPCHubAPI
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H

pytestmark = pytest.mark.unit

ROUTE_SUFFIXES = {
    "/projects", "/projects/([^/]+)", "/projects/([^/]+)/charges", "/projects/([^/]+)/members/([^/]+)",
    "/projects/([^/]+)/members/([^/]+)/cap", "/projects/([^/]+)/lab-hours", "/projects/([^/]+)/course-settings",
    "/courses", "/preview",
    "/users/([^/]+)/servers/([^/]*)/session", "/users/([^/]+)/server/session", "/users/([^/]+)/session",
    "/users/([^/]+)/servers/([^/]*)/extend", "/users/([^/]+)/server/extend", "/users/([^/]+)/extend",
    "/users/([^/]+)/servers/([^/]*)/activity", "/users/([^/]+)/server/activity",
    "/projects/([^/]+)/environments", "/projects/([^/]+)/environments/([^/]+)",
    "/projects/([^/]+)/environments/([^/]+)/log", "/catalogue/published", "/catalogue/published/([^/]+)",
}  # fmt: skip
OWN = [f"{SESSION_SCOPE}!server", f"{ACTIVITY_SCOPE}!server"]
SERVER_SCOPES = ["users:activity!user", "access:servers!server", *OWN]


def test_adds_routes_scopes_and_extra_user_scopes() -> None:
    c = Config()
    configure_api(c)
    routes = {pattern.removeprefix("/api/hpchub/v1") for pattern, _handler in c.JupyterHub.extra_handlers}
    assert routes == ROUTE_SUFFIXES
    assert c.JupyterHub.custom_scopes == HPCHUB_SCOPES
    assert HPCHUB_SCOPES[MANAGE_SCOPE]["subscopes"] == [READ_SCOPE]
    assert HPCHUB_SCOPES[EXTEND_SCOPE]["subscopes"] == [SESSION_SCOPE]
    assert c.JupyterHub.extra_user_scopes == set(USER_SCOPES)
    assert "load_roles" not in c.JupyterHub  # the default user role ("self") is left alone
    assert c.Spawner.server_token_scopes == SERVER_SCOPES


def test_is_idempotent_and_keeps_what_was_there() -> None:
    c = Config()
    c.JupyterHub.extra_handlers = [(r"/api/other", object)]
    c.JupyterHub.custom_scopes = {"custom:other:read": {"description": "other"}}
    c.JupyterHub.extra_user_scopes = {"access:services"}
    c.JupyterHub.load_roles = [{"name": "driver", "scopes": ["servers"], "services": ["t"]}]
    configure_api(c)
    configure_api(c)
    assert len(c.JupyterHub.extra_handlers) == 1 + len(ROUTE_SUFFIXES)
    assert set(c.JupyterHub.custom_scopes) == {"custom:other:read", *USER_SCOPES}
    assert c.JupyterHub.extra_user_scopes == {"access:services", *USER_SCOPES}
    assert c.Spawner.server_token_scopes == SERVER_SCOPES
    assert c.JupyterHub.load_roles == [{"name": "driver", "scopes": ["servers"], "services": ["t"]}]


@pytest.mark.parametrize(
    ("user_role", "scopes"),
    [
        pytest.param({"name": "user"}, ["self", *USER_SCOPES], id="no-scopes-keeps-self"),
        pytest.param(
            {"name": "user", "scopes": ["self", "access:services"]},
            ["self", "access:services", *USER_SCOPES],
            id="extends-scopes",
        ),
    ],
)
def test_a_user_role_in_load_roles_gets_the_scopes(user_role, scopes) -> None:
    """JupyterHub 6 merges a user role from load_roles shallowly (its scopes replace the
    default ["self"]) and then ignores extra_user_scopes: so the scopes go into that role."""
    c = Config()
    c.JupyterHub.load_roles = [user_role]
    configure_api(c)
    (role,) = c.JupyterHub.load_roles
    assert role["scopes"] == scopes
    assert "extra_user_scopes" not in c.JupyterHub
    default_user = next(r for r in get_default_roles() if r["name"] == "user")
    assert set(default_user["scopes"]) <= set(role["scopes"])


def test_scopes_are_known_to_jupyterhub_and_redefining_them_is_harmless() -> None:
    import hub.api.handlers  # noqa: F401, PLC0415  (defines them, for needs_scope)

    assert all(scope in scope_definitions for scope in USER_SCOPES)
    define_custom_scopes(dict(HPCHUB_SCOPES))  # what the hub does at start with c.JupyterHub.custom_scopes


def test_server_token_scopes_are_jupyterhubs_default_plus_reading_the_own_session() -> None:
    """JupyterHub 6's default for server tokens is the built-in server role's scopes: kept."""
    default_server = next(r for r in get_default_roles() if r["name"] == "server")
    c = Config()
    configure_api(c)
    assert set(default_server["scopes"]) <= set(c.Spawner.server_token_scopes)
    assert set(c.Spawner.server_token_scopes) - set(default_server["scopes"]) == set(OWN)


@pytest.mark.parametrize(
    ("section", "given", "expected"),
    [
        pytest.param("Spawner", ["access:servers!server"], ["access:servers!server", *OWN], id="site-list-on-spawner"),
        pytest.param(
            "SlurmGPUSpawner", ["users:activity!user"], ["users:activity!user", *OWN], id="site-list-on-slurm-spawner"
        ),
        pytest.param("Spawner", SERVER_SCOPES, SERVER_SCOPES, id="already-there"),
    ],
)
def test_server_token_scopes_a_site_set_are_extended(section, given, expected) -> None:
    c = Config()
    c[section].server_token_scopes = list(given)
    configure_api(c)
    configure_api(c)
    assert c[section].server_token_scopes == expected


def test_server_token_scopes_callable_is_left_alone() -> None:
    def scopes(spawner):
        return ["access:servers!server"]

    c = Config()
    c.Spawner.server_token_scopes = scopes
    configure_api(c)
    assert c.Spawner.server_token_scopes is scopes


@pytest.mark.parametrize(("value", "mgs"), [(None, None), (10, 10 * H), ("2.5", int(2.5 * H)), (0.25, H // 4)])
def test_ta_cap_limit(value, mgs) -> None:
    c = Config()
    c.HPCHubAPI.ta_cap_limit_gpu_hours = value
    assert HPCHubAPI(config=c).ta_cap_limit_mgs == mgs


@pytest.mark.parametrize("value", [-1, "lots", 1.00001])
def test_bad_ta_cap_limit_is_refused_at_configuration(value) -> None:
    c = Config()
    c.HPCHubAPI.ta_cap_limit_gpu_hours = value
    with pytest.raises((TraitError, ValueError)):
        HPCHubAPI(config=c)
