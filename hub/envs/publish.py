"""Publishing a project's environment into the images catalogue: admins only.

A published environment is a copy of one ready version of a project environment, made
world-readable under ``PUBLISHED_ROOT`` (``c.HPCHubEnvironments.published_root``), so that
everyone (not only the project's members) may use it::

    PUBLISHED_ROOT/                      root 0755
      catalog.json                       root 0644  the published entries (this module's only writer)
      envs/ID/                           root 0755  the copied venv (files 0644/0755, read-only for users)
      kernels/published-ID/kernel.json   root 0644  runs envs/ID/bin/python (PUBLISHED_ROOT is on every
                                                    session's JUPYTER_PATH)

The spawner adds each entry to the catalogue as kind ``venv`` with id ``ID``: like a
``project:NAME`` choice, the server runs in the catalogue's default environment (it holds
Jupyter; a project environment holds only its packages and ipykernel) with the kernel
``published-ID`` as the default kernel. The copy is independent of the project: a later
rebuild or removal there does not change it; publish again (after unpublish) to update it.

A venv copied to another directory works for ``python -m ...`` (Python finds its prefix
from ``pyvenv.cfg`` beside ``bin/``); console scripts in ``bin/`` keep the old path in
their first line and are not used. Every input is checked before anything changes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from hub.envs import space as sp
from hub.envs.config import HPCHubEnvironments
from hub.envs.service import EnvError, checked_name
from spawners import safe_fs
from spawners.catalog import (
    ENVIRONMENT_ID_PATTERN,
    Catalogue,
    Environment,
    load_catalogue,
)

PUBLISHED_FILE = "catalog.json"
KERNEL_PREFIX = "published-"
MAX_TEXT = 200
ID_RULE = "1-40 characters: a-z, 0-9 and '-', starting with a letter"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Published:
    id: str
    name: str
    description: str
    gpu: bool
    project: str
    environment: str
    version: int
    published_by: str
    published_at: str

    def path(self, root: str | Path) -> str:
        return str(Path(root) / "envs" / self.id)

    @property
    def kernel(self) -> str:
        return f"{KERNEL_PREFIX}{self.id}"


def check_catalogue_id(value: object, field: str = "--as") -> str:
    if not isinstance(value, str) or not ENVIRONMENT_ID_PATTERN.fullmatch(value):
        raise EnvError(field, f"must be {ID_RULE}; got {value!r}")
    return value


def check_text(value: object, field: str) -> str:
    """A one-line text shown in the spawn form: 1-200 characters, no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise EnvError(field, "must not be empty")
    if len(value) > MAX_TEXT or _CONTROL.search(value):
        raise EnvError(field, f"one line of at most {MAX_TEXT} characters without control characters")
    return value.strip()


def read_published(root: str | Path) -> list[Published]:
    """The published entries (none if the file is missing); ``EnvError`` (500) if it is broken."""
    path = Path(root) / PUBLISHED_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise EnvError("", f"{path}: unreadable: {exc}", 500) from None
    try:
        return [Published(**{**entry, "version": int(entry["version"]), "gpu": bool(entry["gpu"])})
                for entry in document["environments"]]  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvError("", f"{path}: not a published catalogue: {exc}", 500) from None


def catalogue_entries(root: str | Path, published: Iterable[Published]) -> list[Environment]:
    """The published environments as catalogue entries (kind venv, with their kernel)."""
    return [
        Environment(id=entry.id, name=entry.name, description=entry.description, kind="venv",
                    path=entry.path(root), image=None, gpu=entry.gpu, default=False, kernel=entry.kernel)
        for entry in published
    ]  # fmt: skip


def with_published(catalogue: Catalogue, entries: Iterable[Environment]) -> tuple[Catalogue, list[str]]:
    """The catalogue followed by the published entries; ids already in it are skipped (and returned)."""
    extra, skipped = [], []
    for entry in entries:
        if entry.id in catalogue or any(e.id == entry.id for e in extra):
            skipped.append(entry.id)
        else:
            extra.append(entry)
    return (Catalogue([*catalogue.entries, *extra]) if extra else catalogue), skipped


def _published_root(settings: HPCHubEnvironments) -> Path:
    if not settings.published_root:
        raise EnvError("published_root", "c.HPCHubEnvironments.published_root is not set: publishing is off", 409)
    return Path(settings.published_root)


@contextmanager
def _lock(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    with open(root / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write_entries(root: Path, entries: list[Published]) -> None:
    path = root / PUBLISHED_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"environments": [asdict(e) for e in entries]}, indent=1) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _open_for_everyone(top: Path) -> None:
    """root-owned, readable by all, writable by none but root: dirs 0755, files 0644 (0755 if executable)."""
    for directory, dirs, files in os.walk(top):
        os.chown(directory, 0, 0)
        os.chmod(directory, 0o755)
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            os.lchown(path, 0, 0)
            if stat.S_ISREG(info.st_mode):
                os.chmod(path, 0o755 if info.st_mode & 0o111 else 0o644)


