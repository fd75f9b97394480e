"""Fixtures of the unit tier (the ledger's database lives in tmp_path)."""

from __future__ import annotations

import pytest


@pytest.fixture
def ledger_url(tmp_path) -> str:
    """The ledger database the store and race tests run against.

    SQLite only for now. When the tests can start a PostgreSQL server, parametrize this
    fixture (params=["sqlite", "postgresql"]) and return a fresh database URL per test for
    the second; every test that takes ``ledger_url`` then runs on both.
    """
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
