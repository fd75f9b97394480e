"""The project space's layout, environment versions and their states (contract "Project space").

::

    PROJECT_ROOT/                  root:root 0755     everyone may pass; each space is closed
      P/                           root:hpc-P 2750    members cannot rename or replace anything in it
        shared/                    root:hpc-P 3770    the only group-writable place (setgid and sticky:
                                                      members cannot delete or rename each other's files)
        envs/                      root:hpc-P 2750    written only by root
          NAME/                    root:hpc-P 2750
            .lock                  root 0600          one change at a time
            1/, 2/, ...            a version (a venv prefix): BUILDER:hpc-P 2750 while its job runs, then
                                   sealed: root:hpc-P, never group-writable (see below)
              requirements.txt     the validated spec the job installs
              build.json           who asked, when, the Slurm job id (written by root at submit)
              build.log            the job's output (Slurm --output)
              status               "ready" or "failed", written by the job as its last step
              .sealed              written by root when the version was handed to root
        kernels/                   root:hpc-P 2750    P/ is on JUPYTER_PATH of members' sessions
          P-NAME/kernel.json       root:hpc-P 0640    written by root: the default version's python
        NAME.moved-aside-STAMP     what `env sync` found swapped (a member's symlink or directory), renamed

Sealing (:mod:`.seal`): a build runs as the PI or manager, so its version directory is theirs
while the job runs. Once the job has ended, root copies the version into new root-owned inodes
(group/other write and setuid/setgid removed, symlinks re-made only if they stay inside the
version or point at root's files), swaps the copy in and writes ``.sealed``; the builder keeps
no file, hard link or open descriptor into it. Root then writes the kernelspec. Root seals at
every ``ensure_space`` (``demo up``, ``hpchub env sync|create``, each spawn of the demo's root
hub) and before it reads the ready state (``hpchub env list|log|create --wait``, the environments
page and API of a hub running as root). A hub running as its service account cannot seal: a
finished version stays "building" (not offered, never the default) until root runs one of those.

A version's state: ``ready`` once its status file says so and it is sealed; ``failed`` from its
status file; without one, ``building`` while its job is pending or running and ``failed`` once
the job has ended without writing it (cancelled, timed out, node failure). The default version
is the newest ready one: a new version becomes the default only when its build succeeds.

Functions here only read the file system; they never change it. Every read opens each
directory below PROJECT_ROOT with O_NOFOLLOW (:mod:`spawners.safe_fs`) and reads a file only if
it is a regular file with one link owned by the expected user: a member's symlink is never
followed, and nothing root-only is ever shown as a log.
"""

from __future__ import annotations

import enum
import errno
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hub.envs.spec import ENV_NAME_PATTERN
from hub.ledger.types import PROJECT_NAME_RE
from hub.numbers import WHOLE_NUMBER
from spawners import safe_fs

STATUS_FILE = "status"
BUILD_FILE = "build.json"
LOG_FILE = "build.log"
SPEC_FILE = "requirements.txt"
KERNEL_FILE = "kernel.json"
SEALED_FILE = ".sealed"
GROUP_PREFIX = "hpc-"
PROJECT_DIR_MODE = 0o2750
SHARED_DIR_MODE = 0o3770
CLOSED_DIR_MODE = 0o2750  # envs/, kernels/ and what is in them: group-readable, never group-writable
KERNEL_FILE_MODE = 0o640
MOVED_ASIDE = ".moved-aside-"
PROJECT_ENVIRONMENT_PREFIX = "project:"
MAX_VERSION = 1_000_000  # the highest version number a request may name
SPACE_ENTRIES = {"shared": SHARED_DIR_MODE, "envs": CLOSED_DIR_MODE, "kernels": CLOSED_DIR_MODE}
LOG_NOT_SHOWN = "hpchub: the log is not shown: {reason}"


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
    detail: str = ""  # why a version failed without a status file, or why a built one is not ready yet
    sealed: bool = False
    finished: bool = False  # its status file says ready or failed (the job's last step ran)
    owner: int = -1  # the version directory's owner: the builder, or root once sealed


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


