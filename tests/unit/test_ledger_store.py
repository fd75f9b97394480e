"""Unit tests for the ledger's store (hub/ledger/store.py) on SQLite in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, select, text

from hub.ledger import (
    BudgetRefused,
    Ledger,
    LedgerInputError,
    NotFound,
    make_engine,
    schema_revision,
    upgrade,
)
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.arithmetic import slurm_mirror_limit
from hub.ledger.models import VERSION_TABLE, AppendOnlySession, Base, Charge, Grant
from hub.ledger.store import alembic_config
from hub.ledger.types import (
    Booking,
    ChargeKind,
    ChargeSource,
    MirrorFigures,
    ProjectState,
    Role,
    SessionState,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ADVICE = "Ask for fewer GPUs or hours."
LEDGER_TABLES = (
    "hpchub_projects", "hpchub_grants", "hpchub_members", "hpchub_cap_entries", "hpchub_sessions", "hpchub_charges",
    "hpchub_outside_jobs", "hpchub_orphan_jobs", "hpchub_course_rules", "hpchub_roster", "hpchub_course_settings",
    "hpchub_login_groups",
    "hpchub_session_activity",
    "hpchub_calls", "hpchub_call_closures", "hpchub_proposals", "hpchub_proposal_versions", "hpchub_proposal_events",
    "hpchub_review_assignments", "hpchub_conflict_declarations", "hpchub_reviews", "hpchub_login_principals",
    "hpchub_awards", "hpchub_invitations", "hpchub_invitation_answers", "hpchub_reports",
    "hpchub_mail_messages", "hpchub_mail_attempts", "hpchub_user_contacts",
)  # fmt: skip


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock):
    """The demo's projects (contract, "Demo identities")."""
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=clock) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=20, who="admin")
        ledger.create_project(
            "cs101", account="cs101", kind="course", gpu_hours=50, start="2026-01-01", end="2026-06-30", who="admin"
        )
        ledger.add_member("cs101", "dave", role="instructor", who="admin")
        ledger.add_member("cs101", "tom", role="ta", who="admin")
        ledger.add_member("cs101", "carol", role="student", cap_gpu_hours=5, who="admin")
        ledger.create_project("tiny-lab", account="tiny-lab", kind="lab", gpu_hours="0.25", who="admin")
        ledger.add_member("tiny-lab", "erin", role="pi", who="admin")
        yield ledger


def row_counts(ledger: Ledger) -> dict[str, int]:
    with ledger.engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in LEDGER_TABLES
        }


def member(usage: dict, user: str) -> dict:
    return next(m for m in usage["members"] if m["user"] == user)


# --- schema ---------------------------------------------------------------------------------------


def test_upgrade_is_idempotent_and_leaves_jupyterhubs_tables_alone(ledger_url: str) -> None:
    engine = make_engine(ledger_url)
    with engine.begin() as connection:  # what JupyterHub's own database looks like
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('jupyterhub-rev')"))
        connection.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"))
    assert schema_revision(engine) is None
    upgrade(ledger_url)
    upgrade(ledger_url)
    assert schema_revision(ledger_url) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    tables = set(inspect(engine).get_table_names())
    assert tables == {"alembic_version", "users", VERSION_TABLE, *LEDGER_TABLES}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["jupyterhub-rev"]
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    engine.dispose()


def test_migrations_match_the_models(ledger_url: str) -> None:
    upgrade(ledger_url)
    engine = make_engine(ledger_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_sqlite_writes_begin_immediate_and_reads_deferred(ledger: Ledger) -> None:
    begins: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", record)
    try:
        ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1))
        assert begins == ["BEGIN IMMEDIATE"]
        ledger.usage("vision-lab")
        assert begins == ["BEGIN IMMEDIATE", "BEGIN DEFERRED"]
    finally:
        event.remove(ledger.engine, "before_cursor_execute", record)


# --- projects, members, usage -----------------------------------------------------------------------


