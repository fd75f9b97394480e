"""What a login does for allocations (hub/auth/oidc.py ``allocation_login``), with a real SQLite ledger
and no hub or provider: the principal is recorded, open invitations become memberships, and an
invited principal without a Unix account is handed to the provision command, once, with its argv."""

from __future__ import annotations

import asyncio
import secrets
import sys

import pytest
from traitlets.config import Config

import hub.auth.oidc as oidc
from hub.ledger import Ledger, upgrade
from hub.ledger.allocation_models import Invitation
from hub.ledger.types import Role

pytestmark = pytest.mark.unit

ISSUER = "https://login.uni.example"
DISCOVERY = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token",
             "userinfo_endpoint": f"{ISSUER}/me", "code_challenge_methods_supported": ["S256"]}  # fmt: skip


@pytest.fixture
def ledger(ledger_url):
    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        ledger.create_project("cells", account="cells", kind="research", gpu_hours=10, who="tests")
        yield ledger


def invite(ledger: Ledger, principal: str) -> None:
    with ledger._write() as session:  # noqa: SLF001 (test seeding: an award's invitation row)
        project = ledger._project(session, "cells")  # noqa: SLF001
        session.add(Invitation(project_id=project.id, proposal_id=None, principal=principal, role=Role.MEMBER,
                               token_sha256=secrets.token_hex(32), created_at=ledger._now(None), created_by="tests"))  # fmt: skip


@pytest.fixture
def login(monkeypatch, ledger_url, tmp_path):
    """``allocation_login`` of an authenticator whose Unix accounts are ``known`` and whose provision
    command writes its argv to a file (and makes the account)."""
    monkeypatch.setattr(oidc, "fetch_discovery", lambda issuer: DISCOVERY)
    known: set[str] = {"fiona"}
    record = tmp_path / "argv"
    hook = [sys.executable, "-c", f"import sys; open({str(record)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')"]

    def run(principal: str, account: str, *, command: list[str] | None = None) -> None:
        config = Config()
        config.HPCHubOIDCAuthenticator.issuer = ISSUER
        config.HPCHubLedger.db_url = ledger_url
        config.HPCHubAllocations.provision_command = hook if command is None else command
        authenticator = oidc.HPCHubOIDCAuthenticator(config=config)
        made = lambda name: record.exists() and name in record.read_text().split()  # noqa: E731 (what the hook did)
        monkeypatch.setattr(authenticator, "cluster_account_exists", lambda name: name in known or made(name))
        asyncio.run(authenticator.allocation_login(principal, account))

    run.record = record
    return run


def test_the_principal_is_recorded(login, ledger) -> None:
    login("fiona@uni.example", "fiona")
    assert ledger.login_principal("fiona") == "fiona@uni.example"


def test_an_invitation_becomes_a_membership_at_login(login, ledger) -> None:
    invite(ledger, "fiona@uni.example")
    login("fiona@uni.example", "fiona")
    assert ("cells", "member") in [(p.name, r.value) for p, r in ledger.memberships("fiona")]
    assert ledger.open_invitations("fiona@uni.example") == []
    assert not login.record.exists()  # she has an account: no hook


def test_an_invited_principal_without_an_account_is_provisioned_then_joins(login, ledger) -> None:
    invite(ledger, "kim@nova-ai.example")
    login("kim@nova-ai.example", "c-kim-nova-ai")
    assert login.record.read_text() == "kim@nova-ai.example c-kim-nova-ai\n"
    assert [p.name for p, _r in ledger.memberships("c-kim-nova-ai")] == ["cells"]


def test_nobody_is_provisioned_without_an_invitation(login, ledger) -> None:
    login("nocluster@uni.example", "nocluster")
    assert not login.record.exists()
    assert ledger.login_principal("nocluster") == "nocluster@uni.example"


def test_a_failing_hook_is_logged_and_the_invitation_waits(login, ledger, caplog) -> None:
    invite(ledger, "kim@nova-ai.example")
    login("kim@nova-ai.example", "c-kim-nova-ai", command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    assert "exited with 3" in caplog.text
    assert ledger.open_invitations("kim@nova-ai.example") == ["cells"]