def is_moved_aside(name: str) -> bool:
    return MOVED_ASIDE in name


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

    def open(self, *parts: str) -> int:
        """A descriptor of ``P/parts...``: PROJECT_ROOT is the site's, everything below it is opened with
        O_NOFOLLOW (``OSError`` ELOOP/ENOTDIR where a member left a symlink or a file)."""
        base = safe_fs.open_base(self.root)
        with safe_fs.closing(base):
            return safe_fs.open_beneath(base, (self.project, *parts))


def version_numbers(entries: Iterable[str]) -> list[int]:
    """The version numbers among directory entries (``1``, ``2``, ...), ascending."""
    return sorted(
        int(entry)
        for entry in entries
        if WHOLE_NUMBER.fullmatch(entry) and entry != "0" and len(entry) <= len(str(MAX_VERSION))
    )


def next_version(existing: Iterable[int]) -> int:
    """The number of a new build: one more than any version ever kept (failed ones included)."""
    return max(existing, default=0) + 1


NOT_SEALED = ("built; waiting to be handed to root (sealed) before members use it: root does it at the next "
              "`hpchub env sync`, `env list` or spawn")  # fmt: skip


def decide_state(status_text: str | None, job_active: bool | None, sealed: bool = True) -> tuple[VersionState, str]:
    """A version's state from its status file's text, whether its job is still in Slurm and whether it
    was sealed (handed to root). ``job_active`` None: Slurm was not asked (or did not answer): a version
    without a status file then counts as building. A ready but unsealed version is still building."""
    word = (status_text or "").strip()
    if word == VersionState.READY.value:
        return (VersionState.READY, "") if sealed else (VersionState.BUILDING, NOT_SEALED)
    if word == VersionState.FAILED.value:
        return VersionState.FAILED, ""
    if job_active is False:
        return VersionState.FAILED, "the build job ended without finishing (cancelled, timed out or its node failed)"
    return VersionState.BUILDING, ""


def default_version(versions: Iterable[VersionInfo]) -> int | None:
    """The newest ready version (None if none is ready)."""
    ready = [info.version for info in versions if info.state is VersionState.READY]
    return max(ready, default=None)


def _small_file(dir_fd: int, name: str, owners: Iterable[int]) -> str | None:
    """A small file's text (status, build.json) if it is a regular file of ``owners``; None otherwise."""
    result = safe_fs.read_regular(dir_fd, name, owners=set(owners), limit=64 * 1024)
    if result.problem or result.missing:
        return None
    return result.data.decode("utf-8", errors="replace")


def _record(text: str | None) -> dict:
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def is_sealed(version_fd: int) -> bool:
    """Handed to root: the directory is root's and closed, and root wrote ``.sealed`` in it."""
    info = os.fstat(version_fd)
    if info.st_uid != 0 or info.st_mode & safe_fs.WRITE_BITS:
        return False
    return _small_file(version_fd, SEALED_FILE, (0,)) is not None


def unreadable(space: ProjectSpace) -> str:
    """Why this process cannot list the space's environments ('' if it can, or the space is not made yet).

    The hub reads a space through the project's group (its service account is a member,
    ``c.HPCHubEnvironments.hub_account``); a process's groups are fixed when it starts.
    """
    try:
        fd = space.open("envs")
        with safe_fs.closing(fd):
            safe_fs.listdir(fd)
    except PermissionError:
        return (
            f"the hub cannot read {space.envs}: its account is not in the group {group_name(space.project)}, "
            "or joined it after the hub started (restart the hub)"
        )
    except OSError:
        return ""
    return ""


