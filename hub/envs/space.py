"""The project space's layout, environment versions and their states (contract "Project space").

::

    PROJECT_ROOT/P/                root:hpc-P 2770   the project's space
      shared/                      root:hpc-P 2770   members' shared files
      envs/                        root:hpc-P 2750   written only by the portal and build jobs
        NAME/                      root:hpc-P 2750
          1/, 2/, ...              BUILDER:hpc-P 2750, read-only once built (a venv prefix)
            requirements.txt       the validated spec the job installs
            build.json             who asked, when, the Slurm job id (written at submit)
            build.log              the job's output (Slurm --output)
            status                 "ready" or "failed", written by the job as its last step
      kernels/                     root:hpc-P 2750   on JUPYTER_PATH of members' sessions
        P-NAME/kernel.json         points at the default version's python

A version's state: ``ready``/``failed`` from its status file; without one, ``building``
while its job is pending or running and ``failed`` once the job has ended without
writing it (cancelled, timed out, node failure). The default version is the newest
ready one: a new version becomes the default only when its build succeeds.

Functions here only read the file system; they never change it.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hub.ledger.types import PROJECT_NAME_RE
from hub.numbers import WHOLE_NUMBER

from .spec import ENV_NAME_PATTERN

STATUS_FILE = "status"
BUILD_FILE = "build.json"
LOG_FILE = "build.log"
SPEC_FILE = "requirements.txt"
KERNEL_FILE = "kernel.json"
GROUP_PREFIX = "hpc-"
PROJECT_DIR_MODE = 0o2770
SHARED_DIR_MODE = 0o2770
CLOSED_DIR_MODE = 0o2750  # envs/, kernels/ and what is in them: group-readable, never group-writable
PROJECT_ENVIRONMENT_PREFIX = "project:"
MAX_VERSION = 1_000_000  # the highest version number a request may name


class VersionState(enum.Enum):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class VersionInfo:
    version: int
    state: VersionState
    job_id: str | None
    requested_by: str | None
    submitted_at: str | None
    path: str
    log_file: str
    detail: str = ""  # why a version failed without a status file


@dataclass(frozen=True)
class EnvironmentInfo:
    project: str
    name: str
    versions: tuple[VersionInfo, ...]  # oldest first
    default_version: int | None  # the newest ready version
    kernel_name: str

    @property
    def ready(self) -> bool:
        return self.default_version is not None

    def version(self, number: int) -> VersionInfo | None:
        return next((info for info in self.versions if info.version == number), None)


def group_name(project: str) -> str:
    """The project's Unix group: ``hpc-vision-lab``."""
    return f"{GROUP_PREFIX}{project}"


def kernel_name(project: str, name: str) -> str:
    """The kernelspec's name: ``vision-lab-tiny``."""
    return f"{project}-{name}"


@dataclass(frozen=True)
class ProjectSpace:
    """Paths of one project's space under ``root`` (PROJECT_ROOT)."""

    root: Path
    project: str

    def __post_init__(self) -> None:
        # Defence in depth: a project name never leaves PROJECT_ROOT ("..", "/").
        if not isinstance(self.project, str) or not PROJECT_NAME_RE.fullmatch(self.project):
            raise ValueError(f"project: not a project name: {self.project!r}")

    @property
    def path(self) -> Path:
        return self.root / self.project

    @property
    def shared(self) -> Path:
        return self.path / "shared"

    @property
    def envs(self) -> Path:
        return self.path / "envs"

    @property
    def kernels(self) -> Path:
        return self.path / "kernels"

    def env_dir(self, name: str) -> Path:
        return self.envs / name

    def version_dir(self, name: str, version: int) -> Path:
        return self.envs / name / str(version)

    def kernel_dir(self, name: str) -> Path:
        return self.kernels / kernel_name(self.project, name)


def version_numbers(entries: Iterable[str]) -> list[int]:
    """The version numbers among directory entries (``1``, ``2``, ...), ascending."""
    return sorted(int(entry) for entry in entries if WHOLE_NUMBER.fullmatch(entry) and entry != "0"
                  and len(entry) <= len(str(MAX_VERSION)))


def next_version(existing: Iterable[int]) -> int:
    """The number of a new build: one more than any version ever kept (failed ones included)."""
    return max(existing, default=0) + 1


