"""Run a generated systemd unit where systemd is not PID 1 (the demo machine, a container).

``hpchub demo up --run-as ACCOUNT`` starts the proxy and the hub from the very unit files
``hpchub deploy units`` writes: this module reads a unit's ``[Service]`` section and applies
what decides how the process runs -- ``ExecStart`` (the command, not duplicated anywhere),
``User``/``Group`` (the uid, gid and the account's supplementary groups, as systemd does),
``WorkingDirectory``, ``EnvironmentFile`` and ``Environment`` (on top of the variables systemd
gives a ``User=`` service: ``PATH``, ``HOME``, ``USER``, ``LOGNAME``, ``SHELL``). The
process is started detached with a pid file, and stopped by it.

Not applied: the sandboxing lines (``ProtectSystem=`` ...), ``Restart=`` and the journal (the
demo logs to a file); ``systemd-analyze verify`` checks the units themselves. Anything this
reader does not understand in the keys it applies (an ``ExecStart`` prefix such as ``-`` or
``!``, two ``ExecStart`` lines) is refused rather than guessed.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from hub.demo.cluster.procs import spawn_foreground

# What systemd (Debian 12, 252) puts on PATH for a service that sets none.
SYSTEMD_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
APPLIED_KEYS = ("ExecStart", "User", "Group", "WorkingDirectory", "EnvironmentFile", "Environment")


class UnitError(ValueError):
    """The unit cannot be run faithfully: the message names the unit and the key."""


@dataclass(frozen=True)
class ServiceUnit:
    name: str
    exec_start: tuple[str, ...]
    user: str
    group: str
    working_directory: str
    environment_files: tuple[str, ...] = ()  # a leading '-' marks an optional file, as in systemd
    environment: tuple[tuple[str, str], ...] = ()


def parse_unit(name: str, text: str) -> ServiceUnit:
    """The ``[Service]`` keys that decide how the process runs (see the module docstring)."""
    section, values = "", {key: [] for key in APPLIED_KEYS}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise UnitError(f"{name}: line {number}: not KEY=VALUE: {line!r}")
        if section == "Service" and key.strip() in values:
            values[key.strip()].append(value.strip())
    exec_start = values["ExecStart"]
    if len(exec_start) != 1:
        raise UnitError(f"{name}: ExecStart: exactly one line expected, found {len(exec_start)}")
    if exec_start[0][:1] in "@-:+!":
        raise UnitError(f"{name}: ExecStart: prefixes such as {exec_start[0][0]!r} are not applied here")
    argv = tuple(shlex.split(exec_start[0]))
    if not argv or not argv[0].startswith("/"):
        raise UnitError(f"{name}: ExecStart: an absolute program path expected, got {exec_start[0]!r}")
    for key in ("User", "Group", "WorkingDirectory"):
        if len(values[key]) != 1:
            raise UnitError(f"{name}: {key}: exactly one line expected, found {len(values[key])}")
    environment = []
    for line in values["Environment"]:
        for assignment in shlex.split(line):
            env_name, sep, env_value = assignment.partition("=")
            if not sep or not ENV_NAME.fullmatch(env_name):
                raise UnitError(f"{name}: Environment: NAME=VALUE expected, got {assignment!r}")
            environment.append((env_name, env_value))
    return ServiceUnit(name=name, exec_start=argv, user=values["User"][0], group=values["Group"][0],
                       working_directory=values["WorkingDirectory"][0],
                       environment_files=tuple(values["EnvironmentFile"]), environment=tuple(environment))  # fmt: skip


def read_environment_file(path: Path) -> dict[str, str]:
    """systemd's ``EnvironmentFile`` format: ``NAME=VALUE`` lines, ``#``/``;`` comments, optional quotes."""
    env = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        env_name, sep, value = line.partition("=")
        env_name, value = env_name.strip(), value.strip()
        if not sep or not ENV_NAME.fullmatch(env_name):
            raise UnitError(f"{path}: line {number}: NAME=VALUE expected")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[env_name] = value
    return env


def service_environment(unit: ServiceUnit) -> dict[str, str]:
    """What the unit's process gets: systemd's variables for ``User=``, then the files, then ``Environment=``."""
    account = pwd.getpwnam(unit.user)
    env = {"PATH": SYSTEMD_DEFAULT_PATH, "HOME": account.pw_dir, "USER": unit.user, "LOGNAME": unit.user,
           "SHELL": account.pw_shell}  # fmt: skip
    for entry in unit.environment_files:
        optional, path = entry.startswith("-"), Path(entry.lstrip("-"))
        if optional and not path.exists():
            continue
        env.update(read_environment_file(path))
    env.update(dict(unit.environment))
    return env


def start_unit(unit: ServiceUnit, *, pid_file: Path, log_file: Path) -> int:
    """Start the unit's ``ExecStart`` as its ``User``/``Group`` (with the account's groups), detached; its pid."""
    try:
        account = pwd.getpwnam(unit.user)
        gid = grp.getgrnam(unit.group).gr_gid
    except KeyError as exc:
        raise UnitError(f"{unit.name}: User/Group: no such account or group ({exc.args[0]})") from None
    return spawn_foreground(
        list(unit.exec_start), pid_file=pid_file, log_file=log_file, env=service_environment(unit),
        cwd=unit.working_directory, user=account.pw_uid, group=gid,
        extra_groups=os.getgrouplist(unit.user, gid),
    )  # fmt: skip


def process_owner(pid: int) -> str | None:
    """The account a process runs as (its real uid), or None if it is gone."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process_groups(pid: int) -> set[int]:
    """The gids a running process has (its ``Groups:`` and its gid), empty if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return set()
    gids = set()
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "Groups":
            gids |= {int(gid) for gid in value.split()}
        elif key == "Gid":
            gids.add(int(value.split()[0]))
    return gids


def missing_groups(pid: int, account: str) -> set[int]:
    """The account's groups a running process of it started without (joined since: it needs a restart)."""
    entry = pwd.getpwnam(account)
    return set(os.getgrouplist(account, entry.pw_gid)) - process_groups(pid)
