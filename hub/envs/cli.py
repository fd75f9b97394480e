"""``hpchub env create|list|remove|log|sync``: project environments from the command line.

An admin tool (it acts with the site admin's rights, as root in the demo); the build job
itself runs as the project's PI or manager (``--as USER``, default: the project's first
PI or manager), on the project's Slurm account. Exit 0 ok, 2 bad input (one line naming
the argument; nothing submitted), 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..cli import UsageError
from . import space as sp
from .build import BuildPlan, render_build_script
from .config import HPCHubEnvironments
from .spec import SpecError, check_against_wheelhouse, check_env_name, parse_spec, render_spec, wheelhouse_index

CHANGING_ROLES = ("pi", "manager", "instructor")
LOCK_FILE = ".lock"


def _settings(args) -> HPCHubEnvironments:
    from ..ledger.cli import load_hub_config  # noqa: PLC0415

    config = load_hub_config(getattr(args, "config", None))
    settings = HPCHubEnvironments(config=config) if config is not None else HPCHubEnvironments()
    if args.project_root:
        settings.project_root = args.project_root
    if not settings.project_root:
        raise UsageError("--project-root: not set (c.HPCHubEnvironments.project_root in --config)")
    return settings


def _ledger_url(args) -> str:
    from ..ledger.cli import _default_url  # noqa: PLC0415

    return args.db_url or _default_url(getattr(args, "config", None))


def _client(settings: HPCHubEnvironments):
    from spawners.slurm.client import SlurmClient  # noqa: PLC0415

    return SlurmClient(slurm_conf=settings.slurm_conf or os.environ.get("SLURM_CONF") or None, timeout=60)


def active_jobs(settings: HPCHubEnvironments, job_ids: list[str]) -> dict[str, bool] | None:
    """job id -> still pending/running, from one squeue; None if Slurm did not answer."""
    from spawners.slurm.client import SlurmCommandError  # noqa: PLC0415
    from spawners.slurm.parsers import parse_squeue  # noqa: PLC0415

    if not job_ids:
        return {}
    try:
        statuses = parse_squeue(asyncio.run(_client(settings).squeue(job_ids=job_ids)))
    except (SlurmCommandError, ValueError):
        return None
    return {job_id: job_id in statuses and statuses[job_id].state.is_active for job_id in job_ids}


def project_members(ledger_url: str, project: str) -> tuple[str, dict[str, str]]:
    """The project's Slurm account and its active members -> role (UsageError if unknown or closed)."""
    from ..ledger import Ledger, LedgerError  # noqa: PLC0415
    from ..ledger.types import ProjectState  # noqa: PLC0415

    try:
        with Ledger(ledger_url) as ledger:
            info = ledger.project(project)
            members = {member.user: member.role.value for member in ledger.figures(project).members}
    except LedgerError as exc:
        raise UsageError(f"PROJECT: {exc}") from None
    if info.state is ProjectState.CLOSED:
        raise UsageError(f"PROJECT: {project} is closed")
    return info.slurm_account, members


