"""``hpchub env create|list|remove|log|sync|publish|unpublish|published``: project environments from the
command line.

An admin tool (it acts with the site admin's rights, as root in the demo); the build job
itself runs as the project's PI or manager (``--as USER``, default: the project's first
PI or manager), on the project's Slurm account. Exit 0 ok, 2 bad input (one line naming
the argument; nothing submitted), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from hub.cli_support import UsageError, load_hub_config
from hub.commands.ledger import _default_url, _who
from hub.envs import publish, service
from hub.envs import space as sp
from hub.envs.config import HPCHubEnvironments
from hub.envs.spec import SpecError, check_spec_file_name
from hub.envs.unix import SpaceError, ensure_space
from hub.ledger import Ledger, LedgerError
from hub.ledger.types import ProjectState
from hub.numbers import whole_number_argument

VERSION_ARGUMENT = whole_number_argument(1, sp.MAX_VERSION)


def _settings(args) -> HPCHubEnvironments:
    config = load_hub_config(getattr(args, "config", None))
    settings = HPCHubEnvironments(config=config) if config is not None else HPCHubEnvironments()
    if args.project_root:
        settings.project_root = args.project_root
    if not settings.project_root:
        raise UsageError("--project-root: not set (c.HPCHubEnvironments.project_root in --config)")
    return settings


def _ledger_url(args) -> str:

    return args.db_url or _default_url(getattr(args, "config", None))


def project_members(ledger_url: str, project: str) -> tuple[str, dict[str, str]]:
    """The project's Slurm account and its active members -> role (UsageError if unknown or closed)."""

    try:
        with Ledger(ledger_url) as ledger:
            info = ledger.project(project)
            members = {member.user: member.role.value for member in ledger.figures(project).members}
    except LedgerError as exc:
        raise UsageError(f"PROJECT: {exc}") from None
    if info.state is ProjectState.CLOSED:
        raise UsageError(f"PROJECT: {project} is closed")
    return info.slurm_account, members


