"""The spawner's side of project environments (issue 8): which ones a user may choose,
what the job's environment gets, and the demo's Unix group sync before a spawn.

Thin helpers over :mod:`hub.envs` so that :mod:`.spawner` only calls them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hub.envs.config import HPCHubEnvironments
from hub.envs.space import PROJECT_ENVIRONMENT_PREFIX, ProjectSpace, jupyter_path, kernel_name, ready_environment_names
from spawners.catalog import Catalogue, Environment
from spawners.slurm.types import JobRequest

log = logging.getLogger(__name__)


def settings(config) -> HPCHubEnvironments:
    return HPCHubEnvironments(config=config)


def ready_environments(environments: HPCHubEnvironments, projects: Sequence[str]) -> dict[str, list[str]]:
    """Project -> names of its environments with a ready version (read from the project spaces)."""
    if not environments.project_root:
        return {}
    root = Path(environments.project_root)
    return {project: ready_environment_names(root, project) for project in projects}


def job_variables(environments: HPCHubEnvironments, projects: Sequence[str]) -> dict[str, str]:
    """``JUPYTER_PATH`` with the user's project spaces (their kernels/ hold the kernelspecs P-NAME)."""
    if not environments.project_root or not projects:
        return {}
    return {"JUPYTER_PATH": jupyter_path(environments.project_root, projects)}


def binds(environments: HPCHubEnvironments, projects: Sequence[str]) -> list[str]:
    """Directories an Apptainer session binds: the user's project spaces."""
    if not environments.project_root:
        return []
    return [str(Path(environments.project_root) / project) for project in sorted(set(projects))]


def resolve(catalogue: Catalogue, request: JobRequest) -> tuple[Environment, str | None]:
    """The catalogue entry the server runs in, and the default kernel (for ``project:NAME``).

    A project environment holds the user's packages and ipykernel, not Jupyter: the server runs
    in the catalogue's default entry and opens notebooks with the kernel ``P-NAME``.
    """
    if request.environment.startswith(PROJECT_ENVIRONMENT_PREFIX):
        name = request.environment[len(PROJECT_ENVIRONMENT_PREFIX):]
        return catalogue.default, kernel_name(request.project, name)
    environment = catalogue.get(request.environment)
    if environment is None:
        from spawners.slurm.launch import LaunchError  # noqa: PLC0415

        raise LaunchError(f"environment {request.environment!r} is no longer in the catalogue")
    return environment, None


def sync_spaces(environments: HPCHubEnvironments, ledger, projects: Sequence[str]) -> None:
    """With ``manage_unix_groups`` (the demo): each project's space and group ``hpc-P`` with its members."""
    if not environments.manage_unix_groups or not environments.project_root or ledger is None:
        return
    from hub.envs.unix import SpaceError, ensure_space  # noqa: PLC0415
    from hub.ledger import LedgerError  # noqa: PLC0415

    for project in projects:
        try:
            members = ledger.active_members(project)
            ensure_space(ProjectSpace(Path(environments.project_root), project), members, manage_groups=True)
        except (SpaceError, LedgerError, OSError) as exc:
            log.warning("project space of %s not synced: %s", project, exc)
