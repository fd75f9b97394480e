"""Courses: rules, their checks inside the admission, the roster CSV, joining at
login, the report. Runs on SQLite here and on PostgreSQL in tests/integration."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from hub.ledger import BudgetRefused, Ledger, LedgerInputError, upgrade
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.courses import (
    CourseRules,
    OnDrop,
    course_refusal,
    make_rules,
    parse_roster_csv,
)
from hub.ledger.types import Booking, ProjectKind, Role

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
RULES = CourseRules(per_student_mgs=5 * H, gpu_types=("a100",), max_gpus=1, max_seconds=2 * 3600, max_sessions=1)


# --- the rules (pure) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"per_student": 0}, "per_student", id="per-student-zero"),
        pytest.param({"per_student": "x"}, "per_student", id="per-student-text"),
        pytest.param({"per_student": 5, "gpu_types": "a100,A100;rm"}, "gpu_types", id="gpu-type-shell"),
        pytest.param({"per_student": 5, "gpu_types": "a100,a100"}, "gpu_types", id="gpu-type-twice"),
        pytest.param({"per_student": 5, "max_gpus": 0}, "max_gpus", id="max-gpus-zero"),
        pytest.param({"per_student": 5, "max_gpus": "2.5"}, "max_gpus", id="max-gpus-fraction"),
        pytest.param({"per_student": 5, "max_hours": "0.1"}, "max_hours", id="max-hours-not-quarter"),
        pytest.param({"per_student": 5, "max_sessions": 101}, "max_sessions", id="max-sessions-high"),
        pytest.param({"per_student": 5, "reservation": "lab hour"}, "reservation", id="reservation-space"),
    ],
)
def test_bad_rules_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(LedgerInputError) as caught:
        make_rules(**kwargs)
    assert caught.value.field == field


def test_rules_from_what_an_admin_typed() -> None:
    rules = make_rules(
        per_student="5", gpu_types="a100, h200", max_gpus="1", max_hours="2", max_sessions=1, reservation="cs101-lab"
    )
    assert rules == CourseRules(5 * H, ("a100", "h200"), 1, 7200, 1, "cs101-lab")
    assert rules.describe()[0] == "each student's cap: 5.0 GPU-h"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(("a100", 1, 3600, 0), None, id="within-every-rule"),
        pytest.param(
            ("h200", 1, 3600, 0),
            "cs101 allows students only a100 GPUs (course rule gpu-types); this request asks for h200.",
            id="gpu-type",
        ),
        pytest.param(
            ("a100", 2, 3600, 0),
            "cs101 allows students at most 1 GPU per session (course rule max-gpus); this request asks for 2.",
            id="max-gpus",
        ),
        pytest.param(
            ("a100", 1, 3 * 3600, 0),
            "cs101 allows students at most 2 h per session (course rule max-hours); this session would reserve 3 h.",
            id="max-hours",
        ),
        pytest.param(
            ("a100", 1, 3600, 1),
            "cs101 allows students at most 1 session at once (course rule max-sessions); you have 1 running or "
            "starting. Stop one first.",
            id="max-sessions",
        ),
        pytest.param(("a100", 1, 3600, None), None, id="an-extension-starts-no-session"),
        pytest.param((None, 0, 3600, 0), None, id="cpu-only"),
    ],
)
def test_course_refusal_names_the_rule(request_: tuple, expected: str | None) -> None:
    gpu_type, gpus, seconds, held = request_
    assert (
        course_refusal("cs101", RULES, gpu_type=gpu_type, gpus=gpus, total_seconds=seconds, sessions_held=held)
        == expected
    )


LAB_ONLY = CourseRules(per_student_mgs=5 * H, reservation="cs101-lab", lab_hours_only=True)


@pytest.mark.parametrize(
    ("rules", "held", "on", "expected"),
    [
        pytest.param(LAB_ONLY, 0, True, None, id="lab-hours-on"),
        pytest.param(
            LAB_ONLY,
            0,
            False,
            "cs101 lets students start sessions only during its lab hours (course rule lab-hours-only); they are off now.",
            id="lab-hours-off",
        ),
        pytest.param(
            LAB_ONLY,
            0,
            None,
            "cs101 lets students start sessions only during its lab hours (course rule lab-hours-only); whether they "
            "are on is not known now; try again shortly.",
            id="lab-hours-unknown",
        ),
        pytest.param(LAB_ONLY, None, False, None, id="an-extension-outside-the-lab-hours"),
        pytest.param(replace(LAB_ONLY, lab_hours_only=False), 0, False, None, id="queues-normally-without-the-rule"),
    ],
)
def test_lab_hours_only(rules: CourseRules, held, on, expected) -> None:
    assert course_refusal("cs101", rules, gpu_type="a100", gpus=1, total_seconds=3600, sessions_held=held,
                          lab_hours_on=on) == expected  # fmt: skip


def test_lab_hours_only_needs_a_reservation() -> None:
    with pytest.raises(LedgerInputError) as caught:
        make_rules(per_student=5, lab_hours_only=True)
    assert caught.value.field == "lab_hours_only"
    assert make_rules(per_student=5, reservation="cs101-lab", lab_hours_only="yes").lab_hours_only


def test_lab_hours_only_binds_students_in_the_admission(courses: Ledger) -> None:
    with pytest.raises(LedgerInputError) as caught:  # cs101 here has no reservation
        courses.set_course_settings("cs101", replace(RULES, lab_hours_only=True), reason="x", who="dave", now=NOW)
    assert caught.value.field == "lab_hours_only"
    courses.create_course("cs102", account="cs102", start="2026-01-01", end="2026-06-30", gpu_hours=50,
                          rules=replace(RULES, reservation="cs102-lab"), who="admin", now=NOW)  # fmt: skip
    courses.add_member("cs102", "carol", role="student", who="admin", now=NOW)
    courses.add_member("cs102", "dave", role="instructor", who="admin", now=NOW)
    rules, changed = courses.set_course_settings(
        "cs102", replace(courses.course_rules("cs102"), lab_hours_only=True), reason="labs only", who="dave", now=NOW
    )
    assert rules.lab_hours_only and changed == ["lab-hours-only"]
    with pytest.raises(BudgetRefused, match=r"\(course rule lab-hours-only\); they are off now"):
        courses.admit("cs102", "carol", "", Booking("a100", 1, 1), now=NOW, lab_hours_on=False)
    assert not courses.preview("cs102", "carol", Booking("a100", 1, 1), now=NOW).allowed  # not known: refused
    assert courses.admit("cs102", "carol", "", Booking("a100", 1, 1), now=NOW, lab_hours_on=True)
    assert courses.admit("cs102", "dave", "", Booking("a100", 1, 1), now=NOW, lab_hours_on=False)  # staff are not bound


@pytest.mark.parametrize(
    ("text", "principals", "problems"),
    [
        pytest.param(
            "principal,role\nann@uni.example,student\nben@uni.example,ta\n",
            ["ann@uni.example", "ben@uni.example"],
            [],
            id="header-and-roles",
        ),
        pytest.param("Ann@Uni.Example\n\n# comment\n", ["ann@uni.example"], [], id="default-student-lowercased"),
        pytest.param(
            "ann@uni.example\nnot a principal\nben@uni.example,professor\nann@uni.example,student\nc@u.example,ta,x\n",
            ["ann@uni.example"],
            [
                "line 2: 'not a principal' is not a principal like name@uni.example",
                "line 3: role 'professor' is not one of student, ta, instructor",
                "line 4: ann@uni.example is listed twice (first on line 1)",
                "line 5: expected principal[,role], got 3 fields",
            ],
            id="every-bad-row-reported",
        ),
        pytest.param(
            "$(reboot)@uni.example\n",
            [],
            ["line 1: '$(reboot)@uni.example' is not a principal like name@uni.example"],
            id="shell",
        ),
    ],
)
def test_roster_csv(text: str, principals: list[str], problems: list[str]) -> None:
    rows, found = parse_roster_csv(text)
    assert [row.principal for row in rows] == principals
    assert [str(problem) for problem in found] == problems


# --- in the ledger ------------------------------------------------------------------------------------


@pytest.fixture
def courses(ledger_url: str) -> Ledger:
    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        ledger.create_course(
            "cs101",
            account="cs101",
            start="2026-01-01",
            end="2026-06-30",
            gpu_hours=50,
            rules=RULES,
            who="admin",
            now=NOW,
        )
        ledger.add_member("cs101", "dave", role="instructor", who="admin", now=NOW)
        ledger.add_member("cs101", "carol", role="student", who="admin", now=NOW)
        yield ledger


def test_a_course_is_a_project_with_rules_and_students_get_the_per_student_cap(courses: Ledger) -> None:
    assert courses.project("cs101").kind is ProjectKind.COURSE
    assert courses.course_rules("cs101") == RULES
    carol = next(m for m in courses.usage("cs101", now=NOW)["members"] if m["user"] == "carol")
    assert carol["cap_gpu_hours"] == 5.0
    dave = next(m for m in courses.usage("cs101", now=NOW)["members"] if m["user"] == "dave")
    assert dave["cap_gpu_hours"] is None


def test_rules_bind_students_in_the_admission_not_instructors(courses: Ledger) -> None:
    with pytest.raises(BudgetRefused) as caught:
        courses.admit("cs101", "carol", "", Booking("a100", 2, 1), now=NOW)
    assert caught.value.message.startswith("cs101 allows students at most 1 GPU per session (course rule max-gpus)")
    preview = courses.preview("cs101", "carol", Booking("h200", 1, 1), now=NOW)
    assert not preview.allowed and "course rule gpu-types" in preview.message
    assert preview.project_left_mgs == 50 * H  # the figures are there for the form
    courses.admit("cs101", "dave", "", Booking("h200", 2, 3), now=NOW)  # the instructor is not bound


def test_an_extension_past_max_hours_is_refused(courses: Ledger) -> None:
    session_id = courses.admit("cs101", "carol", "", Booking("a100", 1, "1.5"), now=NOW)
    with pytest.raises(BudgetRefused) as caught:
        courses.extend(session_id, 1, now=NOW)
    assert "course rule max-hours); this session would reserve 2.5 h" in caught.value.message
    assert courses.extend(session_id, "0.5", now=NOW).allowed


def test_two_concurrent_spawns_of_one_student_start_exactly_one(courses: Ledger, ledger_url: str) -> None:
    start_line = threading.Barrier(2)

    def spawn(server: str) -> bool:
        with Ledger(ledger_url) as ledger:
            start_line.wait(timeout=30)
            try:
                ledger.admit("cs101", "carol", server, Booking("a100", 1, 1), now=NOW)
                return True
            except BudgetRefused as refused:
                assert "course rule max-sessions" in refused.message
                return False

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(spawn, ["one", "two"]))
    assert sorted(outcomes) == [False, True]
    assert courses.usage("cs101", now=NOW)["held_gpu_hours"] == 0.5  # 1 x a100 x 1 h


def test_after_the_term_the_closed_reason_comes_first(courses: Ledger) -> None:
    later = datetime(2026, 7, 1, 9, 0, tzinfo=timezone.utc)
    refused = courses.preview("cs101", "carol", Booking("h200", 4, 8), now=later)
    assert not refused.allowed and "course rule" not in refused.message and "2026-06-30" in refused.message


def test_roster_import_is_all_or_nothing_and_idempotent(courses: Ledger) -> None:
    rows, problems = parse_roster_csv("ann@uni.example\nben@uni.example,ta\n")
    assert not problems
    first = courses.import_roster("cs101", rows, who="dave", now=NOW)
    assert first.added == ("ann@uni.example", "ben@uni.example") and first.unchanged == ()
    again = courses.import_roster("cs101", rows, who="dave", now=NOW)
    assert again.added == () and again.unchanged == ("ann@uni.example", "ben@uni.example")
    conflicting, _ = parse_roster_csv("cid@uni.example\nann@uni.example,ta\n")
    with pytest.raises(LedgerInputError) as caught:
        courses.import_roster("cs101", conflicting, who="dave", now=NOW)
    assert "line 2: ann@uni.example is on the roster as student, not ta" in str(caught.value)
    assert [p for p, _role, _user in courses.roster("cs101")] == ["ann@uni.example", "ben@uni.example"]  # no cid


def test_a_research_project_has_no_roster(courses: Ledger) -> None:
    courses.create_project("lab", account="lab", kind="research", gpu_hours=1, who="admin", now=NOW)
    with pytest.raises(LedgerInputError) as caught:
        courses.import_roster("lab", parse_roster_csv("ann@uni.example")[0], who="admin", now=NOW)
    assert caught.value.field == "project"


def test_joining_at_login_makes_the_member_once(courses: Ledger) -> None:
    courses.import_roster("cs101", parse_roster_csv("Ann@uni.example\nben@uni.example,ta\n")[0], who="dave", now=NOW)
    assert courses.join_roster("ann@uni.example", "ann", now=NOW) == [("cs101", "student")]
    assert courses.join_roster("ann@uni.example", "ann", now=NOW) == []
    members = {m["user"]: m for m in courses.usage("cs101", now=NOW)["members"]}
    assert members["ann"]["role"] == "student" and members["ann"]["cap_gpu_hours"] == 5.0
    assert "ben" not in members
    assert ("ann@uni.example", "student", "ann") in courses.roster("cs101")
    assert ("ben@uni.example", "ta", None) in courses.roster("cs101")


def test_the_report_lists_every_member_ever(courses: Ledger) -> None:
    session_id = courses.admit("cs101", "carol", "", Booking("a100", 1, 1), now=NOW)
    courses.record_job_id(session_id, "4711")
    courses.session_started(session_id, NOW)
    courses.session_ended(session_id, NOW, 1800)
    courses.set_cap("cs101", "carol", 7, reason="extension for the project", who="dave", now=NOW)
    courses.remove_member("cs101", "carol", who="dave", now=NOW)
    report = {row.user: row for row in courses.course_report("cs101", now=NOW)}
    assert report["carol"].sessions == 1 and report["carol"].extensions == 1
    assert report["carol"].used_mgs == H // 4  # 0.5 h x a100 (0.5)
    assert report["dave"].role == Role.INSTRUCTOR.value and report["dave"].sessions == 0


GROUP_ROLES = {"{course}-students": "student", "{course}-tas": "ta", "{course}-instructors": "instructor"}


def test_idp_groups_add_and_end_course_memberships(courses: Ledger) -> None:
    assert courses.sync_course_groups("zoe", {"hpc-users", "cs101-students"}, GROUP_ROLES, now=NOW) == [
        "zoe joined cs101 as student (IdP group cs101-students)"
    ]
    assert courses.sync_course_groups("zoe", {"cs101-students"}, GROUP_ROLES, now=NOW) == []  # idempotent
    zoe = next(m for m in courses.usage("cs101", now=NOW)["members"] if m["user"] == "zoe")
    assert (zoe["role"], zoe["cap_gpu_hours"]) == ("student", 5.0)
    assert courses.sync_course_groups("zoe", {"hpc-users"}, GROUP_ROLES, now=NOW) == [
        "zoe left cs101 (no longer in cs101-students)"
    ]
    assert "zoe" not in {m["user"] for m in courses.usage("cs101", now=NOW)["members"]}
    # the highest role a group gives; a membership an admin made is never ended by groups
    assert courses.sync_course_groups("yan", {"cs101-students", "cs101-tas"}, GROUP_ROLES, now=NOW) == [
        "yan joined cs101 as ta (IdP group cs101-tas)"
    ]
    assert courses.sync_course_groups("carol", set(), GROUP_ROLES, now=NOW) == []
    assert "carol" in {m["user"] for m in courses.usage("cs101", now=NOW)["members"]}


def test_group_roles_must_be_roles(courses: Ledger) -> None:
    with pytest.raises(LedgerInputError) as caught:
        courses.sync_course_groups("zoe", {"cs101-students"}, {"{course}-students": "boss"}, now=NOW)
    assert caught.value.field == "group_roles"


# --- the instructor's settings (append-only) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2", 2 * H, id="hours"),
        pytest.param("0", 0, id="zero-no-extensions"),
        pytest.param("none", None, id="none-site-rule"),
        pytest.param(None, None, id="unset"),
    ],
)
def test_ta_extension_limit_values(value, expected) -> None:
    assert make_rules(per_student=5, ta_extension_limit=value).ta_extension_mgs == expected


@pytest.mark.parametrize("value", ["-1", "x", "0.00001"], ids=["negative", "text", "too-fine"])
def test_a_bad_ta_extension_limit_names_the_field(value) -> None:
    with pytest.raises(LedgerInputError) as caught:
        make_rules(per_student=5, ta_extension_limit=value)
    assert caught.value.field == "ta_extension_limit"


def test_settings_are_appended_never_rewritten(courses: Ledger) -> None:
    assert courses.course_rules("cs101").ta_extension_mgs is None
    assert courses.course_setting_history("cs101") == []
    wanted = replace(courses.course_rules("cs101"), ta_extension_mgs=2 * H)
    rules, changed = courses.set_course_settings("cs101", wanted, reason="lab week", who="dave", now=NOW)
    assert (rules.ta_extension_mgs, changed) == (2 * H, ["ta-extension-limit"])
    assert courses.set_course_settings("cs101", wanted, reason="again", who="dave", now=NOW)[1] == []
    courses.set_course_settings("cs101", replace(wanted, ta_extension_mgs=None), reason="off", who="dave", now=NOW)
    assert courses.course_rules("cs101").ta_extension_mgs is None
    assert [(s, v, r) for s, v, r, _who, _at in courses.course_setting_history("cs101")] == [
        ("ta-extension-limit", str(2 * H), "lab week"),
        ("ta-extension-limit", "", "off"),
    ]
    assert "a TA may extend" not in " ".join(courses.course_rules("cs101").describe())


def test_a_course_created_with_a_ta_limit_records_it(ledger_url: str) -> None:
    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        rules = make_rules(per_student=5, ta_extension_limit="1.5")
        ledger.create_course("cs102", account="cs102", start="2026-01-01", end="2026-06-30", gpu_hours=10,
                             rules=rules, who="admin", now=NOW)  # fmt: skip
        assert ledger.course_rules("cs102") == rules
        assert [row[:3] for row in ledger.course_setting_history("cs102")] == [
            ("ta-extension-limit", str(int(1.5 * H)), "set when created")
        ]
        with pytest.raises(LedgerInputError):
            ledger.create_project("lab1", account="lab1", kind="research", gpu_hours=1, who="admin", now=NOW)
            ledger.set_course_settings("lab1", rules, reason="x", who="admin", now=NOW)


# --- a dropped student's running sessions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_drop", "who", "expected"),
    [
        pytest.param(
            "stop",
            "carol",
            {
                ("cs101", "carol"): "stopped: carol was dropped from cs101 (membership ended "
                "by IdP group cs101-students (left)); the course stops a dropped student's "
                "sessions (course setting on-drop)"
            },
            id="stop-a-student",
        ),
        pytest.param("finish", "carol", {}, id="finish"),
        pytest.param("stop", "dave", {}, id="an-instructor-is-not-a-dropped-student"),
    ],
)
def test_dropped_students_to_stop(courses: Ledger, on_drop, who, expected) -> None:
    rules, _changed = courses.set_course_settings("cs101", replace(courses.course_rules("cs101"), on_drop=OnDrop(on_drop)),
                                                  reason="test", who="dave", now=NOW)  # fmt: skip
    assert rules.on_drop is OnDrop(on_drop)
    session_id = courses.admit("cs101", who, "", Booking("a100", 1, 1), now=NOW)
    courses.record_job_id(session_id, "41")
    courses.session_started(session_id, NOW)
    assert courses.dropped_students_to_stop() == {}
    courses.remove_member("cs101", who, who="IdP group cs101-students (left)", now=NOW)
    assert courses.dropped_students_to_stop() == expected
    courses.add_member("cs101", who, role="student", who="admin", now=NOW)  # back: nothing to stop
    assert courses.dropped_students_to_stop() == {}


def test_on_drop_values() -> None:
    assert make_rules(per_student=5).on_drop is OnDrop.FINISH
    assert make_rules(per_student=5, on_drop="stop").on_drop is OnDrop.STOP
    with pytest.raises(LedgerInputError) as caught:
        make_rules(per_student=5, on_drop="kill")
    assert caught.value.field == "on_drop"


def test_the_budget_watch_stops_a_dropped_students_session_and_notes_why(courses: Ledger) -> None:
    from datetime import timedelta  # noqa: PLC0415

    from hub.ledger.enforce import ExhaustionTracker  # noqa: PLC0415
    from hub.reconcile.budget_watch import stop_exhausted_sessions  # noqa: PLC0415

    class Hub:
        stopped: list[tuple[str, str]] = []

        def stop_server(self, user: str, server_name: str) -> int:
            self.stopped.append((user, server_name))
            return 204

    courses.set_course_settings("cs101", replace(courses.course_rules("cs101"), on_drop=OnDrop.STOP), reason="t",
                                who="dave", now=NOW)  # fmt: skip
    session_id = courses.admit("cs101", "carol", "lab", Booking("a100", 1, 1), now=NOW)
    courses.record_job_id(session_id, "43")
    courses.session_started(session_id, NOW)
    courses.remove_member("cs101", "carol", who="roster sync", now=NOW)
    hub, tracker = Hub(), ExhaustionTracker(grace=timedelta(seconds=3))
    assert stop_exhausted_sessions(courses, tracker, hub, now=NOW) == []  # the grace starts
    (line,) = stop_exhausted_sessions(courses, tracker, hub, now=NOW + timedelta(seconds=3))
    assert (
        hub.stopped == [("carol", "lab")] and "carol was dropped from cs101 (membership ended by roster sync)" in line
    )
    assert courses.session(session_id).message.startswith("stopped: carol was dropped from cs101")


# --- hpchub course sync: from the groups recorded at the last login -----------------------------------------


def test_login_groups_are_appended_only_when_they_change(courses: Ledger) -> None:
    assert courses.record_login_groups("zoe", {"hpc-users", "cs101-students"}, now=NOW)
    assert not courses.record_login_groups("zoe", ["cs101-students", "hpc-users"], now=NOW)  # the same set
    assert courses.record_login_groups("zoe", {"hpc-users"}, now=NOW)
    assert courses.login_groups() == {"zoe": ({"hpc-users"}, NOW)}
    assert (
        not courses.record_login_groups("yan", {"x" * 201, "a\nb"}, now=NOW)
        or courses.login_groups()["yan"][0] == set()
    )


def test_course_sync_applies_each_users_recorded_groups_to_one_course(courses: Ledger) -> None:
    courses.create_course("cs102", account="cs102", start="2026-01-01", end="2026-06-30", gpu_hours=50, rules=RULES,
                          who="admin", now=NOW)  # fmt: skip
    courses.record_login_groups("zoe", {"cs101-students", "cs102-students"}, now=NOW)
    courses.record_login_groups("yan", {"cs101-tas"}, now=NOW)
    courses.sync_course_groups("wes", {"cs101-students"}, GROUP_ROLES, now=NOW)  # a member from before recording
    result = courses.sync_course("cs101", GROUP_ROLES, now=NOW)
    assert result.changes == (
        "yan joined cs101 as ta (IdP group cs101-tas)",
        "zoe joined cs101 as student (IdP group cs101-students)",
    )
    assert (result.users_read, result.unrecorded) == (2, ("wes",))
    assert "zoe" not in {m["user"] for m in courses.usage("cs102", now=NOW)["members"]}  # one course only
    assert courses.sync_course("cs101", GROUP_ROLES, now=NOW).changes == ()  # idempotent
    courses.record_login_groups("zoe", {"hpc-users"}, now=NOW)  # zoe left the group (seen at her next login)
    assert courses.sync_course("cs101", GROUP_ROLES, now=NOW).changes == (
        "zoe left cs101 (no longer in cs101-students)",
    )
    assert {m["user"] for m in courses.usage("cs101", now=NOW)["members"]} == {"dave", "carol", "yan", "wes"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param("research", "lab1 is a research project, not a course", id="not-a-course"),
        pytest.param("closed", "lab1 is closed: its roster is no longer synced", id="closed"),
    ],
)
def test_course_sync_refuses(courses: Ledger, setup, message) -> None:
    if setup == "research":
        courses.create_project("lab1", account="lab1", kind="research", gpu_hours=1, who="admin", now=NOW)
    else:
        courses.create_course("lab1", account="lab1", start="2026-01-01", end="2026-06-30", gpu_hours=5, rules=RULES,
                              who="admin", now=NOW)  # fmt: skip
        courses.close_project("lab1", reason="term end", who="admin", now=NOW)
    with pytest.raises(LedgerInputError, match=message):
        courses.sync_course("lab1", GROUP_ROLES, now=NOW)


def test_settings_and_login_groups_cannot_be_rewritten(courses: Ledger) -> None:
    from sqlalchemy import select  # noqa: PLC0415

    from hub.ledger.models import CourseSetting, LoginGroups  # noqa: PLC0415

    courses.set_course_settings("cs101", replace(RULES, ta_extension_mgs=H), reason="t", who="dave", now=NOW)
    courses.record_login_groups("carol", {"cs101-students"}, now=NOW)
    for model, column in ((CourseSetting, "value"), (LoginGroups, "groups")):
        with courses._sessions() as session:
            row = session.scalars(select(model)).first()
            setattr(row, column, "rewritten")
            with pytest.raises(RuntimeError, match=f"{model.__name__} rows are append-only"):
                session.flush()
