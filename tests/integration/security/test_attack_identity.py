"""Identity attacks: a principal whose mapped Unix account is root, the hub's service account or a
system account (an identity provider that lets users edit ``preferred_username`` hands anyone such a
principal), logged in through the real identity provider; and a user whose account's UID dropped
below the minimum after their login, spawning."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess

import pytest

VICTIM_GROUPS = ["hpc-users"]


def _text(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _hub_user(portal, name: str) -> dict | None:
    response = portal.session().get(f"{portal.api}/users/{name}", timeout=30)
    return response.json() if response.status_code == 200 else None


def _add_idp_accounts(portal, principals: list[str]) -> str:
    """Add ``principals`` (password ``attack-demo``, groups hpc-users) to the provider's accounts file,
    read again at every login; returns the original text for the restore."""
    original = portal.accounts_file.read_text()
    data = json.loads(original)
    accounts = data["accounts"] if isinstance(data, dict) else data
    for principal in principals:
        accounts.append(
            {
                "username": principal,
                "password": "attack-demo",
                "sub": principal,
                "name": principal,
                "email": principal,
                "email_verified": True,
                "groups": list(VICTIM_GROUPS),
            }
        )
    tmp = portal.accounts_file.with_suffix(".attack")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, portal.accounts_file)
    return original


def _restore_idp_accounts(portal, original: str) -> None:
    tmp = portal.accounts_file.with_suffix(".attack")
    tmp.write_text(original)
    os.replace(tmp, portal.accounts_file)


PRIVILEGED = [
    pytest.param("root", "deny-list", id="root"),
    pytest.param("hpchub", "deny-list", id="service-account-name"),
    pytest.param("nobody", "deny-list", id="nobody-uid-65534"),
    pytest.param("daemon", "minimum UID", id="daemon-uid-1"),
]


@pytest.fixture(scope="module")
def privileged_principals(portal):
    original = _add_idp_accounts(portal, [f"{name}@uni.example" for name, *_ in (p.values for p in PRIVILEGED)])
    yield
    _restore_idp_accounts(portal, original)


@pytest.mark.parametrize(("account", "rule"), PRIVILEGED)
def test_a_principal_mapped_to_a_privileged_account_is_refused_at_login(portal, privileged_principals, account, rule):
    before = _hub_user(portal, account)
    session, response = portal.login(f"{account}@uni.example", "attack-demo")
    assert response.status_code == 403, (response.status_code, response.url, _text(response.text)[:300])
    text = _text(response.text)
    assert "Your login worked" in text and rule in text and account in text, text[:600]
    assert "/hub/home" not in response.url
    assert "/hub/login" in session.get(f"{portal.url}/hub/home", timeout=30).url  # no session
    assert before is None and _hub_user(portal, account) is None, f"a hub user {account} exists"


def _free_uid(low: int, high: int) -> int:
    used = {entry.pw_uid for entry in pwd.getpwall()}
    return next(uid for uid in range(low, high) if uid not in used)


UID_TEST_USER = "hpchubuidtest"
UID_TEST_OPTIONS = {
    "project": "vision-lab",
    "partition": "gpu",
    "gpu_type": "h200",
    "gpus": 1,
    "hours": 0.25,
    "environment": "default",
}


@pytest.fixture
def uid_changing_user(portal):
    """A complete portal user: a Unix account with a UID above the minimum, a Slurm association and a
    vision-lab membership, known to the provider and logged in (so without the rule a spawn runs); the
    test then moves its UID below the minimum (``usermod``), as a site's identity management might."""
    name = UID_TEST_USER
    subprocess.run(["userdel", name], capture_output=True, check=False, timeout=60)
    subprocess.run(["useradd", "--uid", str(_free_uid(1900, 2900)), "--create-home", "--shell", "/bin/bash", name],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    portal.slurm("sacctmgr", "-i", "add", "user", name, "account=vision-lab", "cluster=hpchubtest", check=False)
    portal.ledger_cli("member", "add", "vision-lab", name, "--role", "member", "--cap", "1")
    original = _add_idp_accounts(portal, [f"{name}@uni.example"])
    try:
        _session, response = portal.login(f"{name}@uni.example", "attack-demo")
        assert response.status_code == 200 and response.url.endswith("/hub/home"), (response.status_code, response.url)
        assert "does not exist yet" not in _text(response.text)
        yield name
    finally:
        _restore_idp_accounts(portal, original)
        portal.session().delete(portal.spawn_path(name), timeout=60)
        portal.ledger_cli("member", "remove", "vision-lab", name, check=False)
        portal.slurm("scancel", "--user", name, check=False)
        portal.slurm("sacctmgr", "-i", "delete", "user", name, check=False)
        subprocess.run(["userdel", "--remove", name], capture_output=True, check=False, timeout=60)


def test_a_user_whose_uid_fell_below_the_minimum_after_login_cannot_spawn(portal, uid_changing_user):
    low = _free_uid(900, 1000)
    subprocess.run(["usermod", "--uid", str(low), uid_changing_user], check=True, capture_output=True, timeout=60)
    spawn = portal.session().post(portal.spawn_path(uid_changing_user), json={"user_options": UID_TEST_OPTIONS},
                                  timeout=60)  # fmt: skip
    assert spawn.status_code == 403, spawn.text
    message = spawn.json()["message"]
    assert "minimum UID" in message and str(low) in message, message
    assert all(f"user={uid_changing_user}," not in job["comment"] for job in portal.jobs().values())
