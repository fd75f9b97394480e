"""Async Slurm commands for the hub: one place that runs ``sbatch``, ``squeue`` & co.

Rules kept here so no caller has to remember them:

* Commands run with ``asyncio.create_subprocess_exec`` and an argument list,
  never through a shell.
* The child environment is built from an allowlist (``PATH``, ``LANG`` of the
  hub), ``SLURM_CONF`` when configured, and the per-call ``extra_env``. Nothing
  else of the hub's environment leaks into Slurm commands or jobs. Environment
  *values* are never logged (they carry API tokens); argv is logged at debug.
* ``as_user`` runs the command through ``sudo -n -u USER`` with
  ``--preserve-env=NAMES`` for the variables we set (sudo drops them
  otherwise; ``SLURM_CONF`` included), except those sudo itself sets to the
  target user's values (``HOME``, ``USER``, ``LOGNAME``, ``SHELL``): a service
  account's sudoers rule would refuse them. The user name is validated first.
* A non-zero exit raises :class:`SlurmCommandError`; a command that does not
  finish within ``timeout`` seconds is terminated (then killed) and raises
  :class:`SlurmTimeoutError`. Callers decide what a failure means; the watcher
  reads any failure as UNKNOWN, never as "job gone".

Parsing lives in :mod:`spawners.slurm.parsers` (jobs, accounting) and
:mod:`spawners.slurm.cluster_parsers` (partitions, nodes, configuration), with the
format strings this client asks for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from spawners import names
from spawners.slurm.accounts import TREE_ARGV
from spawners.slurm.cluster_parsers import NODE_ADDRESS_FORMAT, SINFO_FORMAT
from spawners.slurm.parsers import (
    ACCOUNTING_SACCT_FORMAT,
    ACCOUNTING_SACCT_STATES,
    SACCT_FORMAT,
    SACCTMGR_ASSOCIATION_FORMAT,
    SQUEUE_ACTIVE_FORMAT,
    SQUEUE_FORMAT,
    SQUEUE_START_FORMAT,
    USER_ACCOUNTS_FORMAT,
    is_job_id,
    parse_user_accounts,
)

USER_NAME_PATTERN = names.UNIX_ACCOUNT
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# squeue --name takes a comma-separated list: a job name must not split.
JOB_NAME_PATTERN = re.compile(r"[^,\s]{1,200}")
# Slurm account and cluster names in argument lists (no ',', '=', space or leading '-').
ACCOUNT_NAME_PATTERN = names.SLURM_ACCOUNT
CLUSTER_NAME_PATTERN = names.SLURM_CLUSTER
# sacctmgr modify ... set KEY=VALUE: the settings this client may change, with their value rules.
_TRES_MINUTES_VALUE = re.compile(r"[a-z][a-z0-9/:_-]*=-?[0-9]{1,18}(?:,[a-z][a-z0-9/:_-]*=-?[0-9]{1,18})*")
SACCTMGR_SETTINGS: Mapping[str, re.Pattern[str]] = {
    "GrpTRESMins": _TRES_MINUTES_VALUE,  # e.g. billing=12000 (-1 clears)
    "MaxSubmitJobs": re.compile(r"-1|[0-9]{1,9}"),
}
SACCTMGR_ENTITIES = ("account", "user")
# scontrol update TimeLimit: whole minutes, at most one leap year (partitions are far stricter).
MAX_TIME_LIMIT_MINUTES = 366 * 24 * 60
# Hub environment variables passed on to Slurm commands.
HUB_ENV_ALLOWLIST: tuple[str, ...] = ("PATH", "LANG")
# Variables that only the client sets (extra_env may not override them).
RESERVED_ENV: frozenset[str] = frozenset({"PATH", "SLURM_CONF"})
# What ``sudo -u USER`` sets to USER's own values (env_reset): never asked to preserve.
SUDO_SETS_ENV: frozenset[str] = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL"})
# The commands this client runs (a bare name; bin_dir decides where it lives).
SLURM_COMMANDS: frozenset[str] = frozenset(
    {"sbatch", "scancel", "squeue", "sacct", "sinfo", "sacctmgr", "scontrol", "sshare", "sprio", "srun"}
)
# scancel stderr that means "nothing left to cancel": success for us.
_SCANCEL_DONE_MARKERS = ("Invalid job id specified", "already completing or completed")
# How long a timed-out command gets after SIGTERM before SIGKILL (sudo relays
# SIGTERM to the Slurm command it runs; it cannot relay SIGKILL).
TERMINATE_GRACE_SECONDS = 2.0


_DESCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.,:#()/ -]{0,99}")


class SlurmCommandError(RuntimeError):
    """A Slurm command failed: non-zero exit, timeout, or unusable output.

    ``returncode`` is ``None`` when the command timed out, 127 when it could
    not be executed at all.
    """

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv: tuple[str, ...] = tuple(argv)
        self.returncode: int | None = returncode
        self.stderr: str = stderr
        super().__init__(self.summary)

    @property
    def command(self) -> str:
        """The Slurm command's name (``sbatch``), skipping a ``sudo ...`` prefix."""
        for word in self.argv:
            name = os.path.basename(word)
            if name in SLURM_COMMANDS:
                return name
        return os.path.basename(self.argv[0]) if self.argv else "?"

    @property
    def first_stderr_line(self) -> str:
        """The most telling stderr line: the first mentioning an error, else the first one."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        for line in lines:
            lowered = line.lower()
            if "error" in lowered or "fatal" in lowered:
                return line[:300]
        return lines[0][:300] if lines else ""

    @property
    def summary(self) -> str:
        """One line: command name, exit code, first useful stderr line."""
        if self.returncode:
            head = f"{self.command} exited with {self.returncode}"
        else:  # ran "successfully" but printed something unusable
            head = f"{self.command} failed"
        detail = self.first_stderr_line
        return f"{head}: {detail}" if detail else head

    def __str__(self) -> str:
        return self.summary


class SlurmTimeoutError(SlurmCommandError):
    """A Slurm command did not finish in time (it was terminated)."""

    def __init__(self, argv: Sequence[str], timeout: float, stderr: str = "") -> None:
        self.timeout = timeout
        super().__init__(argv, None, stderr)

    @property
    def summary(self) -> str:
        """One line: command name, the timeout, first useful stderr line."""
        head = f"{self.command} timed out after {self.timeout:g}s"
        detail = self.first_stderr_line
        return f"{head}: {detail}" if detail else head


@dataclass(frozen=True)
class CommandResult:
    """What a finished command printed."""

    returncode: int
    stdout: str
    stderr: str


# runner(argv, input=..., env=..., timeout=...) -> CommandResult; raises
# TimeoutError (after stopping the process) when the timeout expires.
CommandRunner = Callable[..., Awaitable[CommandResult]]


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after a grace period; always reaps the process."""
    if process.returncode is not None:
        return
    try:
        process.terminate()
        await asyncio.wait_for(process.wait(), TERMINATE_GRACE_SECONDS)
    except ProcessLookupError:
        pass
    except TimeoutError:
        try:
            process.kill()
        except ProcessLookupError:
            pass
        await process.wait()


