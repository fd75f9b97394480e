"""Unit tests for the notebook's budget meter: its texts and warning rule (hpchub_notebook/meter_logic.py),
the refresh thread with a fake fetcher (hpchub_notebook/widget.py), and the session answer's project figures."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from hpchub_notebook import meter_logic as logic
from hub.api.sessions import JobView, session_json
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.types import ProjectUsage, SessionInfo, SessionState

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ANSWER = {
    "user": "bob",
    "server": "",
    "project": "vision-lab",
    "job_id": "42",
    "state": "running",
    "start": "2026-03-02T09:00:00+00:00",
    "end": "2026-03-02T10:00:00+00:00",
    "seconds_left": 1800,
    "cost_so_far_gpu_hours": 0.5,
    "held_gpu_hours": 0.5,
    "project_budget_gpu_hours": 100.0,
    "project_remaining_gpu_hours": 42.25,
}


@pytest.mark.parametrize(
    ("seconds", "state", "text"),
    [
        pytest.param(3909, "running", "1:05:09", id="over-an-hour"),
        pytest.param(899, "running", "0:14:59", id="just-under-15-min"),
        pytest.param(59, "running", "0:00:59", id="seconds"),
        pytest.param(0, "running", "0:00:00 (time is up)", id="time-is-up"),
        pytest.param(-5, "running", "0:00:00 (time is up)", id="negative-clamped"),
        pytest.param(None, "pending", "not started (pending)", id="pending"),
        pytest.param(None, "", "not started", id="unknown-state"),
    ],
)
def test_format_time_left(seconds, state, text) -> None:
    assert logic.format_time_left(seconds, state) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(42.25, "42.25 GPU-h", id="two-decimals"),
        pytest.param(0.0083, "0.01 GPU-h", id="rounded"),
        pytest.param(0, "0.00 GPU-h", id="zero"),
        pytest.param(-1.5, "-1.50 GPU-h", id="overdrawn"),
        pytest.param(None, "-", id="unknown"),
    ],
)
def test_format_gpu_hours(value, text) -> None:
    assert logic.format_gpu_hours(value) == text


@pytest.mark.parametrize(
    ("seconds_left", "remaining", "budget", "reasons"),
    [
        pytest.param(3600, 50.0, 100.0, [], id="plenty"),
        pytest.param(900, 50.0, 100.0, [], id="exactly-15-min-no-warning"),
        pytest.param(899, 50.0, 100.0, ["walltime"], id="under-15-min"),
        pytest.param(0, 50.0, 100.0, ["walltime"], id="time-is-up"),
        pytest.param(3600, 5.0, 100.0, [], id="exactly-5-percent-no-warning"),
        pytest.param(3600, 4.99, 100.0, ["budget"], id="under-5-percent"),
        pytest.param(3600, -1.0, 100.0, ["budget"], id="overdrawn"),
        pytest.param(60, 1.0, 100.0, ["walltime", "budget"], id="both"),
        pytest.param(None, 50.0, 100.0, [], id="pending-no-time-warning"),
        pytest.param(3600, 0.0, 0.0, ["budget"], id="no-budget-nothing-left"),
        pytest.param(3600, None, None, [], id="project-figures-unknown"),
    ],
)
def test_warning_rule(seconds_left, remaining, budget, reasons) -> None:
    found = logic.warnings(seconds_left, remaining, budget)
    assert [("walltime" if "walltime" in r else "budget") for r in found] == reasons
    assert logic.is_warning(seconds_left, remaining, budget) is bool(reasons)


@pytest.mark.parametrize(
    ("seconds_left", "received", "now", "left"),
    [
        pytest.param(1800, 100.0, 100.0, 1800, id="at-receipt"),
        pytest.param(1800, 100.0, 130.5, 1769, id="counts-down"),
        pytest.param(10, 100.0, 200.0, 0, id="never-below-zero"),
        pytest.param(None, 100.0, 130.0, None, id="pending"),
    ],
)
def test_local_countdown(seconds_left, received, now, left) -> None:
    assert logic.seconds_until(logic.deadline(seconds_left, received), now) == left


@pytest.mark.parametrize(
    ("api_url", "user", "server", "url"),
    [
        pytest.param("http://127.0.0.1:8081/hub/api", "bob", "", "http://127.0.0.1:8081/hub/api/hpchub/v1/users/bob/servers//session", id="default-server"),
        pytest.param("http://hub:8081/hub/api/", "bob", "gpu run", "http://hub:8081/hub/api/hpchub/v1/users/bob/servers/gpu%20run/session", id="named-quoted"),
    ],
)  # fmt: skip
def test_session_url(api_url, user, server, url) -> None:
    assert logic.session_url(api_url, user, server) == url


@pytest.mark.parametrize(
    ("status", "words"),
    [
        pytest.param(None, "portal not reachable, retrying", id="network"),
        pytest.param(502, "portal not reachable, retrying", id="bad-gateway"),
        pytest.param(404, "no running session", id="no-session"),
        pytest.param(403, "refused this server's token", id="forbidden"),
    ],
)
def test_error_text(status, words) -> None:
    assert words in logic.error_text(status)


def test_figures_from_session() -> None:
    figures = logic.figures_from_session(ANSWER)
    assert (
        figures.project,
        figures.job_id,
        figures.cost_so_far_gpu_hours,
        figures.project_remaining_gpu_hours,
        figures.project_budget_gpu_hours,
        figures.seconds_left,
    ) == ("vision-lab", "42", 0.5, 42.25, 100.0, 1800)


def test_session_json_adds_the_projects_budget_and_remaining_when_given() -> None:
    info = SessionInfo(
        id=7, project="vision-lab", user="bob", server_name="", job_id="42", gpu_type="h200", gpus=1,
        reserved_seconds=3600, weight_milli=1000, state=SessionState.RUNNING, message=None, admitted_at=T0,
        started_at=T0, ended_at=None,
    )  # fmt: skip
    project = ProjectUsage("vision-lab", grants_mgs=100 * H, used_mgs=10 * H, held_mgs=H // 4, members=())
    answer = session_json(info, T0, JobView(partition="gpu"), project=project)
    assert (answer["project_budget_gpu_hours"], answer["project_remaining_gpu_hours"]) == (100.0, 89.75)
    assert "project_remaining_gpu_hours" not in session_json(info, T0, JobView(partition="gpu"))  # the home page


# --- the thread, with a fake fetcher -----------------------------------------------------------


class FakePortal:
    """Answers ``ANSWER`` with a growing cost; fails on the calls listed in ``fail_on``."""

    def __init__(self, fail_on=()) -> None:
        self.calls = 0
        self.fail_on = set(fail_on)
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self) -> dict:
        with self.lock:
            self.calls += 1
            call = self.calls
        self.threads.add(threading.current_thread().name)
        if call in self.fail_on:
            raise ConnectionRefusedError("hub down")
        return dict(ANSWER, cost_so_far_gpu_hours=0.5 + call / 100)


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_the_thread_refreshes_in_the_background_and_stops() -> None:
    from hpchub_notebook import BudgetMeter  # noqa: PLC0415

    portal = FakePortal()
    meter = BudgetMeter(refresh_seconds=0.1, tick_seconds=0.05, fetch=portal)
    try:
        assert meter.running and meter._thread.daemon
        _wait_for(lambda: meter.figures.get("refreshes", 0) >= 3)
        figures = meter.figures
        assert (figures["project"], figures["job_id"], figures["project_remaining_gpu_hours"]) == (
            "vision-lab",
            "42",
            42.25,
        )
        assert figures["cost_so_far_gpu_hours"] > 0.5 and 0 < figures["seconds_left"] <= 1800
        assert figures["warning"] is False and figures["error"] is None
        assert portal.threads == {"hpchub-budget-meter"}  # never the caller's (the kernel's) thread
        assert "vision-lab" in meter._project.value and "42.25 GPU-h" in meter._left.value
    finally:
        meter.stop()
    assert not meter.running
    calls = portal.calls
    time.sleep(0.3)
    assert portal.calls == calls  # no fetch after stop()


def test_the_thread_survives_fetch_errors_and_says_so() -> None:
    from hpchub_notebook import BudgetMeter  # noqa: PLC0415

    portal = FakePortal(fail_on=set(range(2, 10**6)))  # down from the second call until the test says
    meter = BudgetMeter(refresh_seconds=0.1, tick_seconds=0.05, fetch=portal)
    try:
        _wait_for(lambda: meter.figures.get("failures", 0) >= 1)
        shown = meter.figures
        assert (
            shown["error"] == "portal not reachable, retrying" and shown["project"] == "vision-lab"
        )  # last figures kept
        assert "portal not reachable, retrying" in meter._status.value
        with portal.lock:
            portal.fail_on.clear()  # back
            down_calls = portal.calls - 1
        _wait_for(lambda: meter.figures["error"] is None)
        assert meter.running and meter.figures["failures"] >= 1
        assert meter.figures["failures"] <= down_calls
    finally:
        meter.stop()


def test_the_meter_warns_with_little_time_left() -> None:
    from hpchub_notebook import BudgetMeter  # noqa: PLC0415
    from hpchub_notebook.widget import NORMAL_BORDER, WARNING_BORDER  # noqa: PLC0415

    meter = BudgetMeter(fetch=lambda: dict(ANSWER, seconds_left=600), start=False)
    assert meter.layout.border == NORMAL_BORDER and meter.figures["refreshes"] == 0
    assert meter.refresh() is True
    assert meter.figures["warning"] is True and meter.layout.border == WARNING_BORDER
    assert "less than 15 min of walltime left" in meter._status.value


def test_outside_a_hub_server_it_says_so_and_starts_no_thread() -> None:
    from hpchub_notebook import BudgetMeter  # noqa: PLC0415

    meter = BudgetMeter(environ={})
    assert not meter.running
    assert "not in a JupyterHub notebook server" in meter.figures["error"]
