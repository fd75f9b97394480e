"""Course attacks by an instructor: dave (an instructor of cs101, who may create courses up to the
site's limit) binds a new course, through the API with his own logged-in session, to Slurm's
``root`` account, to a parent of other accounts, to another project's account and to a
reservation that is not the course's; switching lab hours off must not delete a reservation the
course does not own; and a closed course's account must not get limits re-applied.

The harm each would do: the reconciler mirrors a course's budget into ``GrpTRESMins`` on its
account, so a course on ``root`` (or on a parent) caps every account under it, and the hub
deletes the course's reservation with its Slurm operator rights. The defence: a course's
account is a leaf account of its own (``hub/ledger/course_accounts.py``, read from Slurm's
account tree), the reconciler sets limits only on such accounts of open projects, and a course's
reservation is ``COURSE-lab``, deleted only when Slurm's record says it is the course's.
"""

from __future__ import annotations

import secrets

import pytest
import requests
from conftest import logged_in_session

pytestmark = pytest.mark.usefixtures("hub_reconciler_paused")

V1 = "/hub/api/hpchub/v1"
TERM = {"start": "2026-01-01", "end": "2099-12-31", "gpu_hours": 1, "per_student": 1}


def _logged_in(portal, name: str) -> requests.Session:
    return logged_in_session(portal, name)


@pytest.fixture(scope="module")
def dave(portal) -> requests.Session:
    return _logged_in(portal, "dave")


def _create_course(portal, dave, **fields) -> requests.Response:
    return dave.post(f"{portal.url}{V1}/courses", json={**TERM, **fields}, timeout=60)


def _reconcile(portal, hpchub):
    """One reconciler pass of its own (the hub's is paused for this module)."""
    return hpchub("reconcile", "--db-url", portal.ledger_url, "--slurm-conf", portal.slurm_conf, check=False)


def _billing_limit(portal, account: str) -> str:
    """The account association's GrpTRESMins in slurmdbd ("" without a limit)."""
    out = portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations", f"account={account}",
                       "format=Account,User,GrpTRESMins")  # fmt: skip
    for line in out.splitlines():
        acc, user, limit = line.split("|")
        if (acc, user) == (account, ""):
            return limit
    raise AssertionError(f"no account association {account}: {out}")


def _clear_limit(portal, account: str) -> None:
    portal.slurm("sacctmgr", "-i", "modify", "account", "where", f"name={account}", "set", "GrpTRESMins=billing=-1",
                 check=False)  # fmt: skip


def _exists(portal, project: str) -> bool:
    return portal.ledger_cli("usage", project, check=False).returncode == 0


def _reservations(portal) -> str:
    return portal.slurm("scontrol", "show", "reservation", "--oneliner")


def _foreign_reservation(portal, name: str, accounts: str) -> None:
    """A reservation the portal did not make (as root, tomorrow, so it binds no test's job)."""
    portal.slurm("scontrol", "create", "reservation", f"ReservationName={name}", "StartTime=now+1day",
                 "Duration=60", f"Accounts={accounts}", "Nodes=cpu01", "Flags=IGNORE_JOBS")  # fmt: skip
    assert f"ReservationName={name} " in _reservations(portal)


def test_a_course_on_the_root_account_is_refused_and_root_gets_no_limit(portal, hpchub, dave):
    name = f"rootc-{secrets.token_hex(3)}"
    _clear_limit(portal, "root")
    created = _create_course(portal, dave, name=name, account="root")
    try:
        _reconcile(portal, hpchub)
        assert "billing" not in _billing_limit(portal, "root"), (
            "the reconciler capped root, the parent of every account"
        )
        assert created.status_code == 400, created.text
        assert created.json()["field"] == "account"
        message = created.json()["message"]
        assert message.startswith("account: ") and "root" in message, message
        assert not _exists(portal, name)
    finally:
        if created.status_code == 201:
            portal.ledger_cli("course", "close", name, "--reason", "attack test", check=False)
        _clear_limit(portal, "root")