def cmd_create(args) -> int:

    try:
        check_spec_file_name(args.spec_file)
    except SpecError as exc:
        raise UsageError(f"--from {exc}") from None
    try:
        name = service.checked_name(args.name)
        spec_text = Path(args.spec_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--from: cannot read {args.spec_file}: {getattr(exc, 'strerror', None) or exc}") from None
    settings = _settings(args)
    service.checked_spec(settings, spec_text, field=f"--from {args.spec_file}")
    account, members = project_members(_ledger_url(args), args.project)
    builder = service.choose_builder(args.as_user, members, args.project)
    submitted = service.create(
        settings,
        project=args.project,
        account=account,
        members=members,
        name=name,
        spec_text=spec_text,
        builder=builder,
    )
    print(
        f"{args.project}/{name}: building version {submitted.version} as Slurm job {submitted.job_id} "
        f"(as {builder}, partition {submitted.partition}); log: {submitted.log_file}"
    )
    if not args.wait:
        return 0
    space = sp.ProjectSpace(Path(settings.project_root), args.project)
    return _wait_for_build(settings, space, name, submitted.version, submitted.job_id, args.timeout)


def _wait_for_build(settings, space: sp.ProjectSpace, name: str, version: int, job_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    shown = 0
    while True:
        state = sp.read_environment(space, name, service.refreshed(settings, space)).version(version)
        log = sp.read_log(space, name, version, limit=16 << 20)
        lines = log.text.splitlines()
        for line in lines[shown:]:
            print(f"  | {line}")
        shown = max(shown, len(lines))
        if state is not None and state.state is not sp.VersionState.BUILDING:
            print(
                f"{space.project}/{name} version {version}: {state.state.value}"
                + (f" ({state.detail})" if state.detail else "")
            )
            return 0 if state.state is sp.VersionState.READY else 1
        if time.monotonic() > deadline:
            print(
                f"{space.project}/{name} version {version}: still building after {timeout:g} s"
                + (f" ({state.detail})" if state is not None and state.detail else ""),
                file=sys.stderr,
            )
            return 1
        time.sleep(1)


def cmd_list(args) -> int:
    settings = _settings(args)
    project_members(_ledger_url(args), args.project)
    environments = service.describe(settings, args.project)
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
            print(
                f" {mark} v{version['version']:<3} {version['state']:<8} job {version['job_id'] or '-'}  "
                f"by {version['requested_by'] or '-'}  {version['submitted_at'] or ''}"
            )
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
    print(service.remove(settings, args.project, args.name, args.version))
    return 0


def cmd_log(args) -> int:
    settings = _settings(args)
    project_members(_ledger_url(args), args.project)
    space = sp.ProjectSpace(Path(settings.project_root), args.project)
    info = sp.read_environment(space, service.checked_name(args.name), service.refreshed(settings, space))
    if not info.versions:
        raise UsageError(f"NAME: {args.project} has no environment {args.name}")
    version = info.version(args.version) if args.version else info.versions[-1]
    if version is None:
        raise UsageError(f"--version: no version {args.version}")
    if args.follow and version.job_id:
        return _wait_for_build(settings, space, info.name, version.version, version.job_id, args.timeout)
    sys.stdout.write(sp.read_log(space, info.name, version.version, limit=16 << 20, tail=True).text + "\n")
    return 0


def cmd_sync(args) -> int:
    """Put each project's space right (and with manage_unix_groups make its group with the ledger's members):
    modes, swapped entries moved aside, finished builds sealed; each change is reported."""

    settings = _settings(args)
    with Ledger(_ledger_url(args)) as ledger:
        projects = [p.name for p in ledger.projects() if p.state is ProjectState.ACTIVE]
        if args.project:
            if args.project not in projects:
                raise UsageError(f"PROJECT: no active project {args.project}")
            projects = [args.project]
        members = {p: [m.user for m in ledger.figures(p).members] for p in projects}
    failed = False
    for project in projects:
        try:
            report = ensure_space(sp.ProjectSpace(Path(settings.project_root), project), members[project],
                                  manage_groups=settings.manage_unix_groups, hub_account=settings.hub_account,
                                  settings=settings)  # fmt: skip
        except SpaceError as exc:
            print(f"hpchub: {exc}", file=sys.stderr)
            failed = True
            continue
        print(
            f"{project}: {Path(settings.project_root) / project} (group {sp.group_name(project)}: "
            f"{', '.join(sorted(members[project])) or 'no members'})"
        )
        for line in report.lines():
            print(f"  {line}")
    return 1 if failed else 0


def cmd_publish(args) -> int:

    settings = _settings(args)
    if args.published_root:
        settings.published_root = args.published_root
    project_members(_ledger_url(args), args.project)
    entry = publish.publish(
        settings, project=args.project, name=args.name, version=args.version, catalogue_id=args.catalogue_id,
        description=args.description, title=args.title, gpu=args.gpu,
        reserved_ids=publish.catalogue_ids_of(load_hub_config(getattr(args, "config", None))), who=_who(),
    )  # fmt: skip
    print(
        f"published {args.project}/{entry.environment} v{entry.version} as catalogue entry {entry.id} "
        f"({entry.name}; kernel {entry.kernel}, {entry.path(settings.published_root)})"
    )
    return 0


def cmd_unpublish(args) -> int:

    settings = _settings(args)
    if args.published_root:
        settings.published_root = args.published_root
    print(publish.unpublish(settings, args.catalogue_id))
    return 0


def cmd_published(args) -> int:

    settings = _settings(args)
    root = args.published_root or settings.published_root
    entries = publish.read_published(root) if root else []
    if args.json:
        print(json.dumps([{**asdict(e), "kernel": e.kernel, "path": e.path(root)} for e in entries], indent=2))
        return 0
    if not entries:
        print("no published environments" + ("" if root else " (c.HPCHubEnvironments.published_root is not set)"))
    for e in entries:
        print(
            f"{e.id}: {e.name} - {e.description} (from {e.project}/{e.environment} v{e.version}, "
            f"{'GPU' if e.gpu else 'no GPU'}, by {e.published_by} at {e.published_at})"
        )
    return 0


def cmd_env(args) -> int:

    try:
        return args.env_func(args)
    except service.EnvError as exc:
        if exc.status >= 500:
            print(f"hpchub: {exc.message}", file=sys.stderr)
            return 1
        raise UsageError(exc.message) from None
    except ValueError as exc:
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
        parser.add_argument(
            "--project-root", default=None, help="PROJECT_ROOT (default c.HPCHubEnvironments.project_root of --config)"
        )
        parser.set_defaults(func=cmd_env, env_func=func)
        return parser

    create = leaf(
        "create",
        cmd_create,
        help="build a new version of an environment from a pinned requirements file "
        "as a Slurm job (the previous version stays the default until it succeeds)",
    )
    create.add_argument("project", metavar="PROJECT")
    create.add_argument("name", metavar="NAME", help="1-32 characters: a-z, 0-9, '_' and '-', starting with a letter")
    create.add_argument(
        "--from",
        dest="spec_file",
        required=True,
        metavar="FILE",
        help="requirements.txt with name==version lines only, every package in the site's wheelhouse "
        "(a conda environment.yml is refused: conda channels are not reachable from this site)",
    )
    create.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="the pi, manager or instructor the build job runs as (default: the project's first)",
    )
    create.add_argument(
        "--wait", action="store_true", help="follow the build log until the build ends; exit 1 if it failed"
    )
    create.add_argument(
        "--timeout",
        type=float,
        default=1800,
        metavar="SECONDS",
        help="with --wait: give up waiting after SECONDS (default 1800)",
    )
    listing = leaf(
        "list",
        cmd_list,
        help="a project's environments, versions and states (building/ready/failed with the log's last lines)",
    )
    listing.add_argument("project", metavar="PROJECT")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    remove = leaf("remove", cmd_remove, help="remove one version, or the whole environment and its kernel")
    remove.add_argument("project", metavar="PROJECT")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument(
        "--version",
        type=VERSION_ARGUMENT,
        metavar="V",
        help="only this version (never the default while it is the only ready one)",
    )
    log = leaf("log", cmd_log, help="a version's build log (default: the newest version)")
    log.add_argument("project", metavar="PROJECT")
    log.add_argument("name", metavar="NAME")
    log.add_argument("--version", type=VERSION_ARGUMENT, metavar="V")
    log.add_argument("--follow", action="store_true", help="follow the log until the build ends")
    log.add_argument("--timeout", type=float, default=1800, metavar="SECONDS")
    pub = leaf(
        "publish",
        cmd_publish,
        help="(admins) copy a ready version to PUBLISHED_ROOT and offer it to "
        "everyone as an images catalogue entry (its kernel the default; Jupyter from the default entry)",
    )
    pub.add_argument("project", metavar="PROJECT")
    pub.add_argument("name", metavar="NAME")
    pub.add_argument(
        "--version", type=VERSION_ARGUMENT, metavar="V", help="a ready version (default: the default version)"
    )
    pub.add_argument(
        "--as",
        dest="catalogue_id",
        required=True,
        metavar="CATALOGUE_NAME",
        help="the catalogue id users choose: 1-40 characters a-z, 0-9, '-', starting with a letter, "
        "not an id of catalog.toml",
    )
    pub.add_argument(
        "--description",
        required=True,
        metavar="TEXT",
        help="shown in the spawn form (one line, at most 200 characters)",
    )
    pub.add_argument("--title", metavar="TEXT", help="its name in the form (default 'PROJECT: NAME (vV)')")
    pub.add_argument("--gpu", action="store_true", help="mark it as a GPU environment in the catalogue")
    pub.add_argument(
        "--published-root",
        default=None,
        help="PUBLISHED_ROOT (default c.HPCHubEnvironments.published_root of --config)",
    )
    unpub = leaf(
        "unpublish",
        cmd_unpublish,
        help="(admins) take a published environment out of the catalogue and remove its copy",
    )
    unpub.add_argument("catalogue_id", metavar="CATALOGUE_NAME")
    unpub.add_argument("--published-root", default=None, help="PUBLISHED_ROOT (default from --config)")
    shown = leaf("published", cmd_published, help="the published environments")
    shown.add_argument("--json", action="store_true", help="machine-readable")
    shown.add_argument("--published-root", default=None, help="PUBLISHED_ROOT (default from --config)")
    sync = leaf(
        "sync",
        cmd_sync,
        help="(as root) create or put right each active project's space: the "
        "documented owners and modes (docs/environments.md), whatever a member swapped moved aside and reported (never followed), "
        "finished builds sealed (handed to root) and their kernels written; with manage_unix_groups also "
        "its Unix group hpc-P with the ledger's members",
    )
    sync.add_argument("project", metavar="PROJECT", nargs="?", help="only this project")
