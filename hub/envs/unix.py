"""Create a project's space and its Unix group ``hpc-P`` with the ledger's members (needs root).

In production the site's identity management provides the groups; with
``c.HPCHubEnvironments.manage_unix_groups = True`` (the demo) the portal does it itself:
``groupadd`` when the group is missing and ``gpasswd -M`` with the project's active
members that have a Unix account, plus the hub's service account
(``c.HPCHubEnvironments.hub_account``: the hub reads the spaces' environment lists through
the group; ``gpasswd -M`` sets the exact list, so dropping the setting drops the account).
It runs at ``demo up``, ``hpchub env sync``, ``env create`` and before each spawn of a
member, so a membership change reaches the member's next session (Slurm resolves a job's
groups when it starts). Ownership and modes follow the
contract: see :mod:`.space`.
"""

from __future__ import annotations

import grp
import pwd
import subprocess
from collections.abc import Callable, Iterable, Mapping

from hub.envs import seal
from hub.envs.build_jobs import active_jobs
from hub.envs.config import HPCHubEnvironments
from hub.envs.space import CLOSED_DIR_MODE, ProjectSpace, building_job_ids, group_name
from spawners import safe_fs

COMMAND_TIMEOUT = 30


class SpaceError(RuntimeError):
    """A group or directory could not be made (the message says which and why)."""


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except subprocess.CalledProcessError as exc:
        raise SpaceError(f"{' '.join(argv)}: {exc.stderr.strip() or exc.returncode}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpaceError(f"{' '.join(argv)}: {exc}") from None


def group_id(project: str) -> int | None:
    try:
        return grp.getgrnam(group_name(project)).gr_gid
    except KeyError:
        return None


def has_account(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def group_members(members: Iterable[str], hub_account: str = "", *,
                  exists: Callable[[str], bool] = has_account) -> list[str]:  # fmt: skip
    """The exact member list of ``hpc-P``: the project's members with a Unix account and the hub's account."""
    wanted = set(members) | ({hub_account} if hub_account else set())
    return sorted(user for user in wanted if exists(user))


def ensure_group(project: str, members: Iterable[str], *, manage: bool, hub_account: str = "") -> int:
    """The gid of ``hpc-P``; with ``manage``, create it and make its member list exactly ``members``
    (those with a Unix account) and ``hub_account`` (the hub's service account, '' for none)."""
    name = group_name(project)
    if manage:
        if group_id(project) is None:
            _run(["groupadd", name])
        known = group_members(members, hub_account)
        if sorted(grp.getgrnam(name).gr_mem) != known:
            _run(["gpasswd", "-M", ",".join(known), name])
    gid = group_id(project)
    if gid is None:
        raise SpaceError(
            f"Unix group {name} does not exist: the site's identity management must create it "
            "(or set c.HPCHubEnvironments.manage_unix_groups = True)"
        )
    return gid


def remove_group(project: str) -> None:
    """Remove ``hpc-P`` (undoing an award that made it; the demo and sites that let the hub manage groups)."""
    if group_id(project) is not None:
        _run(["groupdel", group_name(project)])


def ensure_space(space: ProjectSpace, members: Iterable[str], *, manage_groups: bool, hub_account: str = "",
                 settings=None) -> seal.SpaceReport:  # fmt: skip
    """PROJECT_ROOT/P with shared/, envs/ and kernels/, owned and moded as docs/environments.md lays out; what a member
    swapped is moved aside; finished builds whose jobs have ended (Slurm asked with ``settings``, a
    :class:`~.config.HPCHubEnvironments`, for its slurm_conf) are sealed. The report says what changed."""
    gid = ensure_group(space.project, members, manage=manage_groups, hub_account=hub_account)
    try:
        report = seal.repair_layout(space, gid)
        report.extend(seal.seal_finished(space, _active_jobs(space, settings), gid))
    except (OSError, safe_fs.UnsafeEntry) as exc:
        raise SpaceError(f"project space {space.path}: {exc}") from None
    return report


def _active_jobs(space: ProjectSpace, settings) -> Mapping[str, bool] | None:
    """One squeue for the versions waiting to be sealed (none asked when there are none)."""
    job_ids = building_job_ids(space)
    if not job_ids:
        return {}
    return active_jobs(settings if settings is not None else HPCHubEnvironments(), job_ids)


def make_builder_directory(env_fd: int, version: int, builder: str, project: str) -> int:
    """The version directory the build job (running as ``builder``) writes into, builder:hpc-P 2750, in
    ``env_fd`` (root's envs/NAME): its descriptor."""
    uid = pwd.getpwnam(builder).pw_uid
    gid = group_id(project)
    if gid is None:
        raise SpaceError(f"Unix group {group_name(project)} does not exist")
    return safe_fs.make_dir(env_fd, str(version), uid=uid, gid=gid, mode=CLOSED_DIR_MODE)
