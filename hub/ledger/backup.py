"""Export and import of the whole ledger: a consistent, versioned JSON dump.

``export_ledger`` reads every ledger table in one read transaction (one snapshot: SQLite's
transaction, REPEATABLE READ on PostgreSQL), every row with every column, ids included.
``import_ledger`` writes a dump into an empty ledger at the same schema, all or nothing,
and moves PostgreSQL's id sequences past the imported ids. A round trip keeps every figure
to the milli-GPU-second. The dump names its schema revision: import it with the version
that exported it, then ``hpchub db upgrade``.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Boolean, Date, func, insert, select, text

from hub.ledger.errors import LedgerInputError
from hub.ledger.models import VERSION_TABLE, Base, UtcDateTime
from hub.ledger.store import Ledger, alembic_config

FORMAT = "hpchub-ledger"
FORMAT_VERSION = 1


def _tables():
    """The ledger's tables, parents before children (foreign keys)."""
    return list(Base.metadata.sorted_tables)


def _to_json(column, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UtcDateTime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, datetime):  # a plain DateTime column: naive UTC
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value"):  # an Enum member
        return value.value
    return value


def _from_json(column, value: Any, where: str) -> Any:
    if value is None:
        return None
    try:
        if isinstance(column.type, UtcDateTime):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("no time zone")
            return moment
        if isinstance(column.type, Date):
            return date.fromisoformat(value)
        if isinstance(column.type, Boolean):
            if not isinstance(value, bool):
                raise ValueError("not true or false")
            return value
        enum_class = getattr(column.type, "enum_class", None)
        if enum_class is not None:
            return enum_class(value)
    except (TypeError, ValueError) as exc:
        raise LedgerInputError("dump", f"{where}: {value!r} is not valid here ({exc})") from None
    return value


def export_ledger(ledger: Ledger) -> dict:
    """Every ledger row, in one snapshot."""
    tables = {}
    with ledger._read() as session:  # noqa: SLF001  (the ledger's own read transaction)
        revision = MigrationContext.configure(
            session.connection(), opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
        for table in _tables():
            rows = session.execute(select(table).order_by(*table.primary_key.columns)).mappings()
            tables[table.name] = [{key: _to_json(table.c[key], value) for key, value in row.items()} for row in rows]
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "schema": revision, "cluster": ledger.cluster,
        "exported_at": ledger.clock().astimezone(timezone.utc).isoformat(), "tables": tables,
    }  # fmt: skip


def import_ledger(ledger: Ledger, dump: object) -> dict[str, int]:
    """Write ``dump`` into this (empty) ledger; returns rows per table. All or nothing."""
    if not isinstance(dump, dict) or dump.get("format") != FORMAT:
        raise LedgerInputError("dump", f'not an hpchub ledger export (no "format": "{FORMAT}")')
    if dump.get("format_version") != FORMAT_VERSION:
        raise LedgerInputError(
            "dump", f"format version {dump.get('format_version')!r}; this version reads {FORMAT_VERSION}"
        )
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if dump.get("schema") != head:
        raise LedgerInputError(
            "dump", f"exported at schema {dump.get('schema')!r}, this version's is {head}: import it with the "
            "version that exported it, then run `hpchub db upgrade`"
        )  # fmt: skip
    tables = dump.get("tables")
    if not isinstance(tables, dict):
        raise LedgerInputError("dump", 'no "tables" object')
    known = {table.name: table for table in _tables()}
    unknown = sorted(set(tables) - set(known))
    if unknown:
        raise LedgerInputError("dump", f"unknown tables {', '.join(unknown)}")
    counts = {}
    with ledger._write() as session:  # noqa: SLF001  (one transaction: all or nothing)
        for table in known.values():
            if session.execute(select(func.count()).select_from(table)).scalar_one():
                raise LedgerInputError("database", f"{table.name} is not empty: import only into an empty ledger")
        for name, table in known.items():
            rows = tables.get(name, [])
            if not isinstance(rows, list):
                raise LedgerInputError("dump", f"{name}: not a list of rows")
            converted = []
            for number, row in enumerate(rows, start=1):
                if not isinstance(row, dict) or set(row) != set(table.c.keys()):
                    raise LedgerInputError(
                        "dump", f"{name} row {number}: expected the columns {', '.join(table.c.keys())}"
                    )
                converted.append({key: _from_json(table.c[key], value, f"{name} row {number} {key}")
                                  for key, value in row.items()})  # fmt: skip
            if converted:
                session.execute(insert(table), converted)
            counts[name] = len(converted)
        if ledger.engine.dialect.name == "postgresql":
            for name, table in known.items():
                if "id" in table.c and table.c.id.autoincrement and counts[name]:
                    session.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
                    )  # fmt: skip  (table names are the ledger's own constants)
    return counts