def test_a_course_on_a_parent_account_is_refused(portal, hpchub, dave):
    parent = f"dept-{secrets.token_hex(3)}"
    portal.slurm("sacctmgr", "-i", "add", "account", parent, "cluster=hpchubtest", "description=attack test")
    portal.slurm("sacctmgr", "-i", "add", "account", f"{parent}-a", f"parent={parent}", "cluster=hpchubtest",
                 "description=attack test")  # fmt: skip
    created = _create_course(portal, dave, name=parent, account=parent)
    try:
        _reconcile(portal, hpchub)
        assert "billing" not in _billing_limit(portal, parent), f"the reconciler capped {parent}, a parent account"
        assert created.status_code == 400, created.text
        assert created.json()["field"] == "account"
        assert "parent" in created.json()["message"] and f"{parent}-a" in created.json()["message"], created.text
        assert not _exists(portal, parent)
    finally:
        if created.status_code == 201:
            portal.ledger_cli("course", "close", parent, "--reason", "attack test", check=False)


def test_a_course_on_another_projects_account_is_refused(portal, hpchub, dave):
    name = f"steal-{secrets.token_hex(3)}"
    created = _create_course(portal, dave, name=name, account="vision-lab")
    assert created.status_code == 400, created.text
    assert created.json()["field"] == "account" and "vision-lab" in created.json()["message"], created.text
    assert not _exists(portal, name)


def test_a_course_cannot_bind_a_foreign_reservation(portal, dave):
    name = f"resv-{secrets.token_hex(3)}"
    foreign = f"maint-{secrets.token_hex(3)}"
    portal.slurm("sacctmgr", "-i", "add", "account", name, "cluster=hpchubtest", "description=attack test")
    _foreign_reservation(portal, foreign, "vision-lab")
    try:
        created = _create_course(portal, dave, name=name, account=name, reservation=foreign)
        if created.status_code == 201:
            dave.post(f"{portal.url}{V1}/projects/{name}/lab-hours", json={"on": False}, timeout=60)
        assert f"ReservationName={foreign} " in _reservations(portal), f"lab hours off deleted {foreign}"
        assert created.status_code == 400, created.text
        assert created.json()["field"] == "reservation" and f"{name}-lab" in created.json()["message"], created.text
    finally:
        portal.slurm("scontrol", "delete", f"ReservationName={foreign}", check=False)


def test_lab_hours_off_does_not_delete_a_reservation_that_is_not_the_courses(portal, dave):
    name = f"labc-{secrets.token_hex(3)}"
    reservation = f"{name}-lab"
    portal.slurm("sacctmgr", "-i", "add", "account", name, "cluster=hpchubtest", "description=attack test")
    created = _create_course(portal, dave, name=name, account=name, reservation=reservation)
    assert created.status_code == 201, created.text
    _foreign_reservation(portal, reservation, "vision-lab")  # the course's name, someone else's reservation
    try:
        off = dave.post(f"{portal.url}{V1}/projects/{name}/lab-hours", json={"on": False}, timeout=60)
        assert f"ReservationName={reservation} " in _reservations(portal), f"lab hours off deleted {reservation}"
        assert off.status_code == 409, off.text
        assert "not the course's" in off.json()["message"] and "vision-lab" in off.json()["message"], off.text
    finally:
        portal.slurm("scontrol", "delete", f"ReservationName={reservation}", check=False)
        portal.ledger_cli("course", "close", name, "--reason", "attack test", check=False)


def test_a_closed_courses_account_gets_no_limit_again(portal, hpchub):
    name = f"closed-{secrets.token_hex(3)}"
    portal.slurm("sacctmgr", "-i", "add", "account", name, "cluster=hpchubtest", "description=attack test")
    portal.ledger_cli("course", "create", name, "--account", name, "--start", "2026-01-01", "--end", "2099-12-31",
                      "--gpu-hours", "1", "--per-student", "1")  # fmt: skip
    _reconcile(portal, hpchub)
    assert _billing_limit(portal, name) == "billing=120"  # open: the mirror's limit (1 GPU-h, nothing used)
    portal.ledger_cli("course", "close", name, "--reason", "attack test")
    _reconcile(portal, hpchub)
    _clear_limit(portal, name)  # the site's admin takes the account back by hand
    for _ in range(2):
        _reconcile(portal, hpchub)
        assert _billing_limit(portal, name) == "", "the reconciler re-applied a limit to a closed course's account"
