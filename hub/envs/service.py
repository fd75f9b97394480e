"""Create, describe and remove project environments: the one implementation behind
``hpchub env ...`` and the REST API (``/hub/api/hpchub/v1/projects/{p}/environments``).

Runs with the rights to make directories in the project space and to ``sudo -u`` the
builder (root in the demo). Every input is checked before anything changes or any job is
submitted; :class:`EnvError` carries the field, the message and an HTTP status.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import pwd
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from hub.envs import seal
from hub.envs import space as sp
from hub.envs.build import BuildPlan, render_build_script
from hub.envs.build_jobs import active_jobs, build_client
from hub.envs.config import HPCHubEnvironments
from hub.envs.spec import (
    SpecError,
    check_against_wheelhouse,
    check_env_name,
    parse_spec,
    render_spec,
    wheelhouse_index,
)
from hub.envs.unix import SpaceError, ensure_space, make_builder_directory
from spawners import safe_fs
from spawners.slurm.client import SlurmCommandError

CHANGING_ROLES = ("pi", "manager", "instructor")
LOCK_FILE = ".lock"
log = logging.getLogger(__name__)


class EnvError(Exception):
    """Refused (``status`` 400 bad input, 404 unknown, 409 conflict) or failed (500, 502 Slurm, 503 a space
    the hub may not read or write)."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = str(self)
        self.status = status


@dataclass(frozen=True)
class Submitted:
    project: str
    name: str
    version: int
    job_id: str
    builder: str
    partition: str
    log_file: str


def checked_spec(settings: HPCHubEnvironments, spec_text: str, field: str = "spec") -> list:
    """The spec's pinned requirements, every one (and ipykernel) in the wheelhouse; else EnvError."""
    if not settings.wheelhouse or not os.path.isdir(settings.wheelhouse):
        raise EnvError(
            "wheelhouse", f"c.HPCHubEnvironments.wheelhouse is not a directory: {settings.wheelhouse!r}", 500
        )
    try:
        requirements = parse_spec(spec_text)
        index = wheelhouse_index(os.listdir(settings.wheelhouse))
        check_against_wheelhouse(requirements, index, settings.wheelhouse)
        check_against_wheelhouse(parse_spec(settings.ipykernel_requirement), index, settings.wheelhouse)
    except SpecError as exc:
        raise EnvError(field, str(exc)) from None
    return requirements


def checked_name(name: object) -> str:
    try:
        return check_env_name(name)
    except SpecError as exc:
        raise EnvError("", str(exc)) from None


def choose_builder(requested: str | None, members: dict[str, str], project: str, field: str = "--as") -> str:
    """Who the build job runs as: ``requested`` (a pi, manager or instructor), else the project's first."""
    if requested is None:
        for role in CHANGING_ROLES:
            chosen = next((user for user, member_role in sorted(members.items()) if member_role == role), None)
            if chosen:
                return chosen
        raise EnvError(field, f"{project} has no pi, manager or instructor to build as")
    role = members.get(requested)
    if role is None:
        raise EnvError(field, f"{requested} is not an active member of {project}", 403)
    if role not in CHANGING_ROLES:
        raise EnvError(
            field,
            f"{requested} is {role} of {project}; only a pi, manager or instructor changes "
            "environments (members use them)",
            403,
        )
    return requested


def refreshed(settings: HPCHubEnvironments, space: sp.ProjectSpace) -> Mapping[str, bool] | None:
    """Slurm's answer for the versions whose state needs it; as root, finished builds are sealed first
    (the ready state is read only after root had its chance to hand them over)."""
    jobs = active_jobs(settings, sp.building_job_ids(space))
    if os.geteuid() == 0:
        try:
            for line in seal.seal_finished(space, jobs).lines():
                log.info("%s", line)
        except (OSError, safe_fs.UnsafeEntry) as exc:  # the versions stay unsealed (not offered); the read goes on
            log.warning("%s: finished builds not sealed: %s", space.path, exc)
    return jobs


@contextmanager
def env_lock(space: sp.ProjectSpace, name: str, gid: int | None = None):
    """One change at a time per environment (two creates must not pick the same version): yields the
    descriptor of root's envs/NAME (made with ``gid`` if missing), locked through its .lock file."""
    envs = space.open("envs")
    with safe_fs.closing(envs):
        if gid is not None:
            env_fd = safe_fs.make_dir(envs, name, uid=0, gid=gid, mode=sp.CLOSED_DIR_MODE)
        else:
            env_fd = safe_fs.open_dir(name, envs)
    with safe_fs.closing(env_fd):
        lock = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=env_fd)
        with safe_fs.closing(lock):
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield env_fd


