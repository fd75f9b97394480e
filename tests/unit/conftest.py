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


@pytest.fixture(autouse=True)
def no_site_configuration(tmp_path_factory, monkeypatch):
    """The command line reads the site's configuration (``$HPCHUB_CONFIG``, else
    /etc/hpchub/hpchub_config.py, else the demo's): a unit test reads none of this machine's,
    so ``make demo`` before ``make test``, or a real install, changes no unit test. A test of
    configuration files sets its own."""
    empty = tmp_path_factory.getbasetemp() / "empty_hpchub_config.py"
    if not empty.exists():
        empty.write_text("# no site configuration in the unit tier\n")
    monkeypatch.setenv("HPCHUB_CONFIG", str(empty))
