"""The spawn's progress sentences: Slurm's pending reasons in words and the start estimate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from spawners.slurm.progress import (
    cancelled_is_not_ready,
    on_node_message,
    pending_message,
    reason_in_words,
    start_estimate_text,
)
from spawners.slurm.types import JobRequest

pytestmark = pytest.mark.unit


def _request(gpus: int, gpu_type: str | None, partition: str = "gpu") -> JobRequest:
    return JobRequest(project="vision-lab", partition=partition, gpu_type=gpu_type, gpus=gpus, hours=Decimal(1),
                      environment="default")  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "request_", "words"),
    [
        pytest.param("Resources", _request(2, "h200"), "waiting for 2 free h200 GPUs", id="resources-two-h200"),
        pytest.param("Resources", _request(1, "a100"), "waiting for 1 free a100 GPU", id="resources-one-a100"),
        pytest.param(
            "Resources",
            _request(0, None, "cpu"),
            "waiting for free CPUs and memory in partition cpu",
            id="resources-cpu",
        ),
        pytest.param("Resources", None, "waiting for free resources", id="resources-no-request"),
        pytest.param("Priority", _request(1, "h200"), "lower priority than other jobs", id="priority"),
        pytest.param("AssocGrpBillingMinutes", _request(1, "h200"), "held: project budget", id="billing-minutes"),
        pytest.param("AssocGrpBillingRunMinutes", None, "held: project budget", id="billing-run-minutes"),
        pytest.param("AssocGrpGRESMinutes", None, "held: project budget", id="gres-minutes"),
        pytest.param("QOSGrpCPUMinutesLimit", None, "held: project budget", id="qos-cpu-minutes"),
        pytest.param("AssocGrpGRES", None, "the project's limit of GPUs in use at once is reached", id="grp-gres"),
        pytest.param("ReqNodeNotAvail", None, "a required node is not available", id="node-not-available"),
        pytest.param("JobHeldAdmin", None, "held by an administrator", id="held-admin"),
        pytest.param("SomethingNew", None, "SomethingNew", id="unknown-shown-as-is"),
        pytest.param("", None, "waiting for the scheduler", id="no-reason-yet"),
        pytest.param("None", None, "waiting for the scheduler", id="reason-none"),
    ],
)
def test_reason_in_words(reason, request_, words) -> None:
    assert reason_in_words(reason, request_) == words


NOW = datetime(2026, 11, 29, 5, 0, 0, tzinfo=timezone.utc)


def _local(when: datetime) -> str:
    """As Slurm prints it: local time, no zone."""
    return when.astimezone().replace(tzinfo=None).isoformat(timespec="seconds")


@pytest.mark.parametrize(
    ("start", "text"),
    [
        pytest.param(
            NOW + timedelta(minutes=12, seconds=30),
            "Slurm estimates a start at 05:12 UTC (in about 12 min).",
            id="minutes",
        ),
        pytest.param(
            NOW + timedelta(hours=2, minutes=5),
            "Slurm estimates a start at 07:05 UTC (in about 2 h 05 min).",
            id="hours",
        ),
        pytest.param(
            NOW + timedelta(days=1, hours=3),
            "Slurm estimates a start at Mon 30 Nov 08:00 UTC (in about 27 h 00 min).",
            id="tomorrow-with-date",
        ),
        pytest.param(
            NOW + timedelta(days=5), "Slurm estimates a start at Fri 04 Dec 05:00 UTC (in about 5 days).", id="days"
        ),
        pytest.param(
            NOW + timedelta(seconds=20),
            "Slurm estimates a start at 05:00 UTC (in under a minute).",
            id="under-a-minute",
        ),
        pytest.param(NOW - timedelta(minutes=1), "Slurm expects it to start any moment.", id="in-the-past"),
    ],
)
def test_start_estimate_text(start, text) -> None:
    assert start_estimate_text(_local(start), NOW) == text


@pytest.mark.parametrize(
    "raw", ["N/A", "", "Unknown", "(null)", "2026-13-40T99:00:00"], ids=["na", "empty", "unknown", "null", "garbage"]
)
def test_no_estimate_says_nothing(raw) -> None:
    assert start_estimate_text(raw, NOW) == ""


def test_pending_message() -> None:
    start = _local(NOW + timedelta(minutes=58))
    assert pending_message("7", "Resources", start, _request(1, "a100"), NOW) == (
        "Job 7 pending: waiting for 1 free a100 GPU. Slurm estimates a start at 05:58 UTC (in about 58 min)."
    )
    assert pending_message("8", "AssocGrpBillingMinutes", "N/A", _request(2, "h200"), NOW) == (
        "Job 8 pending: held: project budget."
    )


@pytest.mark.parametrize(("cancelled", "ready"), [(True, False), (False, True)], ids=["cancelled", "started"])
def test_a_cancelled_start_is_not_reported_ready(cancelled, ready) -> None:
    from types import SimpleNamespace

    event = {"progress": 100, "ready": True, "message": "Server ready at /user/bob/"}
    answer = cancelled_is_not_ready(SimpleNamespace(start_cancelled=cancelled, job_id="12"), dict(event))
    assert answer.get("ready", False) is ready
    if cancelled:
        assert answer == {
            "progress": 100,
            "failed": True,
            "message": "Start cancelled: Slurm job 12 is cancelled and its GPU-hour hold released.",
        }


def test_the_steps_on_the_node_keep_the_job_id_in_view() -> None:
    """A quick start goes from "Submitted as Slurm job 12" to the node in a second: the later steps
    name the job too (QA: the page showed "Starting Jupyter on gpu01" and no job id)."""
    assert on_node_message("Running", "gpu02", "12") == "Running on gpu02 (Slurm job 12)"
    assert on_node_message("Starting Jupyter", "gpu02", "12") == "Starting Jupyter on gpu02 (Slurm job 12)"
