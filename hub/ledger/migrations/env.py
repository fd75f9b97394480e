"""Alembic environment of the ledger, configured in code by ``hub.ledger.engine``.

Only tables prefixed ``hpchub_`` are the ledger's: in a database shared with JupyterHub
its tables (and its ``alembic_version``) are ignored. SQLite runs in batch mode so
later revisions can alter tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from hub.ledger import (
    allocation_models,  # noqa: F401  (its tables are on Base's metadata)
    mail_models,  # noqa: F401  (its tables are on Base's metadata)
)
from hub.ledger.models import TABLE_PREFIX, VERSION_TABLE, Base


def include_name(name, type_, parent_names) -> bool:
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX)
    return True


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


config = context.config
connection = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    run_with(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as new_connection:
            run_with(new_connection)
    finally:
        engine.dispose()
