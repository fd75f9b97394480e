"""Publishing a project environment into the images catalogue on the real cluster: an
admin publishes vision-lab's environment (the command line and the API), the spawn form offers it to
a non-member, whose session starts with its kernel as the default and imports its package in a real
kernel; only admins publish; unpublished, it is gone from the form and refused at spawn."""

from __future__ import annotations

import json
import re

import pytest
from test_budget_meter import _execute  # the kernel websocket helper
from test_environments import CPU_QUARTER_HOUR, _spawn, _stop

pytestmark = pytest.mark.integration

ENV = "pubenv"
V1 = "/hub/api/hpchub/v1"


@pytest.fixture(scope="module")
def env_cli(portal):
    config = str(portal.state_dir / "hub" / "jupyterhub_config.py")

    def run(*args: str, check: bool = False):
        return portal.ledger_cli("--config", config, "env", *args, check=check)

    return run


@pytest.fixture(scope="module")
def users(portal) -> dict:
    from test_api import (
        _logged_in,  # cookie + X-XSRFToken sessions through the identity provider
    )

    return {name: _logged_in(portal, name) for name in ("admin", "alice", "erin")}


@pytest.fixture(scope="module")
def ready_env(portal, env_cli, tmp_path_factory):
    spec = tmp_path_factory.mktemp("pub") / "requirements.txt"
    spec.write_text("hpchub-hello==1.0\n")
    result = env_cli("create", "vision-lab", ENV, "--from", str(spec), "--wait", "--timeout", "300")
    assert result.returncode == 0, result.stdout + result.stderr
    yield
    for entry in ("lab-hello", "api-hello"):
        env_cli("unpublish", entry)
    env_cli("remove", "vision-lab", ENV)


def _form_options(session, portal) -> dict[str, str]:
    html = session.get(f"{portal.url}/hub/spawn", timeout=60).text
    return dict(re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', html))


def test_cli_publish_is_offered_to_everyone_and_runs_in_a_real_kernel(portal, env_cli, users, ready_env) -> None:
    published = env_cli("publish", "vision-lab", ENV, "--as", "lab-hello", "--description", "hpchub-hello for all")
    assert published.returncode == 0, published.stderr
    assert "published vision-lab/pubenv v1 as catalogue entry lab-hello" in published.stdout
    listed = json.loads(env_cli("published", "--json", check=True).stdout)
    assert [(e["id"], e["project"], e["version"]) for e in listed] == [("lab-hello", "vision-lab", 1)]
    # erin is not in vision-lab: the form offers the published entry to her all the same
    options = _form_options(users["erin"], portal)
    assert options.get("lab-hello") == "vision-lab: pubenv (v1): hpchub-hello for all"
    _spawn(portal, "erin", {"project": "tiny-lab", **CPU_QUARTER_HOUR, "environment": "lab-hello"})
    try:
        specs = portal.session().get(f"{portal.server_url('erin')}api/kernelspecs", timeout=60).json()
        assert specs["default"] == "published-lab-hello", sorted(specs["kernelspecs"])
        assert not any(name.startswith("vision-lab") for name in specs["kernelspecs"])  # the project stays closed
        api = f"{portal.server_url('erin')}api/kernels"
        started = portal.session().post(api, json={"name": "published-lab-hello"}, timeout=60)
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        try:
            out = _execute(
                portal,
                kernel_id,
                "import sys, hpchub_hello\nprint(sys.prefix)\nprint(hpchub_hello.greet('erin'))",
                user="erin",
            )
        finally:
            portal.session().delete(f"{api}/{kernel_id}", timeout=60)
        prefix, greeting = out.strip().splitlines()
        assert prefix == str(portal.state_dir / "published" / "envs" / "lab-hello")
        assert greeting.startswith("hello, erin")
    finally:
        _stop(portal, "erin")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--as", "default"), "--as: 'default' is already an entry of the images catalogue", id="reserved"),
        pytest.param(("--as", "Bad;id"), "--as: must be 1-40 characters", id="unsafe-id"),
        pytest.param(
            ("--as", "x", "--version", "7"), "--version: vision-lab/pubenv: version 7 is not ready", id="version"
        ),
    ],
)
def test_cli_refusals(env_cli, ready_env, args, message) -> None:
    result = env_cli("publish", "vision-lab", ENV, *args, "--description", "d")
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_api_only_admins_publish_and_unpublish(portal, users, ready_env) -> None:
    url = f"{portal.url}{V1}/catalogue/published/api-hello"
    body = {"project": "vision-lab", "environment": ENV, "description": "from the API", "gpu": False}
    for name in ("alice", "erin"):  # the project's own pi is not enough
        refused = users[name].put(url, json=body, timeout=60)
        assert refused.status_code == 403 and "only the portal's admins" in refused.json()["message"]
    bad = users["admin"].put(url, json={**body, "project": "nope"}, timeout=60)
    assert bad.status_code == 404
    created = users["admin"].put(url, json=body, timeout=120)
    assert created.status_code == 201, created.text
    assert (created.json()["kernel"], created.json()["version"]) == ("published-api-hello", 1)
    listing = users["erin"].get(f"{portal.url}{V1}/catalogue/published", timeout=60)
    assert "api-hello" in [e["id"] for e in listing.json()]
    assert users["admin"].put(url, json=body, timeout=60).status_code == 409  # already published
    assert users["erin"].delete(url, timeout=60).status_code == 403
    removed = users["admin"].delete(url, timeout=60)
    assert removed.status_code == 200 and removed.json()["message"].startswith("unpublished api-hello")


def test_unpublished_is_gone_from_the_form_and_refused(portal, env_cli, users, ready_env) -> None:
    if "lab-hello" not in [e["id"] for e in json.loads(env_cli("published", "--json", check=True).stdout)]:
        env_cli("publish", "vision-lab", ENV, "--as", "lab-hello", "--description", "d", check=True)
    assert env_cli("unpublish", "lab-hello").returncode == 0
    assert "lab-hello" not in _form_options(users["erin"], portal)
    refused = portal.session().post(
        portal.spawn_path("erin"),
        json={"user_options": {"project": "tiny-lab", **CPU_QUARTER_HOUR, "environment": "lab-hello"}},
        timeout=60,
    )
    assert refused.status_code == 400 and "environment" in refused.text
    assert not (portal.state_dir / "published" / "envs" / "lab-hello").exists()