def test_demo_usage_json_shape(ledger: Ledger) -> None:
    assert ledger.usage("vision-lab") == {
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
    assert [m["user"] for m in ledger.usage("cs101")["members"]] == ["dave", "tom", "carol"]  # by role, then name
    assert ledger.usage("tiny-lab")["budget_gpu_hours"] == 0.25


def test_grants_append_and_sum(ledger: Ledger) -> None:
    assert ledger.grant("vision-lab", "+10", reason="renewal", who="admin") == 110 * H
    assert ledger.grant("vision-lab", "-5.5", reason="cut", who="admin") == int(104.5 * H)
    assert ledger.usage("vision-lab")["budget_gpu_hours"] == 104.5
    with ledger._read() as session:
        project_id = ledger._project(session, "vision-lab").id
        rows = session.execute(
            select(Grant.amount_mgs, Grant.reason).where(Grant.project_id == project_id).order_by(Grant.id)
        ).all()
    assert rows == [(100 * H, "initial budget"), (10 * H, "renewal"), (int(-5.5 * H), "cut")]


def test_caps_are_appended_and_the_latest_counts(ledger: Ledger) -> None:
    ledger.set_cap("vision-lab", "bob", 10, reason="halved", who="alice")
    assert member(ledger.usage("vision-lab"), "bob")["cap_gpu_hours"] == 10.0
    ledger.set_cap("vision-lab", "bob", None, reason="no cap", who="alice")
    assert member(ledger.usage("vision-lab"), "bob")["cap_gpu_hours"] is None
    assert row_counts(ledger)["hpchub_cap_entries"] == 4  # bob's first cap, carol's, and these two


def test_remove_and_re_add_a_member(ledger: Ledger) -> None:
    ledger.remove_member("vision-lab", "bob", who="alice")
    assert [m["user"] for m in ledger.usage("vision-lab")["members"]] == ["alice"]
    with pytest.raises(LedgerInputError, match="bob is not an active member of vision-lab") as caught:
        ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1))
    assert caught.value.field == "project"
    ledger.add_member("vision-lab", "bob", role="manager", who="alice")
    assert member(ledger.usage("vision-lab"), "bob") == {
        "user": "bob", "role": "manager", "cap_gpu_hours": None, "used_gpu_hours": 0.0, "held_gpu_hours": 0.0,
    }  # fmt: skip
    assert [(p.name, r) for p, r in ledger.memberships("bob")] == [("vision-lab", Role.MANAGER)]
    assert row_counts(ledger)["hpchub_members"] == 7  # the ended membership stays as history
    assert ledger.active_members("vision-lab") == ["alice", "bob"]
    ledger.remove_member("vision-lab", "bob", who="alice")
    assert ledger.active_members("vision-lab") == ["alice"]
    with pytest.raises(NotFound):
        ledger.active_members("no-such-lab")


