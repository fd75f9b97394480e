"""The ledger on a real PostgreSQL 15 server that this module starts and stops.

The server (``hub/demo/devtools/pgserver.py``) is private: initdb as the ``postgres`` OS user
into ``$HPCHUB_TEST_DIR-postgres`` (/var/lib/hpchub-test-postgres), 127.0.0.1 on a free
port, stopped with ``pg_ctl -m fast stop`` by its pid file at the end of the session and
its directory removed. No Slurm, no hub: only the server.

1. Every unit test that takes ``ledger_url`` (``tests/unit/test_ledger_*.py``: the store,
   the 20-way race, the CLI, outside jobs; new ones join by themselves) runs here again,
   one class per unit module, with ``ledger_url`` a fresh PostgreSQL database per test. The few that check SQLite itself are listed in ``SQLITE_ONLY``,
   each with the PostgreSQL test below that covers the same ground.
2. PostgreSQL's own: ``upgrade`` beside JupyterHub's real schema (its ``alembic_version``
   untouched), the row locks of admission (READ COMMITTED after the wait), the same
   operations giving the same figures as on SQLite, concurrent imports of one job, and a
   smoke run of ``benchmarks/budget.py`` (tiny; nothing about its timings).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import event, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from hub.demo.devtools.pgserver import PostgresServer
from hub.ledger import (
    BudgetRefused,
    Ledger,
    LedgerInputError,
    make_engine,
    schema_revision,
    upgrade,
)
from hub.ledger.models import VERSION_TABLE, Member, PortalSession
from hub.ledger.store import alembic_config
from hub.ledger.types import Booking, SessionState

pytestmark = pytest.mark.integration

UNIT_DIR = Path(__file__).resolve().parent.parent / "unit"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ADVICE = "Ask for fewer GPUs or hours."

# Unit tests that check SQLite itself, not the ledger: not run here (the reason says what covers it).
SQLITE_ONLY = {
    "test_ledger_store": {
        "test_sqlite_writes_begin_immediate_and_reads_deferred": "here: test_admission_locks_rows_in_read_committed",
        "test_upgrade_is_idempotent_and_leaves_jupyterhubs_tables_alone": "checks SQLite's WAL; here: test_upgrade_beside_jupyterhubs_schema",
    },
}  # fmt: skip


# --- the server and a database per test ----------------------------------------------------------


def _server_dir() -> Path:
    """$HPCHUB_TEST_PG_DIR, else beside the portal's $HPCHUB_TEST_DIR (not inside: the portal
    fixture empties that). A fixed place, so a server a killed run left behind is stopped
    (by its pid file) by the next run."""
    if "HPCHUB_TEST_PG_DIR" in os.environ:
        return Path(os.environ["HPCHUB_TEST_PG_DIR"])
    if os.geteuid() == 0:
        return Path(os.environ.get("HPCHUB_TEST_DIR", "/var/lib/hpchub-test") + "-postgres")
    return Path(tempfile.gettempdir()) / f"hpchub-test-postgres-{os.geteuid()}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the session (fast settings: fsync off), stopped after."""
    with PostgresServer.scratch(_server_dir()) as server:
        yield server


_database_numbers = itertools.count(1)


