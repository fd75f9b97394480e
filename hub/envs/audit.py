"""What is unsafe in a project space (read only, never following a link): for ``hpchub doctor``.

A space is unsafe while ``P/`` is group-writable (the old 2770: members can rename its entries),
while ``shared/``, ``envs/`` or ``kernels/`` is not root's directory with its mode (swapped for a
symlink or a member's directory), while anything else in ``P/`` or in ``kernels/`` is not root's
and closed (Jupyter reads ``P/`` from the sessions' JUPYTER_PATH), or while a version directory
is not a real directory. ``hpchub env sync`` (as root) puts all of it right. What was moved aside
and finished builds still waiting to be sealed are worth a look but not unsafe.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from hub.envs import space as sp
from spawners import safe_fs


@dataclass(frozen=True)
class SpaceAudit:
    project: str
    path: str
    problems: tuple[str, ...] = ()  # unsafe: doctor FAILs
    notes: tuple[str, ...] = field(default=())  # moved aside, waiting to be sealed: doctor WARNs


def audit_space(space: sp.ProjectSpace) -> SpaceAudit:
    problems: list[str] = []
    notes: list[str] = []
    try:
        fd = space.open()
    except PermissionError:
        return SpaceAudit(space.project, str(space.path))  # not readable here: the project-groups check says so
    except OSError as exc:
        return SpaceAudit(space.project, str(space.path), (f"{space.path}: {exc.strerror or exc}",))
    with safe_fs.closing(fd):
        info = os.fstat(fd)
        if info.st_uid != 0 or info.st_mode & safe_fs.WRITE_BITS:
            problems.append(f"{space.path} is {safe_fs.describe(info)}: members can rename and replace its entries")
        for name in safe_fs.listdir(fd):
            entry = safe_fs.lstat_at(name, fd)
            if sp.is_moved_aside(name):
                notes.append(f"{space.path / name} was moved aside (review it, then delete it)")
            elif name in sp.SPACE_ENTRIES:
                wanted = sp.SPACE_ENTRIES[name]
                if not (entry is not None and stat.S_ISDIR(entry.st_mode) and entry.st_uid == 0):
                    problems.append(f"{space.path / name} is {safe_fs.describe(entry)} where root's directory belongs")
                elif stat.S_IMODE(entry.st_mode) != wanted:
                    problems.append(f"{space.path / name} has mode {stat.filemode(entry.st_mode)}, not "
                                    f"{stat.filemode(stat.S_IFDIR | wanted)}")  # fmt: skip
            else:
                problems += [f"{space.path}/{what}" for what in safe_fs.unsafe_in([(name, entry)])]
        for name in sp.SPACE_ENTRIES:
            if safe_fs.lstat_at(name, fd) is None:
                problems.append(f"{space.path / name} is missing")
        if not problems:
            problems += [f"{space.path}/{problem}" for problem in sp._kernels_problems(fd)]  # noqa: SLF001
    if not problems:
        problems += _version_problems(space, notes)
    return SpaceAudit(space.project, str(space.path), tuple(problems), tuple(notes))


def _version_problems(space: sp.ProjectSpace, notes: list[str]) -> list[str]:
    problems = []
    envs = space.open("envs")
    with safe_fs.closing(envs):
        for name in safe_fs.listdir(envs):
            info = safe_fs.lstat_at(name, envs)
            if not safe_fs.is_closed_dir(info):
                problems.append(f"{space.envs / name} is {safe_fs.describe(info)}, not root's closed directory")
                continue
            env = safe_fs.open_dir(name, envs)
            with safe_fs.closing(env):
                for entry in safe_fs.listdir(env):
                    info = safe_fs.lstat_at(entry, env)
                    if sp.version_numbers([entry]) and info is not None and not stat.S_ISDIR(info.st_mode):
                        problems.append(f"{space.envs / name / entry} is {safe_fs.describe(info)}")
        for name in sp.environment_names(space):
            for version in sp.read_environment(space, name).versions:
                if version.finished and not version.sealed:
                    notes.append(f"{version.path} has finished building but is not sealed yet (not offered)")
    return problems