BAD_INPUT: list = [
    pytest.param(lambda l: l.create_project("Vision_Lab", account="x", kind="lab", gpu_hours=1, who="a"), "project", "2 to 40 characters", id="unsafe-project-name"),
    pytest.param(lambda l: l.create_project("v", account="v", kind="lab", gpu_hours=1, who="a"), "project", "2 to 40 characters", id="project-name-too-short"),
    pytest.param(lambda l: l.create_project("a" * 41, account="x", kind="lab", gpu_hours=1, who="a"), "project", "2 to 40", id="project-name-too-long"),
    pytest.param(lambda l: l.create_project("new", account="New;rm", kind="lab", gpu_hours=1, who="a"), "account", "a Slurm account", id="unsafe-account"),
    pytest.param(lambda l: l.create_project("new", account="new", kind="big", gpu_hours=1, who="a"), "kind", "one of research|course|lab", id="bad-kind"),
    pytest.param(lambda l: l.create_project("new", account="new", kind="lab", gpu_hours=-5, who="a"), "gpu_hours", "must be >= 0", id="negative-budget"),
    pytest.param(lambda l: l.create_project("new", account="new", kind="lab", gpu_hours=1, start="2026-13-01", who="a"), "start", "YYYY-MM-DD", id="bad-date"),
    pytest.param(lambda l: l.create_project("new", account="new", kind="lab", gpu_hours=1, start="2026-05-01", end="2026-04-01", who="a"), "end", "before the start", id="end-before-start"),
    pytest.param(lambda l: l.create_project("vision-lab", account="other", kind="lab", gpu_hours=1, who="a"), "project", "already exists", id="duplicate-project"),
    pytest.param(lambda l: l.create_project("other", account="vision-lab", kind="lab", gpu_hours=1, who="a"), "account", "already the account of project vision-lab", id="duplicate-account"),
    pytest.param(lambda l: l.grant("nope", 5, reason="x", who="a"), "project", "unknown project 'nope'", id="grant-unknown-project"),
    pytest.param(lambda l: l.grant("vision-lab", 0, reason="x", who="a"), "gpu_hours", "must not be 0", id="grant-zero"),
    pytest.param(lambda l: l.grant("vision-lab", -101, reason="x", who="a"), "gpu_hours", "budget negative", id="grant-below-zero"),
    pytest.param(lambda l: l.grant("vision-lab", 5, reason=" ", who="a"), "reason", "must not be empty", id="grant-empty-reason"),
    pytest.param(lambda l: l.grant("vision-lab", 5, reason="a\nb", who="a"), "reason", "one line", id="grant-two-line-reason"),
    pytest.param(lambda l: l.add_member("vision-lab", "eve", role="boss", who="a"), "role", "one of pi|manager|member|instructor|ta|student", id="bad-role"),
    pytest.param(lambda l: l.add_member("vision-lab", "Eve!", role="member", who="a"), "user", "Unix user name", id="unsafe-user"),
    pytest.param(lambda l: l.add_member("vision-lab", "bob", role="member", who="a"), "user", "already a member of vision-lab", id="duplicate-member"),
    pytest.param(lambda l: l.add_member("vision-lab", "eve", role="member", cap_gpu_hours=-1, who="a"), "cap_gpu_hours", "must be >= 0", id="negative-cap"),
    pytest.param(lambda l: l.add_member("nope", "eve", role="member", who="a"), "project", "unknown project", id="member-unknown-project"),
    pytest.param(lambda l: l.set_cap("vision-lab", "eve", 5, reason="x", who="a"), "user", "eve is not a member of vision-lab", id="cap-non-member"),
    pytest.param(lambda l: l.set_cap("vision-lab", "bob", "-5", reason="x", who="a"), "cap_gpu_hours", "must be >= 0", id="cap-negative"),
    pytest.param(lambda l: l.remove_member("vision-lab", "eve", who="a"), "user", "not a member", id="remove-non-member"),
    pytest.param(lambda l: l.admit("nope", "bob", "", Booking("h200", 1, 1)), "project", "unknown project", id="admit-unknown-project"),
    pytest.param(lambda l: l.admit("vision-lab", "bob", "", Booking("h200", 1, -1)), "hours", "must be > 0", id="admit-negative-hours"),
    pytest.param(lambda l: l.admit("vision-lab", "bob", "", Booking("h200", 1, "0.3")), "hours", "multiple of 0.25", id="admit-hours-not-quarter"),
    pytest.param(lambda l: l.admit("vision-lab", "bob", "", Booking("v100", 1, 1)), "gpu_type", "unknown GPU type 'v100'", id="admit-unknown-gpu-type"),
    pytest.param(lambda l: l.admit("vision-lab", "bob", "", Booking(None, 1, 1)), "gpu_type", "required when gpus > 0", id="admit-gpus-without-type"),
    pytest.param(lambda l: l.admit("vision-lab", "carol", "", Booking("h200", 1, 1)), "project", "carol is not an active member of vision-lab", id="admit-non-member"),
    pytest.param(lambda l: l.admit("vision-lab", "bob", "a/b", Booking("h200", 1, 1)), "server_name", "letters, digits", id="admit-unsafe-server-name"),
    pytest.param(lambda l: l.admit("vision-lab", "bob", "", Booking("h200", 1, 1), now=datetime(2026, 3, 2)), "now", "timezone-aware", id="admit-naive-now"),
    pytest.param(lambda l: l.import_final_charge("hpchub", "7", "bob", "nope", {"h200": 1}, None, None, 60), "account", "no project has the Slurm account", id="import-unknown-account"),
    pytest.param(lambda l: l.import_final_charge("hpchub", "7;rm", "bob", "vision-lab", {"h200": 1}, None, None, 60), "job_id", "a Slurm job id", id="import-unsafe-job-id"),
    pytest.param(lambda l: l.import_final_charge("hpchub", "7", "bob", "vision-lab", {"h200": 1}, None, None, -60), "elapsed_seconds", "from 0 to", id="import-negative-elapsed"),
    pytest.param(lambda l: l.import_final_charge("hpchub", "7", "bob", "vision-lab", {"v100": 1}, None, None, 60), "gpu_type", "unknown GPU type", id="import-unknown-gpu-type"),
    pytest.param(lambda l: l.session_ended(999, T0, 0), "session_id", "no session 999", id="end-unknown-session"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "field", "message"), BAD_INPUT)
