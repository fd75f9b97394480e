"""The idle stop (hub/ledger/idle.py): reading a session's activity report, the decision
table, the GPU-idle memory between passes, the reports' freshness, the warning note and
the pass itself (over the ledger's stored reports, with a fake hub that only stops)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from hub.api.sessions import session_json
from hub.ledger import Ledger
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.idle import (
    Activity,
    ActivityAnswerError,
    ActivityReport,
    IdleState,
    IdleTracker,
    current_activity,
    idle_notice,
    idle_verdict,
    parse_activity,
    stop_reason,
)
from hub.ledger.store import upgrade
from hub.ledger.types import Booking
from hub.reconcile.budget_watch import HubUnavailable, stop_idle_sessions

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(minutes=30)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def answer(**changes) -> dict:
    base = {
        "kernels": 1,
        "kernels_busy": 0,
        "terminals": 0,
        "terminals_busy": 0,
        "last_activity": "2026-03-02T11:00:00+00:00",
        "last_save": None,
        "gpu_utilization_percent": None,
    }
    return {**base, **changes}


# --- the answer --------------------------------------------------------------------------------


def test_an_answer_is_read_with_its_times_in_utc():
    activity = parse_activity(answer(last_activity="2026-03-02T12:00:00+01:00", gpu_utilization_percent=37))
    assert activity == Activity(kernels_busy=0, terminals_busy=0, last_activity=ago(60), gpu_percent=37)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param(None, "an object", id="null"),
        pytest.param(["kernels_busy"], "an object", id="a-list"),
        pytest.param(answer(kernels_busy=None), "kernels_busy", id="busy-missing"),
        pytest.param(answer(kernels_busy=True), "kernels_busy", id="busy-a-boolean"),
        pytest.param(answer(kernels_busy=-1), "kernels_busy", id="busy-negative"),
        pytest.param(answer(terminals_busy="1"), "terminals_busy", id="terminals-a-string"),
        pytest.param(answer(last_activity=None), "last_activity", id="no-time"),
        pytest.param(answer(last_activity="yesterday"), "last_activity", id="not-a-time"),
        pytest.param(answer(last_activity="2026-03-02T11:00:00"), "last_activity", id="no-zone"),
        pytest.param(answer(gpu_utilization_percent=101), "gpu_utilization_percent", id="gpu-over-100"),
        pytest.param(answer(gpu_utilization_percent="5"), "gpu_utilization_percent", id="gpu-a-string"),
        pytest.param(answer(gpu_utilization_percent=False), "gpu_utilization_percent", id="gpu-a-boolean"),
    ],
)
def test_an_answer_that_is_not_the_extensions_names_the_field(bad, field):
    with pytest.raises(ActivityAnswerError, match=field):
        parse_activity(bad)


# --- the decision --------------------------------------------------------------------------------


def activity(busy=0, terminals=0, last=60.0, gpu=None) -> Activity:
    return Activity(kernels_busy=busy, terminals_busy=terminals, last_activity=ago(last), gpu_percent=gpu)


@pytest.mark.parametrize(
    ("seen", "gpu_idle_minutes", "state"),
    [
        pytest.param(None, None, IdleState.UNKNOWN, id="no-answer-is-never-idle"),
        pytest.param(activity(busy=1, last=600), None, IdleState.ACTIVE, id="a-long-silent-cell-runs"),
        pytest.param(activity(terminals=1, last=600), None, IdleState.ACTIVE, id="a-terminal-command-runs"),
        pytest.param(activity(last=600, gpu=80), None, IdleState.ACTIVE, id="gpu-busy"),
        pytest.param(activity(last=600, gpu=5), 600, IdleState.ACTIVE, id="gpu-at-the-threshold-is-busy"),
        pytest.param(activity(last=5), None, IdleState.IDLE, id="used-five-minutes-ago"),
        pytest.param(activity(last=14.9), None, IdleState.IDLE, id="just-under-half"),
        pytest.param(activity(last=15), None, IdleState.WARN, id="half-the-timeout-warns"),
        pytest.param(activity(last=29.9), None, IdleState.WARN, id="just-under-the-timeout"),
        pytest.param(activity(last=30), None, IdleState.STOP, id="the-timeout-stops"),
        pytest.param(activity(last=600), None, IdleState.STOP, id="gpu-unknown-idle-long"),
        pytest.param(activity(last=600, gpu=0), 600, IdleState.STOP, id="gpu-idle-as-long"),
        pytest.param(activity(last=600, gpu=0), 10, IdleState.IDLE, id="gpu-idle-only-lately"),
        pytest.param(activity(last=600, gpu=0), None, IdleState.IDLE, id="gpu-idle-first-seen-now"),
        pytest.param(activity(last=-10), None, IdleState.IDLE, id="node-clock-ahead"),
    ],
)
def test_the_decision(seen, gpu_idle_minutes, state):
    gpu_idle_since = None if gpu_idle_minutes is None else ago(gpu_idle_minutes)
    assert idle_verdict(seen, NOW, TIMEOUT, gpu_busy_percent=5, gpu_idle_since=gpu_idle_since).state is state


def test_the_verdict_says_since_when_and_until_when():
    verdict = idle_verdict(activity(last=20), NOW, TIMEOUT)
    assert (verdict.idle_since, verdict.stop_at) == (ago(20), ago(20) + TIMEOUT)
    assert idle_notice(verdict) == "idle: this session stops at 12:10 UTC unless used (idle since 11:40 UTC)"
    assert idle_notice(idle_verdict(activity(last=5), NOW, TIMEOUT)) is None
    assert stop_reason(TIMEOUT) == "stopped: idle for 30 min (no cell, terminal or GPU use)"
    assert stop_reason(timedelta(seconds=15)) == "stopped: idle for 0.25 min (no cell, terminal or GPU use)"


def test_the_tracker_remembers_since_when_the_gpus_are_idle_and_forgets_a_busy_one():
    tracker = IdleTracker(timeout=TIMEOUT, gpu_busy_percent=5)
    idle_gpu = Activity(0, 0, ago(600), 0)
    assert tracker.verdicts({1: idle_gpu}, ago(40))[1].state is IdleState.IDLE  # first seen idle: the clock starts
    assert tracker.verdicts({1: idle_gpu}, ago(20))[1].state is IdleState.WARN  # 20 of 30 min
    assert tracker.verdicts({1: idle_gpu}, NOW)[1].state is IdleState.STOP  # idle 40 min as seen by us
    tracker.verdicts({1: Activity(0, 0, ago(600), 90)}, NOW)  # busy again
    assert tracker.verdicts({1: idle_gpu}, NOW + timedelta(minutes=1))[1].state is IdleState.IDLE
    tracker.verdicts({}, NOW)  # the session ended: forgotten
    assert tracker.gpu_idle_since == {}


# --- the pass, with the ledger's activity reports and a fake hub -----------------------------------


class FakeHub:
    """What the pass uses of :class:`HubAPI`: the stops (it never asks a session anything)."""

    def __init__(self) -> None:
        self.stopped: list[tuple[str, str]] = []

    def stop_server(self, user: str, server_name: str) -> int:
        self.stopped.append((user, server_name))
        return 204


@pytest.fixture
def ledger(ledger_url: str):
    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "bob", role="member", who="admin")
        yield ledger


def running(ledger, server: str, job_id: str) -> int:
    session_id = ledger.admit("vision-lab", "bob", server, Booking("h200", 1, 4))
    ledger.record_job_id(session_id, job_id)
    ledger.session_started(session_id, ago(120))
    return session_id


def report(ledger, session_id: int, received_minutes_ago: float = 0.5, **changes) -> None:
    """The session's own report (the hub's handler stores it), received that long before NOW."""
    ledger.record_activity(session_id, parse_activity(answer(**changes)), now=ago(received_minutes_ago))


def test_one_pass_stops_the_idle_warns_the_half_idle_and_leaves_the_rest(ledger):
    ids = {name: running(ledger, name, str(job)) for job, name in enumerate(
        ("idle", "half", "busy", "silent", "stale"), start=100)}  # fmt: skip
    report(ledger, ids["idle"], last_activity=ago(45).isoformat())
    report(ledger, ids["half"], last_activity=ago(20).isoformat())
    report(ledger, ids["busy"], kernels_busy=1, last_activity=ago(90).isoformat())
    # "silent" never reported (an environment without the extension); "stale" stopped reporting
    report(ledger, ids["stale"], received_minutes_ago=4, last_activity=ago(60).isoformat())
    hub = FakeHub()
    tracker = IdleTracker(timeout=TIMEOUT)  # reports count for 180 s
    lines = stop_idle_sessions(ledger, tracker, hub, now=NOW)
    assert hub.stopped == [("bob", "idle")]
    assert ledger.session(ids["idle"]).message == "stopped: idle for 30 min (no cell, terminal or GPU use)"
    assert ledger.session(ids["half"]).message.startswith("idle: this session stops at 12:10 UTC unless used")
    assert [ledger.session(ids[name]).message for name in ("busy", "silent", "stale")] == [None, None, None]
    assert len(lines) == 4 and "stopped bob/idle (job 100, HTTP 204)" in lines[0] and "bob/half" in lines[1]
    assert [line.split(" (job")[0] for line in lines[2:]] == ["vision-lab: bob/silent", "vision-lab: bob/stale"]
    assert lines[2].endswith(
        "does not report what it does (no activity report for 180 s: an environment without "
        "hpchub, or a node that cannot reach the hub): the idle stop leaves it alone"
    )
    # the stopped one ends (the spawner's stop); the warned one is used again: its warning goes
    ledger.session_ended(ids["idle"], NOW, 7200)
    report(ledger, ids["half"], received_minutes_ago=0.1, last_activity=ago(1).isoformat())
    assert stop_idle_sessions(ledger, tracker, hub, now=NOW) == []
    assert ledger.session(ids["half"]).message is None
    assert ledger.session(ids["idle"]).message.startswith("stopped: idle")


@pytest.mark.parametrize(("received", "max_age", "fresh"), [
    pytest.param(timedelta(seconds=0), timedelta(seconds=180), True, id="just-now"),
    pytest.param(timedelta(seconds=180), timedelta(seconds=180), True, id="at-the-limit"),
    pytest.param(timedelta(seconds=181), timedelta(seconds=180), False, id="past-the-limit"),
    pytest.param(timedelta(minutes=9), timedelta(minutes=10), True, id="a-longer-limit"),
])  # fmt: skip
def test_a_report_counts_while_it_is_fresh(received, max_age, fresh):
    seen = Activity(0, 0, ago(60), None)
    assert (current_activity(ActivityReport(seen, NOW - received), NOW, max_age) is seen) is fresh
    assert current_activity(None, NOW, max_age) is None


def test_the_ledger_keeps_the_latest_report_and_writes_an_unchanged_one_only_now_and_then(ledger):
    session_id = running(ledger, "", "150")
    same = parse_activity(answer())
    assert ledger.record_activity(session_id, same, now=ago(10)) is True
    assert ledger.record_activity(session_id, same, now=ago(10) + timedelta(seconds=20)) is False  # coalesced
    assert ledger.activity_reports([session_id])[session_id].reported_at == ago(10)
    assert ledger.record_activity(session_id, same, now=ago(9)) is True  # 60 s on: refreshed
    busy = parse_activity(answer(kernels_busy=1))
    assert ledger.record_activity(session_id, busy, now=ago(9) + timedelta(seconds=1)) is True  # changed: at once
    assert ledger.activity_reports([session_id, 999]) == {
        session_id: ActivityReport(busy, ago(9) + timedelta(seconds=1))
    }
    ledger.session_ended(session_id, ago(1), 600)
    with pytest.raises(NotFound):
        ledger.record_activity(session_id, parse_activity(answer(kernels_busy=2)), now=NOW)


def course_session(ledger, course: str, idle_stop: int | None, server: str, job_id: str) -> int:
    from hub.ledger.courses import make_rules  # noqa: PLC0415

    ledger.create_course(course, account=course, start="2026-01-01", end="2026-06-30", gpu_hours=100, who="admin",
                         rules=make_rules(per_student=50, idle_stop_after=idle_stop), now=ago(600))  # fmt: skip
    ledger.add_member(course, "bob", role="student", who="admin", now=ago(600))
    session_id = ledger.admit(course, "bob", server, Booking("h200", 1, 4), now=ago(120))
    ledger.record_job_id(session_id, job_id)
    ledger.session_started(session_id, ago(120))
    return session_id


def read_reports(ledger, monkeypatch) -> list[int]:
    """The session ids whose reports the pass read, in order."""
    read: list[int] = []
    reports = ledger.activity_reports

    def recorded(session_ids):
        read.extend(session_ids)
        return reports(session_ids)

    monkeypatch.setattr(ledger, "activity_reports", recorded)
    return read


@pytest.mark.parametrize(("site", "warned", "asked"), [
    pytest.param(TIMEOUT, ["cs-long", "cs-site", "research"], ["cs-long", "cs-short", "cs-site", "research"],
                 id="site-30-a-course-shortens-never-lengthens"),
    pytest.param(timedelta(0), [], ["cs-long", "cs-short"], id="site-off-only-a-courses-own-applies"),
])  # fmt: skip
def test_each_session_gets_its_courses_timeout(ledger, monkeypatch, site, warned, asked):
    ids = {"research": running(ledger, "research", "500"),
           "cs-short": course_session(ledger, "cs-short", 15, "cs-short", "501"),
           "cs-site": course_session(ledger, "cs-site", None, "cs-site", "502"),
           "cs-long": course_session(ledger, "cs-long", 60, "cs-long", "503")}  # fmt: skip
    for session_id in ids.values():
        report(ledger, session_id, last_activity=ago(20).isoformat())  # idle for 20 min
    read = read_reports(ledger, monkeypatch)
    hub = FakeHub()
    lines = stop_idle_sessions(ledger, IdleTracker(timeout=site), hub, now=NOW)
    names = {session_id: name for name, session_id in ids.items()}
    assert hub.stopped == [("bob", "cs-short")] and sorted({names[i] for i in read}) == asked
    assert ledger.session(ids["cs-short"]).message == (
        "stopped: idle for 15 min (the course's idle stop; no cell, terminal or GPU use)"
    )
    # the site's 30 min: past half at 20 min; a course's 60 does not lengthen it
    assert sorted(name for name, session_id in ids.items() if (ledger.session(session_id).message or "").startswith(
        "idle: this session stops at 12:10 UTC")) == warned  # fmt: skip
    assert len(lines) == 1 + len(warned)


def test_a_course_setting_removed_takes_its_warning_away(ledger):
    session_id = course_session(ledger, "cs-short", 30, "cs", "600")
    report(ledger, session_id, last_activity=ago(20).isoformat())
    hub = FakeHub()
    tracker = IdleTracker(timeout=timedelta(0))
    stop_idle_sessions(ledger, tracker, hub, now=NOW)
    assert ledger.session(session_id).message.startswith("idle: this session stops at 12:10 UTC")
    ledger.set_course_settings(
        "cs-short", replace(ledger.course_rules("cs-short"), idle_stop_minutes=None), reason="off", who="dave"
    )
    assert stop_idle_sessions(ledger, tracker, hub, now=NOW) == [] and ledger.session(session_id).message is None


class HubDown(FakeHub):
    def stop_server(self, user: str, server_name: str) -> int:
        raise HubUnavailable("DELETE /users/bob/servers/idle: HTTP 503: ")


def test_a_session_that_reports_a_cell_between_the_first_read_and_the_stop_runs_on(ledger, monkeypatch):
    session_id = running(ledger, "idle", "300")
    report(ledger, session_id, last_activity=ago(45).isoformat())
    reports = ledger.activity_reports

    def a_cell_starts_after_the_first_read(session_ids):
        answer_now = reports(session_ids)
        report(ledger, session_id, received_minutes_ago=0, kernels_busy=1, last_activity=NOW.isoformat())
        return answer_now

    monkeypatch.setattr(ledger, "activity_reports", a_cell_starts_after_the_first_read)
    hub = FakeHub()
    assert stop_idle_sessions(ledger, IdleTracker(timeout=TIMEOUT), hub, now=NOW) == []
    assert (hub.stopped, ledger.session(session_id).message) == ([], None)


def test_a_stop_the_hub_did_not_make_leaves_no_stop_reason(ledger):
    session_id = running(ledger, "idle", "301")
    report(ledger, session_id, last_activity=ago(45).isoformat())
    with pytest.raises(HubUnavailable):
        stop_idle_sessions(ledger, IdleTracker(timeout=TIMEOUT), HubDown(), now=NOW)
    assert ledger.session(session_id).message is None


def test_the_warning_note_never_hides_another_note_and_is_checked(ledger):
    session_id = running(ledger, "", "200")
    assert ledger.note_idle(session_id, "idle: this session stops at 12:10 UTC unless used") is True
    assert ledger.note_idle(session_id, "idle: this session stops at 12:10 UTC unless used") is False  # unchanged
    info = ledger.session(session_id)
    assert session_json(info, NOW)["idle_notice"] == "idle: this session stops at 12:10 UTC unless used"
    ledger.note_stop_reason(session_id, "stopped: the budget is used up")
    assert ledger.note_idle(session_id, None) is False  # the stop reason stays
    assert ledger.session(session_id).message == "stopped: the budget is used up"
    assert session_json(ledger.session(session_id), NOW)["idle_notice"] is None
    with pytest.raises(LedgerInputError) as caught:
        ledger.note_idle(session_id, "stops soon")
    assert caught.value.field == "notice"


def test_the_banner_names_the_stopped_job_and_when_once_per_server(ledger):
    first = running(ledger, "", "400")
    ledger.note_stop_reason(first, "stopped: idle for 30 min (no cell, terminal or GPU use)")
    ledger.session_ended(first, ago(30), 5400)
    second = running(ledger, "", "401")  # the same server started again, idle again
    ledger.note_stop_reason(second, "stopped: idle for 30 min (no cell, terminal or GPU use)")
    ledger.session_ended(second, ago(5), 6900)
    other = running(ledger, "train", "402")
    ledger.note_stop_reason(other, "stopped: vision-lab's GPU-hour budget is used up")
    ledger.session_ended(other, ago(10), 6600)
    texts = [stop.banner_text() for stop in ledger.recently_stopped("bob", NOW)]
    assert texts == [
        "Your server (default) in vision-lab was stopped: idle for 30 min (no cell, terminal or GPU use). "
        "Slurm job 401 ended 2026-03-02 11:55 UTC.",
        "Your server train in vision-lab was stopped: vision-lab's GPU-hour budget is used up. "
        "Slurm job 402 ended 2026-03-02 11:50 UTC.",
    ]


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def reconcile(ledger_url, monkeypatch, capsys):
    from hub import cli  # noqa: PLC0415

    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str]:
        code = cli.main(["reconcile", "--db-url", ledger_url, *args])
        return code, capsys.readouterr().err

    return run


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param(
            ("--stop-idle-after", "-1"), "--stop-idle-after: from 0 (off) to 10080 minutes, got -1", id="negative"
        ),
        pytest.param(
            ("--stop-idle-after", "20000"),
            "--stop-idle-after: from 0 (off) to 10080 minutes, got 20000",
            id="over-a-week",
        ),
        pytest.param(
            ("--stop-idle-after", "30", "--idle-gpu-busy", "0"),
            "--idle-gpu-busy: from 1 to 100 percent, got 0",
            id="gpu-threshold-zero",
        ),
        pytest.param(("--stop-idle-after", "30"), "--stop-idle-after: needs JUPYTERHUB_API_URL", id="no-hub"),
        pytest.param(
            ("--stop-idle-after", "30", "--idle-report-max-age", "5"),
            "--idle-report-max-age: from 10 to 86400 seconds, got 5",
            id="report-age-too-short",
        ),
    ],
)
def test_bad_idle_options_exit_2_with_one_line_naming_the_option(reconcile, args, error):
    code, err = reconcile(*args)
    assert code == 2 and error in err and len(err.strip().splitlines()) == 1, err


def test_the_idle_stop_takes_its_settings_from_the_sites_configuration_and_needs_no_proxy(tmp_path, monkeypatch):
    from argparse import Namespace  # noqa: PLC0415

    from hub.commands.ledger import _idle_watch  # noqa: PLC0415

    config = tmp_path / "hpchub_config.py"
    config.write_text("c.HPCHubLedger.idle_timeout_minutes = 20\nc.HPCHubLedger.idle_report_max_age_seconds = 300\n")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "x")
    monkeypatch.delenv("JUPYTERHUB_PUBLIC_URL", raising=False)  # the sessions are never asked: no proxy URL
    args = Namespace(config=str(config), stop_idle_after=None, idle_gpu_busy=None, idle_report_max_age=None)
    assert _idle_watch(args) is not None
    assert _idle_watch(Namespace(config=str(config), stop_idle_after=0.0, idle_gpu_busy=None,
                                 idle_report_max_age=60.0)) is not None  # courses'  # fmt: skip


def test_site_off_without_the_hub_says_once_that_a_courses_idle_stop_is_not_applied(ledger, monkeypatch):
    from argparse import Namespace  # noqa: PLC0415

    from hub.commands.ledger import _idle_watch  # noqa: PLC0415

    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    watch = _idle_watch(Namespace(config=None, stop_idle_after=None, idle_gpu_busy=None,
                                  idle_report_max_age=None))  # the site's: off  # fmt: skip
    assert watch(ledger) == []  # no course sets one: nothing to say
    course_session(ledger, "cs-short", 15, "cs", "700")
    assert watch(ledger) == [
        "idle stop: cs-short set their own idle stop (course setting idle-stop-after), but it "
        "is not applied: the reconciler needs JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN (the "
        "hub's API and a token with delete:servers)"
    ]
    assert watch(ledger) == []  # once


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        pytest.param("idle_timeout_minutes", -1.0, "c.HPCHubLedger.idle_timeout_minutes: from 0 (off) to 10080 minutes, got -1",
                     id="timeout-negative"),
        pytest.param("idle_timeout_minutes", 20000.0, "to 10080 minutes, got 20000", id="timeout-over-a-week"),
        pytest.param("idle_gpu_busy_percent", 0, "c.HPCHubLedger.idle_gpu_busy_percent: from 1 to 100 percent, got 0",
                     id="gpu-threshold-zero"),
        pytest.param("idle_report_max_age_seconds", 1.0,
                     "c.HPCHubLedger.idle_report_max_age_seconds: from 10 to 86400 seconds, got 1",
                     id="report-age-too-short"),
    ],
)  # fmt: skip
def test_site_settings_out_of_range_name_the_setting(setting, value, says) -> None:
    from traitlets import TraitError
    from traitlets.config import Config

    from hub.ledger.runtime import HPCHubLedger

    config = Config()
    setattr(config.HPCHubLedger, setting, value)
    with pytest.raises(TraitError, match=re.escape(says)):
        HPCHubLedger(config=config)
