"""A course's settings through the API: the body's checks (the CLI's own) and the answer."""

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


# --- creating a course (the page's POST /courses and the CLI: one validation) ----------------------------------

GOOD = {"name": "cs102", "account": "cs102", "start": "2026-09-01", "end": "2027-01-31", "gpu_hours": 200,
        "per_student": "5"}  # fmt: skip


@pytest.fixture
def ledger(ledger_url: str):
    from hub.ledger import Ledger, upgrade  # noqa: PLC0415

    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=1, who="admin")
        yield ledger


@pytest.mark.parametrize(("change", "field", "message"), [
    pytest.param({"name": "CS 102"}, "name", "name: 2 to 40 characters", id="bad-name"),
    pytest.param({"name": "vision-lab"}, "name", "name: vision-lab already exists", id="name-taken"),
    pytest.param({"account": "vision-lab"}, "account", "account: vision-lab is already the account", id="account-taken"),
    pytest.param({"account": "root"}, "account", "account: 'root' is Slurm's root account, the parent of every "
                 "account", id="account-root"),
    pytest.param({"account": "dept"}, "account", "account: 'dept' is the parent of other Slurm accounts (dept-a)",
                 id="account-a-parent"),
    pytest.param({"account": "cs999"}, "account", "account: Slurm has no account 'cs999'", id="account-unknown"),
    pytest.param({"account": "Root;x"}, "account", "account: a Slurm account", id="account-malformed"),
    pytest.param({"reservation": "maint"}, "reservation", "reservation: must be the course's own lab-hours "
                 "reservation cs102-lab", id="reservation-foreign"),
    pytest.param({"reservation": "cs101-lab"}, "reservation", "reservation: must be", id="reservation-another-course"),
    pytest.param({"start": "2026-13-01"}, "start", "start: an ISO date", id="bad-start"),
    pytest.param({"end": "2026-08-01"}, "end", "end: 2026-08-01 is before the start", id="end-before-start"),
    pytest.param({"gpu_hours": -1}, "gpu_hours", "gpu_hours: must be >= 0", id="negative-budget"),
    pytest.param({"per_student": 0}, "per_student", "per_student: must be more than 0", id="per-student-zero"),
    pytest.param({"per_student": None}, "per_student", "per_student: required", id="per-student-missing"),
    pytest.param({"max_gpus": "0"}, "max_gpus", "max_gpus: must be from 1 to 64", id="max-gpus"),
    pytest.param({"max_hours": "0.1"}, "max_hours", "max_hours:", id="max-hours"),
    pytest.param({"gpu_types": "a100;rm"}, "gpu_types", "gpu_types:", id="gpu-types"),
    pytest.param({"lab_hours_only": True}, "lab_hours_only", "lab_hours_only: needs", id="lab-only-without-reservation"),
    pytest.param({"on_drop": "kill"}, "on_drop", "on_drop: one of finish|stop", id="on-drop"),
    pytest.param({"idle_stop_after": "0"}, "idle_stop_after", "idle_stop_after: must be a whole number of minutes "
                 "from 1 to 10080", id="idle-stop-zero"),
    pytest.param({"instructor": "Dave!"}, "instructor", "instructor: a Unix user name", id="instructor"),
    pytest.param({"budget": 5}, "budget", "budget: unknown field", id="unknown-field"),
])  # fmt: skip
def test_a_bad_course_names_the_field_and_creates_nothing(ledger, slurm_accounts, change, field, message) -> None:
    from hub.api.courses import course_fields, field_error  # noqa: PLC0415
    from hub.ledger.course_records import new_course  # noqa: PLC0415

    with pytest.raises(LedgerInputError) as caught:
        new_course(ledger, course_fields({**GOOD, **change}), who="admin", slurm_accounts=slurm_accounts)
    assert field_error(caught.value)[0] == field and field_error(caught.value)[1].startswith(message)
    assert [p.name for p in ledger.projects()] == ["vision-lab"]


def test_a_course_from_the_page_with_its_instructor(ledger, slurm_accounts) -> None:
    from hub.api.courses import course_fields, created_json  # noqa: PLC0415
    from hub.ledger.course_records import new_course  # noqa: PLC0415

    body = {**GOOD, "gpu_types": "a100", "max_gpus": "1", "reservation": "cs102-lab", "lab_hours_only": True,
            "on_drop": "stop", "ta_extension_limit": "2", "idle_stop_after": "15", "instructor": "dave"}  # fmt: skip
    info, rules = new_course(ledger, course_fields(body), who="dave (hpchub API)", slurm_accounts=slurm_accounts)
    assert ledger.course_rules("cs102") == rules and rules.lab_hours_only and rules.on_drop is OnDrop.STOP
    assert rules.idle_stop_minutes == 15
    assert [(m.user, m.role.value) for m in ledger.figures("cs102").members] == [("dave", "instructor")]
    answer = created_json(info, rules, "/hub/")
    assert answer["dashboard"] == "/hub/hpchub/courses/cs102" and answer["start"] == "2026-09-01"


@pytest.mark.parametrize(("who", "max_h", "budget", "instructor", "refused"), [
    pytest.param("admin", None, 10_000, "dave", None, id="admin-anything"),
    pytest.param("instructor", 500, 500, None, None, id="instructor-within"),
    pytest.param("instructor", 500, 500, "dave", None, id="instructor-self"),
    pytest.param("instructor", 500, 501, None, "gpu_hours: an instructor may give a new course at most 500.0 GPU-h",
                 id="instructor-over"),
    pytest.param("instructor", None, 5, None, "instructors may not create courses on this hub", id="site-disallows"),
    pytest.param("instructor", 500, 5, "erin", "instructor: an instructor creates a course for themself",
                 id="instructor-for-another"),
    pytest.param("student", 500, 5, None, "only the portal's admins and the instructors of a course", id="student"),
])  # fmt: skip
def test_who_may_create_a_course(who, max_h, budget, instructor, refused) -> None:
    from hub.api.access import check_course_creation  # noqa: PLC0415

    refusal = check_course_creation(
        caller="dave", is_admin=who == "admin", instructs_a_course=who == "instructor",
        max_mgs=None if max_h is None else max_h * H, gpu_hours_mgs=budget * H, instructor=instructor,
    )  # fmt: skip
    if refused is None:
        assert refusal is None
    else:
        assert refusal.status == 403 and refusal.message.startswith(refused)
