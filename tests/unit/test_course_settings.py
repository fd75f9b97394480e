"""A course's settings through the API (issue 7): the body's checks (the CLI's own) and the answer."""

from __future__ import annotations

import pytest

from hub.api.courses import DEFAULT_REASON, parse_settings_body, settings_json
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.courses import CourseRules, OnDrop
from hub.ledger.errors import LedgerInputError

pytestmark = pytest.mark.unit

RULES = CourseRules(per_student_mgs=5 * H)


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param({"ta_extension_limit_gpu_hours": 2, "reason": "lab week"}, (2 * H, "lab week"), id="hours"),
    pytest.param({"ta_extension_limit_gpu_hours": "1.5"}, (int(1.5 * H), DEFAULT_REASON), id="text-default-reason"),
    pytest.param({"ta_extension_limit_gpu_hours": 0}, (0, DEFAULT_REASON), id="zero"),
    pytest.param({"ta_extension_limit_gpu_hours": None}, (None, DEFAULT_REASON), id="null-no-course-limit"),
    pytest.param({"ta_extension_limit_gpu_hours": -1}, "ta_extension_limit_gpu_hours: must be >= 0 GPU-h", id="negative"),
    pytest.param({"ta_extension_limit_gpu_hours": True}, "ta_extension_limit_gpu_hours: must be GPU-hours", id="bool"),
    pytest.param({"ta_extension_limit_gpu_hours": "0.00001"}, "ta_extension_limit_gpu_hours: at most 4 decimals",
                 id="too-fine"),
    pytest.param({"reason": "x"}, "body: no setting given", id="nothing"),
    pytest.param({"per_student": 9}, "per_student: unknown field", id="unknown-key"),
    pytest.param(None, "body: a JSON object is required", id="no-body"),
])  # fmt: skip
def test_settings_body(body, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(LedgerInputError) as caught:
            parse_settings_body(body, RULES)
        assert caught.value.message.startswith(expected)
    else:
        rules, reason = parse_settings_body(body, RULES)
        assert (rules.ta_extension_mgs, reason) == expected
        assert rules.per_student_mgs == RULES.per_student_mgs


def test_settings_answer() -> None:
    answer = settings_json("cs101", CourseRules(per_student_mgs=5 * H, ta_extension_mgs=2 * H))
    assert answer["ta_extension_limit_gpu_hours"] == 2.0 and answer["per_student_gpu_hours"] == 5.0
    assert "a TA may extend a student's cap by at most 2.0 GPU-h in all" in answer["rules"]


LAB = CourseRules(per_student_mgs=5 * H, reservation="cs101-lab")


@pytest.mark.parametrize(("rules", "body", "expected"), [
    pytest.param(LAB, {"lab_hours_only": True}, True, id="on"),
    pytest.param(LAB, {"lab_hours_only": False}, False, id="off"),
    pytest.param(LAB, {"lab_hours_only": "yes"}, "lab_hours_only: must be true or false", id="not-boolean"),
    pytest.param(RULES, {"lab_hours_only": True}, "lab_hours_only: needs the course's lab-hours reservation",
                 id="no-reservation"),
])  # fmt: skip
def test_lab_hours_only_body(rules, body, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(LedgerInputError) as caught:
            parse_settings_body(body, rules)
        assert caught.value.message.startswith(expected)
    else:
        assert parse_settings_body(body, rules)[0].lab_hours_only is expected


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param({"on_drop": "stop"}, OnDrop.STOP, id="stop"),
    pytest.param({"on_drop": "finish"}, OnDrop.FINISH, id="finish"),
    pytest.param({"on_drop": "kill"}, "on_drop: one of finish|stop", id="unknown"),
])  # fmt: skip
def test_on_drop_body(body, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(LedgerInputError) as caught:
            parse_settings_body(body, RULES)
        assert caught.value.message.startswith(expected)
    else:
        assert parse_settings_body(body, RULES)[0].on_drop is expected
        assert settings_json("cs101", parse_settings_body(body, RULES)[0])["on_drop"] == expected.value