def _env_names(envs_fd: int) -> list[str]:
    names = []
    for entry in safe_fs.listdir(envs_fd):
        if ENV_NAME_PATTERN.fullmatch(entry):
            info = safe_fs.lstat_at(entry, envs_fd)
            if info is not None and stat.S_ISDIR(info.st_mode):
                names.append(entry)
    return names


def environment_names(space: ProjectSpace) -> list[str]:
    """The environments that have a directory in the space, by name (none if envs/ is not a real directory)."""
    try:
        fd = space.open("envs")
    except OSError:
        return []
    with safe_fs.closing(fd):
        return _env_names(fd)


def _version_info(space: ProjectSpace, name: str, number: int, version_fd: int,
                  active_jobs: Mapping[str, bool] | None) -> VersionInfo:  # fmt: skip
    owner = os.fstat(version_fd).st_uid
    record = _record(_small_file(version_fd, BUILD_FILE, {0, owner}))
    job_id = str(record["job_id"]) if record.get("job_id") else None
    job_active = None if active_jobs is None or job_id is None else active_jobs.get(job_id)
    status = _small_file(version_fd, STATUS_FILE, {0, owner})
    sealed = is_sealed(version_fd)
    state, detail = decide_state(status, job_active, sealed)
    directory = space.version_dir(name, number)
    return VersionInfo(
        version=number, state=state, job_id=job_id, requested_by=record.get("requested_by"),
        submitted_at=record.get("submitted_at"), path=str(directory), log_file=str(directory / LOG_FILE),
        detail=detail, sealed=sealed, owner=owner,
        finished=(status or "").strip() in (VersionState.READY.value, VersionState.FAILED.value),
    )  # fmt: skip


def read_environment(space: ProjectSpace, name: str, active_jobs: Mapping[str, bool] | None = None) -> EnvironmentInfo:
    """One environment's versions and default. ``active_jobs``: job id -> still pending/running
    (a job missing from the mapping: Slurm was not asked). A version that is not a real directory
    (a symlink) is left out."""
    versions = []
    try:
        env_fd = space.open("envs", safe_fs.check_name(name))
    except OSError:
        env_fd = None
    if env_fd is not None:
        with safe_fs.closing(env_fd):
            for number in version_numbers(safe_fs.listdir(env_fd)):
                try:
                    version_fd = safe_fs.open_dir(str(number), env_fd)
                except OSError:
                    continue
                with safe_fs.closing(version_fd):
                    versions.append(_version_info(space, name, number, version_fd, active_jobs))
    return EnvironmentInfo(
        project=space.project, name=name, versions=tuple(versions), default_version=default_version(versions),
        kernel_name=kernel_name(space.project, name),
    )  # fmt: skip


def building_job_ids(space: ProjectSpace) -> list[str]:
    """Job ids of versions whose state needs Slurm's answer: without a status file, or finished but not yet
    sealed (root seals a version only once its job has ended)."""
    job_ids = []
    for name in environment_names(space):
        for info in read_environment(space, name).versions:
            if info.job_id and info.state is VersionState.BUILDING:  # ready but unsealed versions too
                job_ids.append(info.job_id)
    return job_ids


def ready_environment_names(root: Path, project: str) -> list[str]:
    """The environments of ``project`` with a ready (sealed) version (what members may choose)."""
    space = ProjectSpace(root, project)
    return [name for name in environment_names(space) if read_environment(space, name).ready]


@dataclass(frozen=True)
class LogRead:
    """A build log read: its bytes, the file's size, and why it was not shown ('' if it was)."""

    data: bytes
    size: int
    problem: str = ""

    @property
    def text(self) -> str:
        if self.problem:
            return LOG_NOT_SHOWN.format(reason=self.problem)
        return self.data.decode("utf-8", errors="replace")