def create(
    settings: HPCHubEnvironments, *, project: str, account: str, members: Iterable[str], name: str, spec_text: str,
    builder: str,
) -> Submitted:  # fmt: skip
    """Check everything, then submit the build of the next version of ``project``/``name`` as ``builder``.

    ``members``: the project's active members (the Unix group's members in the demo).
    """
    name = checked_name(name)
    requirements = checked_spec(settings, spec_text)
    space = sp.ProjectSpace(Path(settings.project_root), project)
    try:
        for line in ensure_space(
            space,
            members,
            manage_groups=settings.manage_unix_groups,
            hub_account=settings.hub_account,
            settings=settings,
        ).lines():
            log.warning("%s", line)
        gid = os.stat(space.path, follow_symlinks=False).st_gid
        with env_lock(space, name, gid) as env_fd:
            current = sp.read_environment(space, name)
            if any(info.state is sp.VersionState.BUILDING for info in current.versions):
                current = sp.read_environment(space, name, refreshed(settings, space))
                still = [info for info in current.versions if info.state is sp.VersionState.BUILDING]
                if still:
                    raise EnvError(
                        "NAME",
                        f"version {still[-1].version} of {project}/{name} is still building "
                        f"(Slurm job {still[-1].job_id}); wait for it to end",
                        409,
                    )
            version = sp.next_version(info.version for info in current.versions)
            version_dir = space.version_dir(name, version)
            builder_uid = pwd.getpwnam(builder).pw_uid
            version_fd = make_builder_directory(env_fd, version, builder, project)
            with safe_fs.closing(version_fd):
                job_id = _submit(settings, version_fd, builder, builder_uid, gid, BuildPlan(
                    project=project, account=account, name=name, version=version, version_dir=str(version_dir),
                    wheelhouse=settings.wheelhouse, base_python=settings.base_python,
                    ipykernel_requirement=settings.ipykernel_requirement, partition=settings.build_partition,
                    time_minutes=settings.build_time_minutes, job_name=settings.build_job_name,
                ), render_spec(requirements))  # fmt: skip
    except SpaceError as exc:
        raise EnvError("", str(exc), 500) from None
    except PermissionError as exc:
        raise write_refused(project, exc) from None
    except safe_fs.UnsafeEntry as exc:
        raise EnvError("", f"{project}'s space: {exc}; run `hpchub env sync {project}` as root", 500) from None
    return Submitted(project, name, version, job_id, builder, settings.build_partition, str(version_dir / sp.LOG_FILE))


def _submit(settings: HPCHubEnvironments, version_fd: int, builder: str, builder_uid: int, gid: int,
            plan: BuildPlan, spec: str) -> str:  # fmt: skip
    """Write the version's spec and record (in the builder's fresh directory ``version_fd``), submit its job."""
    safe_fs.write_file(version_fd, sp.SPEC_FILE, spec.encode(), uid=builder_uid, gid=gid, mode=0o640)
    record = {
        "project": plan.project,
        "environment": plan.name,
        "version": plan.version,
        "requested_by": builder,
        "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "job_id": None,
    }
    try:
        script = render_build_script(plan)
    except ValueError as exc:
        raise EnvError("build", str(exc), 500) from None
    try:
        job_id = asyncio.run(build_client(settings).sbatch(script, as_user=builder))
    except SlurmCommandError as exc:
        detail = exc.first_stderr_line or exc.summary
        # The log is the builder's like a job's own (a log is shown only if its version directory's owner owns it).
        safe_fs.write_file(version_fd, sp.LOG_FILE, f"hpchub: Slurm refused the build job: {detail}\n".encode(),
                           uid=builder_uid, gid=gid, mode=0o640)  # fmt: skip
        safe_fs.write_file(version_fd, sp.STATUS_FILE, b"failed\n", uid=0, gid=gid, mode=0o640)
        safe_fs.write_file(version_fd, sp.BUILD_FILE, (json.dumps(record, indent=1) + "\n").encode(), uid=0, gid=gid,
                           mode=0o640)  # fmt: skip
        raise EnvError(
            "", f"Slurm refused the build job of {plan.project}/{plan.name} version {plan.version}: {detail}", 502
        ) from None
    record["job_id"] = job_id
    safe_fs.write_file(version_fd, sp.BUILD_FILE, (json.dumps(record, indent=1) + "\n").encode(), uid=0, gid=gid,
                       mode=0o640)  # fmt: skip
    return job_id