def decide_state(status_text: str | None, job_active: bool | None) -> tuple[VersionState, str]:
    """A version's state from its status file's text and whether its job is still in Slurm.

    ``job_active`` None: Slurm was not asked (or did not answer): a version without a
    status file then counts as building.
    """
    word = (status_text or "").strip()
    if word == VersionState.READY.value:
        return VersionState.READY, ""
    if word == VersionState.FAILED.value:
        return VersionState.FAILED, ""
    if job_active is False:
        return VersionState.FAILED, "the build job ended without finishing (cancelled, timed out or its node failed)"
    return VersionState.BUILDING, ""


def default_version(versions: Iterable[VersionInfo]) -> int | None:
    """The newest ready version (None if none is ready)."""
    ready = [info.version for info in versions if info.state is VersionState.READY]
    return max(ready, default=None)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_build_record(version_dir: Path) -> dict:
    text = _read_text(version_dir / BUILD_FILE)
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def unreadable(space: ProjectSpace) -> str:
    """Why this process cannot list the space's environments ('' if it can, or the space is not made yet).

    The hub reads a space through the project's group (its service account is a member,
    ``c.HPCHubEnvironments.hub_account``); a process's groups are fixed when it starts.
    """
    try:
        os.listdir(space.envs)
    except PermissionError:
        return (f"the hub cannot read {space.envs}: its account is not in the group {group_name(space.project)}, "
                "or joined it after the hub started (restart the hub)")
    except OSError:
        return ""
    return ""


def environment_names(space: ProjectSpace) -> list[str]:
    """The environments that have a directory in the space, by name."""
    try:
        entries = os.listdir(space.envs)
    except OSError:
        return []
    return sorted(entry for entry in entries if ENV_NAME_PATTERN.fullmatch(entry) and (space.envs / entry).is_dir())


def read_environment(space: ProjectSpace, name: str, active_jobs: Mapping[str, bool] | None = None) -> EnvironmentInfo:
    """One environment's versions and default. ``active_jobs``: job id -> still pending/running
    (a job missing from the mapping: Slurm was not asked)."""
    try:
        entries = os.listdir(space.env_dir(name))
    except OSError:
        entries = []
    versions = []
    for number in version_numbers(entries):
        directory = space.version_dir(name, number)
        record = read_build_record(directory)
        job_id = str(record["job_id"]) if record.get("job_id") else None
        job_active = None if active_jobs is None or job_id is None else active_jobs.get(job_id)
        state, detail = decide_state(_read_text(directory / STATUS_FILE), job_active)
        versions.append(
            VersionInfo(
                version=number, state=state, job_id=job_id, requested_by=record.get("requested_by"),
                submitted_at=record.get("submitted_at"), path=str(directory), log_file=str(directory / LOG_FILE),
                detail=detail,
            )
        )  # fmt: skip
    return EnvironmentInfo(
        project=space.project, name=name, versions=tuple(versions), default_version=default_version(versions),
        kernel_name=kernel_name(space.project, name),
    )  # fmt: skip


def building_job_ids(space: ProjectSpace) -> list[str]:
    """Job ids of versions without a status file (their state needs Slurm's answer)."""
    job_ids = []
    for name in environment_names(space):
        try:
            entries = os.listdir(space.env_dir(name))
        except OSError:
            continue
        for number in version_numbers(entries):
            directory = space.version_dir(name, number)
            if _read_text(directory / STATUS_FILE) is None:
                job_id = read_build_record(directory).get("job_id")
                if job_id:
                    job_ids.append(str(job_id))
    return job_ids


def ready_environment_names(root: Path, project: str) -> list[str]:
    """The environments of ``project`` with a ready version (what members may choose)."""
    space = ProjectSpace(root, project)
    return [name for name in environment_names(space) if read_environment(space, name).ready]


def log_tail(path: str | Path, lines: int = 15) -> str:
    text = _read_text(Path(path))
    return "" if text is None else "\n".join(text.splitlines()[-lines:])


def kernel_spec(project: str, name: str, version: int, python: str) -> dict:
    """The kernelspec (kernel.json) of an environment's version."""
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"{project}: {name} (v{version})",
        "language": "python",
        "metadata": {"hpchub": {"project": project, "environment": name, "version": version}},
    }


def jupyter_path(root: Path | str, projects: Iterable[str]) -> str:
    """``JUPYTER_PATH`` for a member of ``projects``: each project's space (its kernels/ is found there)."""
    return ":".join(str(Path(root) / project) for project in sorted(set(projects)))