@pytest.fixture
def ledger_url(postgres: PostgresServer) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test (dropped after, connections and all)."""
    name = f"ledger_{next(_database_numbers)}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


# --- the unit tests that take ``ledger_url``, on PostgreSQL ----------------------------------------
#
# Each unit module becomes a class here (``TestLedgerStore`` for test_ledger_store.py): its
# tests that need ``ledger_url`` (directly or through the module's fixtures) as static
# methods, its fixtures as class fixtures, so that two modules' fixtures of the same name
# (``clock``) stay apart. The tests are the unit tier's own function objects (imported with
# ``tests/unit`` on sys.path, as pytest's default import mode does: assertions are rewritten).

_FIXTURE_TYPE = type(pytest.fixture(lambda: None))


def _needs_ledger_url(namespace: dict, function: Callable, seen: frozenset = frozenset()) -> bool:
    for name in inspect.signature(function).parameters:
        if name == "ledger_url":
            return True
        fixture = namespace.get(name)
        if (
            isinstance(fixture, _FIXTURE_TYPE)
            and name not in seen
            and _needs_ledger_url(namespace, fixture, seen | {name})
        ):
            return True
    return False


def _class_fixture(fixture) -> Callable:
    """A module-level fixture of a unit module as a fixture of the class (same arguments,
    scope and params; ``self`` dropped before calling it)."""
    function = fixture.__wrapped__
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        raise RuntimeError(f"{function.__qualname__}: async fixtures are not adapted here")
    if inspect.isgeneratorfunction(function):

        def method(self, **kwargs):
            yield from function(**kwargs)
    else:

        def method(self, **kwargs):
            return function(**kwargs)

    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = inspect.signature(function).replace(
        parameters=[self_parameter, *inspect.signature(function).parameters.values()]
    )
    method.__name__ = method.__qualname__ = function.__name__
    marker = fixture._fixture_function_marker  # scope, params, autouse, ids, name as declared
    return pytest.fixture(
        scope=marker.scope, params=marker.params, autouse=marker.autouse, ids=marker.ids, name=marker.name
    )(method)


def _unit_test_classes() -> dict[str, type]:
    if str(UNIT_DIR) not in sys.path:
        sys.path.insert(0, str(UNIT_DIR))
    classes = {}
    for path in sorted(UNIT_DIR.glob("test_ledger_*.py")):
        if "ledger_url" not in path.read_text():
            continue
        module = importlib.import_module(path.stem)
        namespace = vars(module)
        skipped = SQLITE_ONLY.get(path.stem, {})
        body: dict = {"__doc__": f"tests/unit/{path.name} on PostgreSQL", "__module__": __name__}
        for name, value in namespace.items():
            if isinstance(value, _FIXTURE_TYPE) and name != "ledger_url":
                body[name] = _class_fixture(value)
            elif name.startswith("test_") and inspect.isfunction(value) and name not in skipped:
                if _needs_ledger_url(namespace, value):
                    body[name] = staticmethod(value)
        if any(name.startswith("test_") for name in body):
            class_name = "Test" + "".join(part.title() for part in path.stem.split("_")[1:])
            classes[class_name] = type(class_name, (), body)
    return classes


UNIT_TEST_CLASSES = _unit_test_classes()
globals().update(UNIT_TEST_CLASSES)


def _unit_conftest():
    """tests/unit/conftest.py under its own module name (``conftest`` is this tier's)."""
    spec = importlib.util.spec_from_file_location("hpchub_unit_conftest", UNIT_DIR / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The unit tier's autouse fake of Slurm's account tree (``hpchub course create`` checks its account
# against it): the unit tests collected here ask no Slurm either.
slurm_accounts = _unit_conftest().slurm_accounts


def test_the_unit_tests_are_here_and_sqlite_only_ones_still_exist() -> None:
    assert {"TestLedgerStore", "TestLedgerRace", "TestLedgerCli"} <= set(UNIT_TEST_CLASSES)
    assert hasattr(UNIT_TEST_CLASSES["TestLedgerRace"], "test_twenty_concurrent_admissions_hold_exactly_five")
    for module, names in SQLITE_ONLY.items():
        for name in names:
            assert callable(getattr(sys.modules[module], name, None)), f"{module}.{name} is gone: update SQLITE_ONLY"


# --- schema: beside JupyterHub -------------------------------------------------------------------


def _jupyterhub_schema(url: str) -> None:
    """JupyterHub's own tables, created and stamped the way the hub does at start, then its
    own Alembic ``upgrade head`` (in process: ``jupyterhub upgrade-db`` runs the same)."""
    import alembic.command  # noqa: PLC0415
    import alembic.config  # noqa: PLC0415
    from jupyterhub import orm  # noqa: PLC0415
    from jupyterhub.dbutil import _temp_alembic_ini  # noqa: PLC0415

    session_factory = orm.new_session_factory(url)
    session_factory().close()
    with _temp_alembic_ini(url) as ini:
        alembic.command.upgrade(alembic.config.Config(ini), "head")


def _jupyterhub_snapshot(engine) -> dict:
    """JupyterHub's tables, their columns, and its alembic_version rows."""
    inspector = sa_inspect(engine)
    tables = {
        name: [(c["name"], str(c["type"])) for c in inspector.get_columns(name)]
        for name in inspector.get_table_names()
        if not name.startswith("hpchub_")
    }
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return {"tables": tables, "alembic_version": versions}


@pytest.mark.parametrize(
    "jupyterhub_first", [pytest.param(True, id="jupyterhub-first"), pytest.param(False, id="ledger-first")]
)
def test_upgrade_beside_jupyterhubs_schema(ledger_url: str, jupyterhub_first: bool) -> None:
    from jupyterhub import orm  # noqa: PLC0415

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = make_engine(ledger_url)
    try:
        if jupyterhub_first:
            _jupyterhub_schema(ledger_url)
            before = _jupyterhub_snapshot(engine)
            assert "users" in before["tables"] and len(before["alembic_version"]) == 1
            assert schema_revision(engine) is None
            upgrade(ledger_url)
            upgrade(ledger_url)  # idempotent
        else:
            upgrade(ledger_url)
            _jupyterhub_schema(ledger_url)  # JupyterHub starts on a database that has the ledger's tables
            before = _jupyterhub_snapshot(engine)
            upgrade(ledger_url)
        assert _jupyterhub_snapshot(engine) == before  # JupyterHub's tables and alembic_version untouched
        assert schema_revision(ledger_url) == head
        with engine.connect() as connection:
            assert connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [head]
        orm.new_session_factory(ledger_url)().close()  # JupyterHub's own revision check still passes
        with Ledger(engine) as ledger:  # and the ledger works in the shared database
            ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=1, who="t", now=T0)
            assert ledger.usage("vision-lab", now=T0)["budget_gpu_hours"] == 1.0
    finally:
        engine.dispose()


# --- admission: row locks, READ COMMITTED ----------------------------------------------------------


def _seed_race_lab(url: str, budget: int = 5) -> None:
    upgrade(url)
    with Ledger(url) as ledger:
        ledger.create_project("race-lab", account="race-lab", kind="research", gpu_hours=budget, who="test", now=T0)
        ledger.add_member("race-lab", "alice", role="pi", who="test", now=T0)


def test_admission_locks_rows_in_read_committed(ledger_url: str) -> None:
    _seed_race_lab(ledger_url)
    statements: list[tuple[str, str]] = []

    def record(conn, _cursor, statement, *_args) -> None:
        statements.append((conn.connection.dbapi_connection.isolation_level, " ".join(statement.split())))

    with Ledger(ledger_url) as ledger:
        event.listen(ledger.engine, "before_cursor_execute", record)
        ledger.admit("race-lab", "alice", "", Booking("h200", 1, 1), now=T0)
        admitted, statements[:] = list(statements), []
        ledger.usage("race-lab", now=T0)
        read = list(statements)
    locked = [s for _level, s in admitted if s.endswith("FOR UPDATE")]
    assert [s.split(" FROM ")[1].split()[0] for s in locked] == ["hpchub_projects"]
    # three statements: the project's lock, every figure at once, the hold
    assert [s.split()[0] for _level, s in admitted] == ["SELECT", "SELECT", "INSERT"]
    # writes: the server's default (None), READ COMMITTED; reads: one REPEATABLE READ snapshot
    assert {"READ_COMMITTED" if level is None else level.name for level, _s in admitted} == {"READ_COMMITTED"}
    assert {"READ_COMMITTED" if level is None else level.name for level, _s in read} == {"REPEATABLE_READ"}
    with make_engine(ledger_url).connect() as connection:
        assert connection.exec_driver_sql("SHOW default_transaction_isolation").scalar_one() == "read committed"


def test_preview_reads_in_autocommit_and_agrees_with_admission(ledger_url: str) -> None:
    """The spawn form's preview is advice (admit checks again under the lock): two statements
    in autocommit, no BEGIN and no COMMIT round trips, and the same answer as admission."""
    _seed_race_lab(ledger_url)
    seen: list[tuple[bool, str]] = []

    def record(conn, _cursor, statement, *_args) -> None:
        seen.append((conn.connection.dbapi_connection.autocommit, statement.split()[0]))

    with Ledger(ledger_url) as ledger:
        event.listen(ledger.engine, "before_cursor_execute", record)
        preview = ledger.preview("race-lab", "alice", Booking("h200", 1, 1), now=T0)
        assert seen == [(True, "SELECT"), (True, "SELECT")]
        event.remove(ledger.engine, "before_cursor_execute", record)
        assert preview.allowed
        for _ in range(5):
            ledger.admit("race-lab", "alice", "", Booking("h200", 1, 1), now=T0)
        refused = ledger.preview("race-lab", "alice", Booking("h200", 1, 1), now=T0)
        with pytest.raises(BudgetRefused) as caught:
            ledger.admit("race-lab", "alice", "", Booking("h200", 1, 1), now=T0)
        assert (refused.allowed, refused.message) == (False, str(caught.value))
        with ledger.engine.connect() as connection:  # the pooled connection went back as it came
            assert connection.connection.dbapi_connection.autocommit is False


def _admit_while_another_holds_the_lock(ledger_url: str, change) -> BaseException | None:
    """The race, slowed down: another transaction holds the project's row lock and, while
    an admission waits for it, makes ``change(session, project_id)`` and commits. Returns
    what the admission raised (None: it was admitted)."""
    engine = make_engine(ledger_url)
    ledger = Ledger(ledger_url)
    try:
        with engine.connect() as connection:
            project_id = connection.execute(
                text("SELECT id FROM hpchub_projects WHERE name = 'race-lab' FOR UPDATE")
            ).scalar_one()
            with ThreadPoolExecutor(1) as pool, engine.connect() as watcher:
                waiting = pool.submit(ledger.admit, "race-lab", "alice", "late", Booking("h200", 1, 1), T0)
                watcher = watcher.execution_options(isolation_level="AUTOCOMMIT")  # a fresh view of pg_locks each time
                deadline = time.monotonic() + 10
                while watcher.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one() == 0:
                    assert time.monotonic() < deadline, "the admission never waited for the project's row lock"
                    time.sleep(0.02)
                assert not waiting.done()
                with Session(bind=connection) as session:
                    change(session, project_id)
                    session.flush()
                connection.commit()
                return waiting.exception(timeout=30)
    finally:
        ledger.close()
        engine.dispose()


def test_admission_waits_for_the_lock_and_then_sees_the_committed_hold(ledger_url: str) -> None:
    """While the admission waits, the lock holder commits a hold of the whole budget: the
    admission must see it (READ COMMITTED re-reads after the wait) and refuse."""
    _seed_race_lab(ledger_url, budget=5)

    def hold_everything(session: Session, project_id: int) -> None:
        session.add(PortalSession(
            project_id=project_id, user="alice", server_name="first", cluster="hpchub", job_id=None,
            gpu_type="h200", gpus=5, reserved_seconds=3600, weight_milli=1000, state=SessionState.ADMITTED,
            message=None, admitted_at=T0,
        ))  # fmt: skip

    caught = _admit_while_another_holds_the_lock(ledger_url, hold_everything)
    assert isinstance(caught, BudgetRefused)
    assert caught.message == f"race-lab has 0.0 GPU-h left; this request needs 1.0 (1 x h200 x 1 h). {ADVICE}"
    with Ledger(ledger_url) as ledger:
        assert ledger.usage("race-lab", now=T0)["held_gpu_hours"] == 5.0


def test_admission_waits_for_the_lock_and_then_sees_the_ended_membership(ledger_url: str) -> None:
    """The project's lock alone serialises membership changes and admissions (no member
    row lock): a membership ended while the admission waits refuses the admission."""
    _seed_race_lab(ledger_url, budget=5)

    def end_membership(session: Session, project_id: int) -> None:
        session.execute(
            update(Member).where(Member.project_id == project_id, Member.user == "alice").values(active=False)
        )

    caught = _admit_while_another_holds_the_lock(ledger_url, end_membership)
    assert isinstance(caught, LedgerInputError)
    assert caught.field == "project" and "alice is not an active member of race-lab" in str(caught)
    with Ledger(ledger_url) as ledger:
        assert ledger.usage("race-lab", now=T0)["held_gpu_hours"] == 0.0


def test_concurrent_imports_of_one_job_charge_it_once(ledger_url: str) -> None:
    _seed_race_lab(ledger_url, budget=100)
    racers = 12
    start_line = threading.Barrier(racers)

    def import_it(_index: int) -> bool:
        with Ledger(ledger_url) as ledger:
            start_line.wait(timeout=30)
            return ledger.import_final_charge(
                "hpchub", "4242", "alice", "race-lab", {"h200": 2}, T0, T0 + timedelta(hours=1), 3600, now=T0
            )

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(import_it, range(racers)))
    assert sorted(results) == [False] * (racers - 1) + [True]
    with Ledger(ledger_url) as ledger:
        assert [c.job_id for c in ledger.charges("race-lab")] == ["4242"]
        assert ledger.usage("race-lab", now=T0)["used_gpu_hours"] == 2.0


def test_concurrent_creates_of_one_project_make_one(ledger_url: str) -> None:
    upgrade(ledger_url)
    racers = 8
    start_line = threading.Barrier(racers)

    def create(index: int) -> str:
        with Ledger(ledger_url) as ledger:
            start_line.wait(timeout=30)
            try:
                ledger.create_project("twin-lab", account=f"twin{index}", kind="lab", gpu_hours=1, who="t", now=T0)
                return "created"
            except LedgerInputError as error:
                assert error.field == "project"
                return "refused"

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(create, range(racers)))
    assert sorted(results) == ["created"] + ["refused"] * (racers - 1)


