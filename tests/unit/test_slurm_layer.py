"""The Slurm layer's boundaries: spawners/slurm imports nothing of the hub (apart from the JupyterHub
adapters), and the hub runs no Slurm command and makes no Slurm client itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "spawners" / "slurm"
# The JupyterHub adapters: they join the Slurm layer to the hub's ledger, settings and pages.
ADAPTERS = {
    "spawner.py",
    "form.py",
    "form_hooks.py",
    "form_budget.py",
    "project_envs.py",
    "ledger_link.py",
    "request_context.py",
    "request_hooks.py",
}
SLURM_COMMANDS = ("sbatch", "scancel", "squeue", "sacct", "sinfo", "sacctmgr", "scontrol", "srun", "sshare", "sprio")


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _is_argv(node: ast.List | ast.Tuple) -> bool:
    """A Slurm command and its arguments; a list of command names only (the sudoers rules) is not one."""
    words = [elt.value if isinstance(elt, ast.Constant) else None for elt in node.elts]
    return bool(words) and words[0] in SLURM_COMMANDS and not all(word in SLURM_COMMANDS for word in words)


def _hub_modules() -> list[Path]:
    """The hub's code that runs at a site (the demo's own cluster and tools drive Slurm's daemons)."""
    skipped = ("demo", "cluster", "devtools", "idp", "units.py")
    return [path for path in sorted((ROOT / "hub").rglob("*.py"))
            if not any(part.startswith(skipped) for part in path.relative_to(ROOT / "hub").parts)]  # fmt: skip


def test_the_slurm_layer_imports_nothing_of_the_hub() -> None:
    found = {
        path.name: [name for name in _imported_modules(path) if name == "hub" or name.startswith("hub.")]
        for path in sorted(SLURM.glob("*.py"))
        if path.name not in ADAPTERS
    }
    assert {name: hub for name, hub in found.items() if hub} == {}


@pytest.mark.parametrize("path", _hub_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_the_hub_runs_no_slurm_command_itself(path: Path) -> None:
    """A Slurm command in an argument list (``["squeue", ...]``) or a client's raw ``run`` belongs in
    spawners/slurm/client.py, next to its parser."""
    tree = ast.parse(path.read_text(), str(path))
    argv = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.List | ast.Tuple) and _is_argv(node)]
    raw = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
           and node.func.attr == "run" and isinstance(node.func.value, ast.Name) and node.func.value.id == "client"]  # fmt: skip
    assert (argv, raw) == ([], [])