def test_bad_input_names_the_field_and_changes_nothing(
    ledger: Ledger, call: Callable[[Ledger], object], field: str, message: str
) -> None:
    before = (row_counts(ledger), ledger.usage("vision-lab"))
    with pytest.raises(LedgerInputError, match=message) as caught:
        call(ledger)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert (row_counts(ledger), ledger.usage("vision-lab")) == before


def test_unknown_project_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(NotFound):
        ledger.usage("nope")


# --- admission -------------------------------------------------------------------------------------


def test_project_refusal_message_and_record(ledger: Ledger) -> None:
    ledger.admit("vision-lab", "alice", "", Booking("h200", 4, 24))  # 96 GPU-h held
    ledger.admit("vision-lab", "alice", "b", Booking("h200", 3, "0.25"))  # 0.75 more: 3.25 left
    with pytest.raises(BudgetRefused) as caught:
        ledger.admit("vision-lab", "alice", "c", Booking("h200", 4, 1))
    message = f"vision-lab has 3.25 GPU-h left; this request needs 4.0 (4 x h200 x 1 h). {ADVICE}"
    assert caught.value.message == message
    refused = ledger.session(caught.value.session_id)
    assert (refused.state, refused.message) == (SessionState.REFUSED, message)
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 96.75  # the refusal holds nothing


def test_cap_refusal_names_the_cap(ledger: Ledger) -> None:
    ledger.admit("vision-lab", "bob", "", Booking("h200", 4, 4))  # 16 of bob's 20
    with pytest.raises(BudgetRefused) as caught:
        ledger.admit("vision-lab", "bob", "b", Booking("h200", 4, "1.25"))
    assert caught.value.message == (
        f"bob's cap in vision-lab has 4.0 GPU-h left (cap 20.0 GPU-h); this request needs 5.0 (4 x h200 x 1.25 h). {ADVICE}"
    )
    ledger.admit("vision-lab", "bob", "b", Booking("h200", 4, 1))  # exactly the rest of the cap
    assert member(ledger.usage("vision-lab"), "bob")["held_gpu_hours"] == 20.0


def test_a100_weight_and_student_cap(ledger: Ledger) -> None:
    ledger.admit("cs101", "carol", "", Booking("a100", 4, "2.5"))  # 4 x 2.5 x 0.5 = 5.0: the whole cap
    assert member(ledger.usage("cs101"), "carol")["held_gpu_hours"] == 5.0
    with pytest.raises(
        BudgetRefused,
        match=r"^carol's cap in cs101 has 0.0 GPU-h left \(cap 5.0 GPU-h\); this request needs 0.125 \(1 x a100 x 0.25 h\)",
    ):
        ledger.admit("cs101", "carol", "b", Booking("a100", 1, "0.25"))


@pytest.mark.parametrize(
    ("now", "site_timezone", "message"),
    [
        pytest.param(
            datetime(2026, 7, 1, 0, 0, tzinfo=timezone.utc),
            timezone.utc,
            "cs101's period ended on 2026-06-30.",
            id="ended",
        ),
        pytest.param(
            datetime(2025, 12, 31, 23, 59, tzinfo=timezone.utc),
            timezone.utc,
            "cs101's period starts on 2026-01-01; no sessions before then.",
            id="not-started",
        ),
        # 15:00 UTC on the last day is already the next day in UTC+10: the site's date counts
        pytest.param(
            datetime(2026, 6, 30, 15, 0, tzinfo=timezone.utc),
            timezone(timedelta(hours=10)),
            "cs101's period ended on 2026-06-30.",
            id="site-timezone",
        ),
    ],
)
def test_outside_the_period_refuses_with_the_reason(ledger_url, ledger: Ledger, now, site_timezone, message) -> None:
    with Ledger(ledger_url, site_timezone=site_timezone) as site:
        with pytest.raises(BudgetRefused) as caught:
            site.admit("cs101", "carol", "", Booking("a100", 1, 1), now=now)
    assert caught.value.message == message
    assert ledger.usage("cs101")["held_gpu_hours"] == 0.0


