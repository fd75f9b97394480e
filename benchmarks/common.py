"""What the ledger benchmarks share: the databases they build on (a SQLite file, a private
PostgreSQL), bulk loading, timing and percentiles, the query plans of what was measured, and
the lines that say which machine measured.

Every benchmark measures the checkout it lives in: importing this module puts the
repository first on ``sys.path`` (as the tests do), not an older installed copy.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path[:1]:
    sys.path.insert(0, str(REPO))

from sqlalchemy import event, insert, text  # noqa: E402

from hub.demo.devtools.pgserver import BIN_DIR, PostgresServer  # noqa: E402

BATCH = 20_000  # rows per executemany in a bulk load
BACKENDS = ("sqlite", "postgresql")


# --- databases ------------------------------------------------------------------------------------


@contextmanager
def databases(backend: str, work: Path) -> Iterator[Callable[[str], str]]:
    """A function that makes an empty database by name and returns its URL: a SQLite file in
    ``work`` (WAL mode comes with the ledger's ``upgrade``), or a database on a private
    PostgreSQL started for the block with its durable defaults (fsync and synchronous commit
    on) and stopped after it, also on an error."""
    if backend == "sqlite":
        yield lambda name: f"sqlite:///{work / name}.sqlite"
    elif backend == "postgresql":
        with PostgresServer.scratch(prefix="hpchub-bench-pg-", durable=True) as server:
            yield server.create_database
    else:
        raise ValueError(f"unknown backend {backend!r}")


def batches(rows: list[dict], size: int = BATCH) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def bulk_insert(connection, model, rows: list[dict]) -> None:
    """SQLAlchemy core ``insert()`` executemany, ``BATCH`` rows at a time."""
    for batch in batches(rows):
        connection.execute(insert(model.__table__), batch)


def after_bulk_load(engine, tables_with_ids: list[str]) -> None:
    """On PostgreSQL: move the id sequences past the explicit ids loaded, then VACUUM ANALYZE
    (what autovacuum would do after the load: the planner's statistics). Nothing on SQLite,
    where the ledger does not run ANALYZE either."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        for table in tables_with_ids:
            connection.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
        connection.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    operation: str
    samples_ms: list[float] = field(default_factory=list)
    rows: int | None = None  # how many items an answer held, where that says what was measured

    def percentile(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        if len(ordered) == 1:
            return ordered[0]
        return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        return self.percentile(99)


def timed(call: Callable[[], object]) -> tuple[float, object]:
    """(milliseconds, value) of one call."""
    started = time.perf_counter_ns()
    value = call()
    return (time.perf_counter_ns() - started) / 1e6, value


@contextmanager
def statements(engine) -> Iterator[list[tuple[str, object]]]:
    """The SQL statements (with their parameters) the engine sends inside the block."""
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        if not executemany and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def query_plans(engine, call: Callable[[], object]) -> list[str]:
    """Run ``call`` and return each SELECT it sent with its plan: ``EXPLAIN QUERY PLAN`` on
    SQLite, ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL (the plan as run, with timings)."""
    with statements(engine) as seen:
        call()
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    out = []
    with engine.connect() as connection:
        for statement, parameters in seen:
            rows = connection.exec_driver_sql(prefix + statement, parameters).all()
            plan = [" ".join(str(c) for c in row[-1:]) if engine.dialect.name == "sqlite" else row[0] for row in rows]
            out.append(" ".join(statement.split()))
            out += [f"    {line}" for line in plan]
        connection.rollback()
    return out


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM ends the run as Ctrl-C does, through every ``finally``: the private PostgreSQL
    is stopped and the temporary directory removed."""
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(143))


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


# --- which machine --------------------------------------------------------------------------------


def pg_version() -> str:
    try:
        completed = subprocess.run([str(BIN_DIR / "postgres"), "--version"], capture_output=True, text=True)
        return completed.stdout.split()[2]
    except (OSError, IndexError):
        return "not installed"


def machine() -> list[str]:
    memory_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    disk = shutil.disk_usage(tempfile.gettempdir())
    import sqlite3  # noqa: PLC0415

    return [
        f"machine: {os.cpu_count()} CPUs ({model}), {memory_kb / 1024 / 1024:.1f} GiB RAM, "
        f"temp dir {tempfile.gettempdir()} on a {disk.total / 1e9:.0f} GB disk",
        f"software: Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {pg_version()}, {platform.system()} {platform.release()}",
    ]