def read_log(space: ProjectSpace, name: str, version: int, *, offset: int = 0, limit: int = 256 * 1024,
             tail: bool = False) -> LogRead:  # fmt: skip
    """A version's build.log, read only if it is a regular file with one link owned by the version
    directory's owner (the builder while its job runs; root once sealed), every directory on the way
    opened O_NOFOLLOW. A symlink, a hard link, someone else's file: nothing but the reason."""
    try:
        version_fd = space.open("envs", safe_fs.check_name(name), str(version))
    except FileNotFoundError:
        return LogRead(b"", 0)
    except OSError as exc:
        reason = ("a directory on its path is not a real directory (a symbolic link?)"
                  if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror or str(exc))  # fmt: skip
        return LogRead(b"", 0, reason)
    with safe_fs.closing(version_fd):
        owner = os.fstat(version_fd).st_uid
        result = safe_fs.read_regular(version_fd, LOG_FILE, owners={owner}, offset=offset, limit=limit, tail=tail)
    if result.problem:
        return LogRead(b"", 0, f"{space.version_dir(name, version) / LOG_FILE}: {result.problem}")
    return LogRead(result.data, result.size)


def log_tail(space: ProjectSpace, name: str, version: int, lines: int = 15) -> str:
    """The last ``lines`` lines of a version's build log (or the one-line reason it is not shown)."""
    read = read_log(space, name, version, limit=64 * 1024, tail=True)
    return read.text if read.problem else safe_fs.tail_lines(read.data, lines)


def kernel_spec(project: str, name: str, version: int, python: str) -> dict:
    """The kernelspec (kernel.json) of an environment's version."""
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"{project}: {name} (v{version})",
        "language": "python",
        "metadata": {"hpchub": {"project": project, "environment": name, "version": version}},
    }


def jupyter_path(root: Path | str, projects: Iterable[str]) -> str:
    """``JUPYTER_PATH`` for a member of ``projects``: each project's space (its kernels/ is found there).
    The spawner puts only spaces that pass :func:`jupyter_problem` on it."""
    return ":".join(str(Path(root) / project) for project in sorted(set(projects)))


def jupyter_problem(space: ProjectSpace) -> str:
    """Why ``P/`` may not be on a session's JUPYTER_PATH ('' if it may): Jupyter reads kernels/ (and would
    read labextensions/, nbextensions/, ...) from it, so ``P/`` and every entry in it but ``shared/`` and
    what was moved aside must be root's and writable by no one else, and so must everything in kernels/."""
    try:
        fd = space.open()
    except OSError as exc:
        return f"{space.path}: {exc.strerror or exc}"
    with safe_fs.closing(fd):
        info = os.fstat(fd)
        if info.st_uid != 0 or info.st_mode & safe_fs.WRITE_BITS:
            return f"{space.path} is {safe_fs.describe(info)}, not root's and closed (run `hpchub env sync`)"
        entries = [(name, safe_fs.lstat_at(name, fd)) for name in safe_fs.listdir(fd)
                   if name != "shared" and not is_moved_aside(name)]  # fmt: skip
        problems = safe_fs.unsafe_in(entries)
        if not problems and any(name == "kernels" for name, _info in entries):
            problems = _kernels_problems(fd)
    return f"in {space.path}: {'; '.join(problems)}" if problems else ""


def _kernels_problems(space_fd: int) -> list[str]:
    kernels = safe_fs.open_dir("kernels", space_fd)
    with safe_fs.closing(kernels):
        problems = []
        for name in safe_fs.listdir(kernels):
            info = safe_fs.lstat_at(name, kernels)
            problems += safe_fs.unsafe_in([(f"kernels/{name}", info)])
            if not problems and info is not None and stat.S_ISDIR(info.st_mode):
                kernel = safe_fs.open_dir(name, kernels)
                with safe_fs.closing(kernel):
                    problems += safe_fs.unsafe_in([(f"kernels/{name}/{entry}", safe_fs.lstat_at(entry, kernel))
                                                   for entry in safe_fs.listdir(kernel)])  # fmt: skip
        return problems
