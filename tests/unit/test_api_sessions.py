"""Unit tests for hub/api/sessions.py: the extend rules and a session's figures (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.api.sessions import (
    JobView,
    extended_time_limit_minutes,
    extension_cost_mgs,
    format_duration,
    parse_extend_body,
    session_json,
)
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.errors import LedgerInputError
from hub.ledger.types import SessionInfo, SessionState

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
HOUR = 3600


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        pytest.param({"hours": 1}, HOUR, id="one-hour"),
        pytest.param({"hours": 0.25}, 900, id="quarter"),
        pytest.param({"hours": "1.5"}, 5400, id="decimal-string"),
        pytest.param({"hours": 2.75}, 9900, id="float-quarters"),
    ],
)
def test_parse_extend_body_accepts_positive_quarters(body, seconds) -> None:
    assert parse_extend_body(body) == seconds


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        pytest.param({"hours": 0}, "hours", "must be > 0", id="zero"),
        pytest.param({"hours": -1}, "hours", "must be > 0", id="negative"),
        pytest.param({"hours": 0.3}, "hours", "multiple of 0.25", id="not-a-quarter"),
        pytest.param({"hours": True}, "hours", "must be a number", id="bool"),
        pytest.param({"hours": "x"}, "hours", "must be a number", id="text"),
        pytest.param({"hours": None}, "hours", "must be a number", id="null"),
        pytest.param({}, "hours", "required", id="missing"),
        pytest.param({"hours": 1, "gpus": 2}, "gpus", "unknown field", id="unknown-key"),
        pytest.param([1], "body", "JSON object", id="list"),
        pytest.param(None, "body", "required", id="no-body"),
    ],
)
def test_parse_extend_body_refuses_with_the_field(body, field, words) -> None:
    with pytest.raises(LedgerInputError) as caught:
        parse_extend_body(body)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ") and words in caught.value.message


@pytest.mark.parametrize(
    ("reserved_h", "added_h", "max_minutes", "minutes"),
    [
        pytest.param(1, 1, 480, 120, id="1h-plus-1h-in-8h"),
        pytest.param(7, 1, 480, 480, id="exactly-maxtime"),
        pytest.param(0.25, 0.25, 30, 30, id="debug-30-min"),
        pytest.param(1, 100, None, 6060, id="no-maxtime"),
        pytest.param(1.75, 0.5, 480, 135, id="quarters"),
    ],
)
def test_new_time_limit_within_maxtime(reserved_h, added_h, max_minutes, minutes) -> None:
    assert extended_time_limit_minutes(int(reserved_h * HOUR), int(added_h * HOUR), max_minutes, "gpu") == minutes


@pytest.mark.parametrize(
    ("reserved_h", "added_h", "max_minutes", "words"),
    [
        pytest.param(
            7.5,
            1,
            480,
            "at most 8 h (MaxTime); this session has 7.5 h, so at most 0.5 h more (asked for 1)",
            id="over-by-half",
        ),
        pytest.param(8, 0.25, 480, "this session has 8 h, so no more hours", id="at-maxtime"),
        pytest.param(0.5, 0.25, 30, "allows jobs of at most 0.5 h", id="debug"),
    ],
)
def test_new_time_limit_beyond_maxtime_is_refused_naming_hours_and_the_limit(
    reserved_h, added_h, max_minutes, words
) -> None:
    with pytest.raises(LedgerInputError) as caught:
        extended_time_limit_minutes(int(reserved_h * HOUR), int(added_h * HOUR), max_minutes, "gpu")
    assert caught.value.field == "hours"
    assert caught.value.message.startswith("hours: partition gpu allows jobs of at most")
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("gpus", "weight_milli", "hours", "gpu_hours"),
    [
        pytest.param(4, 1000, 1, 4, id="4-h200-1h"),
        pytest.param(1, 1000, 1, 1, id="1-h200-1h"),
        pytest.param(2, 500, 1, 1, id="2-a100-1h"),
        pytest.param(1, 500, 0.25, 0.125, id="1-a100-quarter"),
        pytest.param(0, 0, 1, 0, id="no-gpu"),
    ],
)
def test_extension_cost_is_gpus_x_hours_x_weight(gpus, weight_milli, hours, gpu_hours) -> None:
    assert extension_cost_mgs(gpus, weight_milli, int(hours * HOUR)) == int(gpu_hours * H)


def _info(state=SessionState.RUNNING, started=T0, gpus=2, weight=1000, hours=1.0, job_id="42") -> SessionInfo:
    return SessionInfo(
        id=7, project="vision-lab", user="bob", server_name="", job_id=job_id, gpu_type="h200", gpus=gpus,
        reserved_seconds=int(hours * HOUR), weight_milli=weight, state=state, message=None, admitted_at=T0,
        started_at=started if state is SessionState.RUNNING else None, ended_at=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("info", "minutes_in", "expected"),
    [
        pytest.param(
            _info(),
            30,
            {
                "cost_so_far_gpu_hours": 1.0,
                "held_gpu_hours": 1.0,
                "elapsed_seconds": 1800,
                "seconds_left": 1800,
                "end": "2026-03-02T10:00:00+00:00",
                "state": "running",
            },
            id="running-halfway",
        ),
        pytest.param(
            _info(weight=500, gpus=1, hours=2),
            60,
            {
                "cost_so_far_gpu_hours": 0.5,
                "held_gpu_hours": 0.5,
                "extend_cost_gpu_hours": 0.5,
                "hours_reserved": 2.0,
                "time_limit_minutes": 120,
            },
            id="a100-weight",
        ),
        pytest.param(
            _info(),
            90,
            {"cost_so_far_gpu_hours": 2.0, "held_gpu_hours": 0.0, "seconds_left": 0},
            id="past-the-limit-capped",
        ),
        pytest.param(
            _info(state=SessionState.ADMITTED, job_id=None),
            30,
            {
                "cost_so_far_gpu_hours": 0.0,
                "held_gpu_hours": 2.0,
                "start": None,
                "end": None,
                "seconds_left": None,
                "state": "pending",
                "extend_cost_gpu_hours": 2.0,
            },
            id="pending",
        ),
    ],
)
def test_session_json_figures(info, minutes_in, expected) -> None:
    answer = session_json(info, T0 + timedelta(minutes=minutes_in), JobView(partition="gpu"))
    assert {key: answer[key] for key in expected} == expected
    assert answer["project"] == "vision-lab" and answer["partition"] == "gpu" and answer["server"] == ""


def test_session_json_takes_state_node_and_reason_from_the_job() -> None:
    pending = session_json(_info(state=SessionState.ADMITTED), T0, JobView("pending", "", "gpu", "Resources"))
    assert (pending["state"], pending["pending_reason"], pending["node"]) == ("pending", "Resources", None)
    running = session_json(_info(), T0, JobView("running", "gpu02", "gpu", "None"))
    assert (running["state"], running["pending_reason"], running["node"]) == ("running", None, "gpu02")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0 min"), (59, "0 min"), (720, "12 min"), (3900, "1 h 05 min"), (-5, "0 min")],
    ids=["none", "zero", "under-a-minute", "minutes", "hours", "negative"],
)
def test_format_duration(seconds, text) -> None:
    assert format_duration(seconds) == text
