"""Mail and the project period on the test instance: its own SMTP server (hub/demo/mailserver.py) gets
the reconciler's mail, a project whose end is near warns its PI by mail and on the home page, and a
project past its end refuses a spawn naming the date and the renewal link, stops a running session
after the grace with the reason, and says so by mail.

The projects are the tests' own, with tom (who leads nothing else) as their PI; his memberships end
after each test, so no other module sees their banners."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import pytest
from conftest import logged_in_session

from hub.ledger import Ledger

A100_QUARTER = {"gpu_type": "a100", "gpus": 1, "hours": 0.25, "partition": "gpu", "environment": "default"}


def _today() -> date:
    return date.today()  # the site's time zone is UTC, as is this host's


PI = "tom"


@pytest.fixture(scope="module")
def tom(portal):
    """tom logged in once (the hub knows him and his mail address from the login)."""
    return logged_in_session(portal, PI)


@pytest.fixture
def own_project(portal, tom):
    """``own_project(name, start=, end=)``; tom's memberships in them end after the test."""
    made = []

    def make(name: str, *, start: date, end: date) -> str:
        _project(portal, name, start=start, end=end)
        made.append(name)
        return name

    yield make
    for name in made:
        portal.ledger_cli("member", "remove", name, PI, check=False)


def _project(portal, name: str, *, start: date, end: date, pi: str = PI) -> None:
    """A research project of the test's own with its Slurm account, ``pi`` as its PI, once the
    reconciler made the PI's association."""
    portal.slurm("sacctmgr", "-i", "add", "account", name, "cluster=hpchubtest", "description=period test",
                 check=False)  # fmt: skip
    portal.ledger_cli("project", "create", name, "--account", name, "--kind", "research", "--gpu-hours", "5",
                      "--start", start.isoformat(), "--end", end.isoformat())  # fmt: skip
    portal.ledger_cli("member", "add", name, pi, "--role", "pi")
    deadline = time.monotonic() + 60
    while f"{pi}|{name}" not in portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations",
                                             f"account={name}", "format=User,Account"):  # fmt: skip
        assert time.monotonic() < deadline, f"{pi}'s association on {name} was never made"
        time.sleep(1)


def test_a_login_records_the_users_mail_address(portal, tom):
    with Ledger(portal.ledger_url) as ledger:  # the portal fixture logged alice and bob in
        assert ledger.mail_address("alice") == "alice@uni.example"
        assert ledger.mail_address("bob") == "bob@uni.example"
        assert ledger.mail_address("tom") == "tom@uni.example"


def test_a_near_end_mails_the_pi_once_and_shows_a_banner(portal, mailbox, own_project, tom):
    end = _today() + timedelta(days=5)
    name = own_project("near-end-lab", start=_today() - timedelta(days=30), end=end)
    message = mailbox.wait_for(to="tom@uni.example", key=f"period-7:{name}:{end.isoformat()}:tom")
    assert message.subject == f"{name} ends on {end.isoformat()}, in 5 days"
    assert f"/hub/hpchub/apply?renew={name}" in message.body and message.sender == "hpchub@demo.example"
    time.sleep(8)  # more reconcile passes (every 3 s): the warning is not sent again
    assert len([m for m in mailbox.messages() if m.key == message.key]) == 1

    home = tom.get(f"{portal.url}/hub/home", timeout=30)
    assert f"{name} ends on {end.isoformat()}, in 5 days: request a renewal" in home.text
    assert f'href="/hub/hpchub/apply?renew={name}"' in home.text


def test_past_the_end_a_spawn_is_refused_naming_the_date_and_the_renewal(portal, mailbox, own_project):
    end = _today() - timedelta(days=1)
    name = own_project("past-end-lab", start=_today() - timedelta(days=60), end=end)
    refused = portal.session().post(portal.spawn_path(PI, "past"),
                                    json={"user_options": {"project": name, **A100_QUARTER}}, timeout=120)  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert (f"{name}'s period ended on {end.isoformat()}. Request a renewal: /hub/hpchub/apply?renew={name}"
            in refused.json()["message"])  # fmt: skip
    assert portal.usage(name)["state"] == "expired" and portal.usage(name)["period_end"] == end.isoformat()
    message = mailbox.wait_for(to="tom@uni.example", key=f"period-expired:{name}:")
    assert message.subject == f"{name} has expired: its period ended on {end.isoformat()}"
    found = portal.ledger_cli("project", "expire-check").stdout
    assert f"{name}: expired, its period ended on {end.isoformat()}" in found


def test_a_session_running_past_the_end_stops_after_the_grace_with_the_reason(portal, own_project, tom):
    name = own_project("ending-lab", start=_today() - timedelta(days=30), end=_today())
    response = portal.session().post(portal.spawn_path(PI, "ending"),
                                     json={"user_options": {"project": name, **A100_QUARTER}}, timeout=120)  # fmt: skip
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready(PI, "ending")
        yesterday = _today() - timedelta(days=1)
        with Ledger(portal.ledger_url) as ledger:  # the period is moved back (what the clock does at midnight)
            with ledger._write() as session:  # noqa: SLF001
                project = ledger._project(session, name, lock=True)  # noqa: SLF001
                project.period_end = yesterday
        portal.wait_stopped(PI, "ending", timeout=60)
        home = tom.get(f"{portal.url}/hub/home", timeout=30).text.replace("&#39;", "'")
        assert f"{name}'s period ended on {yesterday.isoformat()}" in home
    finally:
        if portal.server(PI, "ending") is not None:
            portal.session().delete(portal.spawn_path(PI, "ending"), timeout=60)
            portal.wait_stopped(PI, "ending", timeout=60)


def test_the_api_lists_the_state(portal):
    session = logged_in_session(portal, "alice")
    projects = session.get(f"{portal.api}/hpchub/v1/projects", timeout=30).json()
    states = {p["project"]: p["state"] for p in projects}
    assert states.get("vision-lab") == "active"
    assert json.dumps(states)  # every project carries its state
