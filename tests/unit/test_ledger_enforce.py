"""Warnings and exhaustion decisions (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.ledger.enforce import ExhaustionTracker, warnings_for
from hub.ledger.types import MemberUsage, ProjectUsage, Role, SessionInfo, SessionState

pytestmark = pytest.mark.unit

H = 3_600_000  # mgs per GPU-hour
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def usage(project="vision-lab", grants=100, used=0.0, held=0.0, bob_cap=None, bob_used=0.0):
    members = (
        MemberUsage("alice", Role.PI, None, 0, 0),
        MemberUsage("bob", Role.MEMBER, None if bob_cap is None else int(bob_cap * H), int(bob_used * H), 0),
    )
    return ProjectUsage(project, int(grants * H), int(used * H), int(held * H), members)


def session(user="bob", project="vision-lab", session_id=1):
    return SessionInfo(
        session_id, project, user, "", "42", "h200", 1, 3600, 1000, SessionState.RUNNING, None, T0, T0, None
    )


@pytest.mark.parametrize(
    ("figures", "user", "levels"),
    [
        pytest.param(usage(used=79.9), "alice", [], id="below-80"),
        pytest.param(usage(used=80), "alice", [80], id="at-80"),
        pytest.param(usage(used=95), "alice", [95], id="at-95"),
        pytest.param(usage(used=100), "alice", [100], id="exhausted"),
        pytest.param(usage(used=30, bob_cap=20, bob_used=16), "bob", [80], id="cap-80-project-fine"),
        pytest.param(usage(used=30, bob_cap=20, bob_used=16), "alice", [], id="others-cap-not-shown"),
        pytest.param(usage(used=96, bob_cap=20, bob_used=20), "bob", [100, 95], id="cap-and-project"),
        pytest.param(usage(grants=0), "alice", [100], id="zero-budget-is-exhausted"),
    ],
)
def test_warning_banners(figures, user, levels):
    assert [banner.level for banner in warnings_for(user, [figures])] == levels


def test_banner_text_says_what_is_left():
    (banner,) = warnings_for("alice", [usage(used=81.25)])
    assert banner.text == "vision-lab: the GPU-hour budget is 80 % used (18.75 GPU-h left)."


@pytest.mark.parametrize(
    ("figures", "minutes", "stopped"),
    [
        pytest.param(usage(used=50), 10, [], id="not-exhausted"),
        pytest.param(usage(used=100), 4, [], id="within-grace"),
        pytest.param(usage(used=100), 5, ["alice", "bob"], id="after-grace-all-sessions"),
        pytest.param(usage(used=10, bob_cap=1, bob_used=1), 5, ["bob"], id="cap-exhausted-only-that-member"),
    ],
)
def test_sessions_stop_only_after_the_grace(figures, minutes, stopped):
    tracker = ExhaustionTracker(grace=timedelta(minutes=5))
    running = [session("alice", session_id=1), session("bob", session_id=2)]
    assert tracker.sessions_to_stop({"vision-lab": figures}, running, T0) == [] or minutes == 0
    result = tracker.sessions_to_stop({"vision-lab": figures}, running, T0 + timedelta(minutes=minutes))
    assert [s.user for s, _reason in result] == stopped


def test_a_new_grant_resets_the_clock_and_reason_is_given():
    tracker = ExhaustionTracker(grace=timedelta(minutes=5))
    running = [session("bob")]
    tracker.sessions_to_stop({"vision-lab": usage(used=100)}, running, T0)
    tracker.sessions_to_stop({"vision-lab": usage(grants=120, used=100)}, running, T0 + timedelta(minutes=3))
    assert tracker.sessions_to_stop({"vision-lab": usage(used=100)}, running, T0 + timedelta(minutes=6)) == []
    ((stopped, reason),) = tracker.sessions_to_stop(
        {"vision-lab": usage(used=100)}, running, T0 + timedelta(minutes=11)
    )
    assert stopped.user == "bob"
    assert reason == "stopped: vision-lab's GPU-hour budget is used up (100.0 of 100.0 GPU-h)"
    assert tracker.seconds_until_stop("vision-lab", "bob", T0 + timedelta(minutes=11)) == 0


def test_a_course_past_its_term_stops_its_sessions_after_the_grace_with_the_reason():
    tracker = ExhaustionTracker(grace=timedelta(minutes=5))
    running = [session("carol", project="cs101"), session("bob", session_id=2)]
    closed = {"cs101": "cs101's period ended on 2026-06-30."}
    assert tracker.sessions_to_stop({"vision-lab": usage()}, running, T0, closed) == []
    ((stopped, reason),) = tracker.sessions_to_stop({"vision-lab": usage()}, running, T0 + timedelta(minutes=5), closed)
    assert (stopped.user, reason) == ("carol", "stopped: cs101's period ended on 2026-06-30.")


def test_a_dropped_students_session_stops_after_the_grace_with_the_reason():
    tracker = ExhaustionTracker(grace=timedelta(minutes=5))
    running = [session("carol", project="cs101"), session("dan", project="cs101", session_id=2)]
    dropped = {("cs101", "carol"): "stopped: carol was dropped from cs101 (membership ended)"}
    assert tracker.sessions_to_stop({}, running, T0, None, dropped) == []
    ((stopped, reason),) = tracker.sessions_to_stop({}, running, T0 + timedelta(minutes=5), None, dropped)
    assert (stopped.user, reason) == ("carol", "stopped: carol was dropped from cs101 (membership ended)")
    # back on the roster before the grace ran out: nothing stops
    tracker.sessions_to_stop({}, running, T0 + timedelta(minutes=6), None, {})
    assert tracker.sessions_to_stop({}, running, T0 + timedelta(minutes=20), None, {}) == []
