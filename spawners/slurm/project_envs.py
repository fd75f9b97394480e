"""The spawner's side of project environments: which ones a user may choose,
what the job's environment gets, and the demo's Unix group sync before a spawn.

Thin helpers over :mod:`hub.envs` so that :mod:`.spawner` only calls them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from hub.envs import publish
from hub.envs.config import HPCHubEnvironments
from hub.envs.service import EnvError
from hub.envs.space import (
    PROJECT_ENVIRONMENT_PREFIX,
    ProjectSpace,
    jupyter_path,
    jupyter_problem,
    kernel_name,
    ready_environment_names,
    unreadable,
)
from hub.envs.unix import SpaceError, ensure_space
from hub.ledger import LedgerError
from spawners.catalog import Catalogue, Environment
from spawners.slurm.launch import LaunchError
from spawners.slurm.types import JobRequest

log = logging.getLogger(__name__)


def settings(config) -> HPCHubEnvironments:
    return HPCHubEnvironments(config=config)


def ready_environments(environments: HPCHubEnvironments, projects: Sequence[str]) -> dict[str, list[str]]:
    """Project -> names of its environments with a ready version (read from the project spaces)."""
    if not environments.project_root:
        return {}
    root = Path(environments.project_root)
    for project in projects:
        problem = unreadable(ProjectSpace(root, project))
        if problem:
            log.warning("project environments of %s not offered: %s", project, problem)
    return {project: ready_environment_names(root, project) for project in projects}


def safe_projects(environments: HPCHubEnvironments, projects: Sequence[str]) -> list[str]:
    """The projects whose space may be on a session's JUPYTER_PATH: ``P/`` and everything Jupyter would read
    in it are root's and writable by no member (a space still in the old modes, or with a member's entry
    left in it, is left off with a log line until root puts it right: ``hpchub env sync``)."""
    root = Path(environments.project_root)
    safe = []
    for project in sorted(set(projects)):
        problem = jupyter_problem(ProjectSpace(root, project))
        if problem:
            log.warning("project space of %s left off JUPYTER_PATH: %s", project, problem)
        else:
            safe.append(project)
    return safe


def job_variables(environments: HPCHubEnvironments, projects: Sequence[str]) -> dict[str, str]:
    """``JUPYTER_PATH`` with the user's project spaces that no member can write (their kernels/ hold the
    kernelspecs P-NAME), then PUBLISHED_ROOT (its kernels/ holds the published environments'
    ``published-ID``) for everyone."""
    paths = []
    if environments.project_root and projects:
        safe = safe_projects(environments, projects)
        if safe:
            paths.append(jupyter_path(environments.project_root, safe))
    if environments.published_root:
        paths.append(environments.published_root)
    return {"JUPYTER_PATH": ":".join(paths)} if paths else {}


def binds(environments: HPCHubEnvironments, projects: Sequence[str]) -> list[str]:
    """Directories an Apptainer session binds: the user's project spaces and PUBLISHED_ROOT."""
    answer = []
    if environments.project_root:
        answer += [str(Path(environments.project_root) / project) for project in sorted(set(projects))]
    if environments.published_root:
        answer.append(environments.published_root)
    return answer


def published_version(environments: HPCHubEnvironments) -> tuple[str, int | None]:
    """What identifies the published list's current state (its path and mtime) for caching."""
    if not environments.published_root:
        return "", None
    path = os.path.join(environments.published_root, "catalog.json")
    try:
        return path, os.stat(path).st_mtime_ns
    except OSError:
        return path, None


def with_published(environments: HPCHubEnvironments, catalogue: Catalogue) -> Catalogue:
    """The catalogue plus the environments admins published (``hpchub env publish``); a broken
    published list is logged and left out rather than breaking the spawn form."""
    if not environments.published_root:
        return catalogue

    try:
        entries = publish.read_published(environments.published_root)
    except EnvError as exc:
        log.warning("published environments left out: %s", exc.message)
        return catalogue
    merged, skipped = publish.with_published(catalogue, publish.catalogue_entries(environments.published_root, entries))
    if skipped:
        log.warning("published environments %s left out: the images catalogue has these ids", ", ".join(skipped))
    return merged


def resolve(catalogue: Catalogue, request: JobRequest) -> tuple[Environment, str | None]:
    """The catalogue entry the server runs in, and the default kernel (for ``project:NAME``).

    A project environment holds the user's packages and ipykernel, not Jupyter: the server runs
    in the catalogue's default entry and opens notebooks with the kernel ``P-NAME``.
    """
    if request.environment.startswith(PROJECT_ENVIRONMENT_PREFIX):
        name = request.environment[len(PROJECT_ENVIRONMENT_PREFIX) :]
        return catalogue.default, kernel_name(request.project, name)
    environment = catalogue.get(request.environment)
    if environment is None:
        raise LaunchError(f"environment {request.environment!r} is no longer in the catalogue")
    if environment.kernel:  # a published project environment: Jupyter from the default, its kernel
        return catalogue.default, environment.kernel
    return environment, None


def sync_spaces(environments: HPCHubEnvironments, ledger, projects: Sequence[str]) -> None:
    """With ``manage_unix_groups`` (the demo): each project's space and group ``hpc-P`` with its members."""
    if not environments.manage_unix_groups or not environments.project_root or ledger is None:
        return

    for project in projects:
        try:
            members = ledger.active_members(project)
            report = ensure_space(
                ProjectSpace(Path(environments.project_root), project),
                members,
                manage_groups=True,
                hub_account=environments.hub_account,
                settings=environments,
            )
        except (SpaceError, LedgerError, OSError) as exc:
            log.warning("project space of %s not synced: %s", project, exc)
            continue
        for line in report.lines():
            log.warning("project space of %s: %s", project, line)
