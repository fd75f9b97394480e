"""The ledger's engine and migrations: ``make_engine`` (SQLite with our own BEGIN, IMMEDIATE
for writes; PostgreSQL with generic plans and a ping of pooled connections that sat idle),
and ``upgrade``/``schema_revision`` (the Alembic migrations run in code, version table
``hpchub_alembic_version``). Kept apart from ``store`` (the operations);
``hub.ledger.store`` re-exports every name here.
"""

from __future__ import annotations

import pathlib
import time

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from hub.ledger.errors import LedgerInputError
from hub.ledger.models import VERSION_TABLE

MIGRATIONS_DIR = pathlib.Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
_WRITE = "hpchub_ledger_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)


def _sqlite_connect(busy_timeout_seconds: float):
    def connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # pysqlite emits no BEGIN of its own: we do
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        cursor.close()

    return connect


def _sqlite_begin(connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(db_url: str, *, sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS) -> Engine:
    """An engine for the ledger: on SQLite with our own BEGIN (IMMEDIATE for writes), waiting
    up to ``sqlite_busy_timeout`` seconds for another writer's lock."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        if not 0 < sqlite_busy_timeout <= 3600:
            raise LedgerInputError("sqlite_busy_timeout", f"from 0 to 3600 seconds, got {sqlite_busy_timeout!r}")
        engine = create_engine(url, connect_args={"timeout": sqlite_busy_timeout, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect(sqlite_busy_timeout))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url)
    event.listen(engine, "connect", _generic_plans)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A pooled server connection is pinged before use only after it sat idle this long: a server
# restart is still noticed before a transaction fails on a dead connection, but a busy hub does
# not pay SQLAlchemy's ``pool_pre_ping`` (a BEGIN and a SELECT 1: two round trips) on every
# admission. A connection used within the window had its last statement answered moments ago.
POOL_PING_AFTER_IDLE_SECONDS = 5.0


def _generic_plans(dbapi_connection, _record) -> None:
    """Once per new PostgreSQL connection: plan each prepared statement once.

    The driver prepares a statement after a few executions, but the planner still plans
    each execution again for its parameters (a "custom plan") when it guesses that is
    cheaper. For the admission's figures statement that planning took 0.6 ms of 1.3 ms
    (``EXPLAIN ANALYZE``: execution 0.5 ms) with 1,000 charges per project
    (benchmarks/budget.py). The ledger's statements filter on indexed keys (project,
    user, job), where the one generic plan is the custom plan. PostgreSQL before 12 has no
    such setting: it keeps its default there."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    except Exception:  # noqa: BLE001  (PostgreSQL < 12: unknown setting)
        dbapi_connection.rollback()
    else:
        dbapi_connection.commit()
    finally:
        cursor.close()


def _note_checkin(_dbapi_connection, record) -> None:
    record.info["hpchub_idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    idle_since = record.info.get("hpchub_idle_since")
    if idle_since is None or time.monotonic() - idle_since < POOL_PING_AFTER_IDLE_SECONDS:
        return  # a fresh connection, or one used moments ago
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()  # leave no transaction open: the caller begins its own
    except Exception as exc:  # noqa: BLE001  (any failure: the pool replaces the connection)
        raise DisconnectionError(f"pooled ledger connection is dead: {exc}") from exc


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(db: str | Engine, revision: str = "head") -> None:
    """Create or migrate the ledger's tables (idempotent). SQLite files switch to WAL."""
    engine = make_engine(db) if isinstance(db, str) else db
    try:
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            with engine.connect() as connection:  # on the driver: WAL cannot be set inside a transaction
                connection.connection.driver_connection.execute("PRAGMA journal_mode=WAL")
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if isinstance(db, str):
            engine.dispose()


def schema_revision(db: str | Engine) -> str | None:
    """The ledger's migration revision in this database (None: never migrated)."""
    engine = make_engine(db) if isinstance(db, str) else db
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
    finally:
        if isinstance(db, str):
            engine.dispose()
