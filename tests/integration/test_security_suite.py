"""Security suite gaps: a form post without the XSRF token, the batchspawner handler
given another server's token, and the hub refusing to start outside demo mode with a demo
secret (a real ``jupyterhub`` process). The injection table is tests/unit/test_options.py, the
endpoint x role matrix tests/integration/test_api.py, the handler's other payloads test_spawn.py."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

A100 = {"project": "vision-lab", "partition": "gpu", "gpu_type": "a100", "gpus": 1, "hours": 0.25}


def _stop(portal, user, name=""):
    if portal.server(user, name) is not None:
        response = portal.session().delete(portal.spawn_path(user, name), timeout=60)
        assert response.status_code in (202, 204), response.text
        portal.wait_stopped(user, name)


@pytest.fixture
def bob_servers_stopped(portal):
    yield
    portal.slurm("scontrol", "update", "PartitionName=gpu", "State=UP")
    model = portal.session().get(f"{portal.api}/users/bob", timeout=30).json()
    for name in list(model.get("servers", {})):
        _stop(portal, "bob", name)


def test_a_spawn_form_post_without_the_xsrf_token_is_refused(portal, bob_servers_stopped):
    session, home = portal.login("bob@uni.example", "bob-demo")
    assert home.status_code == 200
    url = f"{portal.url}/hub/spawn/bob/xsrf"
    form = {key: str(value) for key, value in A100.items()}
    refused = session.post(url, data=form, allow_redirects=False, timeout=60)
    assert refused.status_code == 403, (refused.status_code, refused.text[:300])
    assert "XSRF" in refused.text or "xsrf" in refused.text
    assert portal.server("bob", "xsrf") is None  # nothing started
    # a token from another session does not do either
    other, _ = portal.login("alice@uni.example", "alice-demo")
    forged = session.post(
        url, data={**form, "_xsrf": other.cookies.get("_xsrf", "")}, allow_redirects=False, timeout=60
    )
    assert forged.status_code == 403 and portal.server("bob", "xsrf") is None
    # with the form's own token the same post starts the server
    accepted = session.post(
        url, data={**form, "_xsrf": session.cookies.get("_xsrf", "")}, allow_redirects=False, timeout=120
    )
    assert accepted.status_code in (302, 303), (accepted.status_code, accepted.text[:300])
    portal.wait_ready("bob", "xsrf", timeout=120)


def test_another_servers_token_cannot_report_a_port(portal, bob_servers_stopped):
    """bob's running server's token (readable in its job) posts a port while bob's second server
    waits for its own: refused, and the second server starts on its own port."""
    assert portal.session().post(portal.spawn_path("bob"), json={"user_options": A100}, timeout=120).status_code in (
        201,
        202,
    )
    portal.wait_ready("bob")
    token = portal.server_token("bob")
    portal.slurm("scontrol", "update", "PartitionName=gpu", "State=DOWN")  # the second one waits in Slurm
    try:
        response = portal.session().post(portal.spawn_path("bob", "second"), json={"user_options": A100}, timeout=120)
        assert response.status_code == 202, response.text
        url = f"{portal.api}/batchspawner"
        for payload in ({"port": 1}, {"port": 8888}):
            answer = requests.post(url, json=payload, headers={"Authorization": f"token {token}"}, timeout=30)
            assert answer.status_code == 409, (answer.status_code, answer.text)  # bob's first server is not starting
        # the service token is nobody's server token
        answer = requests.post(url, json={"port": 8888}, headers={"Authorization": f"token {portal.token}"}, timeout=30)
        assert answer.status_code in (403, 404)
    finally:
        portal.slurm("scontrol", "update", "PartitionName=gpu", "State=UP")
    server = portal.wait_ready("bob", "second", timeout=120)
    assert not server["url"].endswith(":1/") and not server["url"].endswith(":8888/")
    assert portal.session().get(portal.server_url("bob", "second") + "api/status", timeout=30).status_code == 200


# --- the hub refuses to start outside demo mode with a demo secret ------------------------------------


def _run_hub(
    tmp_path: Path, *, cookie_secret_file: Path, crypt_key: str, client_secret: str
) -> subprocess.CompletedProcess:
    """A hub outside demo mode (no c.HPCHubSite.demo_mode) with the given secrets."""
    from hub.demo.cluster.manager import free_port

    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "import spawners.slurm.api\n"
        "c.JupyterHub.authenticator_class = 'hpchub-oidc'\n"
        "c.HPCHubOIDCAuthenticator.issuer = 'https://127.0.0.1:1'\n"  # https, refuses connections at once
        "c.HPCHubOIDCAuthenticator.client_id = 'hpchub'\n"
        f"c.HPCHubOIDCAuthenticator.client_secret = {client_secret!r}\n"
        f"c.JupyterHub.cookie_secret_file = {str(cookie_secret_file)!r}\n"
        f"c.JupyterHub.db_url = 'sqlite:///{tmp_path / 'jupyterhub.sqlite'}'\n"
        f"c.JupyterHub.bind_url = 'http://127.0.0.1:{free_port()}'\n"
        f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{free_port()}'\n"
        "c.ConfigurableHTTPProxy.should_start = False\n"
        "c.ConfigurableHTTPProxy.auth_token = 'unused'\n"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tmp_path),
        "JUPYTERHUB_CRYPT_KEY": crypt_key,
    }
    hub = Path(sys.executable).parent / "jupyterhub"
    return subprocess.run(
        [str(hub), "-f", str(config)], capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path)
    )


@pytest.fixture
def site_cookie_secret(tmp_path) -> Path:
    path = tmp_path / "site_cookie_secret"
    path.write_text(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path


def test_hub_refuses_to_start_outside_demo_mode_with_the_demos_secrets(portal, tmp_path, site_cookie_secret):
    hub_dir = portal.state_dir / "hub"
    demo_cookie = tmp_path / "copied_cookie_secret"  # copied away from its marker: the tag still tells
    shutil.copy(hub_dir / "jupyterhub_cookie_secret", demo_cookie)
    os.chmod(demo_cookie, 0o600)
    demo_key = (hub_dir / "crypt_key").read_text().strip()
    demo_client = (hub_dir / "oidc_client_secret").read_text().strip()

    refused = _run_hub(tmp_path, cookie_secret_file=demo_cookie, crypt_key=demo_key, client_secret=demo_client)
    log = refused.stdout + refused.stderr
    assert refused.returncode != 0, log[-2000:]
    assert "hpchub refuses to start outside demo mode" in log, log[-2000:]
    for part in (
        "the cookie secret is a demo-generated one",
        "JUPYTERHUB_CRYPT_KEY holds a demo-generated key",
        "the OpenID Connect client secret is the demo provider's",
    ):
        assert part in log, (part, log[-2000:])

    # the demo's own file, marker beside it, is refused too
    refused = _run_hub(
        tmp_path,
        cookie_secret_file=hub_dir / "jupyterhub_cookie_secret",
        crypt_key=secrets.token_hex(32),
        client_secret=secrets.token_hex(16),
    )
    assert refused.returncode != 0 and "was generated for the demo" in refused.stdout + refused.stderr

    # no crypt key at all
    refused = _run_hub(tmp_path, cookie_secret_file=site_cookie_secret, crypt_key="", client_secret="site")
    assert refused.returncode != 0 and "no crypt key: set JUPYTERHUB_CRYPT_KEY" in refused.stdout + refused.stderr


def test_hub_with_site_secrets_passes_the_check(tmp_path, site_cookie_secret):
    """Site secrets pass: the hub goes on to its identity provider (unreachable here) and stops there."""
    started = _run_hub(
        tmp_path,
        cookie_secret_file=site_cookie_secret,
        crypt_key=secrets.token_hex(32),
        client_secret=secrets.token_hex(16),
    )
    log = started.stdout + started.stderr
    assert "hpchub refuses to start outside demo mode" not in log, log[-2000:]
    assert started.returncode != 0 and "issuer https://127.0.0.1:1: cannot read" in log, log[-2000:]
