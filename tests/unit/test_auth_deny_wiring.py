"""The authenticator's use of the mapping and the deny rules (no hub, no provider: the discovery
document is given): which account a login's claims give, and what a spawn of a denied user gets."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets.config import Config

import hub.auth.oidc as oidc

pytestmark = pytest.mark.unit

ISSUER = "https://login.uni.example"
DISCOVERY = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token",
             "userinfo_endpoint": f"{ISSUER}/me", "code_challenge_methods_supported": ["S256"]}  # fmt: skip


@pytest.fixture
def authenticator(monkeypatch, tmp_path):
    monkeypatch.setattr(oidc, "fetch_discovery", lambda issuer: DISCOVERY)

    def make(**settings):
        config = Config()
        config.HPCHubOIDCAuthenticator.issuer = ISSUER
        config.HPCHubOIDCAuthenticator.scoped_domains = {"uni.example": {}}
        for key, value in settings.items():
            setattr(config.HPCHubOIDCAuthenticator, key, value)
        return oidc.HPCHubOIDCAuthenticator(config=config)

    return make


@pytest.mark.parametrize(
    ("claims", "rule"),
    [
        pytest.param({"preferred_username": "root@uni.example"}, "deny-list", id="root"),
        pytest.param({"preferred_username": "nobody@uni.example"}, "deny-list", id="nobody"),
        pytest.param({"preferred_username": "hpchub@uni.example"}, "deny-list", id="service-account-name"),
        pytest.param({"preferred_username": "daemon@uni.example"}, "minimum UID", id="daemon-uid-1"),
    ],
)
def test_a_login_mapped_to_a_denied_account_is_a_403_naming_the_rule(authenticator, claims, rule):
    with pytest.raises(web.HTTPError) as excinfo:
        authenticator().user_info_to_username(claims)
    assert excinfo.value.status_code == 403 and rule in excinfo.value.log_message


def test_an_account_that_does_not_exist_yet_still_maps(authenticator):
    assert authenticator().user_info_to_username({"preferred_username": "newstudent@uni.example"}) == "newstudent"


def test_map_by_subject_ignores_an_edited_preferred_username(authenticator, tmp_path):
    table = tmp_path / "subjects.json"
    table.write_text(json.dumps({"8f14e45f-0001": "newstudent"}))
    login = authenticator(map_by_subject=True, account_map_file=str(table))
    claims = {"sub": "8f14e45f-0001", "preferred_username": "root@uni.example"}
    assert login.user_info_to_username(claims) == "newstudent"
    with pytest.raises(web.HTTPError) as excinfo:
        login.user_info_to_username({"sub": "8f14e45f-9999", "preferred_username": "newstudent@uni.example"})
    assert excinfo.value.status_code == 403 and "not registered" in excinfo.value.log_message


@pytest.mark.parametrize("name", [pytest.param("root", id="root"), pytest.param("daemon", id="daemon")])
def test_a_spawn_of_a_denied_user_is_a_403_before_anything_else(authenticator, name):
    user = SimpleNamespace(name=name, groups=[])
    with pytest.raises(web.HTTPError) as excinfo:
        asyncio.run(authenticator().pre_spawn_start(user, None))
    assert excinfo.value.status_code == 403 and f"No server can start for {name}" in excinfo.value.log_message


@pytest.mark.parametrize(
    ("name", "rule"),
    [pytest.param("root", "deny-list", id="root"), pytest.param("daemon", "minimum UID", id="daemon")],
)
def test_the_spawner_refuses_a_denied_user_whatever_the_authenticator(name, rule):
    """The spawner's own gate (a site with another authenticator, an admin-made hub user): 403 naming
    the rule before any option is read, Slurm asked or budget held."""
    from spawners.slurm.spawner import SlurmGPUSpawner

    spawner = SlurmGPUSpawner(user=SimpleNamespace(name=name, url=f"/user/{name}/", groups=[]), config=Config())

    async def never(*_args, **_kwargs):
        raise AssertionError("validated options for a denied account")

    spawner.validate_options = never
    with pytest.raises(web.HTTPError) as excinfo:
        asyncio.run(spawner._run_apply_user_options({"project": "vision-lab"}))  # JupyterHub's own call of the hook
    assert excinfo.value.status_code == 403 and rule in excinfo.value.log_message
