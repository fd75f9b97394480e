"""The session's activity report (hpchub_notebook/activity_logic.py): the job's GPUs from
$CUDA_VISIBLE_DEVICES, nvidia-smi's figures, the report the idle stop reads, where and how
often it is sent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hpchub_notebook import meter_logic
from hpchub_notebook.activity_logic import (
    KernelActivity,
    TerminalActivity,
    activity_answer,
    gpu_utilization,
    report_interval,
    report_url,
    visible_gpus,
)
from hub.ledger.idle import parse_activity

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SMI = "0, GPU-aaaa, 3\n1, GPU-bbbb, 87\n2, GPU-cccc, 0\n"


@pytest.mark.parametrize(
    ("variable", "visible"),
    [
        pytest.param(None, None, id="unset-all-listed"),
        pytest.param("0", frozenset({"0"}), id="one-index"),
        pytest.param("0, 2", frozenset({"0", "2"}), id="indices-with-spaces"),
        pytest.param("GPU-bbbb", frozenset({"GPU-bbbb"}), id="a-uuid"),
        pytest.param("", frozenset(), id="empty-no-gpu"),
        pytest.param("-1", frozenset(), id="minus-one-no-gpu"),
        pytest.param("NoDevFiles", frozenset(), id="slurm-no-devices"),
    ],
)
def test_the_jobs_gpus(variable, visible):
    assert visible_gpus(variable) == visible


@pytest.mark.parametrize(
    ("output", "visible", "percent"),
    [
        pytest.param(SMI, None, 87, id="the-busiest-of-all"),
        pytest.param(SMI, frozenset({"0", "2"}), 3, id="only-the-jobs-indices"),
        pytest.param(SMI, frozenset({"GPU-bbbb"}), 87, id="by-uuid"),
        pytest.param(SMI, frozenset({"7"}), None, id="none-of-ours-listed"),
        pytest.param("", None, None, id="no-gpu-listed"),
        pytest.param("0, GPU-aaaa, [N/A]\n", None, None, id="not-available-is-unknown"),
        pytest.param("0, GPU-aaaa, 3\n1, GPU-bbbb, [N/A]\n", None, None, id="one-unknown-makes-it-unknown"),
        pytest.param("garbage\n", None, None, id="not-the-query"),
        pytest.param("0, GPU-aaaa, 250\n", None, None, id="over-100"),
    ],
)
def test_gpu_utilization_from_nvidia_smi(output, visible, percent):
    assert gpu_utilization(output, visible) == percent


def test_the_answer_takes_the_latest_user_activity_and_counts_what_runs():
    got = activity_answer(
        started=T0,
        kernels={"k1": KernelActivity(busy=True, last_request=T0 + timedelta(minutes=5)),
                 "k2": KernelActivity(busy=False, last_request=None)},
        terminals={"1": TerminalActivity(running_command=False, last_activity=T0 + timedelta(minutes=9))},
        last_save=T0 + timedelta(minutes=7), gpu_percent=None,
    )  # fmt: skip
    assert got == {"kernels": 2, "kernels_busy": 1, "terminals": 1, "terminals_busy": 0,
                   "last_activity": "2026-03-02T09:09:00+00:00", "last_save": "2026-03-02T09:07:00+00:00",
                   "gpu_utilization_percent": None}  # fmt: skip
    read = parse_activity(got)  # what the hub's side reads of it
    assert (read.kernels_busy, read.last_activity, read.gpu_percent) == (1, T0 + timedelta(minutes=9), None)


def test_a_fresh_server_was_last_active_when_it_started():
    got = activity_answer(started=T0, kernels={}, terminals={}, last_save=None, gpu_percent=12)
    assert (got["last_activity"], got["kernels"], got["gpu_utilization_percent"]) == (T0.isoformat(), 0, 12)


def test_the_budget_meter_reads_the_idle_warning():
    session = {
        "project": "vision-lab",
        "job_id": "42",
        "state": "running",
        "cost_so_far_gpu_hours": 0.5,
        "seconds_left": 3600,
        "end": None,
    }
    assert meter_logic.figures_from_session(session).idle_notice is None
    notice = "idle: this session stops at 12:10 UTC unless used (idle since 11:40 UTC)"
    assert meter_logic.figures_from_session({**session, "idle_notice": notice}).idle_notice == notice


def test_the_budget_meter_shows_the_idle_warning_and_clears_it() -> None:
    from hpchub_notebook import BudgetMeter  # noqa: PLC0415
    from hpchub_notebook.widget import NORMAL_BORDER, WARNING_BORDER  # noqa: PLC0415

    notice = "idle: this session stops at 12:10 UTC unless used (idle since 11:40 UTC)"
    answers = [{"project": "vision-lab", "job_id": "42", "state": "running", "cost_so_far_gpu_hours": 0.5,
                "project_remaining_gpu_hours": 50.0, "project_budget_gpu_hours": 100.0, "seconds_left": 3000,
                "end": None, "idle_notice": notice}]  # fmt: skip
    meter = BudgetMeter(fetch=lambda: answers[-1], start=False)
    assert meter.refresh() is True
    assert meter.figures["warnings"] == [notice] and meter.layout.border == WARNING_BORDER
    assert (
        ">Warning: this session stops at 12:10 UTC unless used (idle since 11:40 UTC). Save your work.<"
        in meter._status.value
    )
    answers.append({**answers[0], "idle_notice": None})  # used again
    assert meter.refresh() is True
    assert meter.figures["warning"] is False and meter.layout.border == NORMAL_BORDER


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param(None, 60, id="unset-default"),
        pytest.param("30", 30, id="thirty"),
        pytest.param(" 30 ", 30, id="spaces"),
        pytest.param("0", 0, id="off"),
        pytest.param("3600", 3600, id="an-hour"),
        pytest.param("3601", 60, id="over-an-hour-default"),
        pytest.param("²", 60, id="superscript-two-default"),
        pytest.param("-5", 60, id="negative-default"),
        pytest.param("1e3", 60, id="exponent-default"),
        pytest.param("", 60, id="empty-default"),
    ],
)
def test_the_report_interval(text, seconds):
    assert report_interval(text) == seconds


@pytest.mark.parametrize(
    ("api", "user", "server", "url"),
    [
        pytest.param("http://10.0.0.1:8081/hub/api", "bob", "", "http://10.0.0.1:8081/hub/api/hpchub/v1/users/bob/"
                     "servers//activity", id="default-server"),
        pytest.param("https://hub/hub/api/", "bob", "train 1", "https://hub/hub/api/hpchub/v1/users/bob/servers/"
                     "train%201/activity", id="named-quoted"),
        pytest.param("https://hub/hub/api", "b/../ob", "x", "https://hub/hub/api/hpchub/v1/users/b%2F..%2Fob/servers/x"
                     "/activity", id="a-slash-never-leaves-its-segment"),
        pytest.param(None, "bob", "", None, id="not-under-a-hub"),
        pytest.param("https://hub/hub/api", None, "", None, id="no-user"),
    ],
)  # fmt: skip
def test_where_the_session_reports(api, user, server, url):
    assert report_url(api, user, server) == url