async def subprocess_runner(
    argv: Sequence[str], *, input: str | None, env: Mapping[str, str], timeout: float
) -> CommandResult:
    """Default runner: exec ``argv`` (no shell), feed ``input``, capture output.

    On timeout or cancellation the process is stopped before the exception
    propagates, so no Slurm command outlives its caller.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )
    data = input.encode("utf-8") if input is not None else None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(data), timeout)
    except BaseException:
        await _stop_process(process)
        raise
    assert process.returncode is not None
    return CommandResult(
        process.returncode,
        stdout.decode("utf-8", "replace"),
        stderr.decode("utf-8", "replace"),
    )


def validate_user_name(user: str) -> str:
    """``user`` if it is a safe Unix user name (``^[a-z_][a-z0-9_-]{0,31}$``), else ValueError."""
    if not isinstance(user, str) or not USER_NAME_PATTERN.fullmatch(user):
        raise ValueError(f"not a valid Unix user name: {user!r}")
    return user


def validate_job_id(job_id: str) -> str:
    """``job_id`` if it is a plain Slurm job id (digits), else ValueError."""
    if not isinstance(job_id, str) or not is_job_id(job_id):
        raise ValueError(f"not a valid Slurm job id: {job_id!r}")
    return job_id


def validate_account_name(account: str) -> str:
    """``account`` if it is a safe Slurm account name for an argument list, else ValueError."""
    if not isinstance(account, str) or not ACCOUNT_NAME_PATTERN.fullmatch(account):
        raise ValueError(f"not a valid Slurm account name: {account!r}")
    return account


def validate_cluster_name(cluster: str) -> str:
    """``cluster`` if it is a safe Slurm ClusterName, else ValueError."""
    if not isinstance(cluster, str) or not CLUSTER_NAME_PATTERN.fullmatch(cluster):
        raise ValueError(f"not a valid Slurm cluster name: {cluster!r}")
    return cluster


def _account_list(accounts: Sequence[str]) -> str:
    if isinstance(accounts, str):
        raise TypeError("accounts must be a sequence of account names, not one string")
    return ",".join(validate_account_name(account) for account in accounts)


def _job_list(job_ids: Sequence[str]) -> str:
    if isinstance(job_ids, str):
        raise TypeError("job_ids must be a sequence of job ids, not one string")
    return ",".join(validate_job_id(job_id) for job_id in job_ids)


class SlurmClient:
    """Runs Slurm commands for the hub; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        slurm_conf: str | None = None,
        bin_dir: str = "",
        sudo: str = "/usr/bin/sudo",
        timeout: float = 30.0,
        runner: CommandRunner | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.slurm_conf = slurm_conf
        self.bin_dir = bin_dir
        self.sudo = sudo
        self.timeout = timeout
        self.runner: CommandRunner = runner or subprocess_runner
        self.log = log or logging.getLogger(__name__)

    # -- plumbing -----------------------------------------------------------

    def build_env(self, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child environment: allowlisted hub vars, ``SLURM_CONF``, ``extra_env``."""
        env = {name: os.environ[name] for name in HUB_ENV_ALLOWLIST if name in os.environ}
        env.setdefault("PATH", os.defpath)
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        for name, value in (extra_env or {}).items():
            if not ENV_NAME_PATTERN.fullmatch(name):
                raise ValueError(f"not a valid environment variable name: {name!r}")
            if name in RESERVED_ENV:
                raise ValueError(f"extra_env may not set {name}; the client sets it")
            if not isinstance(value, str) or "\0" in value:
                raise ValueError(f"environment variable {name} must be a string without NUL")
            env[name] = value
        return env

    def build_argv(self, argv: Sequence[str], env: Mapping[str, str], as_user: str | None) -> list[str]:
        """Resolve the binary against ``bin_dir`` and add the sudo prefix for ``as_user``."""
        if isinstance(argv, str) or not argv:
            raise ValueError("argv must be a non-empty sequence of arguments")
        command, *args = argv
        if command not in SLURM_COMMANDS:
            raise ValueError(f"not a Slurm command this client runs: {command!r}")
        binary = os.path.join(self.bin_dir, command) if self.bin_dir else command
        if as_user is None:
            return [binary, *args]
        validate_user_name(as_user)
        prefix = [self.sudo, "-n", "-u", as_user]
        preserved = ",".join(sorted(name for name in env if name not in SUDO_SETS_ENV))
        if preserved:
            prefix.append(f"--preserve-env={preserved}")
        return [*prefix, binary, *args]

    async def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        as_user: str | None = None,
    ) -> str:
        """Run a Slurm command (``argv[0]`` is its bare name) and return its stdout.

        Raises ValueError for a bad ``as_user``/``extra_env``/command before
        anything runs, :class:`SlurmTimeoutError` on timeout and
        :class:`SlurmCommandError` on a non-zero exit or when the binary
        cannot be executed (``returncode`` 127).
        """
        _, stdout = await self._execute(argv, input=input, extra_env=extra_env, as_user=as_user)
        return stdout

    async def _execute(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        as_user: str | None = None,
    ) -> tuple[list[str], str]:
        """:meth:`run`, also returning the full argv that ran (for error reports)."""
        env = self.build_env(extra_env)
        full_argv = self.build_argv(argv, env, as_user)
        self.log.debug("running %s", shlex.join(full_argv))
        try:
            result = await self.runner(full_argv, input=input, env=env, timeout=self.timeout)
        except TimeoutError as exc:  # before OSError: TimeoutError is an OSError
            raise SlurmTimeoutError(full_argv, self.timeout) from exc
        except OSError as exc:  # binary missing or not executable
            raise SlurmCommandError(full_argv, 127, f"cannot execute: {exc.strerror or exc}") from exc
        if result.returncode != 0:
            # sacctmgr says "Nothing modified" on stdout: with an empty stderr, stdout is the detail
            detail = result.stderr if result.stderr.strip() else result.stdout
            raise SlurmCommandError(full_argv, result.returncode, detail)
        return full_argv, result.stdout

    # -- commands -----------------------------------------------------------

    async def sbatch(self, script: str, *, as_user: str, extra_env: Mapping[str, str] | None = None) -> str:
        """Submit ``script`` (on stdin) as ``as_user``; return the new job id.

        ``extra_env`` reaches the job through the environment of ``sbatch``
        (the script's ``#SBATCH --export=`` names which variables to pass).
        """
        full_argv, stdout = await self._execute(
            ["sbatch", "--parsable"], input=script, extra_env=extra_env, as_user=as_user
        )
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        job_id = lines[-1].split(";", 1)[0].strip() if lines else ""
        if not is_job_id(job_id):
            raise SlurmCommandError(full_argv, 0, f"unexpected output (no job id): {stdout[:200]!r}")
        return job_id

    async def scancel(self, job_id: str, *, as_user: str | None = None) -> None:
        """Cancel ``job_id``. A job that already ended or is unknown counts as cancelled."""
        validate_job_id(job_id)
        try:
            await self.run(["scancel", job_id], as_user=as_user)
        except SlurmTimeoutError:
            raise
        except SlurmCommandError as exc:
            if any(marker in exc.stderr for marker in _SCANCEL_DONE_MARKERS):
                self.log.debug("scancel %s: job already gone (%s)", job_id, exc.first_stderr_line)
                return
            raise

    async def squeue(self, *, name: str | None = None, job_ids: Sequence[str] | None = None) -> str:
        """``squeue`` for all states, filtered by job name and/or job ids (one filter required).

        An empty ``job_ids`` returns ``""`` without running anything. squeue
        asked for exactly one job id that slurmctld has forgotten exits 1 with
        "Invalid job id specified"; that is an answer (not listed), so ``""``.
        """
        argv = ["squeue", "--noheader", "--states=all", f"--format={SQUEUE_FORMAT}"]
        if name is None and job_ids is None:
            raise ValueError("squeue needs a job name or job ids (an unfiltered squeue is too costly)")
        if name is not None:
            if not JOB_NAME_PATTERN.fullmatch(name):
                raise ValueError(f"job name must be non-empty without commas or spaces: {name!r}")
            argv.append(f"--name={name}")
        if job_ids is not None:
            if not job_ids:
                return ""
            argv.append(f"--jobs={_job_list(job_ids)}")
        return await self._run_tolerating_forgotten_job(argv, job_ids)

    async def squeue_start(self, job_ids: Sequence[str]) -> str:
        """Slurm's expected start times of pending jobs (``squeue --start``)."""
        if not job_ids:
            return ""
        argv = ["squeue", "--start", "--noheader", f"--format={SQUEUE_START_FORMAT}", f"--jobs={_job_list(job_ids)}"]
        return await self._run_tolerating_forgotten_job(argv, job_ids)

    async def _run_tolerating_forgotten_job(self, argv: list[str], job_ids: Sequence[str] | None) -> str:
        try:
            return await self.run(argv)
        except SlurmTimeoutError:
            raise
        except SlurmCommandError as exc:
            if job_ids is not None and len(job_ids) == 1 and "Invalid job id specified" in exc.stderr:
                return ""
            raise

    async def sacct(self, job_ids: Sequence[str]) -> str:
        """Accounting records (allocations only, all users) of ``job_ids``; ``""`` if none asked."""
        if not job_ids:
            return ""
        return await self.run(
            [
                "sacct",
                "--noheader",
                "--parsable2",
                "-X",
                "--allusers",
                f"--jobs={_job_list(job_ids)}",
                f"--format={SACCT_FORMAT}",
            ]
        )

    async def sacct_accounts(self, accounts: Sequence[str], *, start: datetime, cluster: str | None = None) -> str:
        """Every job allocation on ``accounts`` (all users) that ran, or runs, since ``start``.

        Asks for :data:`ACCOUNTING_SACCT_STATES` (the end states and RUNNING) from ``start``
        to now (Slurm 22.05 needs ``--endtime`` with ``--state``: without it sacct answers
        nothing). Runs with ``TZ=UTC``: ``start`` is sent and every time printed in UTC.
        ``""`` without running anything when no account is asked.
        """
        if not accounts:
            return ""
        if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be a timezone-aware datetime, got {start!r}")
        argv = [
            "sacct",
            "--noheader",
            "--parsable2",
            "-X",
            "--allusers",
            f"--accounts={_account_list(accounts)}",
            f"--starttime={start.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')}",
            "--endtime=now",
            f"--state={','.join(ACCOUNTING_SACCT_STATES)}",
            f"--format={ACCOUNTING_SACCT_FORMAT}",
        ]
        if cluster is not None:
            argv.append(f"--clusters={validate_cluster_name(cluster)}")
        return await self.run(argv, extra_env={"TZ": "UTC"})

    async def assoc_mgr(self, accounts: Sequence[str]) -> str:
        """slurmctld's association records of ``accounts`` (account and user associations) with
        their limits and usage, at one instant (``scontrol show assoc_mgr ... flags=assoc``)."""
        if not accounts:
            return ""
        return await self.run(["scontrol", "show", "assoc_mgr", f"accounts={_account_list(accounts)}", "flags=assoc"])

    async def sacctmgr_modify(
        self,
        entity: str,
        name: str,
        *,
        cluster: str,
        settings: Mapping[str, str],
        account: str | None = None,
    ) -> str:
        """``sacctmgr -i modify ENTITY where name=NAME [account=ACCOUNT] cluster=CLUSTER set K=V ...``.

        ``entity`` is ``account`` (the account's own association) or ``user`` (the user's
        association with ``account``, required then). Only the settings in
        :data:`SACCTMGR_SETTINGS` may be changed, each value checked against its rule.
        sacctmgr exits 1 with "Nothing modified" when no association matched.
        """
        if entity not in SACCTMGR_ENTITIES:
            raise ValueError(f"sacctmgr entity must be one of {', '.join(SACCTMGR_ENTITIES)}, got {entity!r}")
        where = [f"name={validate_user_name(name) if entity == 'user' else validate_account_name(name)}"]
        if entity == "user":
            if account is None:
                raise ValueError("sacctmgr modify user needs the account of the association")
            where.append(f"account={validate_account_name(account)}")
        elif account is not None:
            raise ValueError("sacctmgr modify account takes no separate account")
        where.append(f"cluster={validate_cluster_name(cluster)}")
        if not settings:
            raise ValueError("sacctmgr modify needs at least one setting")
        changes = self._sacctmgr_settings(settings)
        return await self.run(["sacctmgr", "-i", "modify", entity, "where", *where, "set", *changes])

    async def update_time_limit(self, job_id: str, minutes: int) -> None:
        """``scontrol update JobId=N TimeLimit=MINUTES``: set a job's total time limit.

        Run as the hub's own account (no sudo): raising a time limit needs a Slurm
        operator (``AdminLevel=Operator``) or root; a plain user may only lower it.
        ``minutes`` is a whole number from 1 to :data:`MAX_TIME_LIMIT_MINUTES`.
        """
        validate_job_id(job_id)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_TIME_LIMIT_MINUTES:
            raise ValueError(f"time limit must be whole minutes from 1 to {MAX_TIME_LIMIT_MINUTES}, got {minutes!r}")
        await self.run(["scontrol", "update", f"JobId={job_id}", f"TimeLimit={minutes}"])

    def _sacctmgr_settings(self, settings: Mapping[str, str]) -> list[str]:
        """``KEY=VALUE`` words for the allowlisted settings (:data:`SACCTMGR_SETTINGS`), each checked."""
        words = []
        for key, value in settings.items():
            rule = SACCTMGR_SETTINGS.get(key)
            if rule is None:
                raise ValueError(f"not a setting this client changes: {key!r}")
            if not isinstance(value, str) or not rule.fullmatch(value):
                raise ValueError(f"not a valid value for {key}: {value!r}")
            words.append(f"{key}={value}")
        return words

    async def sacctmgr_associations(self, accounts: Sequence[str], *, cluster: str) -> str:
        """slurmdbd's associations (account and user ones) of ``accounts`` on ``cluster``:
        ``sacctmgr --noheader --parsable2 show associations where account=A,B cluster=C
        format=`` :data:`~spawners.slurm.parsers.SACCTMGR_ASSOCIATION_FORMAT`. ``""`` without running anything when no
        account is asked."""
        if not accounts:
            return ""
        return await self.run([
            "sacctmgr", "--noheader", "--parsable2", "show", "associations", "where",
            f"account={_account_list(accounts)}", f"cluster={validate_cluster_name(cluster)}",
            f"format={SACCTMGR_ASSOCIATION_FORMAT}",
        ])  # fmt: skip

    async def sacctmgr_add_user(
        self, user: str, *, account: str, cluster: str, settings: Mapping[str, str] | None = None
    ) -> str:
        """``sacctmgr -i add user USER account=ACCOUNT cluster=CLUSTER [K=V ...]``: the user's
        association with ``account``, with allowlisted settings (e.g. its GrpTRESMins)."""
        argv = [
            "sacctmgr", "-i", "add", "user", validate_user_name(user),
            f"account={validate_account_name(account)}", f"cluster={validate_cluster_name(cluster)}",
        ]  # fmt: skip
        return await self.run([*argv, *self._sacctmgr_settings(settings or {})])

    async def sacctmgr_add_account(self, account: str, *, parent: str, cluster: str, description: str) -> str:
        """``sacctmgr -i add account ACCOUNT parent=PARENT cluster=CLUSTER Description=TEXT``: a new
        account under ``parent``. ``description`` is one line of letters, digits and ``.,:#()/ -``
        (it reaches sacctmgr as one argv word, never a shell)."""
        if not isinstance(description, str) or not _DESCRIPTION.fullmatch(description):
            raise ValueError(f"account description must be 1-100 of letters, digits and .,:#()/ -, got {description!r}")
        return await self.run([
            "sacctmgr", "-i", "add", "account", validate_account_name(account),
            f"parent={validate_account_name(parent)}", f"cluster={validate_cluster_name(cluster)}",
            f"Description={description}",
        ])  # fmt: skip

    async def sacctmgr_remove_account(self, account: str, *, cluster: str | None) -> str:
        """``sacctmgr -i remove account where name=ACCOUNT [cluster=CLUSTER]``: undo a new account
        (sacctmgr refuses while jobs are active on it or it has accounts under it). With a cluster only
        the account's association there goes and slurmdbd keeps the account's record; ``None``
        removes the account itself, on every cluster."""
        where = [f"cluster={validate_cluster_name(cluster)}"] if cluster is not None else []
        return await self.run(
            ["sacctmgr", "-i", "remove", "account", "where", f"name={validate_account_name(account)}", *where]
        )

    async def sacctmgr_remove_user(self, user: str, *, account: str, cluster: str) -> str:
        """``sacctmgr -i remove user where name=USER account=ACCOUNT cluster=CLUSTER``: the user's
        association with ``account`` only (sacctmgr refuses while the user has jobs there)."""
        return await self.run([
            "sacctmgr", "-i", "remove", "user", "where", f"name={validate_user_name(user)}",
            f"account={validate_account_name(account)}", f"cluster={validate_cluster_name(cluster)}",
        ])  # fmt: skip

    async def squeue_account_jobs(self, accounts: Sequence[str]) -> str:
        """Every job still active (pending, running, completing, ...) on ``accounts``, all users, with
        its submit time (UTC) and comment: ``squeue --noheader --account=A,B --format=``
        :data:`~spawners.slurm.parsers.SQUEUE_ACTIVE_FORMAT` (see ``parsers.parse_active_jobs``)."""
        if not accounts:
            return ""
        return await self.run(
            ["squeue", "--noheader", f"--account={_account_list(accounts)}", f"--format={SQUEUE_ACTIVE_FORMAT}"],
            extra_env={"TZ": "UTC"},
        )

    async def sinfo(self) -> str:
        """Partitions, time limits, GRES and nodes (see ``cluster_parsers.parse_sinfo``)."""
        return await self.run(["sinfo", "--noheader", f"--format={SINFO_FORMAT}"])

    async def user_accounts(self, user: str) -> str:
        """The accounts ``user`` has associations with (see ``parsers.parse_user_accounts``)."""
        validate_user_name(user)
        return await self.run(
            ["sacctmgr", "--noheader", "--parsable2", "show", "associations", f"user={user}",
             f"format={USER_ACCOUNTS_FORMAT}"]
        )  # fmt: skip

    async def account_exists(self, account: str) -> bool:
        """Whether Slurm's accounting database has ``account`` with an association (what
        ``sbatch --account`` needs): a project on an account Slurm does not know takes a
        budget no job can spend."""
        validate_account_name(account)
        listed = await self.run(
            ["sacctmgr", "--noheader", "--parsable2", "show", "associations", f"account={account}",
             f"format={USER_ACCOUNTS_FORMAT}"]
        )  # fmt: skip
        return account in parse_user_accounts(listed)

    async def account_tree(self) -> str:
        """slurmdbd's account associations, every cluster (``accounts.TREE_ARGV``; see
        ``accounts.parse_account_tree``)."""
        return await self.run(list(TREE_ARGV))

    async def scontrol_show_node_addresses(self) -> str:
        """Node name and NodeAddr of every node (see ``cluster_parsers.parse_node_addresses``)."""
        return await self.run(["sinfo", "--noheader", "--Node", f"--format={NODE_ADDRESS_FORMAT}"])

    # -- the doctor's reads ---------------------------------------------------

    async def version(self) -> str:
        """``sinfo --version``: e.g. ``slurm 22.05.8``."""
        return await self.run(["sinfo", "--version"])

    async def ping(self) -> str:
        """``scontrol ping``: whether slurmctld answers (``... is UP``)."""
        return await self.run(["scontrol", "ping"])

    async def show_config(self) -> str:
        """``scontrol show config`` (see ``cluster_parsers.parse_show_config``)."""
        return await self.run(["scontrol", "show", "config"])

    async def show_partitions(self) -> str:
        """``scontrol show partition --oneliner`` (see ``cluster_parsers.parse_partition_billing``)."""
        return await self.run(["scontrol", "show", "partition", "--oneliner"])

    async def srun_task(self, command: Sequence[str], *, job_name: str, time_minutes: int) -> str:
        """``srun --ntasks=1 --time=MINUTES --job-name=NAME COMMAND...`` as the hub's own account:
        one task on a compute node, its stdout (a failure raises with its stderr)."""
        if isinstance(command, str) or not command or not all(isinstance(word, str) for word in command):
            raise ValueError("command must be a non-empty sequence of arguments")
        if not JOB_NAME_PATTERN.fullmatch(job_name):
            raise ValueError(f"job name must be non-empty without commas or spaces: {job_name!r}")
        if isinstance(time_minutes, bool) or not isinstance(time_minutes, int) or not 1 <= time_minutes <= 60:
            raise ValueError(f"a task's time limit is 1 to 60 minutes, got {time_minutes!r}")
        return await self.run(["srun", "--ntasks=1", f"--time={time_minutes}", f"--job-name={job_name}", *command])
