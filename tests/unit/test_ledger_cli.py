"""Unit tests for ``hpchub project|grant|member|usage|charges`` (hub/commands/ledger.py via hub.cli.main)."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from hub import cli
from hub.commands.ledger import CSV_COLUMNS, DEFAULT_LEDGER_URL, LEDGER_URL_ENV
from hub.ledger import Ledger
from hub.ledger.types import Booking

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def hpchub(ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run ``hpchub ARGS`` against the test's ledger; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv(LEDGER_URL_ENV, ledger_url)

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def demo(hpchub):
    """vision-lab as in the demo: alice pi, bob member with cap 20."""
    for args in (
        ("project", "create", "vision-lab", "--account", "vision-lab", "--kind", "research", "--gpu-hours", "100"),
        ("member", "add", "vision-lab", "alice", "--role", "pi"),
        ("member", "add", "vision-lab", "bob", "--role", "member", "--cap", "20"),
    ):
        code, _out, err = hpchub(*args)
        assert (code, err) == (0, "")
    return hpchub


def test_project_create_and_usage(demo) -> None:
    code, out, err = demo("usage", "vision-lab", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "project": "vision-lab",
        "budget_gpu_hours": 100.0,
        "used_gpu_hours": 0.0,
        "held_gpu_hours": 0.0,
        "remaining_gpu_hours": 100.0,
        "members": [
            {"user": "alice", "role": "pi", "cap_gpu_hours": None, "used_gpu_hours": 0.0, "held_gpu_hours": 0.0},
            {"user": "bob", "role": "member", "cap_gpu_hours": 20.0, "used_gpu_hours": 0.0, "held_gpu_hours": 0.0},
        ],
        "state": "active",
        "period_end": None,
    }
    code, out, _err = demo("usage", "vision-lab")
    assert code == 0
    assert out.splitlines() == [
        "vision-lab: budget 100.0000 GPU-h, used 0.0000, held 0.0000, remaining 100.0000",
        "user   role    cap      used    held",
        "alice  pi      -        0.0000  0.0000",
        "bob    member  20.0000  0.0000  0.0000",
    ]


@pytest.mark.parametrize(
    ("args", "stdout", "budget"),
    [
        pytest.param(
            ("grant", "vision-lab", "+10", "--reason", "renewal"),
            "vision-lab: granted +10.0 GPU-h; budget now 110.0 GPU-h\n",
            110.0,
            id="plus",
        ),
        pytest.param(
            ("grant", "vision-lab", "-5", "--reason", "cut"),
            "vision-lab: granted -5.0 GPU-h; budget now 95.0 GPU-h\n",
            95.0,
            id="minus",
        ),
        pytest.param(
            ("grant", "vision-lab", "0.0001", "--reason", "a little"),
            "vision-lab: granted +0.0001 GPU-h; budget now 100.0001 GPU-h\n",
            100.0001,
            id="four-decimals",
        ),
    ],
)
def test_grant(demo, args: tuple, stdout: str, budget: float) -> None:
    assert demo(*args) == (0, stdout, "")
    assert json.loads(demo("usage", "vision-lab", "--json")[1])["budget_gpu_hours"] == budget


def test_member_cap_and_remove(demo) -> None:
    assert demo("member", "cap", "vision-lab", "bob", "10", "--reason", "halved") == (
        0,
        "bob's cap in vision-lab is now 10.0 GPU-h\n",
        "",
    )
    assert demo("member", "remove", "vision-lab", "alice") == (
        0,
        "alice is no longer a member of vision-lab (running sessions continue)\n",
        "",
    )
    members = json.loads(demo("usage", "vision-lab", "--json")[1])["members"]
    assert [(m["user"], m["cap_gpu_hours"]) for m in members] == [("bob", 10.0)]


BAD = [
    pytest.param(("usage", "nope"), "hpchub: project: unknown project 'nope'", id="usage-unknown-project"),
    pytest.param(("charges", "nope", "--csv"), "hpchub: project: unknown project 'nope'", id="charges-unknown-project"),
    pytest.param(
        ("grant", "nope", "5", "--reason", "x"), "hpchub: project: unknown project 'nope'", id="grant-unknown-project"
    ),
    pytest.param(
        ("member", "add", "nope", "eve", "--role", "member"),
        "hpchub: project: unknown project 'nope'",
        id="member-unknown-project",
    ),
    pytest.param(
        ("project", "create", "cs101", "--account", "cs101", "--kind", "course", "--gpu-hours", "-5"),
        "hpchub: --gpu-hours: must be >= 0 GPU-h, got -5",
        id="create-negative-hours",
    ),
    pytest.param(
        ("project", "create", "CS_101", "--account", "cs101", "--kind", "course", "--gpu-hours", "5"),
        "hpchub: project: 2 to 40 characters: a lower-case letter, then lower-case letters, digits or '-', got 'CS_101'",
        id="create-unsafe-name",
    ),
    pytest.param(
        (
            "project",
            "create",
            "cs101",
            "--account",
            "cs101",
            "--kind",
            "course",
            "--gpu-hours",
            "5",
            "--start",
            "2026-02-30",
        ),
        "hpchub: --start: an ISO date YYYY-MM-DD, got '2026-02-30'",
        id="create-bad-date",
    ),
    pytest.param(
        ("project", "create", "vision-lab", "--account", "other", "--kind", "lab", "--gpu-hours", "5"),
        "hpchub: project: vision-lab already exists",
        id="create-duplicate",
    ),
    pytest.param(
        ("project", "create", "cs101", "--account", "cs101", "--kind", "big", "--gpu-hours", "5"),
        "hpchub project create: argument --kind: invalid choice: 'big' (choose from 'research', 'course', 'lab')",
        id="create-bad-kind",
    ),
    pytest.param(
        ("project", "create", "cs101", "--account", "cs101", "--kind", "course"),
        "hpchub project create: the following arguments are required: --gpu-hours",
        id="create-missing-hours",
    ),
    pytest.param(
        ("grant", "vision-lab", "-500", "--reason", "x"),
        "hpchub: HOURS: would make vision-lab's budget negative (-400.0 GPU-h); it is 100.0",
        id="grant-below-zero",
    ),
    pytest.param(
        ("grant", "vision-lab", "ten", "--reason", "x"),
        "hpchub: HOURS: must be a number, got 'ten'",
        id="grant-not-a-number",
    ),
    pytest.param(
        ("grant", "vision-lab", "5"),
        "hpchub grant: the following arguments are required: --reason",
        id="grant-missing-reason",
    ),
    pytest.param(
        ("member", "add", "vision-lab", "eve", "--role", "boss"),
        "hpchub member add: argument --role: invalid choice: 'boss' (choose from 'pi', 'manager', 'member', 'instructor', 'ta', 'student')",
        id="member-bad-role",
    ),
    pytest.param(
        ("member", "add", "vision-lab", "eve", "--role", "member", "--cap", "-1"),
        "hpchub: --cap: must be >= 0 GPU-h, got -1",
        id="member-negative-cap",
    ),
    pytest.param(
        ("member", "add", "vision-lab", "bob", "--role", "member"),
        "hpchub: user: bob is already a member of vision-lab (member)",
        id="member-duplicate",
    ),
    pytest.param(
        ("member", "cap", "vision-lab", "bob", "-5", "--reason", "x"),
        "hpchub: H: must be >= 0 GPU-h, got -5",
        id="cap-negative-hours",
    ),
    pytest.param(
        ("member", "cap", "vision-lab", "eve", "5", "--reason", "x"),
        "hpchub: user: eve is not a member of vision-lab",
        id="cap-non-member",
    ),
    pytest.param(
        ("member", "remove", "vision-lab", "eve"),
        "hpchub: user: eve is not a member of vision-lab",
        id="remove-non-member",
    ),
    pytest.param(
        ("member",), "hpchub member: the following arguments are required: COMMAND", id="member-without-command"
    ),
    pytest.param(
        ("usage", "vision-lab", "--db-url", "not a url"),
        "hpchub: --db-url: not a database URL: 'not a url'",
        id="bad-db-url",
    ),
]


@pytest.mark.parametrize(("args", "stderr"), BAD)
def test_bad_input_exits_2_with_one_line(demo, args: tuple, stderr: str) -> None:
    before = demo("usage", "vision-lab", "--json")
    code, out, err = demo(*args)
    assert (code, out, err) == (2, "", stderr + "\n")
    assert demo("usage", "vision-lab", "--json") == before  # nothing changed


def test_database_failure_exits_1_with_one_line(hpchub, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'ledger.sqlite'}"
    code, out, err = hpchub("usage", "vision-lab", "--db-url", url)
    assert (code, out) == (1, "")
    assert err == f"hpchub: ledger database {url}: unable to open database file\n"


def test_db_url_option_wins_over_the_environment(hpchub, tmp_path) -> None:
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    args = (
        "project",
        "create",
        "tiny-lab",
        "--account",
        "tiny-lab",
        "--kind",
        "lab",
        "--gpu-hours",
        "0.25",
        "--db-url",
        other,
    )
    assert hpchub(*args) == (0, "created project tiny-lab (account tiny-lab, lab, 0.25 GPU-h)\n", "")
    assert hpchub("usage", "tiny-lab")[0] == 2  # not in the environment's database
    assert hpchub("usage", "tiny-lab", "--db-url", other)[0] == 0


def test_default_url_is_the_demo_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LEDGER_URL_ENV, raising=False)
    args = cli.build_parser().parse_args(["usage", "vision-lab"])
    assert args.db_url is None  # resolved at run time: $HPCHUB_LEDGER_URL, else the default
    assert DEFAULT_LEDGER_URL == "sqlite:////var/lib/hpchub-demo/hub/ledger.sqlite"


def test_course_period_is_stored(hpchub) -> None:
    code, out, _err = hpchub(
        "project", "create", "cs101", "--account", "cs101", "--kind", "course", "--gpu-hours", "50",
        "--start", "2026-01-01", "--end", "2026-06-30",
    )  # fmt: skip
    assert (code, out) == (0, "created project cs101 (account cs101, course, 50.0 GPU-h, 2026-01-01 to 2026-06-30)\n")


def test_charges_table_and_csv(demo, ledger_url: str) -> None:
    assert demo("charges", "vision-lab") == (0, "vision-lab: no charges\n", "")
    with Ledger(ledger_url) as ledger:
        session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 2, 1), now=T0)
        ledger.record_job_id(session_id, "101")
        ledger.session_started(session_id, T0)
        ledger.session_ended(session_id, T0 + timedelta(minutes=30), 1800)
        ledger.import_final_charge(
            "hpchub", "102", "zed", "vision-lab", {"a100": 1}, T0, T0 + timedelta(seconds=7), 7, now=T0
        )
    code, out, err = demo("charges", "vision-lab", "--csv")
    assert (code, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [
        [
            "hpchub",
            "102",
            "zed",
            "vision-lab",
            "a100",
            "1",
            "2026-03-02T09:00:00+00:00",
            "2026-03-02T09:00:07+00:00",
            "7",
            "0.0010",
            "sacct",
            "final",
        ],
        [
            "hpchub",
            "101",
            "bob",
            "vision-lab",
            "h200",
            "2",
            "2026-03-02T09:00:00+00:00",
            "2026-03-02T09:30:00+00:00",
            "1800",
            "1.0000",
            "portal",
            "provisional",
        ],
    ]
    code, out, _err = demo("charges", "vision-lab")
    assert code == 0
    assert out.splitlines()[-1] == "total 1.0010 GPU-h in 2 jobs"
    used = json.loads(demo("usage", "vision-lab", "--json")[1])["used_gpu_hours"]
    assert used == 1.001


def test_help_lists_the_ledger_commands(hpchub) -> None:
    code, out, _err = hpchub("--help")
    assert code == 0
    for group in ("cluster", "demo", "project", "grant", "member", "usage", "charges"):
        assert f"    {group} " in out


# --- courses ------------------------------------------------------------------------------


COURSE = ("course", "create", "cs101", "--account", "cs101", "--start", "2026-01-01", "--end", "2026-06-30",
          "--gpu-hours", "50", "--per-student", "5", "--gpu-types", "a100", "--max-gpus", "1", "--max-hours", "2",
          "--max-sessions", "1")  # fmt: skip


def test_course_create_roster_and_report(hpchub, tmp_path) -> None:
    code, out, err = hpchub(*COURSE)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "created course cs101 (account cs101, 50.0 GPU-h, 2026-01-01 to 2026-06-30)"
    assert "  at most 1 GPU per session" in out.splitlines()
    code, out, _err = hpchub("member", "add", "cs101", "carol", "--role", "student")
    assert out.strip() == "carol is now student of cs101, cap 5.0 GPU-h (the course's per-student cap)"
    roster = tmp_path / "roster.csv"
    roster.write_text("principal,role\nann@uni.example\nben@uni.example,ta\n")
    for expected in ("2 added", "0 added"):
        code, out, err = hpchub("course", "roster", "cs101", "--csv", str(roster))
        assert (code, err) == (0, "") and out.startswith(f"cs101: {expected}")
    code, out, err = hpchub("course", "report", "cs101", "--csv")
    assert (code, err) == (0, "")
    assert list(csv.reader(io.StringIO(out))) == [
        ["user", "role", "sessions", "gpu_hours", "cap_gpu_hours", "extensions"],
        ["carol", "student", "0", "0.0000", "5.0000", "0"],
    ]


def test_a_bad_roster_reports_every_row_and_imports_nothing(hpchub, tmp_path) -> None:
    hpchub(*COURSE)
    roster = tmp_path / "roster.csv"
    roster.write_text("ann@uni.example\nnot-a-principal\nann@uni.example\n")
    code, out, err = hpchub("course", "roster", "cs101", "--csv", str(roster))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "hpchub: --csv: line 2: 'not-a-principal' is not a principal like name@uni.example",
        "hpchub: --csv: line 3: ann@uni.example is listed twice (first on line 1)",
        "hpchub: --csv: 2 bad row(s); nothing was imported",
    ]
    _code, out, _err = hpchub("course", "report", "cs101")
    assert "never logged in" not in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(("--max-gpus", "0"), "hpchub: --max-gpus: must be from 1 to 64, got 0", id="max-gpus"),
        pytest.param(("--per-student", "-1"), "hpchub: --per-student:", id="per-student"),
        pytest.param(("--gpu-types", "a100;reboot"), "hpchub: --gpu-types:", id="gpu-types"),
        pytest.param(("--reservation", "a b"), "hpchub: --reservation:", id="reservation"),
    ],
)
def test_course_create_bad_input_names_the_option_and_creates_nothing(hpchub, change, message) -> None:
    args = list(COURSE)
    index = args.index(change[0]) if change[0] in args else None
    if index is None:
        args += list(change)
    else:
        args[index + 1] = change[1]
    code, out, err = hpchub(*args)
    assert (code, out) == (2, "") and err.startswith(message) and len(err.splitlines()) == 1
    code, _out, err = hpchub("usage", "cs101")
    assert code == 2 and "unknown project" in err


def test_db_upgrade_migrates_once_and_says_so(tmp_path, monkeypatch, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    assert cli.main(["db", "upgrade", "--db-url", url]) == 0
    first = capsys.readouterr().out
    assert cli.main(["db", "upgrade", "--db-url", url]) == 0
    second = capsys.readouterr().out
    assert "upgraded from empty to " in first and "already" in second


def test_ledger_export_then_import_into_an_empty_ledger(demo, tmp_path, monkeypatch, capsys) -> None:
    demo("grant", "vision-lab", "-0.0001", "--reason", "the smallest unit")
    dump = tmp_path / "ledger.json"
    code, _out, err = demo("ledger", "export", "--output", str(dump))
    assert (code, err.strip()) == (0, f"exported the ledger to {dump}")
    assert dump.stat().st_mode & 0o777 == 0o600
    code, _out, err = demo("ledger", "export", "--output", str(dump))
    assert code == 2 and "exists" in err
    _code, before, _err = demo("usage", "vision-lab", "--json")
    monkeypatch.setenv(LEDGER_URL_ENV, f"sqlite:///{tmp_path / 'restored.sqlite'}")
    code, out, err = demo("ledger", "import", str(dump))
    assert (code, err) == (0, "") and out.startswith("imported 1 projects, ")
    _code, after, _err = demo("usage", "vision-lab", "--json")
    assert json.loads(after) == json.loads(before)
    code, _out, err = demo("ledger", "import", str(dump))
    assert code == 2 and "not empty" in err


def test_course_settings_show_and_change_the_ta_extension_limit(hpchub) -> None:
    code, out, err = hpchub(*COURSE, "--ta-extension-limit", "2")
    assert (code, err) == (
        0,
        "",
    ) and "  a TA may extend a student's cap by at most 2.0 GPU-h in all" in out.splitlines()
    code, out, err = hpchub("course", "settings", "cs101")
    assert (code, err) == (0, "") and out.splitlines()[0] == "  ta-extension-limit: 2.0 GPU-h over the per-student cap"
    code, out, err = hpchub("course", "settings", "cs101", "--ta-extension-limit", "none", "--reason", "no TAs")
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [
        "cs101: ta-extension-limit changed",
        "  ta-extension-limit: none (the site-wide HPCHubAPI.ta_cap_limit_gpu_hours applies)",
    ]
    code, out, err = hpchub("course", "settings", "cs101", "--ta-extension-limit", "-1")
    assert (code, out) == (2, "") and err.startswith("hpchub: --ta-extension-limit: must be >= 0 GPU-h")


def test_course_settings_lab_hours_only(hpchub) -> None:
    code, _out, err = hpchub(*COURSE, "--lab-hours-only")
    assert code == 2 and err.startswith("hpchub: --lab-hours-only: needs the course's lab-hours reservation")
    code, out, err = hpchub(*COURSE, "--reservation", "cs101-lab", "--lab-hours-only")
    assert (code, err) == (0, "") and "  students start sessions only during the lab hours" in out.splitlines()
    code, out, err = hpchub("course", "settings", "cs101", "--lab-hours-only", "no")
    assert (code, err) == (0, "")
    assert "  lab-hours-only: no: outside the lab hours students' sessions queue normally" in out.splitlines()


def test_course_on_drop(hpchub) -> None:
    code, out, err = hpchub(*COURSE, "--on-drop", "stop")
    assert (code, err) == (0, "") and "  a dropped student's running sessions are stopped" in out.splitlines()
    code, out, err = hpchub("course", "settings", "cs101", "--on-drop", "finish", "--reason", "kinder")
    assert (code, err) == (0, "") and out.splitlines()[0] == "cs101: on-drop changed"
    assert "  on-drop: finish: a dropped student's running sessions run to their end" in out.splitlines()
    code, _out, err = hpchub("course", "settings", "cs101", "--on-drop", "kill")
    assert code == 2 and "invalid choice: 'kill'" in err


def test_course_sync_reads_the_groups_recorded_at_logins(hpchub, monkeypatch) -> None:
    hpchub(*COURSE)
    with Ledger(os.environ[LEDGER_URL_ENV]) as ledger:
        ledger.record_login_groups("carol", {"cs101-students"})
    code, out, err = hpchub("course", "sync", "cs101")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "carol joined cs101 as student (IdP group cs101-students)",
        "cs101: 1 change(s) from the groups recorded at the last login of 1 user(s)",
    ]
    code, out, err = hpchub("course", "sync", "cs101", "--group-role", "{course}-students=boss")
    assert code == 2 and err.startswith("hpchub: --group-role: one of")
    code, out, err = hpchub("course", "sync", "cs101", "--group-role", "students=student")
    assert code == 2 and "with {course} in the pattern" in err
    code, out, _err = hpchub("course", "sync", "--help")
    assert "the groups the ledger recorded at each user's last login, not the identity provider now" in " ".join(
        out.split()
    )


def test_course_sync_takes_the_group_patterns_of_the_hubs_configuration(hpchub, tmp_path) -> None:
    hpchub(*COURSE)
    config = tmp_path / "hpchub_config.py"
    config.write_text('c.HPCHubOIDCAuthenticator.course_group_roles = {"course-{course}": "student"}\n')
    with Ledger(os.environ[LEDGER_URL_ENV]) as ledger:
        ledger.record_login_groups("carol", {"course-cs101"})
    code, out, _err = hpchub("course", "sync", "cs101")  # the default patterns: no group gives carol cs101
    assert code == 0 and out.startswith("cs101: 0 change(s)")
    code, out, err = hpchub("--config", str(config), "course", "sync", "cs101")
    assert (code, err) == (0, "") and out.splitlines()[0] == "carol joined cs101 as student (IdP group course-cs101)"
