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
    APPLY_SCOPE,
    CALL_MANAGER_ROLE,
    EXTEND_SCOPE,
    HPCHUB_SCOPES,
    MANAGE_CALLS_SCOPE,
    MANAGE_SCOPE,
    READ_SCOPE,
    REVIEW_SCOPE,
    REVIEWER_ROLE,
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
    "/calls", "/calls/([^/]+)", "/calls/([^/]+)/close", "/proposals", "/proposals/([^/]+)",
    "/proposals/([^/]+)/submit", "/proposals/([^/]+)/withdraw", "/proposals/([^/]+)/attachment",
    "/proposals/([^/]+)/reviewers", "/proposals/([^/]+)/conflict", "/proposals/([^/]+)/reviews",
    "/proposals/([^/]+)/decision", "/invitations/([^/]+)", "/projects/([^/]+)/reports", "/projects/([^/]+)/allocation",
}  # fmt: skip
ALLOCATION_ROLES = {REVIEWER_ROLE, CALL_MANAGER_ROLE}
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
    assert APPLY_SCOPE in USER_SCOPES and REVIEW_SCOPE not in USER_SCOPES and MANAGE_CALLS_SCOPE not in USER_SCOPES
    # the default user role ("self") is left alone: only the allocation roles are defined
    assert {role["name"] for role in c.JupyterHub.load_roles} == ALLOCATION_ROLES
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
    assert set(c.JupyterHub.custom_scopes) == {"custom:other:read", *USER_SCOPES, REVIEW_SCOPE, MANAGE_CALLS_SCOPE}
    assert c.JupyterHub.extra_user_scopes == {"access:services", *USER_SCOPES}
    assert c.Spawner.server_token_scopes == SERVER_SCOPES
    roles = c.JupyterHub.load_roles
    assert roles[0] == {"name": "driver", "scopes": ["servers"], "services": ["t"]}
    assert [role["name"] for role in roles[1:]] == [REVIEWER_ROLE, CALL_MANAGER_ROLE]


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
    role, *ours = c.JupyterHub.load_roles
    assert {r["name"] for r in ours} == ALLOCATION_ROLES
    assert role["scopes"] == scopes
    assert "extra_user_scopes" not in c.JupyterHub
    default_user = next(r for r in get_default_roles() if r["name"] == "user")
    assert set(default_user["scopes"]) <= set(role["scopes"])


@pytest.mark.parametrize(
    ("settings", "reviewer_groups", "manager_groups", "manager_users"),
    [
        pytest.param({}, ["hpc-reviewers"], ["hpc-call-managers"], [], id="defaults"),
        pytest.param(
            {"HPCHubOIDCAuthenticator": {"admin_groups": {"hpc-admins"}}, "Authenticator": {"admin_users": {"root2"}}},
            ["hpc-reviewers"], ["hpc-admins", "hpc-call-managers"], ["root2"], id="admins-manage-calls",
        ),
        pytest.param(
            {"HPCHubAllocations": {"reviewer_groups": ["panel"], "call_manager_groups": []}},
            ["panel"], [], [], id="site-groups",
        ),
    ],
)  # fmt: skip
def test_allocation_roles_go_to_the_groups_and_the_admins(
    settings, reviewer_groups, manager_groups, manager_users
) -> None:
    """JupyterHub's admin role holds no custom scope and cannot be changed: the call managers'
    role names the authenticator's admin groups and users."""
    c = Config()
    for section, values in settings.items():
        for name, value in values.items():
            c[section][name] = value
    configure_api(c)
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles[REVIEWER_ROLE] == {**roles[REVIEWER_ROLE], "scopes": [REVIEW_SCOPE], "groups": reviewer_groups}
    manager = roles[CALL_MANAGER_ROLE]
    assert manager["scopes"] == [MANAGE_CALLS_SCOPE, REVIEW_SCOPE]
    assert (manager["groups"], manager["users"]) == (manager_groups, manager_users)
    assert HPCHUB_SCOPES[MANAGE_CALLS_SCOPE]["subscopes"] == [APPLY_SCOPE]


def test_scopes_are_known_to_jupyterhub_and_redefining_them_is_harmless() -> None:
    import hub.api.handlers  # noqa: F401, PLC0415  (defines them, for needs_scope)

    assert all(scope in scope_definitions for scope in (*USER_SCOPES, REVIEW_SCOPE, MANAGE_CALLS_SCOPE))
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