@contextmanager
def env_lock(space: sp.ProjectSpace, name: str):
    """One change at a time per environment (two creates must not pick the same version)."""
    directory = space.env_dir(name)
    directory.mkdir(exist_ok=True)
    with open(directory / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write(path: Path, text: str, *, uid: int = 0, gid: int = 0, mode: int = 0o640) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def choose_builder(requested: str | None, members: dict[str, str], project: str) -> str:
    if requested is None:
        for role in CHANGING_ROLES:
            chosen = next((user for user, member_role in sorted(members.items()) if member_role == role), None)
            if chosen:
                return chosen
        raise UsageError(f"--as: {project} has no pi, manager or instructor to build as; name one with --as")
    role = members.get(requested)
    if role is None:
        raise UsageError(f"--as: {requested} is not an active member of {project}")
    if role not in CHANGING_ROLES:
        raise UsageError(f"--as: {requested} is {role} of {project}; only a pi, manager or instructor changes "
                         "environments (members use them)")
    return requested


# --- commands -------------------------------------------------------------------------------------


def cmd_create(args) -> int:
    import pwd  # noqa: PLC0415

    from spawners.slurm.client import SlurmCommandError  # noqa: PLC0415

    from .unix import SpaceError, ensure_space, make_builder_directory  # noqa: PLC0415

    try:
        name = check_env_name(args.name)
        spec_text = Path(args.spec_file).read_text(encoding="utf-8")
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--from: cannot read {args.spec_file}: {getattr(exc, 'strerror', None) or exc}") from None
    settings = _settings(args)
    if not settings.wheelhouse or not os.path.isdir(settings.wheelhouse):
        raise UsageError(f"wheelhouse: c.HPCHubEnvironments.wheelhouse is not a directory: {settings.wheelhouse!r}")
    try:
        requirements = parse_spec(spec_text)
        index = wheelhouse_index(os.listdir(settings.wheelhouse))
        check_against_wheelhouse(requirements, index, settings.wheelhouse)
        check_against_wheelhouse(parse_spec(settings.ipykernel_requirement), index, settings.wheelhouse)
    except SpecError as exc:
        raise UsageError(f"--from {args.spec_file}: {exc}") from None
    account, members = project_members(_ledger_url(args), args.project)
    builder = choose_builder(args.as_user, members, args.project)
    space = sp.ProjectSpace(Path(settings.project_root), args.project)
    try:
        ensure_space(space, members, manage_groups=settings.manage_unix_groups)
        with env_lock(space, name):
            os.chown(space.env_dir(name), 0, os.stat(space.path).st_gid)
            os.chmod(space.env_dir(name), sp.CLOSED_DIR_MODE)
            current = sp.read_environment(space, name)
            pending = [info for info in current.versions if info.state is sp.VersionState.BUILDING]
            if pending:
                jobs = active_jobs(settings, [info.job_id for info in pending if info.job_id])
                current = sp.read_environment(space, name, jobs)
                still = [info for info in current.versions if info.state is sp.VersionState.BUILDING]
                if still:
                    raise UsageError(f"NAME: version {still[-1].version} of {args.project}/{name} is still building "
                                     f"(Slurm job {still[-1].job_id}); wait for it or remove it")
            version = sp.next_version(info.version for info in current.versions)
            version_dir = space.version_dir(name, version)
            make_builder_directory(version_dir, builder, args.project)
            make_builder_directory(space.kernel_dir(name), builder, args.project)
            builder_uid = pwd.getpwnam(builder).pw_uid
            gid = os.stat(space.path).st_gid
            _write(version_dir / sp.SPEC_FILE, render_spec(requirements), uid=builder_uid, gid=gid)
            record = {"project": args.project, "environment": name, "version": version, "requested_by": builder,
                      "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "job_id": None}
            plan = BuildPlan(
                project=args.project, account=account, name=name, version=version, version_dir=str(version_dir),
                kernel_dir=str(space.kernel_dir(name)), wheelhouse=settings.wheelhouse,
                base_python=settings.base_python, ipykernel_requirement=settings.ipykernel_requirement,
                partition=settings.build_partition, time_minutes=settings.build_time_minutes,
                job_name=settings.build_job_name,
            )  # fmt: skip
            try:
                script = render_build_script(plan)
            except ValueError as exc:
                raise UsageError(f"build: {exc}") from None
            try:
                job_id = asyncio.run(_client(settings).sbatch(script, as_user=builder))
            except SlurmCommandError as exc:
                detail = exc.first_stderr_line or exc.summary
                _write(version_dir / sp.LOG_FILE, f"hpchub: Slurm refused the build job: {detail}\n", gid=gid)
                _write(version_dir / sp.STATUS_FILE, "failed\n", gid=gid)
                _write(version_dir / sp.BUILD_FILE, json.dumps(record, indent=1) + "\n", gid=gid)
                print(f"hpchub: Slurm refused the build job of {args.project}/{name} version {version}: {detail}",
                      file=sys.stderr)
                return 1
            record["job_id"] = job_id
            _write(version_dir / sp.BUILD_FILE, json.dumps(record, indent=1) + "\n", gid=gid)
    except SpaceError as exc:
        print(f"hpchub: {exc}", file=sys.stderr)
        return 1
    print(f"{args.project}/{name}: building version {version} as Slurm job {job_id} (as {builder}, "
          f"partition {plan.partition}); log: {version_dir / sp.LOG_FILE}")
    if not args.wait:
        return 0
    return _wait_for_build(settings, space, name, version, job_id, args.timeout)


def _wait_for_build(settings, space: sp.ProjectSpace, name: str, version: int, job_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    shown = 0
    while True:
        state = sp.read_environment(space, name, active_jobs(settings, [job_id])).version(version)
        log_path = space.version_dir(name, version) / sp.LOG_FILE
        try:
            lines = log_path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines[shown:]:
            print(f"  | {line}")
        shown = max(shown, len(lines))
        if state is not None and state.state is not sp.VersionState.BUILDING:
            print(f"{space.project}/{name} version {version}: {state.state.value}"
                  + (f" ({state.detail})" if state.detail else ""))
            return 0 if state.state is sp.VersionState.READY else 1
        if time.monotonic() > deadline:
            print(f"{space.project}/{name} version {version}: still building after {timeout:g} s", file=sys.stderr)
            return 1
        time.sleep(1)


def describe(settings: HPCHubEnvironments, project: str, tail_lines: int = 15) -> list[dict]:
    """Every environment of ``project`` with its versions' states (the ``env list --json`` shape)."""
    space = sp.ProjectSpace(Path(settings.project_root), project)
    jobs = active_jobs(settings, sp.building_job_ids(space))
    result = []
    for name in sp.environment_names(space):
        info = sp.read_environment(space, name, jobs)
        versions = []
        for version in info.versions:
            entry = {
                "version": version.version, "state": version.state.value, "default": version.version == info.default_version,
                "job_id": version.job_id, "requested_by": version.requested_by, "submitted_at": version.submitted_at,
                "path": version.path, "log_file": version.log_file,
            }  # fmt: skip
            if version.detail:
                entry["detail"] = version.detail
            if version.state is not sp.VersionState.READY:
                entry["log_tail"] = sp.log_tail(version.log_file, tail_lines)
            versions.append(entry)
        result.append({"project": project, "name": name, "kernel": info.kernel_name,
                       "default_version": info.default_version, "versions": versions})
    return result


def cmd_list(args) -> int:
    settings = _settings(args)
    project_members(_ledger_url(args), args.project)
    environments = describe(settings, args.project)
    if args.json:
        print(json.dumps(environments, indent=2))
        return 0
    if not environments:
        print(f"{args.project}: no environments")
        return 0
    for env in environments:
        default = f"default v{env['default_version']}" if env["default_version"] else "no ready version"
        print(f"{args.project}/{env['name']}: {default}, kernel {env['kernel']}")
        for version in env["versions"]:
            mark = "*" if version["default"] else " "
            print(f" {mark} v{version['version']:<3} {version['state']:<8} job {version['job_id'] or '-'}  "
                  f"by {version['requested_by'] or '-'}  {version['submitted_at'] or ''}")
            if version.get("detail"):
                print(f"      {version['detail']}")
            if version["state"] != "ready":
                print(f"      log {version['log_file']}:")
                for line in (version.get("log_tail") or "(empty)").splitlines():
                    print(f"      | {line}")
    return 0


def cmd_remove(args) -> int:
    settings = _settings(args)
    project_members(_ledger_url(args), args.project)
    try:
        name = check_env_name(args.name)
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    space = sp.ProjectSpace(Path(settings.project_root), args.project)
    if not space.env_dir(name).is_dir():
        raise UsageError(f"NAME: {args.project} has no environment {name}")
    with env_lock(space, name):
        info = sp.read_environment(space, name, active_jobs(settings, sp.building_job_ids(space)))
        building = [v for v in info.versions if v.state is sp.VersionState.BUILDING]
        if args.version is None:
            if building:
                raise UsageError(f"NAME: version {building[0].version} is still building (Slurm job "
                                 f"{building[0].job_id}); wait for it to end")
            shutil.rmtree(space.kernel_dir(name), ignore_errors=True)
            shutil.rmtree(space.env_dir(name))
            print(f"removed {args.project}/{name} (all {len(info.versions)} versions and kernel {info.kernel_name})")
            return 0
        target = info.version(args.version)
        if target is None:
            known = ", ".join(str(v.version) for v in info.versions) or "none"
            raise UsageError(f"--version: {args.project}/{name} has no version {args.version}; versions: {known}")
        if target.state is sp.VersionState.BUILDING:
            raise UsageError(f"--version: version {args.version} is still building (Slurm job {target.job_id})")
        if args.version == info.default_version:
            others = [v for v in info.versions if v.state is sp.VersionState.READY and v.version != args.version]
            if not others:
                raise UsageError(f"--version: version {args.version} is the default and the only ready version of "
                                 f"{args.project}/{name}; remove the whole environment instead "
                                 f"(hpchub env remove {args.project} {name})")
            new_default = max(v.version for v in others)
            _point_kernel(space, name, new_default)
        shutil.rmtree(space.version_dir(name, args.version))
        after = sp.read_environment(space, name)
        print(f"removed {args.project}/{name} version {args.version}; default is v{after.default_version}")
    return 0


def _point_kernel(space: sp.ProjectSpace, name: str, version: int) -> None:
    """Rewrite the kernelspec for ``version`` (kept owned like its directory)."""
    kernel_dir = space.kernel_dir(name)
    owner = os.stat(kernel_dir)
    python = str(space.version_dir(name, version) / "bin" / "python")
    spec = json.dumps(sp.kernel_spec(space.project, name, version, python), indent=1, sort_keys=True) + "\n"
    _write(kernel_dir / sp.KERNEL_FILE, spec, uid=owner.st_uid, gid=owner.st_gid)


def cmd_log(args) -> int:
    settings = _settings(args)
    space = sp.ProjectSpace(Path(settings.project_root), args.project)
    info = sp.read_environment(space, check_env_name(args.name))
    if not info.versions:
        raise UsageError(f"NAME: {args.project} has no environment {args.name}")
    version = info.version(args.version) if args.version else info.versions[-1]
    if version is None:
        raise UsageError(f"--version: no version {args.version}")
    if args.follow and version.job_id:
        return _wait_for_build(settings, space, info.name, version.version, version.job_id, args.timeout)
    sys.stdout.write(sp.log_tail(version.log_file, 10_000) + "\n")
    return 0


def cmd_sync(args) -> int:
    """Make each project's space and (with manage_unix_groups) its group with the ledger's members."""
    from ..ledger import Ledger  # noqa: PLC0415
    from ..ledger.types import ProjectState  # noqa: PLC0415
    from .unix import SpaceError, ensure_space  # noqa: PLC0415

    settings = _settings(args)
    with Ledger(_ledger_url(args)) as ledger:
        projects = [p.name for p in ledger.projects() if p.state is ProjectState.ACTIVE]
        if args.project:
            if args.project not in projects:
                raise UsageError(f"PROJECT: no active project {args.project}")
            projects = [args.project]
        members = {p: [m.user for m in ledger.figures(p).members] for p in projects}
    try:
        for project in projects:
            ensure_space(sp.ProjectSpace(Path(settings.project_root), project), members[project],
                         manage_groups=settings.manage_unix_groups)
            print(f"{project}: {Path(settings.project_root) / project} (group {sp.group_name(project)}: "
                  f"{', '.join(sorted(members[project])) or 'no members'})")
    except SpaceError as exc:
        print(f"hpchub: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_env(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    try:
        return args.env_func(args)
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    except (SQLAlchemyError, OSError) as exc:
        print(f"hpchub: {exc}", file=sys.stderr)
        return 1


def add_parsers(subparsers, one_line, commands) -> None:
    """``hpchub env ...`` (``one_line`` makes a parser print one-line errors; ``commands`` the subparser options)."""
    env = one_line(subparsers.add_parser(
        "env", help="project environments: shared, versioned venvs built as Slurm jobs, seen as kernels",
        description="Project environments (PROJECT_ROOT/P/envs/NAME/VERSION) built as Slurm jobs from a "
        "site wheelhouse; every member's session lists them as kernels P-NAME.",
    ))  # fmt: skip
    env_sub = env.add_subparsers(**commands)

    def leaf(name: str, func, **kwargs) -> argparse.ArgumentParser:
        parser = one_line(env_sub.add_parser(name, **kwargs))
        parser.add_argument("--db-url", default=None, help="the ledger database (default: as `hpchub usage`)")
        parser.add_argument("--project-root", default=None,
                            help="PROJECT_ROOT (default c.HPCHubEnvironments.project_root of --config)")
        parser.set_defaults(func=cmd_env, env_func=func)
        return parser

    create = leaf("create", cmd_create, help="build a new version of an environment from a pinned requirements file "
                  "as a Slurm job (the previous version stays the default until it succeeds)")
    create.add_argument("project", metavar="PROJECT")
    create.add_argument("name", metavar="NAME", help="1-32 characters: a-z, 0-9, '_' and '-', starting with a letter")
    create.add_argument("--from", dest="spec_file", required=True, metavar="FILE",
                        help="requirements.txt with name==version lines only, every package in the site's wheelhouse")
    create.add_argument("--as", dest="as_user", metavar="USER",
                        help="the pi, manager or instructor the build job runs as (default: the project's first)")
    create.add_argument("--wait", action="store_true", help="follow the build log until the build ends; "
                        "exit 1 if it failed")
    create.add_argument("--timeout", type=float, default=1800, metavar="SECONDS",
                        help="with --wait: give up waiting after SECONDS (default 1800)")
    listing = leaf("list", cmd_list, help="a project's environments, versions and states (building/ready/failed "
                   "with the log's last lines)")
    listing.add_argument("project", metavar="PROJECT")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    remove = leaf("remove", cmd_remove, help="remove one version, or the whole environment and its kernel")
    remove.add_argument("project", metavar="PROJECT")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--version", type=int, metavar="V",
                        help="only this version (never the default while it is the only ready one)")
    log = leaf("log", cmd_log, help="a version's build log (default: the newest version)")
    log.add_argument("project", metavar="PROJECT")
    log.add_argument("name", metavar="NAME")
    log.add_argument("--version", type=int, metavar="V")
    log.add_argument("--follow", action="store_true", help="follow the log until the build ends")
    log.add_argument("--timeout", type=float, default=1800, metavar="SECONDS")
    sync = leaf("sync", cmd_sync, help="create each active project's space (and, with manage_unix_groups, its "
                "Unix group hpc-P with the ledger's members)")
    sync.add_argument("project", metavar="PROJECT", nargs="?", help="only this project")
