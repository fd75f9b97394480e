"""Unit tests for the API's request parsing and response shapes (hub/api/views.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub import cli
from hub.api import views
from hub.api.access import project_access
from hub.commands.ledger import CSV_COLUMNS, LEDGER_URL_ENV
from hub.ledger import Ledger, LedgerInputError, upgrade
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.arithmetic import Admission
from hub.ledger.offers import preview_json
from hub.ledger.types import Booking, Role

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
USAGE = {
    "project": "vision-lab", "budget_gpu_hours": 100.0, "used_gpu_hours": 1.5, "held_gpu_hours": 2.0,
    "remaining_gpu_hours": 96.5,
    "members": [
        {"user": "alice", "role": "pi", "cap_gpu_hours": None, "used_gpu_hours": 1.0, "held_gpu_hours": 0.0},
        {"user": "bob", "role": "member", "cap_gpu_hours": 20.0, "used_gpu_hours": 0.5, "held_gpu_hours": 2.0},
    ],
}  # fmt: skip


# --- what callers see ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "role", "is_admin", "rows"),
    [
        pytest.param("alice", Role.PI, False, ["alice", "bob"], id="pi-all"),
        pytest.param("bob", Role.MEMBER, False, ["bob"], id="member-own"),
        pytest.param("tom", Role.TA, False, ["alice", "bob"], id="ta-all"),
        pytest.param("carol", Role.STUDENT, False, [], id="student-not-listed"),
        pytest.param("admin", None, True, ["alice", "bob"], id="admin-all"),
    ],
)
def test_visible_usage(caller, role, is_admin, rows) -> None:
    seen = views.visible_usage(USAGE, caller, project_access(role, is_admin=is_admin))
    assert [member["user"] for member in seen["members"]] == rows
    assert {k: v for k, v in seen.items() if k != "members"} == {k: v for k, v in USAGE.items() if k != "members"}
    assert len(USAGE["members"]) == 2  # not changed in place


@pytest.mark.parametrize(("caller", "role"), [("alice", Role.PI), ("bob", Role.MEMBER), ("eve", None), (None, None)])
def test_caller_role(caller, role) -> None:
    assert views.caller_role(USAGE, caller) is role


def test_preview_json() -> None:
    request = {
        "project": "vision-lab",
        "partition": "gpu",
        "gpu_type": "h200",
        "gpus": 2,
        "hours": 1.5,
        "environment": "default",
    }
    allowed = preview_json("bob", request, Admission(True, "", 3 * H, 96 * H + H // 2, 17 * H))
    assert allowed == {
        "project": "vision-lab", "user": "bob", "request": request, "allowed": True, "message": "",
        "cost_gpu_hours": 3.0, "project_remaining_gpu_hours": 96.5, "project_remaining_after_gpu_hours": 93.5,
        "cap_remaining_gpu_hours": 17.0, "cap_remaining_after_gpu_hours": 14.0,
        "summary": "This reserves up to 3.0 GPU-h (2 x h200 x 1.5 h). vision-lab has 93.5 left; your cap has 14.0 left.",
        "left_now": "Left now, before this session: vision-lab 96.5 GPU-h; your cap 17.0 GPU-h.",
        "offers": [], "offer_text": "",
    }  # fmt: skip
    refused = preview_json("bob", request, Admission(False, "no", 3 * H, H, None))
    assert refused["summary"] == "" and refused["left_now"] == "Left now, before this session: vision-lab 1.0 GPU-h."
    assert (refused["allowed"], refused["message"], refused["project_remaining_after_gpu_hours"]) == (False, "no", -2.0)
    assert refused["cap_remaining_gpu_hours"] is None and refused["cap_remaining_after_gpu_hours"] is None


# --- charges: JSON and the CLI's CSV -----------------------------------------------------------------


@pytest.fixture
def charged(ledger_url):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=lambda: T0) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="t")
        ledger.add_member("vision-lab", "bob", role="member", who="t")
        ledger.import_final_charge("hpchub", "101", "bob", "vision-lab", {"h200": 1}, T0, T0 + timedelta(hours=1), 3600)
        ledger.import_final_charge(
            "hpchub", "102", "alice", "vision-lab", {"a100": 2, "h200": 1}, T0, T0 + timedelta(minutes=30), 1800
        )
        session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1), now=T0)
        ledger.record_job_id(session_id, "103")
        ledger.session_started(session_id, T0)
        ledger.session_ended(session_id, T0 + timedelta(seconds=901), 901)
        return ledger.charges("vision-lab")


def test_charges_csv_is_what_the_command_line_prints(charged, capsys, ledger_url, monkeypatch) -> None:
    monkeypatch.setenv(LEDGER_URL_ENV, ledger_url)
    assert cli.main(["charges", "vision-lab", "--csv"]) == 0
    assert views.charges_csv(charged) == capsys.readouterr().out
    assert views.CSV_COLUMNS == CSV_COLUMNS


def test_charges_json(charged) -> None:
    answer = views.charges_json("vision-lab", charged)
    jobs = {charge["job_id"]: charge for charge in answer["charges"]}
    assert set(jobs) == {"101", "102", "103"}
    assert jobs["101"] == {
        "cluster": "hpchub", "job_id": "101", "user": "bob", "project": "vision-lab", "gpu_type": "h200", "gpus": 1,
        "start": "2026-03-02T09:00:00+00:00", "end": "2026-03-02T10:00:00+00:00", "elapsed_seconds": 3600,
        "gpu_hours": 1.0, "source": "sacct", "kind": "final",
    }  # fmt: skip
    assert jobs["102"]["gpu_type"] == "a100:2,h200:1" and jobs["102"]["gpu_hours"] == 1.0
    assert (jobs["103"]["kind"], jobs["103"]["source"], jobs["103"]["gpu_hours"]) == ("provisional", "portal", 0.2503)
    assert answer["total_gpu_hours"] == 2.2503


def test_member_sees_only_own_charges(charged) -> None:
    own = views.visible_charges(charged, "bob", project_access(Role.MEMBER, is_admin=False))
    assert {charge.job_id for charge in own} == {"101", "103"}
    assert len(views.visible_charges(charged, "alice", project_access(Role.PI, is_admin=False))) == 3


# --- request bodies: 400 naming the field ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"role": "member"}, (Role.MEMBER, False, None, None, None), id="role-only"),
        pytest.param({"role": "student", "cap_gpu_hours": 5}, (Role.STUDENT, True, 5, 5 * H, None), id="with-cap"),
        pytest.param({"role": "ta", "cap_gpu_hours": None}, (Role.TA, True, None, None, None), id="no-cap"),
        pytest.param(
            {"role": "member", "cap_gpu_hours": "2.5", "reason": " more "},
            (Role.MEMBER, True, "2.5", int(2.5 * H), "more"),
            id="text-cap-and-reason",
        ),
    ],
)
def test_parse_member_body(body, expected) -> None:
    change = views.parse_member_body(body)
    assert (change.role, change.cap_given, change.cap, change.cap_mgs, change.reason) == expected


BAD_BODIES = [
    pytest.param(views.parse_member_body, None, "body", id="member-no-body"),
    pytest.param(views.parse_member_body, ["member"], "body", id="member-list"),
    pytest.param(views.parse_member_body, {}, "role", id="member-no-role"),
    pytest.param(views.parse_member_body, {"role": "owner"}, "role", id="member-bad-role"),
    pytest.param(views.parse_member_body, {"role": "member", "cap_gpu_hours": -1}, "cap_gpu_hours", id="negative-cap"),
    pytest.param(views.parse_member_body, {"role": "member", "cap_gpu_hours": False}, "cap_gpu_hours", id="bool-cap"),
    pytest.param(views.parse_member_body, {"role": "member", "cap_gpu_hours": "1e400"}, "cap_gpu_hours", id="huge-cap"),
    pytest.param(views.parse_member_body, {"role": "member", "cap_gpu_hours": "NaN"}, "cap_gpu_hours", id="nan-cap"),
    pytest.param(views.parse_member_body, {"role": "member", "who": "root"}, "who", id="unknown-field"),
    pytest.param(views.parse_cap_body, {"reason": "x"}, "cap_gpu_hours", id="cap-missing"),
    pytest.param(views.parse_cap_body, {"cap_gpu_hours": 1.00001, "reason": "x"}, "cap_gpu_hours", id="cap-decimals"),
    pytest.param(views.parse_cap_body, {"cap_gpu_hours": 1}, "reason", id="cap-no-reason"),
    pytest.param(views.parse_cap_body, {"cap_gpu_hours": 1, "reason": ""}, "reason", id="cap-empty-reason"),
    pytest.param(views.parse_cap_body, {"cap_gpu_hours": 1, "reason": "x" * 501}, "reason", id="cap-long-reason"),
    pytest.param(views.parse_cap_body, {"cap_gpu_hours": 1, "reason": "a\tb"}, "reason", id="cap-control-char"),
    pytest.param(views.preview_options, "gpu", "body", id="preview-text"),
    pytest.param(views.preview_options, {"user_options": 3}, "body", id="preview-wrapped-number"),
]


@pytest.mark.parametrize(("parse", "body", "field"), BAD_BODIES)
def test_bad_bodies_name_the_field(parse, body, field) -> None:
    with pytest.raises(LedgerInputError) as error:
        parse(body)
    assert error.value.field == field and error.value.message.startswith(f"{field}: ")


def test_parse_cap_body() -> None:
    change = views.parse_cap_body({"cap_gpu_hours": None, "reason": "no limit for the PhD"})
    assert (change.cap, change.cap_mgs, change.reason) == (None, None, "no limit for the PhD")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"gpus": 1}, {"gpus": 1}, id="bare"),
        pytest.param({"user_options": {"gpus": 1}}, {"gpus": 1}, id="as-the-spawn-sends-them"),
        pytest.param(None, {}, id="empty"),
    ],
)
def test_preview_options(body, expected) -> None:
    assert views.preview_options(body) == expected


# --- the preview's fallback check (a spawner that cannot describe the cluster) -----------------------


def test_basic_spawn_request_defaults() -> None:
    assert views.basic_spawn_request({}, projects=["vision-lab"], gpu_types=["h200"]) == {
        "project": "vision-lab", "partition": None, "gpu_type": "h200", "gpus": 1, "hours": 1.0, "environment": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({"project": "cs101"}, "project", id="not-my-project"),
        pytest.param({"gpus": 2}, "project", id="several-projects"),
        pytest.param({"project": "a", "gpus": 1}, "gpu_type", id="gpu-type-required"),
        pytest.param({"project": "a", "gpu_type": "v100"}, "gpu_type", id="unpriced-type"),
        pytest.param({"project": "a", "gpu_type": "h200", "gpus": -1}, "gpus", id="negative-gpus"),
        pytest.param({"project": "a", "gpu_type": "h200", "gpus": 1.5}, "gpus", id="fractional-gpus"),
        pytest.param({"project": "a", "gpu_type": "h200", "hours": 0.3}, "hours", id="hours-not-quarter"),
        pytest.param({"project": "a", "gpu_type": "h200", "hours": "x"}, "hours", id="hours-text"),
        pytest.param({"project": "a", "gpu_type": "h200", "partition": 3}, "partition", id="partition-number"),
        pytest.param({"project": "a", "script": "x"}, "script", id="unknown-key"),
    ],
)
def test_basic_spawn_request_names_the_field(options, field) -> None:
    with pytest.raises(LedgerInputError) as error:
        views.basic_spawn_request(options, projects=["a", "b"], gpu_types=["a100", "h200"])
    assert error.value.field == field
