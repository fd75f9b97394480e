"""The wheel a centre installs (`pip install hpchub-*.whl`, docs/operations.md) carries everything
the hub reads besides its modules: the templates, the environment catalogue and image recipes,
the ledger's migrations, the identity provider's files (demo), the example configuration.

Built from a copy of the checkout (pip builds in the source tree) with `pip wheel --no-deps`:
without network when this interpreter has the build backend (setuptools >= 77), else pip fetches
the backend from its configured index, as `make install` does. Expected files are read from the
checkout, so a template or migration added without packaging it fails here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA = "hpchub-{version}.data/data/share/hpchub"


def _has_build_backend() -> bool:
    try:
        return int(metadata.version("setuptools").split(".")[0]) >= 77
    except metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("src") / "hpchub"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", "test-artifacts", ".pytest_cache"))  # fmt: skip
    out = tmp_path_factory.mktemp("dist")
    isolation = ["--no-build-isolation"] if _has_build_backend() else []
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(out),
                           str(source)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = out.glob("hpchub-*-py3-none-any.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def _names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def _version(wheel: zipfile.ZipFile) -> str:
    [dist_info] = {name.split("/")[0] for name in wheel.namelist() if ".dist-info/" in name}
    return dist_info.removeprefix("hpchub-").removesuffix(".dist-info")


def test_the_wheel_carries_the_templates_and_the_images_catalogue(wheel):
    data = DATA.format(version=_version(wheel))
    expected = {f"{data}/templates/{p.name}" for p in (ROOT / "templates").glob("*.html")}
    expected |= {f"{data}/{p.relative_to(ROOT)}" for p in (ROOT / "images").rglob("*") if p.is_file()}
    assert expected and expected - _names(wheel) == set()


def test_the_wheel_carries_every_migration_and_the_idp_and_example_files(wheel):
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "hub" / "ledger" / "migrations").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}  # fmt: skip
    expected |= {str(p.relative_to(ROOT)) for p in (ROOT / "hub" / "demo" / "idp").iterdir()
                 if p.suffix in (".mjs", ".json")}  # fmt: skip
    expected |= {"hub/examples/hpchub_config.py"}
    assert "hub/ledger/migrations/script.py.mako" in expected and "hub/demo/idp/provider.mjs" in expected
    assert expected - _names(wheel) == set()


def test_every_module_is_in_the_wheel_and_no_test_is(wheel):
    modules = {str(p.relative_to(ROOT)) for package in ("hub", "spawners", "hpchub_notebook")
               for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts}  # fmt: skip
    assert modules - _names(wheel) == set()
    assert not [name for name in _names(wheel) if name.startswith(("tests/", "benchmarks/", "build/"))]


def test_the_wheel_declares_the_command_and_the_plugins(wheel):
    [entry_points] = [name for name in _names(wheel) if name.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    for line in ("hpchub = hub.cli:main", "slurm-gpu = spawners.slurm.spawner:SlurmGPUSpawner",
                 "hpchub-oidc = hub.auth.oidc:HPCHubOIDCAuthenticator"):  # fmt: skip
        assert line in text


def test_the_wheel_switches_on_the_notebook_servers_activity_extension(wheel):
    """Installed into a notebook environment, every server started from it answers the idle stop."""
    config = f"hpchub-{_version(wheel)}.data/data/etc/jupyter/jupyter_server_config.d/hpchub_notebook.json"
    assert json.loads(wheel.read(config)) == {"ServerApp": {"jpserver_extensions": {"hpchub_notebook": True}}}
