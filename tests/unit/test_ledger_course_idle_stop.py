"""A course's own idle stop (course setting idle-stop-after): the rule that picks a session's
timeout, the setting's checks, its append-only record, the command line and the API body.
The watch choosing per-session timeouts is in test_idle_decision.py (its fake hub). Reruns on
PostgreSQL (tests/integration/test_ledger_postgres.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from hub import cli
from hub.api.courses import parse_settings_body, settings_json
from hub.commands.ledger import LEDGER_URL_ENV
from hub.ledger import Ledger, LedgerInputError, upgrade
from hub.ledger.courses import CourseRules, idle_stop_minutes, make_rules
from hub.ledger.idle import course_decides, effective_idle_timeout

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
RULES = CourseRules(per_student_mgs=5 * 3_600_000)


@pytest.mark.parametrize(("site", "course", "minutes", "by_course"), [
    pytest.param(0, None, None, False, id="site-off-course-unset-never-stopped"),
    pytest.param(30, None, 30, False, id="site-on-course-unset-the-sites"),
    pytest.param(30, 15, 15, True, id="course-shorter-wins"),
    pytest.param(30, 30, 30, False, id="course-equal-the-sites"),
    pytest.param(30, 60, 30, False, id="course-longer-the-site-stands"),
    pytest.param(0, 15, 15, True, id="site-off-the-course-still-stops"),
    pytest.param(0.5, 1, 0.5, False, id="site-fraction-shorter"),
])  # fmt: skip
def test_a_sessions_timeout(site, course, minutes, by_course) -> None:
    assert effective_idle_timeout(site, course) == minutes
    assert course_decides(site, course) is by_course


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(None, None, id="unset"),
    pytest.param("none", None, id="none-word"),
    pytest.param("", None, id="empty"),
    pytest.param(15, 15, id="number"),
    pytest.param(" 15 ", 15, id="text"),
    pytest.param(1, 1, id="lowest"),
    pytest.param(10080, 10080, id="a-week"),
    pytest.param(0, "idle_stop_after: must be a whole number of minutes from 1 to 10080", id="zero-cannot-switch-off"),
    pytest.param(10081, "idle_stop_after: must be a whole number of minutes from 1 to 10080", id="over-a-week"),
    pytest.param(-5, "got '-5'", id="negative"),
    pytest.param("7.5", "got '7.5'", id="fraction"),
    pytest.param(True, "got 'True'", id="bool"),
])  # fmt: skip
def test_the_settings_values(value, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(LedgerInputError, match=expected) as caught:
            idle_stop_minutes(value)
        assert caught.value.field == "idle_stop_after"
    else:
        assert idle_stop_minutes(value) == expected
        assert make_rules(per_student=5, idle_stop_after=value).idle_stop_minutes == expected


@pytest.fixture
def courses(ledger_url: str):
    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        ledger.create_course("cs101", account="cs101", start="2026-01-01", end="2026-06-30", gpu_hours=50,
                             rules=RULES, who="admin", now=NOW)  # fmt: skip
        ledger.create_course("cs102", account="cs102", start="2026-01-01", end="2026-06-30", gpu_hours=50,
                             rules=make_rules(per_student=5, idle_stop_after=20), who="admin", now=NOW)  # fmt: skip
        yield ledger


def test_the_setting_is_appended_and_the_watch_reads_the_latest(courses: Ledger) -> None:
    assert courses.course_rules("cs101").idle_stop_minutes is None
    assert courses.course_idle_timeouts() == {"cs102": 20}  # set when created
    rules, changed = courses.set_course_settings("cs101", replace(RULES, idle_stop_minutes=15), reason="lab",
                                                 who="dave", now=NOW)  # fmt: skip
    assert (rules.idle_stop_minutes, changed) == (15, ["idle-stop-after"])
    assert "sessions idle for 15 min are stopped (unless the site's idle stop is shorter)" in rules.describe()
    courses.set_course_settings("cs102", replace(courses.course_rules("cs102"), idle_stop_minutes=None), reason="off",
                                who="dave", now=NOW)  # fmt: skip
    assert courses.course_idle_timeouts() == {"cs101": 15}
    assert [row[:3] for row in courses.course_setting_history("cs102")] == [
        ("idle-stop-after", "20", "set when created"),
        ("idle-stop-after", "", "off"),
    ]


def test_the_command_line(courses: Ledger, ledger_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv(LEDGER_URL_ENV, ledger_url)

    def hpchub(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        return code, *capsys.readouterr()

    code, out, err = hpchub("course", "settings", "cs101", "--idle-stop-after", "15", "--reason", "lab")
    assert (code, err) == (0, "") and out.splitlines()[0] == "cs101: idle-stop-after changed"
    assert (
        "  idle-stop-after: 15 min: the course's sessions stop when idle that long (the site's idle stop if shorter)"
    ) in out.splitlines()
    code, out, err = hpchub("course", "settings", "cs101", "--idle-stop-after", "0")
    assert (code, out) == (2, "")
    assert err.startswith("hpchub: --idle-stop-after: must be a whole number of minutes from 1 to 10080")
    assert courses.course_rules("cs101").idle_stop_minutes == 15  # nothing changed
    code, out, err = hpchub("course", "settings", "cs101", "--idle-stop-after", "none")
    assert (code, err) == (0, "") and "  idle-stop-after: none: the site's idle stop applies" in out.splitlines()
    code, out, err = hpchub(
        "course",
        "create",
        "cs103",
        "--account",
        "cs103",
        "--start",
        "2026-01-01",
        "--end",
        "2026-06-30",
        "--gpu-hours",
        "5",
        "--per-student",
        "1",
        "--idle-stop-after",
        "99999",
    )
    assert code == 2 and "--idle-stop-after: must be" in err and "cs103" not in [p.name for p in courses.projects()]


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param({"idle_stop_after_minutes": 15}, 15, id="minutes"),
    pytest.param({"idle_stop_after_minutes": "15"}, 15, id="the-forms-text"),
    pytest.param({"idle_stop_after_minutes": None}, None, id="null-the-sites"),
    pytest.param({"idle_stop_after_minutes": 0},
                 "idle_stop_after_minutes: must be a whole number of minutes from 1 to 10080", id="zero"),
    pytest.param({"idle_stop_after_minutes": 12.5}, "idle_stop_after_minutes: must be", id="fraction"),
])  # fmt: skip
def test_the_api_body(body, expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(LedgerInputError) as caught:
            parse_settings_body(body, RULES)
        assert f"{caught.value.field}: {caught.value.rule}".startswith(expected)
    else:
        rules = parse_settings_body(body, RULES)[0]
        assert settings_json("cs101", rules)["idle_stop_after_minutes"] == expected
