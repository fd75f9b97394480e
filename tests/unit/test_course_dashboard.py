"""Unit tests for the course dashboard (hub/project_pages/course_tables.py, course_gather.py): the rows'
flags and bars, who sees which rows, the lab hours in words, the lab-hours body, and the live
part's template; on a SQLite ledger in tmp_path where the ledger is read."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hub.api import lab_hours_state
from hub.api.access import project_access
from hub.api.lab_hours_state import LabState
from hub.api.views import LabHoursChange, parse_lab_hours_body
from hub.ledger import Ledger, LedgerInputError, NotFound, upgrade
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.course_records import REPORT_COLUMNS, ReportRow
from hub.ledger.courses import RosterRow, make_rules
from hub.ledger.types import Booking, MemberUsage, Role, SessionInfo, SessionState
from hub.project_pages import course_gather, course_tables
from hub.project_pages.course_tables import Flag, StudentRow
from hub.project_pages.gather import Viewer

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
INSTRUCTOR = project_access(Role.INSTRUCTOR, is_admin=False)
TA = project_access(Role.TA, is_admin=False)
STUDENT = project_access(Role.STUDENT, is_admin=False)
ADMIN = project_access(None, is_admin=True)
NOBODY = project_access(None, is_admin=False)


def row(**kwargs) -> StudentRow:
    values = {"user": "carol", "role": "student", "used_mgs": 0, "held_mgs": 0, "cap_mgs": 5 * H, "sessions": 1,
              "running": 0, "starting": 0, "extensions": 0}  # fmt: skip
    return StudentRow(**{**values, **kwargs})


# --- flags and bars --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "flags"), [
    pytest.param({}, (), id="idle-student"),
    pytest.param({"sessions": 0}, (Flag.NEVER_STARTED,), id="never-started"),
    pytest.param({"sessions": 1, "running": 1}, (Flag.RUNNING,), id="running"),
    pytest.param({"sessions": 0, "starting": 1}, (Flag.STARTING,), id="first-session-starting-is-not-never"),
    pytest.param({"used_mgs": 4 * H - 1}, (), id="just-below-80-percent"),
    pytest.param({"used_mgs": 4 * H}, (Flag.NEAR_CAP,), id="exactly-80-percent"),
    pytest.param({"used_mgs": 6 * H}, (Flag.NEAR_CAP,), id="over-the-cap"),
    pytest.param({"used_mgs": 0, "cap_mgs": 0}, (Flag.NEAR_CAP,), id="cap-zero"),
    pytest.param({"used_mgs": 9 * H, "cap_mgs": None, "role": "ta"}, (), id="no-cap-never-near"),
    pytest.param({"sessions": 0, "cap_mgs": None, "role": "instructor"}, (), id="staff-never-flagged-never-started"),
    pytest.param({"sessions": 0, "role": "member"}, (Flag.NEVER_STARTED,), id="member-never-started"),
    pytest.param({"running": 1, "used_mgs": 9 * H // 2}, (Flag.RUNNING, Flag.NEAR_CAP), id="running-and-near"),
])  # fmt: skip
def test_flags(kwargs: dict, flags: tuple) -> None:
    assert row(**kwargs).flags == flags


def test_flag_words_and_keys() -> None:
    r = row(running=1, used_mgs=9 * H // 2)
    assert r.cells["flags"] == "running now, near the cap"
    assert r.flag_keys == "running near-cap"
    assert row(sessions=0).cells["flags"] == "never started"
    assert row().cells["flags"] == "-"


@pytest.mark.parametrize(("kwargs", "expected"), [
    pytest.param({"used_mgs": 13 * H // 4}, (3.25, 5.0, 4.0, 4.75, "3.25 of 5.0 GPU-h (65.0 %)"), id="part-used"),
    pytest.param({"used_mgs": 6 * H}, (5.0, 5.0, 4.0, 4.75, "6.0 of 5.0 GPU-h (120.0 %)"), id="over-clamped-meter"),
    pytest.param({"used_mgs": 0, "cap_mgs": 7 * H}, (0.0, 7.0, 5.6, 6.65, "0.0 of 7.0 GPU-h (0.0 %)"), id="extended"),
    pytest.param({"used_mgs": H // 3, "cap_mgs": 5 * H}, (0.3333, 5.0, 4.0, 4.75, "0.3333 of 5.0 GPU-h (6.6 %)"),
                 id="exact-rounding"),
    pytest.param({"used_mgs": H, "cap_mgs": 0}, (0.0, 0.0, 0.0, 0.0, "1.0 GPU-h used, cap 0 GPU-h"), id="cap-zero"),
])  # fmt: skip
def test_bar_is_a_meter_with_the_figures_in_words(kwargs: dict, expected: tuple) -> None:
    bar = row(**kwargs).bar
    assert (bar.value, bar.maximum, bar.low, bar.high, bar.text) == expected


def test_no_cap_no_bar_and_cap_left() -> None:
    assert row(cap_mgs=None, role="instructor").bar is None
    assert row(cap_mgs=None).cells["cap"] == "none" and row(cap_mgs=None).cells["cap_left"] == "-"
    r = row(used_mgs=H, held_mgs=H // 2)
    assert r.cells["cap_left"] == "3.5" and r.cap_exact == "5.0"
    assert r.values == {"used": 1.0, "held": 0.5, "cap": 5.0}


# --- visibility ------------------------------------------------------------------------------------------

MEMBERS = (
    MemberUsage("dave", Role.INSTRUCTOR, None, 0, 0),
    MemberUsage("tom", Role.TA, None, 0, 0),
    MemberUsage("zoe", Role.STUDENT, 5 * H, 0, 0),
    MemberUsage("carol", Role.STUDENT, 7 * H, 4 * H, H // 2),
)
REPORT = (
    ReportRow("carol", "student", 3, 4 * H, 7 * H, 1),
    ReportRow("dave", "instructor", 0, 0, None, 0),
    ReportRow("tom", "ta", 0, 0, None, 0),
    ReportRow("zoe", "student", 0, 0, 5 * H, 0),
    ReportRow("gone", "student", 2, H, 5 * H, 0),  # left the course: in the report, not a row
)


def session(user: str, state: SessionState) -> SessionInfo:
    return SessionInfo(1, "cs101", user, "", "9", "a100", 1, 3600, 500, state, None, NOW, NOW, None)


@pytest.mark.parametrize(("viewer", "access", "users"), [
    pytest.param("dave", INSTRUCTOR, ["carol", "zoe", "tom", "dave"], id="instructor-sees-all-students-first"),
    pytest.param("tom", TA, ["carol", "zoe", "tom", "dave"], id="ta-sees-all"),
    pytest.param("admin", ADMIN, ["carol", "zoe", "tom", "dave"], id="admin-sees-all"),
    pytest.param("carol", STUDENT, ["carol"], id="student-sees-only-herself"),
    pytest.param("zoe", STUDENT, ["zoe"], id="other-student-only-herself"),
    pytest.param("eve", NOBODY, [], id="outsider-nothing"),
    pytest.param(None, STUDENT, [], id="no-ledger-name-nothing"),
])  # fmt: skip
def test_who_sees_which_rows(viewer, access, users) -> None:
    rows = course_tables.student_rows(MEMBERS, REPORT, [session("carol", SessionState.RUNNING)], viewer=viewer,
                                      access=access)  # fmt: skip
    assert [r.user for r in rows] == users


def test_rows_carry_the_reports_sessions_and_extensions_and_the_running_sessions() -> None:
    active = [session("carol", SessionState.RUNNING), session("zoe", SessionState.ADMITTED)]
    rows = {r.user: r for r in course_tables.student_rows(MEMBERS, REPORT, active, viewer="dave", access=INSTRUCTOR)}
    carol, zoe = rows["carol"], rows["zoe"]
    assert (carol.sessions, carol.extensions, carol.running, carol.held_mgs) == (3, 1, 1, H // 2)
    assert carol.flags == (Flag.RUNNING,)  # 4 of 7 GPU-h: 57 %
    assert zoe.flags == (Flag.STARTING,)
    assert (
        course_tables.summary(list(rows.values())).text == "2 students: 1 running now, 0 never started, 0 near the cap"
    )


def test_pending_principals_only_for_the_staff() -> None:
    roster = [("a@uni.example", "student", None), ("b@uni.example", "ta", None), ("c@uni.example", "student", "carol")]
    assert course_tables.pending_principals(roster, INSTRUCTOR) == [
        ("a@uni.example", "student"),
        ("b@uni.example", "ta"),
    ]
    assert course_tables.pending_principals(roster, TA) == course_tables.pending_principals(roster, ADMIN)
    assert course_tables.pending_principals(roster, STUDENT) == []


@pytest.mark.parametrize(("role", "access", "admin", "extend", "switch"), [
    pytest.param(Role.INSTRUCTOR, INSTRUCTOR, False, True, True, id="instructor"),
    pytest.param(Role.TA, TA, False, True, False, id="ta-extends-within-the-api-limit"),
    pytest.param(None, ADMIN, True, True, True, id="admin"),
    pytest.param(Role.STUDENT, STUDENT, False, False, False, id="student"),
])  # fmt: skip
def test_actions_offered(role, access, admin, extend, switch) -> None:
    # the course's settings: whoever switches the lab hours (instructors, admins)
    assert course_tables.course_actions(role, access, is_admin=admin) == course_tables.CourseActions(
        extend, switch, change_settings=switch
    )


# --- lab hours in words ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeReservation:
    name: str
    start: datetime
    end: datetime
    nodes: str = "gpu03"
    state: str = "ACTIVE"

    def active_at(self, now: datetime) -> bool:
        return self.state == "ACTIVE" and self.start <= now < self.end


@pytest.mark.parametrize(("name", "found", "error", "state", "words"), [
    pytest.param(None, None, None, LabState.NONE, "no lab-hours reservation", id="no-reservation-name"),
    pytest.param("cs101-lab", None, None, LabState.OFF, "Off (no reservation cs101-lab)", id="off"),
    pytest.param("cs101-lab", FakeReservation("cs101-lab", NOW - timedelta(minutes=5), NOW + timedelta(hours=1)),
                 None, LabState.ON, "On until 2026-03-02 10:00 UTC: students' new sessions run in reservation "
                 "cs101-lab on gpu03.", id="on"),
    pytest.param("cs101-lab", FakeReservation("cs101-lab", NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1),
                                              state="INACTIVE"),
                 None, LabState.SCHEDULED, "set from 2026-03-03 09:00 UTC to 2026-03-03 10:00 UTC", id="later"),
    pytest.param("cs101-lab", None, "scontrol timed out", LabState.UNKNOWN,
                 "Slurm did not answer (scontrol timed out)", id="slurm-down"),
])  # fmt: skip
def test_lab_hours_in_words(name, found, error, state, words) -> None:
    lab = lab_hours_state.lab_hours(name, found, NOW, error=error)
    assert lab.state is state and words in lab.text
    answer = lab_hours_state.lab_hours_json(lab)
    assert answer["on"] is (state is LabState.ON) and answer["state"] == state.value
    assert answer["until"] == ("2026-03-02T10:00:00+00:00" if state is LabState.ON else None)


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param({"on": True, "minutes": 60}, LabHoursChange(True, 60), id="on"),
    pytest.param({"on": False}, LabHoursChange(False, None), id="off"),
    pytest.param({"on": True, "minutes": 240}, LabHoursChange(True, 240), id="on-at-the-limit"),
    pytest.param(None, "body", id="no-body"),
    pytest.param([True], "body", id="not-an-object"),
    pytest.param({"minutes": 60}, "on", id="no-on"),
    pytest.param({"on": "yes", "minutes": 60}, "on", id="on-not-boolean"),
    pytest.param({"on": True}, "minutes", id="on-without-minutes"),
    pytest.param({"on": True, "minutes": 0}, "minutes", id="zero-minutes"),
    pytest.param({"on": True, "minutes": 241}, "minutes", id="over-the-limit"),
    pytest.param({"on": True, "minutes": 1.5}, "minutes", id="fraction"),
    pytest.param({"on": True, "minutes": True}, "minutes", id="minutes-boolean"),
    pytest.param({"on": False, "minutes": 5}, "minutes", id="minutes-with-off"),
    pytest.param({"on": True, "minutes": 5, "nodes": ["gpu01"]}, "nodes", id="unknown-key"),
])  # fmt: skip
def test_lab_hours_body(body, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(LedgerInputError) as caught:
            parse_lab_hours_body(body, 240)
        assert caught.value.message.startswith(f"{expected}:")
    else:
        assert parse_lab_hours_body(body, 240) == expected


def test_lab_hours_settings_are_checked() -> None:
    from traitlets import TraitError
    from traitlets.config import Config

    from hub.api.lab_hours_state import HPCHubCourses
    from spawners.slurm.cluster import SlurmCluster

    c = Config()
    assert HPCHubCourses(config=c).lab_hours_nodes == []
    c.HPCHubCourses.lab_hours_nodes = ["gpu03"]
    assert HPCHubCourses(config=c).lab_hours_nodes == ["gpu03"]
    for bad in (["gpu 03"], ["gpu03", "gpu03"], ["-x"]):
        c.HPCHubCourses.lab_hours_nodes = bad
        with pytest.raises(TraitError, match="lab_hours_nodes"):
            HPCHubCourses(config=c)
    c = Config()
    c.HPCHubCourses.lab_hours_max_minutes = 0
    with pytest.raises(TraitError, match="lab_hours_max_minutes"):
        HPCHubCourses(config=c)
    c = Config()
    c.SlurmGPUSpawner.slurm_conf = "/etc/slurm/x.conf"
    c.SlurmGPUSpawner.slurm_command_timeout = 12.0
    client = SlurmCluster.from_config(c).client()
    assert (client.slurm_conf, client.timeout, client.bin_dir) == ("/etc/slurm/x.conf", 12.0, "")
    assert SlurmCluster.from_config(Config()).client().slurm_conf is None


# --- on a ledger ---------------------------------------------------------------------------------------------

RULES = make_rules(per_student=5, gpu_types="a100", max_gpus=1, max_hours=2, max_sessions=1, reservation="cs101-lab")


@pytest.fixture
def ledger(ledger_url: str):
    """cs101 (dave instructor, tom ta, carol and zoe students, two pending principals) and vision-lab."""
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=lambda: NOW) as ledger:
        ledger.create_course("cs101", account="cs101", start="2026-01-01", end="2026-06-30", gpu_hours=50, rules=RULES,
                             who="admin", now=NOW - timedelta(days=1))  # fmt: skip
        for user, role in (("dave", "instructor"), ("tom", "ta"), ("carol", "student"), ("zoe", "student")):
            ledger.add_member("cs101", user, role=role, who="admin", now=NOW - timedelta(days=1))
        ledger.import_roster(
            "cs101",
            [RosterRow(1, "p1@uni.example", Role.STUDENT), RosterRow(2, "p2@uni.example", Role.TA)],
            who="admin",
        )
        # carol: a finished session of 1 h on one a100 (0.5 GPU-h), then one running for 30 min
        first = ledger.admit("cs101", "carol", "", Booking("a100", 1, 1), now=NOW - timedelta(hours=3))
        ledger.record_job_id(first, "201")
        ledger.session_started(first, NOW - timedelta(hours=3))
        ledger.session_ended(first, NOW - timedelta(hours=2), 3600)
        second = ledger.admit("cs101", "carol", "", Booking("a100", 1, 2), now=NOW - timedelta(minutes=30))
        ledger.record_job_id(second, "202")
        ledger.session_started(second, NOW - timedelta(minutes=30))
        ledger.set_cap("cs101", "carol", 7, reason="project week", who="dave", now=NOW - timedelta(minutes=10))
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=10, who="admin")
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        yield ledger


def test_the_instructor_sees_every_row_the_pending_principals_and_the_budget(ledger: Ledger) -> None:
    page = course_gather.course_page(ledger, "cs101", Viewer("dave", False))
    rows = {r.user: r for r in page.rows}
    assert list(rows) == ["carol", "zoe", "tom", "dave"]
    carol = rows["carol"]
    assert (carol.used_mgs, carol.cap_mgs, carol.sessions, carol.extensions) == (3 * H // 4, 7 * H, 2, 1)
    assert carol.flags == (Flag.RUNNING,) and rows["zoe"].flags == (Flag.NEVER_STARTED,)
    assert page.pending == [("p1@uni.example", "student"), ("p2@uni.example", "ta")]
    assert page.figures["budget"]["text"] == "50.0" and page.term == "2026-01-01 to 2026-06-30"
    assert "at most 1 session at once" in page.rules_text and page.actions.switch_lab_hours
    assert page.summary.text == "2 students: 1 running now, 1 never started, 0 near the cap"


def test_a_student_sees_only_her_own_row_and_no_roster_nor_course_figures(ledger: Ledger) -> None:
    page = course_gather.course_page(ledger, "cs101", Viewer("carol", False))
    assert [r.user for r in page.rows] == ["carol"]
    assert page.pending == [] and page.figures is None
    assert page.actions == course_tables.CourseActions(False, False)
    report = list(csv.reader(io.StringIO(course_gather.course_report_csv(ledger, "cs101", Viewer("carol", False)))))
    assert report[0] == list(REPORT_COLUMNS) and [line[0] for line in report[1:]] == ["carol"]


@pytest.mark.parametrize(("project", "viewer", "message"), [
    pytest.param("cs101", Viewer("alice", False), "no project 'cs101'", id="outsider-like-unknown"),
    pytest.param("cs999", Viewer("dave", False), "no project 'cs999'", id="unknown"),
    pytest.param("cs101", Viewer("Weird Name!", False), "no project 'cs101'", id="hub-name-not-a-member-name"),
    pytest.param("vision-lab", Viewer("alice", False), "no course 'vision-lab'", id="not-a-course"),
])  # fmt: skip
def test_anyone_else_gets_404_like_an_unknown_project(ledger: Ledger, project, viewer, message) -> None:
    with pytest.raises(NotFound) as caught:
        course_gather.course_page(ledger, project, viewer)
    assert message in caught.value.message
    with pytest.raises(NotFound):
        course_gather.course_report_csv(ledger, project, viewer)


def test_the_csv_is_the_course_report(ledger: Ledger) -> None:
    text = course_gather.course_report_csv(ledger, "cs101", Viewer("admin", True))
    lines = list(csv.DictReader(io.StringIO(text)))
    carol = next(line for line in lines if line["user"] == "carol")
    assert carol == {"user": "carol", "role": "student", "sessions": "2", "gpu_hours": "0.7500",
                     "cap_gpu_hours": "7.0000", "extensions": "1"}  # fmt: skip


def test_the_live_template_renders_bars_flags_and_controls(ledger: Ledger) -> None:
    jinja2 = pytest.importorskip("jinja2")
    templates = Path(__file__).resolve().parents[2] / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), autoescape=True)
    template = env.get_template("hpchub_course_live.html")
    lab = lab_hours_state.lab_hours("cs101-lab", None, NOW)
    html = template.render(page=course_gather.course_page(ledger, "cs101", Viewer("dave", False)), lab=lab,
                           base_url="/hub/")  # fmt: skip
    assert '<meter id="hpchub-meter-carol" min="0" max="7.0" value="0.75"' in html
    assert "0.75 of 7.0 GPU-h (10.7 %)" in html and "running now" in html and "never started" in html
    assert 'data-cap="7.0"' in html and "Extend carol's cap" in html
    assert "Extend dave" not in html  # no cap, no extension
    student = template.render(page=course_gather.course_page(ledger, "cs101", Viewer("carol", False)), lab=lab,
                              base_url="/hub/")  # fmt: skip
    assert "zoe" not in student and "tom" not in student and "Extend" not in student and "Course budget" not in student


def test_the_new_course_form_renders_a_field_and_an_error_slot_each() -> None:
    import jinja2

    from hub.project_pages.course_gather import CourseCreator

    templates = Path(__file__).resolve().parents[2] / "templates"
    env = jinja2.Environment(autoescape=True)
    env.loader = jinja2.DictLoader(
        {
            "page.html": "{% block main %}{% endblock %}{% block script %}{% endblock %}"
            "{% block stylesheet %}{% endblock %}",
            "hpchub_course_new.html": (templates / "hpchub_course_new.html").read_text(),
        }
    )
    for creator, instructor_field in (
        (CourseCreator(True, "admin", None), True),
        (CourseCreator(False, "dave", "500.0"), False),
    ):
        html = env.get_template("hpchub_course_new.html").render(creator=creator, base_url="/hub/")
        for field in (
            "name",
            "account",
            "start",
            "end",
            "gpu_hours",
            "per_student",
            "gpu_types",
            "max_gpus",
            "max_hours",
            "max_sessions",
            "reservation",
            "ta_extension_limit",
            "lab_hours_only",
            "on_drop",
        ):
            assert f'data-field="{field}"' in html and f'id="hpchub-new-{field}"' in html
        assert ('id="hpchub-new-instructor"' in html) is instructor_field
    assert "at most 500.0 GPU-h; you become its instructor" in html


def test_who_gets_the_new_course_form(ledger: Ledger) -> None:
    from hub.project_pages.course_gather import CourseCreator, course_creator

    assert course_creator(ledger, Viewer("root", True), None) == CourseCreator(True, "root", None)
    assert course_creator(ledger, Viewer("dave", False), None) is None  # the site allows no instructor
    assert course_creator(ledger, Viewer("dave", False), 500 * H) == CourseCreator(False, "dave", "500.0")
    assert course_creator(ledger, Viewer("carol", False), 500 * H) is None  # a student