def test_closed_project_refuses(ledger: Ledger) -> None:
    info = ledger.close_project("tiny-lab", reason="the grant period is over", who="admin")
    assert info.state is ProjectState.CLOSED
    with pytest.raises(BudgetRefused, match=r"^tiny-lab is closed: the grant period is over$"):
        ledger.admit("tiny-lab", "erin", "", Booking("a100", 1, "0.25"))


def test_cpu_session_holds_nothing(ledger: Ledger) -> None:
    session_id = ledger.admit("tiny-lab", "erin", "", Booking(None, 0, 4))
    assert ledger.session(session_id).reservation_mgs == 0
    assert ledger.usage("tiny-lab")["remaining_gpu_hours"] == 0.25


def test_preview_matches_admission_and_writes_nothing(ledger: Ledger) -> None:
    before = row_counts(ledger)
    preview = ledger.preview("vision-lab", "bob", Booking("h200", 2, 1))
    assert (preview.allowed, preview.needs_mgs, preview.project_left_after_mgs, preview.cap_left_after_mgs) == (
        True,
        2 * H,
        98 * H,
        18 * H,
    )
    assert row_counts(ledger) == before


def test_extend(ledger: Ledger, clock: Clock) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 4, 4))  # 16 of 20
    ledger.extend(session_id, 1)  # 20 of 20
    assert ledger.session(session_id).reserved_seconds == 5 * 3600
    with pytest.raises(BudgetRefused) as caught:
        ledger.extend(session_id, "0.25")
    assert caught.value.message == (
        "bob's cap in vision-lab has 0.0 GPU-h left (cap 20.0 GPU-h); this extension needs 1.0 (4 x h200 x 0.25 h). Ask for fewer hours."
    )
    assert ledger.session(session_id).reserved_seconds == 5 * 3600


def test_retract_extension_gives_the_hold_back(ledger: Ledger, clock: Clock) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 4, 4))  # 16 of bob's 20
    ledger.extend(session_id, 1)  # 20 of 20: bob's cap is full
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 20.0
    assert ledger.retract_extension(session_id, 1) is True  # Slurm refused the new time limit
    assert ledger.session(session_id).reserved_seconds == 4 * 3600
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 16.0
    ledger.extend(session_id, 1)  # the room is free again
    assert ledger.session(session_id).reserved_seconds == 5 * 3600


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        pytest.param(4, "hours", id="all-of-it"),
        pytest.param(5, "hours", id="more-than-reserved"),
        pytest.param("0.3", "hours", id="not-a-quarter"),
        pytest.param(0, "hours", id="zero"),
    ],
)
def test_retract_extension_refuses_bad_amounts(ledger: Ledger, clock: Clock, hours, field) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 4))
    with pytest.raises(LedgerInputError) as caught:
        ledger.retract_extension(session_id, hours)
    assert caught.value.field == field
    assert ledger.session(session_id).reserved_seconds == 4 * 3600


def test_retract_extension_of_an_ended_session_changes_nothing(ledger: Ledger, clock: Clock) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1))
    ledger.record_job_id(session_id, "777")
    ledger.session_started(session_id, clock.now)
    ledger.extend(session_id, 1)
    ledger.session_ended(session_id, clock.advance(minutes=10), 600)
    assert ledger.retract_extension(session_id, 1) is False
    assert ledger.session(session_id).reserved_seconds == 2 * 3600
    with pytest.raises(NotFound):
        ledger.retract_extension(999, 1)


# --- the life of a session and its charges ---------------------------------------------------------


