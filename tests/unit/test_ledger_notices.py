"""The reconciler's notices (hub/reconcile/notices.py) on a real ledger: the period check queues each
warning once per project, threshold and end date to the project's leaders; budget and cap warnings
once per threshold and grant (or cap); ``hpchub project expire-check``. Runs on PostgreSQL too."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from hub import cli
from hub.commands.ledger import LEDGER_URL_ENV
from hub.ledger import Ledger, upgrade
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.types import Booking
from hub.mail.notify import Notified, notify_user
from hub.mail.settings import HPCHubMail
from hub.reconcile.notices import budget_notices, expire_check

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 31, 9, 0, tzinfo=timezone.utc)  # vision-lab's end 2027-01-07 is 7 days away
MAIL = HPCHubMail(portal_url="https://hpc.uni.example")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=clock) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin",
                              start="2026-01-08", end="2027-01-07")  # fmt: skip
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=2, who="admin")
        ledger.create_project("cs101", account="cs101", kind="course", gpu_hours=50, who="admin",
                              start="2026-09-01", end="2026-12-20")  # fmt: skip
        ledger.add_member("cs101", "dave", role="instructor", who="admin")
        for user in ("alice", "bob", "dave"):
            ledger.record_mail_address(user, f"{user}@uni.example")
        yield ledger


def _keys(ledger: Ledger) -> list[str]:
    return sorted(message.key for message in ledger.unsent_mail())


def test_the_period_check_warns_the_leaders_once(ledger: Ledger, clock: Clock) -> None:
    report = expire_check(ledger, MAIL, data_grace_days=90)
    assert report.found == [
        "cs101: expired, its period ended on 2026-12-20",
        "vision-lab: ends on 2027-01-07, in 7 days (the 7-day warning)",
    ]
    assert _keys(ledger) == ["period-7:vision-lab:2027-01-07:alice", "period-expired:cs101:2026-12-20:dave"]
    [alice] = [m for m in ledger.unsent_mail() if m.to_user == "alice"]
    assert alice.subject == "vision-lab ends on 2027-01-07, in 7 days"
    assert "Request a renewal: https://hpc.uni.example/hub/hpchub/apply?renew=vision-lab" in alice.body
    [dave] = [m for m in ledger.unsent_mail() if m.to_user == "dave"]
    assert "renew" not in dave.body  # a course has no renewal
    assert expire_check(ledger, MAIL, data_grace_days=90).queued == []  # once
    clock.now = T0 + timedelta(days=6)  # 2027-01-06: the 1-day warning
    assert expire_check(ledger, MAIL, data_grace_days=90).queued == [
        "vision-lab (active, ends 2027-01-07): mail queued for alice (period-1:vision-lab:2027-01-07)"
    ]


def test_a_moved_end_date_warns_again(ledger: Ledger, ledger_url: str) -> None:
    expire_check(ledger, MAIL, data_grace_days=90)
    with ledger._write() as session:  # noqa: SLF001 (what a renewal award does: a new end date)
        ledger._project(session, "vision-lab", lock=True).period_end = date(2027, 1, 5)  # noqa: SLF001
    expire_check(ledger, MAIL, data_grace_days=90)
    assert "period-7:vision-lab:2027-01-05:alice" in _keys(ledger)


def test_expired_projects_are_listed_for_archiving_after_the_data_grace(ledger: Ledger, clock: Clock) -> None:
    clock.now = datetime(2027, 3, 21, tzinfo=timezone.utc)  # cs101 ended 2026-12-20: 91 days
    report = expire_check(ledger, MAIL, data_grace_days=90)
    assert report.found[0] == (
        "cs101: expired, its period ended on 2026-12-20; its project space is due for archiving since 2027-03-21"
    )
    assert [f.project for f in expire_check(ledger, MAIL, data_grace_days=91).findings if f.archive_from] == []


def test_a_leader_without_an_address_is_said_once_and_never_fails(ledger: Ledger) -> None:
    ledger.add_member("vision-lab", "erin", role="pi", who="admin")
    report = expire_check(ledger, MAIL, data_grace_days=90)
    assert report.unreachable == [
        "vision-lab (active, ends 2027-01-07): no mail address for erin yet (none of their logins gave one)"
    ]
    assert notify_user(ledger, "erin", subject="s", body="b", event="e") is Notified.NO_ADDRESS
    assert notify_user(ledger, "alice", subject="s\r\nBcc: x@y.example", body="b", event="e") is Notified.FAILED


def test_budget_and_cap_warnings_once_per_threshold_and_grant(ledger: Ledger, clock: Clock) -> None:
    session = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 2))
    ledger.record_job_id(session, "1")
    ledger.session_started(session, T0)
    ledger.session_ended(session, T0 + timedelta(hours=2), 2 * 3600)  # bob used his 2 GPU-h cap
    ledger.grant("vision-lab", -19, reason="test", who="admin")  # 2 of 81: no project warning yet
    assert budget_notices(ledger, MAIL) == [
        f"vision-lab: mail queued for bob (cap-100:vision-lab:{2 * H})",
    ]
    ledger.grant("vision-lab", -78, reason="test", who="admin")  # 2 of 3 GPU-h: 66 %
    ledger.grant("vision-lab", "-0.5", reason="test", who="admin")  # 2 of 2.5: 80 %
    assert budget_notices(ledger, MAIL) == [f"vision-lab: mail queued for alice (budget-80:vision-lab:{int(2.5 * H)})"]
    assert budget_notices(ledger, MAIL) == []
    [alice] = [m for m in ledger.unsent_mail() if m.to_user == "alice"]
    assert alice.subject == "vision-lab: the GPU-hour budget is 80 % used"
    assert "https://hpc.uni.example/hub/hpchub/projects/vision-lab" in alice.body


def test_the_expire_check_command(ledger_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv(LEDGER_URL_ENV, ledger_url)
    upgrade(ledger_url)
    soon = (datetime.now(timezone.utc).date() + timedelta(days=3)).isoformat()
    with Ledger(ledger_url) as ledger:
        ledger.create_project("near-lab", account="near-lab", kind="research", gpu_hours=1, who="admin", end=soon)
        ledger.add_member("near-lab", "alice", role="pi", who="admin")
        ledger.record_mail_address("alice", "alice@uni.example")
    assert cli.main(["project", "expire-check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"near-lab: ends on {soon}, in 3 days (the 7-day warning)",
        f"near-lab (active, ends {soon}): mail queued for alice (period-7:near-lab:{soon})",
        "1 mail(s) queued: the reconciler sends them at its next pass",
    ]
    assert cli.main(["project", "expire-check"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"near-lab: ends on {soon}, in 3 days (the 7-day warning)"]


def test_the_admin_page_lists_spaces_due_for_archiving(ledger: Ledger) -> None:
    from hub.project_pages.gather import archive_rows

    later = datetime(2027, 3, 21, tzinfo=timezone.utc)
    assert [(f.project, f.archive_from) for f in archive_rows(ledger, 90, now=later)] == [("cs101", date(2027, 3, 21))]
    assert archive_rows(ledger, 90) == []