# --- the same operations, the same figures on SQLite and PostgreSQL -------------------------------


def _story(url: str) -> dict:
    """A ledger's life through the store's API; returns everything it can read back."""
    upgrade(url)
    seen: dict = {"returns": [], "refusals": []}
    with Ledger(url) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin", now=T0)
        ledger.create_project("cs101", account="cs101", kind="course", gpu_hours=50, start="2026-01-01", end="2026-06-30", who="admin", now=T0)  # fmt: skip
        ledger.add_member("vision-lab", "alice", role="pi", who="admin", now=T0)
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=20, who="admin", now=T0)
        ledger.add_member("cs101", "carol", role="student", cap_gpu_hours=5, who="admin", now=T0)
        seen["returns"].append(ledger.grant("vision-lab", "+12.5", reason="renewal", who="admin", now=T0))
        seen["returns"].append(ledger.grant("vision-lab", "-0.0001", reason="rounding", who="admin", now=T0))

        first = ledger.admit("vision-lab", "bob", "", Booking("h200", 4, "1.5"), now=T0)
        ledger.record_job_id(first, "101")
        ledger.session_started(first, T0 + timedelta(seconds=20))
        second = ledger.admit("vision-lab", "alice", "big", Booking("a100", 8, 3), now=T0)
        ledger.record_job_id(second, "102")
        ledger.session_started(second, T0 + timedelta(minutes=1))
        ledger.admit("cs101", "carol", "", Booking("a100", 2, 4), now=T0)  # pending, holds 4 of carol's 5
        for args in (
            ("vision-lab", "bob", "x", Booking("h200", 4, "3.75")),
            ("cs101", "carol", "y", Booking("a100", 2, "1.25")),
        ):
            with pytest.raises(BudgetRefused) as caught:
                ledger.admit(*args, now=T0 + timedelta(minutes=5))
            seen["refusals"].append(caught.value.message)
        seen["preview"] = ledger.preview("vision-lab", "alice", Booking("h200", 2, 2), now=T0 + timedelta(minutes=5))
        seen["usage_running"] = ledger.usage("vision-lab", now=T0 + timedelta(minutes=30))

        end = T0 + timedelta(seconds=20 + 3001)
        seen["returns"].append(ledger.session_ended(first, end, 3001))
        seen["returns"].append(ledger.session_ended(first, end, 3001))  # idempotent
        start = T0 + timedelta(seconds=20)
        seen["returns"].append(ledger.import_final_charge("hpchub", "101", "bob", "vision-lab", {"h200": 4}, start, start + timedelta(seconds=3003), 3003, now=end))  # fmt: skip
        seen["returns"].append(ledger.import_final_charge("hpchub", "101", "bob", "vision-lab", {"h200": 4}, start, start + timedelta(seconds=3003), 3003, now=end))  # fmt: skip
        seen["returns"].append(ledger.import_final_charge("hpchub", "102", "alice", "vision-lab", {"a100": 8}, T0, T0 + timedelta(hours=2), 7200, now=end))  # fmt: skip
        seen["returns"].append(ledger.session_ended(second, T0 + timedelta(hours=2), 7199))  # the final came first
        seen["returns"].append(ledger.import_final_charge("hpchub", "900", "zed", "vision-lab", {"h200": 1, "a100": 2}, None, None, 1234, now=end))  # fmt: skip
        ledger.set_cap("vision-lab", "bob", "7.25", reason="halved", who="alice", now=end)
        ledger.remove_member("vision-lab", "alice", who="admin", now=end)

        later = T0 + timedelta(hours=3)
        seen["usage"] = {name: ledger.usage(name, now=later) for name in ("vision-lab", "cs101")}
        seen["figures"] = ledger.figures("vision-lab", now=later)
        seen["mirror"] = (ledger.mirror_figures("vision-lab"), ledger.mirror_figures("vision-lab", "bob"))
        seen["charges"] = {name: ledger.charges(name) for name in ("vision-lab", "cs101")}
        seen["sessions"] = [(s.project, s.user, s.state, s.reserved_seconds) for s in ledger.active_sessions()]
        seen["memberships"] = [(p.name, role) for p, role in ledger.memberships("bob")]
        seen["projects"] = ledger.projects()
    return seen