def _check_closed(space: sp.ProjectSpace) -> None:
    """Copy only out of a space no member can restructure: ``P/`` root's and closed (so nothing on the path
    to a sealed version, itself root's, can be swapped for a link while root copies it)."""

    try:
        fd = space.open()
    except OSError as exc:
        raise EnvError("", f"{space.path}: {exc.strerror or exc}", 409) from None
    with safe_fs.closing(fd):
        info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_mode & safe_fs.WRITE_BITS:
        raise EnvError(
            "",
            f"{space.path} is {safe_fs.describe(info)}: members could swap what is copied; run "
            f"`hpchub env sync {space.project}` as root first",
            409,
        )


def publish(
    settings: HPCHubEnvironments, *, project: str, name: str, version: int | None, catalogue_id: str,
    description: str, title: str | None, gpu: bool, reserved_ids: Iterable[str], who: str,
) -> Published:  # fmt: skip
    """Copy ``project``/``name`` (``version``, default its default) to the catalogue as ``catalogue_id``."""
    catalogue_id = check_catalogue_id(catalogue_id)
    name = checked_name(name)
    description = check_text(description, "--description")
    root = _published_root(settings)
    if catalogue_id in set(reserved_ids):
        raise EnvError("--as", f"{catalogue_id!r} is already an entry of the images catalogue (catalog.toml)", 409)
    space = sp.ProjectSpace(Path(settings.project_root), project)
    info = sp.read_environment(space, name)
    if not info.versions:
        raise EnvError("NAME", f"{project} has no environment {name}", 404)
    number = info.default_version if version is None else version
    chosen = info.version(number) if number is not None else None
    if chosen is None or chosen.state is not sp.VersionState.READY:
        ready = ", ".join(f"v{v.version}" for v in info.versions if v.state is sp.VersionState.READY) or "none"
        what = "no ready version" if number is None else f"version {number} is not ready"
        raise EnvError("--version", f"{project}/{name}: {what}; ready versions: {ready}", 409)
    _check_closed(space)
    title = check_text(title, "--title") if title is not None else f"{project}: {name} (v{chosen.version})"
    entry = Published(
        id=catalogue_id, name=title, description=description, gpu=gpu, project=project, environment=name,
        version=chosen.version, published_by=who,
        published_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip
    with _lock(root):
        entries = read_published(root)
        if any(e.id == catalogue_id for e in entries):
            raise EnvError("--as", f"{catalogue_id!r} is already published; unpublish it first", 409)
        target = root / "envs" / catalogue_id
        kernel_dir = root / "kernels" / entry.kernel
        staging = root / "envs" / f".{catalogue_id}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        (root / "envs").mkdir(exist_ok=True)
        (root / "kernels").mkdir(exist_ok=True)
        try:
            shutil.copytree(
                chosen.path, staging, symlinks=True, ignore=shutil.ignore_patterns(sp.STATUS_FILE + ".tmp", "*.tmp")
            )
            _open_for_everyone(staging)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
            kernel_dir.mkdir(parents=True, exist_ok=True)
            spec = sp.kernel_spec(project, name, chosen.version, str(target / "bin" / "python"))
            spec["display_name"] = title
            spec["metadata"]["hpchub"]["published"] = catalogue_id
            (kernel_dir / sp.KERNEL_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
            _open_for_everyone(root / "kernels")
            os.chmod(root / "envs", 0o755)
            _write_entries(root, [*entries, entry])
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise EnvError("", f"publishing {project}/{name} v{chosen.version} failed: {exc}", 500) from None
    return entry


def unpublish(settings: HPCHubEnvironments, catalogue_id: str) -> str:
    """Take ``catalogue_id`` out of the catalogue and remove its copy and kernel."""
    catalogue_id = check_catalogue_id(catalogue_id, "CATALOGUE_NAME")
    root = _published_root(settings)
    with _lock(root):
        entries = read_published(root)
        entry = next((e for e in entries if e.id == catalogue_id), None)
        if entry is None:
            known = ", ".join(e.id for e in entries) or "none"
            raise EnvError("CATALOGUE_NAME", f"{catalogue_id!r} is not published; published: {known}", 404)
        _write_entries(root, [e for e in entries if e.id != catalogue_id])
        shutil.rmtree(root / "kernels" / entry.kernel, ignore_errors=True)
        shutil.rmtree(root / "envs" / catalogue_id, ignore_errors=True)
    return (
        f"unpublished {catalogue_id} ({entry.project}/{entry.environment} v{entry.version}); "
        "sessions already running in it lose its kernel"
    )


def catalogue_ids_of(config) -> list[str]:
    """The ids of the hub's images catalogue (``SlurmGPUSpawner.catalogue_file``), which a
    published id may not take; [] when the configuration names no catalogue."""

    spawner = config.get("SlurmGPUSpawner", {}) if config is not None else {}
    path = spawner.get("catalogue_file") if hasattr(spawner, "get") else None
    if not isinstance(path, str) or not path:
        return []
    variables = spawner.get("catalogue_variables", {})
    return list(load_catalogue(path, variables if isinstance(variables, dict) else {}).ids())