def describe(settings: HPCHubEnvironments, project: str, tail_lines: int = 15) -> list[dict]:
    """Every environment of ``project`` with its versions' states (the ``env list --json`` shape)."""
    space = sp.ProjectSpace(Path(settings.project_root), project)
    problem = sp.unreadable(space)
    if problem:  # not "no environments yet": the list is there, the hub may not read it
        raise EnvError("", problem, 503)
    jobs = refreshed(settings, space)
    result = []
    for name in sp.environment_names(space):
        info = sp.read_environment(space, name, jobs)
        versions = []
        for version in info.versions:
            entry = {
                "version": version.version, "state": version.state.value,
                "default": version.version == info.default_version, "job_id": version.job_id,
                "requested_by": version.requested_by, "submitted_at": version.submitted_at,
                "path": version.path, "log_file": version.log_file,
            }  # fmt: skip
            if version.detail:
                entry["detail"] = version.detail
            if version.state is not sp.VersionState.READY:
                entry["log_tail"] = sp.log_tail(space, name, version.version, tail_lines)
            versions.append(entry)
        result.append(
            {
                "project": project,
                "name": name,
                "kernel": info.kernel_name,
                "default_version": info.default_version,
                "versions": versions,
            }
        )
    return result


def write_refused(project: str, exc: PermissionError) -> EnvError:
    """The hub as its service account reads the spaces through the group; only root writes them."""
    return EnvError(
        "",
        f"the hub may not change {project}'s space ({exc.filename or exc.strerror}): creating and "
        "removing environments needs root, e.g. an admin's `hpchub env create|remove`",
        503,
    )


def remove(settings: HPCHubEnvironments, project: str, name: str, version: int | None) -> str:
    """Remove one version (never the default while it is the only ready one) or the whole environment."""
    try:
        return _remove(settings, project, name, version)
    except PermissionError as exc:
        raise write_refused(project, exc) from None


def _remove(settings: HPCHubEnvironments, project: str, name: str, version: int | None) -> str:
    name = checked_name(name)
    space = sp.ProjectSpace(Path(settings.project_root), project)
    if name not in sp.environment_names(space):
        raise EnvError("NAME", f"{project} has no environment {name}", 404)
    with env_lock(space, name) as env_fd:
        info = sp.read_environment(space, name, refreshed(settings, space))
        building = [v for v in info.versions if v.state is sp.VersionState.BUILDING]
        space_fd = space.open()
        with safe_fs.closing(space_fd):
            if version is None:
                if building:
                    raise EnvError(
                        "NAME",
                        f"version {building[0].version} is still building (Slurm job "
                        f"{building[0].job_id}); wait for it to end",
                        409,
                    )
                kernels = safe_fs.open_dir("kernels", space_fd)
                with safe_fs.closing(kernels):
                    safe_fs.remove_tree(kernels, info.kernel_name)
                envs = safe_fs.open_dir("envs", space_fd)
                with safe_fs.closing(envs):
                    safe_fs.remove_tree(envs, name)
                return f"removed {project}/{name} (all {len(info.versions)} versions and kernel {info.kernel_name})"
            target = info.version(version)
            if target is None:
                known = ", ".join(str(v.version) for v in info.versions) or "none"
                raise EnvError("--version", f"{project}/{name} has no version {version}; versions: {known}", 404)
            if target.state is sp.VersionState.BUILDING:
                raise EnvError("--version", f"version {version} is still building (Slurm job {target.job_id})", 409)
            if version == info.default_version:
                others = [v.version for v in info.versions if v.state is sp.VersionState.READY and v.version != version]
                if not others:
                    raise EnvError(
                        "--version",
                        f"version {version} is the default and the only ready version of "
                        f"{project}/{name}; remove the whole environment instead",
                        409,
                    )
            safe_fs.remove_tree(env_fd, str(version))
            seal.write_kernel(space, space_fd, name, os.fstat(space_fd).st_gid)  # the newest ready one left
        after = sp.read_environment(space, name)
        return f"removed {project}/{name} version {version}; default is v{after.default_version}"