def test_session_lifecycle_provisional_then_final(ledger: Ledger, clock: Clock) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 4, 1))
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 4.0
    ledger.record_job_id(session_id, "101")
    ledger.record_job_id(session_id, 101)  # idempotent
    ledger.session_started(session_id, clock.advance(seconds=20))
    clock.advance(minutes=30)
    usage = ledger.usage("vision-lab")
    assert (usage["used_gpu_hours"], usage["held_gpu_hours"], usage["remaining_gpu_hours"]) == (2.0, 2.0, 96.0)
    assert member(usage, "bob") == {
        "user": "bob",
        "role": "member",
        "cap_gpu_hours": 20.0,
        "used_gpu_hours": 2.0,
        "held_gpu_hours": 2.0,
    }

    assert ledger.session_ended(session_id, clock.advance(seconds=7), 1807) is True
    assert ledger.session_ended(session_id, clock.now, 1807) is False  # idempotent
    usage = ledger.usage("vision-lab")
    assert (usage["used_gpu_hours"], usage["held_gpu_hours"]) == (2.0078, 0.0)  # 4 x 1807 s
    [provisional] = ledger.charges("vision-lab")
    assert (provisional.kind, provisional.source, provisional.weighted_mgs) == (
        ChargeKind.PROVISIONAL,
        ChargeSource.PORTAL,
        4 * 1807 * 1000,
    )

    start = T0 + timedelta(seconds=20)
    assert (
        ledger.import_final_charge(
            "hpchub", "101", "bob", "vision-lab", {"h200": 4}, start, start + timedelta(seconds=1810), 1810
        )
        is True
    )
    assert (
        ledger.import_final_charge(
            "hpchub", "101", "bob", "vision-lab", {"h200": 4}, start, start + timedelta(seconds=1810), 1810
        )
        is False
    )
    [final] = ledger.charges("vision-lab")  # replaced, never added to
    assert (final.kind, final.source, final.weighted_mgs, final.elapsed_seconds) == (
        ChargeKind.FINAL,
        ChargeSource.SACCT,
        4 * 1810 * 1000,
        1810,
    )
    assert ledger.usage("vision-lab")["used_gpu_hours"] == 2.0111
    assert row_counts(ledger)["hpchub_charges"] == 2  # the provisional row stays


def test_final_charge_first_ends_the_session_once(ledger: Ledger, clock: Clock) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 2, 2))
    ledger.record_job_id(session_id, "202")
    ledger.session_started(session_id, T0)
    clock.advance(hours=1)
    assert ledger.import_final_charge("hpchub", "202", "bob", "vision-lab", {"h200": 2}, T0, clock.now, 3600) is True
    assert ledger.session(session_id).state is SessionState.ENDED
    assert ledger.session_ended(session_id, clock.now, 3600) is False
    usage = ledger.usage("vision-lab")
    assert (usage["used_gpu_hours"], usage["held_gpu_hours"]) == (2.0, 0.0)
    assert [c.kind for c in ledger.charges("vision-lab")] == [ChargeKind.FINAL]


def test_reimport_with_other_figures_never_doubles(ledger: Ledger) -> None:
    end = T0 + timedelta(hours=1)
    assert ledger.import_final_charge("hpchub", "303", "bob", "vision-lab", {"h200": 1}, T0, end, 3600) is True
    assert ledger.import_final_charge("hpchub", "303", "bob", "vision-lab", {"h200": 2}, T0, end, 3600) is False
    assert (
        ledger.import_final_charge("other", "303", "bob", "vision-lab", {"h200": 1}, T0, end, 3600) is True
    )  # another cluster
    assert ledger.usage("vision-lab")["used_gpu_hours"] == 2.0


def test_outside_job_is_charged_to_the_project(ledger: Ledger) -> None:
    end = T0 + timedelta(minutes=30)
    ledger.import_final_charge("hpchub", "404", "zed", "cs101", {"a100": 2}, T0, end, 1800)
    usage = ledger.usage("cs101")
    assert usage["used_gpu_hours"] == 0.5  # 2 x 0.5 h x 0.5
    assert "zed" not in [m["user"] for m in usage["members"]]
    [charge] = ledger.charges("cs101")
    assert (charge.user, charge.gpu_type, charge.gpus, charge.source) == ("zed", "a100", 2, ChargeSource.SACCT)


def test_mixed_gpu_types_are_summed(ledger: Ledger) -> None:
    ledger.import_final_charge("hpchub", "405", "bob", "vision-lab", {"h200": 1, "a100": 2}, None, None, 3600)
    [charge] = ledger.charges("vision-lab")
    assert (charge.gpu_type, charge.gpus, charge.weighted_mgs) == ("a100:2,h200:1", 3, 2 * H)


def test_hub_restart_loses_no_hold(ledger_url: str, ledger: Ledger, clock: Clock) -> None:
    session_id = ledger.admit("vision-lab", "bob", "gpu", Booking("h200", 2, 2))
    ledger.record_job_id(session_id, "505")
    ledger.session_started(session_id, T0)
    clock.advance(minutes=45)
    before = ledger.usage("vision-lab")
    ledger.close()
    with Ledger(ledger_url, clock=clock) as restarted:
        assert restarted.usage("vision-lab") == before
        [active] = restarted.active_sessions("bob")
        assert (active.id, active.job_id, active.state, active.server_name) == (
            session_id,
            "505",
            SessionState.RUNNING,
            "gpu",
        )
        restarted.session_ended(session_id, clock.now, 45 * 60)
        assert restarted.usage("vision-lab")["used_gpu_hours"] == 1.5


