"""Smaller holes, each attacked as a hostile user would: numbers in queries and paths that
``str.isdigit`` accepts and ``int()`` refuses (a 500 with a traceback instead of a 400); the demo's
logs read by another local user (every job runs on this host) and the OAuth ``code``/``state`` of
logins in the hub's log; the accounting database's password read from the state directory."""

from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
from urllib.parse import parse_qs, quote, urljoin, urlparse

import pytest
import requests

DEMO_LOGS = ("jupyterhub.log", "proxy.log", "reconcile.log", "idp.log")


def _xsrf(session: requests.Session) -> dict[str, str]:
    return {"X-XSRFToken": session.cookies.get("_xsrf", "")}


@pytest.fixture(scope="module")
def alice(portal) -> requests.Session:
    session, response = portal.login("alice@uni.example", "alice-demo")
    assert response.url.endswith("/hub/home"), response.url
    return session


@pytest.mark.parametrize(
    "value",
    [pytest.param("²", id="superscript-two"), pytest.param("9" * 5000, id="over-int-digit-limit")],
)
def test_a_non_ascii_or_huge_version_on_the_log_api_is_a_400_naming_version(portal, alice, value):
    url = f"{portal.api}/hpchub/v1/projects/vision-lab/environments/anything/log?version={quote(value)}"
    response = alice.get(url, headers=_xsrf(alice), timeout=30)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.json()["message"].startswith("version:"), response.text[:300]


def test_a_superscript_offset_on_the_log_api_is_a_400_naming_offset(portal, alice):
    url = f"{portal.api}/hpchub/v1/projects/vision-lab/environments/anything/log?offset={quote('²')}"
    response = alice.get(url, headers=_xsrf(alice), timeout=30)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.json()["message"].startswith("offset:"), response.text[:300]


def test_a_superscript_version_in_the_build_page_path_is_a_400_naming_version(portal, alice):
    response = alice.get(f"{portal.url}/hub/hpchub/projects/vision-lab/environments/anything/{quote('²')}", timeout=30)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert "version:" in response.text


def test_a_superscript_gpu_count_in_a_preview_is_a_400_naming_gpus(portal, alice):
    response = alice.post(f"{portal.api}/hpchub/v1/preview", headers=_xsrf(alice), timeout=30,
                          json={"project": "vision-lab", "gpu_type": "h200", "gpus": "²", "hours": 1})  # fmt: skip
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert "gpus" in response.json()["message"], response.text[:300]


def _as_bob(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "bob", "--", *argv], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


@pytest.mark.parametrize("name", DEMO_LOGS)
def test_another_local_user_cannot_read_the_demo_logs(portal, name):
    path = portal.state_dir / "log" / name
    assert path.exists(), path
    read = _as_bob("cat", str(path))
    assert read.returncode != 0 and "Permission denied" in read.stderr, f"bob read {path}"
    assert not path.stat().st_mode & stat.S_IRWXO, oct(path.stat().st_mode)


def _login_by_hand(portal, principal: str, password: str) -> tuple[requests.Response, dict[str, str]]:
    """A login that follows the redirects itself, to keep the ``code`` and ``state`` of the callback."""
    session = requests.Session()
    form = session.get(f"{portal.url}/hub/oauth_login", timeout=30)
    action = re.search(r'<form[^>]*action="([^"]+)"', form.text).group(1)
    response = session.post(urljoin(form.url, action), data={"username": principal, "password": password},
                            allow_redirects=False, timeout=30)  # fmt: skip
    for _ in range(10):
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(f"{portal.url}/hub/oauth_callback"):
            break
        response = session.get(location, allow_redirects=False, timeout=30)
    query = {key: values[0] for key, values in parse_qs(urlparse(location).query).items()}
    return session.get(location, timeout=30), query


def test_the_hub_log_never_holds_a_logins_code_or_state(portal):
    secrets = []
    for principal, password, status in (("bob@uni.example", "bob-demo", 200),
                                        ("mallory@uni.example", "mallory-demo", 403)):  # fmt: skip
        response, query = _login_by_hand(portal, principal, password)
        assert response.status_code == status, (principal, response.status_code)
        state_id = json.loads(base64.urlsafe_b64decode(query["state"] + "=" * (-len(query["state"]) % 4)))["state_id"]
        secrets += [query["code"], query["state"], state_id]
    log = (portal.state_dir / "log" / "jupyterhub.log").read_text(errors="replace")
    assert "oauth_callback" in log  # the requests are logged, without their secrets
    found = [secret for secret in secrets if secret in log]
    assert not found, f"{len(found)} OAuth code/state values in the hub's log, e.g. {found[0][:12]}..."


def test_another_local_user_cannot_read_the_accounting_database_password(portal):
    cluster = json.loads((portal.state_dir / "cluster.json").read_text())
    dbd_conf = portal.state_dir / "slurm" / "etc" / "slurmdbd.conf"
    password = re.search(r"^StoragePass=(.+)$", dbd_conf.read_text(), flags=re.M).group(1).strip()
    found = _as_bob("grep", "-rlF", "--devices=skip", "--", password, str(portal.state_dir))
    assert found.stdout.strip() == "", f"bob reads the accounting password in {found.stdout.split()}"
    assert password != "hpchub-demo-only" and len(password) >= 20, "a constant or short password"
    info = dbd_conf.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0, oct(info.st_mode)  # SlurmUser=root
    assert "db_password" not in cluster
