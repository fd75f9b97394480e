"""The layer contracts bite: a deliberate cross-layer import makes ``lint-imports`` fail, naming
the contract and the import; the tree as it is keeps every contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(target: Path) -> Path:
    for package in ("hub", "spawners", "hpchub_notebook"):
        shutil.copytree(REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: `make test` installs the lint extra (pyproject.toml)")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return _copy_tree(tmp_path_factory.mktemp("layers"))


def test_the_tree_keeps_every_contract(tree):
    answer = _lint_imports(tree)
    assert answer.returncode == 0, answer.stdout[-4000:]


@pytest.mark.parametrize(
    ("module", "imported", "contract"),
    [
        ("spawners/slurm/parsers.py", "hub.ledger.store", "The Slurm layer"),
        ("hub/ledger/arithmetic.py", "hub.api.handlers", "The ledger imports nothing"),
        ("hub/ledger/store.py", "hub.reconcile.reconciler", "The ledger imports nothing"),
        ("hub/envs/spec.py", "hub.api.views", "The hub's packages in layers"),
        ("hub/auth/mapping.py", "hub.pages", "The hub's packages in layers"),
    ],
    ids=[
        "slurm-layer-imports-the-ledger",
        "ledger-imports-the-api",
        "ledger-imports-the-reconciler",
        "envs-import-the-api",
        "login-imports-the-pages",
    ],
)
def test_a_cross_layer_import_fails_the_lint(tmp_path, module, imported, contract):
    tree = _copy_tree(tmp_path)
    with (tree / module).open("a") as source:
        source.write(f"\nimport {imported}  # deliberate: crosses a layer\n")
    answer = _lint_imports(tree)
    assert answer.returncode != 0
    dotted = module.removesuffix(".py").replace("/", ".")
    assert contract in answer.stdout and "BROKEN" in answer.stdout
    assert dotted in answer.stdout and imported in answer.stdout