def test_the_same_operations_give_the_same_figures_as_on_sqlite(ledger_url: str, tmp_path) -> None:
    on_postgresql = _story(ledger_url)
    on_sqlite = _story(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    assert on_postgresql == on_sqlite
    assert on_postgresql["usage"]["vision-lab"]["used_gpu_hours"] > 0  # the story did charge something
    assert on_postgresql["returns"][2:] == [True, False, True, False, True, False, True]


# --- the command line on PostgreSQL -------------------------------------------------------------


def test_cli_database_failure_is_one_line_without_the_password(postgres: PostgresServer, capsys) -> None:
    from hub import cli  # noqa: PLC0415

    url = postgres.url("ledger").replace(postgres.password, "wrong-password")
    assert cli.main(["usage", "vision-lab", "--db-url", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"hpchub: ledger database postgresql+psycopg://postgres:***@127.0.0.1:{postgres.port}/ledger: "
    )
    assert "wrong-password" not in err and err.count("\n") == 1


# --- the benchmark still runs (a smoke test: tiny, and nothing about its timings) -----------------


def test_budget_benchmark_runs_on_both_backends() -> None:
    import subprocess  # noqa: PLC0415

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "budget.py"
    args = ["--rows", "400", "--projects", "4", "--iterations", "5", "--naive-iterations", "1", "--backend", "both"]
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("sqlite ", "postgresql "))]
    assert [(r[0], r[1]) for r in rows] == [
        (backend, operation)
        for backend in ("sqlite", "postgresql")
        for operation in ("preview", "admit", "admit+end", "naive")
    ]
    assert {r[-1] for r in rows if r[1] in ("preview", "admit")} <= {"PASS", "MISS"}


