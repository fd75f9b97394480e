"""Alembic migrations of the ledger (version table ``hpchub_alembic_version``).

Run them with ``hub.ledger.store.upgrade(db_url)``; no alembic.ini is needed.
"""
