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
import os
import pwd
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from .space import CLOSED_DIR_MODE, PROJECT_DIR_MODE, SHARED_DIR_MODE, ProjectSpace, group_name

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
        raise SpaceError(f"Unix group {name} does not exist: the site's identity management must create it "
                         "(or set c.HPCHubEnvironments.manage_unix_groups = True)")
    return gid


def _directory(path: Path, uid: int, gid: int, mode: int) -> None:
    path.mkdir(exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)  # after chown, and explicit: mkdir's mode is masked by the umask


def ensure_space(space: ProjectSpace, members: Iterable[str], *, manage_groups: bool, hub_account: str = "") -> None:
    """PROJECT_ROOT/P with shared/, envs/ and kernels/, owned and moded per the contract."""
    gid = ensure_group(space.project, members, manage=manage_groups, hub_account=hub_account)
    space.root.mkdir(parents=True, exist_ok=True)
    if space.root.stat().st_mode & 0o005 != 0o005:
        os.chmod(space.root, 0o755)  # everyone may pass through PROJECT_ROOT; each space is closed
    _directory(space.path, 0, gid, PROJECT_DIR_MODE)
    _directory(space.shared, 0, gid, SHARED_DIR_MODE)
    _directory(space.envs, 0, gid, CLOSED_DIR_MODE)
    _directory(space.kernels, 0, gid, CLOSED_DIR_MODE)


def make_builder_directory(path: Path, builder: str, project: str) -> None:
    """A directory the build job (running as ``builder``) writes into: builder:hpc-P 2750."""
    uid = pwd.getpwnam(builder).pw_uid
    gid = group_id(project)
    if gid is None:
        raise SpaceError(f"Unix group {group_name(project)} does not exist")
    _directory(path, uid, gid, CLOSED_DIR_MODE)