def test_a_pooled_connection_the_server_dropped_is_replaced_after_idling(ledger_url: str, monkeypatch) -> None:
    """No ping on every checkout (a round trip per admission), but a connection that sat idle
    is pinged first: one the server dropped meanwhile (a restart, an idle timeout) is replaced
    and the caller never sees it."""
    import hub.ledger.engine as engine_module

    _seed_race_lab(ledger_url, budget=5)
    with Ledger(ledger_url) as ledger:
        ledger.admit("race-lab", "alice", "one", Booking("h200", 1, 1), now=T0)  # leaves a pooled connection
        with make_engine(ledger_url).connect() as admin:
            dropped = admin.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar_one()  # fmt: skip
        assert dropped >= 1
        monkeypatch.setattr(engine_module, "POOL_PING_AFTER_IDLE_SECONDS", 0.0)
        ledger.admit("race-lab", "alice", "two", Booking("h200", 1, 1), now=T0)
        assert ledger.usage("race-lab", now=T0)["held_gpu_hours"] == 2.0


def test_ledger_connections_plan_each_prepared_statement_once(ledger_url: str) -> None:
    """``plan_cache_mode`` is set on the ledger's own connections (planning the figures
    statement anew for each admission cost half of its time), not server-wide."""
    _seed_race_lab(ledger_url)
    with Ledger(ledger_url) as ledger:
        with ledger.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_generic_plan"
        for _ in range(8):  # past the driver's prepare threshold
            assert ledger.preview("race-lab", "alice", Booking("h200", 1, 1), now=T0).allowed
    import psycopg  # noqa: PLC0415

    plain = ledger_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as other:  # another client of the same server keeps the default
        assert other.execute("SHOW plan_cache_mode").fetchone() == ("auto",)
