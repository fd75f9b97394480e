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


# Slurm's account tree as the unit tier's ``hpchub course create`` sees it: the accounts its
# tests use, each a leaf under root, and a department ``dept`` with one account under it.
UNIT_ACCOUNTS = ("cs101", "cs102", "cs103", "cs104", "lab1", "vision-lab", "tiny-lab", "dept")


@pytest.fixture(autouse=True)
def slurm_accounts(monkeypatch):
    """``hpchub course create`` checks its account against Slurm's tree: a unit test asks no
    Slurm, it gets this one (a test may patch ``read_slurm_accounts`` with another)."""
    from hub.commands import courses as course_cli  # noqa: PLC0415
    from spawners.slurm.accounts import tree_of  # noqa: PLC0415

    tree = tree_of([("root", ""), *((account, "root") for account in UNIT_ACCOUNTS), ("dept-a", "dept")])
    monkeypatch.setattr(course_cli, "read_slurm_accounts", lambda slurm_conf: tree)
    return tree
