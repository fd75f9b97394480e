"""Daemons by pid file: start, check, stop. Never by name.

A pid file is only trusted while ``/proc/PID/cmdline`` still names the
program we started (pids are reused).
"""

from __future__ import annotations

import grp
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Daemon:
    """One daemon of the demo: how to recognise it and where its pid file is."""

    name: str  # e.g. "slurmd-gpu01"
    program: str  # basename expected in /proc/PID/cmdline, e.g. "slurmd"
    pid_file: Path

    def pid(self) -> int | None:
        """The running daemon's pid, or None (stale pid files count as not running)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_is(pid, self.program) else None

    def running(self) -> bool:
        return self.pid() is not None


def pid_is(pid: int, program: str) -> bool:
    """True if process ``pid`` exists and runs ``program`` (matched on argv[0]'s basename)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    argv0 = raw.split(b"\0", 1)[0].decode(errors="replace")
    if Path(argv0).name == program:
        return True
    # Python programs (the hub, the proxy under node): look at the first args too.
    args = [a.decode(errors="replace") for a in raw.split(b"\0")[:3]]
    return any(Path(a).name == program for a in args)


def stop_daemon(daemon: Daemon, *, timeout: float = 15.0) -> bool:
    """SIGTERM by pid file, wait, then SIGKILL. Returns True if it was running."""
    pid = daemon.pid()
    if pid is None:
        daemon.pid_file.unlink(missing_ok=True)
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_is(pid, daemon.program):
            break
        time.sleep(0.1)
    else:
        _signal(pid, signal.SIGKILL)
        time.sleep(0.2)
    daemon.pid_file.unlink(missing_ok=True)
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def spawn_foreground(
    argv: list[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: dict | None = None,
    cwd: str | None = None,
    user: int | None = None,
    group: int | None = None,
    extra_groups: list[int] | None = None,
) -> int:
    """Start a program that stays in the foreground, detached, and write its pid file.

    ``user``/``group``/``extra_groups``: drop to that uid, gid and supplementary groups (root only).
    The log is opened here (by root) and kept private (:func:`open_private_log`): the daemons' logs
    hold user names, job details and requests, and every demo user has a shell on this host."""
    with open_private_log(log_file) as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            user=user,
            group=group,
            extra_groups=extra_groups,
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


LOG_MODE = 0o640  # the owner writes, the adm group (Debian's log readers) reads, nobody else
LOG_GROUP = "adm"


def open_private_log(path: Path):
    """``path`` opened for appending, created 0640 root:adm (0600 where there is no adm group); a log
    left readable by an earlier version is closed to other users again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        mode = 0o600
        if os.geteuid() == 0:
            try:
                os.fchown(fd, 0, grp.getgrnam(LOG_GROUP).gr_gid)
                mode = LOG_MODE
            except KeyError:
                os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