def test_mirror_figures(ledger: Ledger, clock: Clock) -> None:
    running = ledger.admit("vision-lab", "bob", "", Booking("h200", 2, 2))  # 4 GPU-h, running
    ledger.record_job_id(running, "901")
    ledger.session_started(running, T0)
    ledger.admit("vision-lab", "alice", "", Booking("h200", 1, 3))  # 3 GPU-h, still pending: not subtracted
    ledger.import_final_charge("hpchub", "900", "bob", "vision-lab", {"a100": 1}, None, None, 3600)  # 0.5 GPU-h
    clock.advance(minutes=30)
    figures = ledger.mirror_figures("vision-lab")
    assert figures == MirrorFigures(100 * H, H // 2, 4 * H)
    assert slurm_mirror_limit(
        slurm_used_and_running_minutes=30 + 480, grants_mgs=figures.limit_mgs, charges_mgs=figures.charges_mgs,
        running_reservations_mgs=figures.running_reservations_mgs,
    ) == 30 + 480 + 120 * 95 + 60  # fmt: skip
    assert ledger.mirror_figures("vision-lab", "bob") == MirrorFigures(20 * H, H // 2, 4 * H)
    assert ledger.mirror_figures("vision-lab", "alice") == MirrorFigures(None, 0, 0)


def test_provisional_charge_is_capped_at_the_reservation(ledger: Ledger) -> None:
    session_id = ledger.admit("vision-lab", "alice", "", Booking("h200", 1, 1))
    ledger.record_job_id(session_id, "606")
    ledger.session_started(session_id, T0)
    ledger.session_ended(session_id, T0 + timedelta(hours=1, seconds=40), 3640)  # the observed end was late
    assert ledger.usage("vision-lab")["used_gpu_hours"] == 1.0


def test_session_without_job_id(ledger: Ledger) -> None:
    session_id = ledger.admit("vision-lab", "alice", "", Booking("h200", 1, 1))
    with pytest.raises(LedgerInputError, match="has no job id") as caught:
        ledger.session_ended(session_id, T0, 60)
    assert caught.value.field == "elapsed_seconds"
    assert ledger.session_ended(session_id, T0, 0) is True  # sbatch failed: the hold goes, no charge
    assert ledger.charges("vision-lab") == []
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 0.0


def test_job_ids_belong_to_one_session(ledger: Ledger) -> None:
    first = ledger.admit("vision-lab", "alice", "", Booking("h200", 1, 1))
    second = ledger.admit("vision-lab", "alice", "b", Booking("h200", 1, 1))
    ledger.record_job_id(first, "707")
    with pytest.raises(LedgerInputError, match="already has job 707"):
        ledger.record_job_id(first, "708")
    with pytest.raises(LedgerInputError, match="job 707 already belongs to session"):
        ledger.record_job_id(second, "707")


def test_append_only_records_cannot_be_rewritten(ledger: Ledger) -> None:
    ledger.import_final_charge("hpchub", "808", "bob", "vision-lab", {"h200": 1}, None, None, 60)
    with ledger._sessions() as session:
        grant = session.scalars(select(Grant)).first()
        grant.amount_mgs = 0
        with pytest.raises(RuntimeError, match="Grant rows are append-only"):
            session.flush()
    with ledger._sessions() as session:
        session.delete(session.scalars(select(Charge)).one())
        with pytest.raises(RuntimeError, match="Charge rows are append-only"):
            session.flush()
    assert isinstance(ledger._sessions(), AppendOnlySession)
    assert ledger.usage("vision-lab")["budget_gpu_hours"] == 100.0


def test_a_job_cancelled_before_it_started_releases_its_hold_and_writes_no_charge(ledger: Ledger, clock: Clock) -> None:
    """sacct has no final charge for a job that never ran, so a provisional 0 would never be
    replaced: no charge row at all."""
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1))
    ledger.record_job_id(session_id, "7001")
    assert ledger.session_ended(session_id, clock.advance(minutes=2), 0)
    assert ledger.charges("vision-lab") == []
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 0.0
