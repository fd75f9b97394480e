"""Fixtures of the unit tier (the ledger's database lives in tmp_path)."""

from __future__ import annotations

import pytest


@pytest.fixture
def ledger_url(tmp_path) -> str:
    """The ledger database the store and race tests run against: SQLite here. Every test
    that takes ``ledger_url`` runs again on a fresh PostgreSQL database in
    ``tests/integration/test_ledger_postgres.py``.
    """
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
