"""Render the sbatch script that starts one notebook server (pure; no subprocess).

Quoting rules, and why there are two:

* **Shell lines** (the command the job runs) follow the house rule: every value
  is passed through :func:`shlex.quote`.
* **``#SBATCH`` lines** are not read by a shell: ``sbatch`` parses them itself
  and does not undo shell quoting the way bash would, so quoting a value there
  would change it rather than protect it. Instead every directive value is
  *validated* against a strict character set (:data:`SBATCH_VALUE_PATTERN`:
  letters, digits and ``. _ : / = , @ % + -``) and :class:`ScriptError` is raised
  for anything else: whitespace, newlines, ``#``, quotes, backslashes, ``$``,
  backticks. ``=``, ``,`` and ``:`` are needed for the job comment
  (``hpchub:user=bob,server=``) and ``%`` for ``%j`` in output paths.

The values are checked here even though :mod:`spawners.slurm.options` already
checked the user's options: a :class:`JobRequest` built some other way must not
be able to inject a directive (defence in depth).

Prologue lines come from the site's admin configuration, are trusted, and are
rendered as given.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from decimal import Decimal

from spawners.slurm.types import JOB_TAG_PREFIX, JobRequest

SBATCH_VALUE_PATTERN = re.compile(r"[A-Za-z0-9._:/=,@%+-]+")
SBATCH_VALUE_RULE = "letters, digits and . _ : / = , @ % + - only (no spaces, quotes, #, $, backslash or backtick)"
# An extra admin-supplied directive: "--name" or "--name=value".
EXTRA_SBATCH_PATTERN = re.compile(r"--[a-z][a-z0-9-]*(?:=[A-Za-z0-9._:/=,@%+-]+)?")
EXPORT_VAR_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]*")
# Parts of the job comment: no "," or "=" so the comment can be parsed back.
COMMENT_USER_PATTERN = re.compile(r"[A-Za-z0-9._@+-]+")
COMMENT_SERVER_PATTERN = re.compile(r"[A-Za-z0-9._@+-]*")
COMMENT_PREFIX = JOB_TAG_PREFIX
_COMMENT_PATTERN = re.compile(r"hpchub:user=([A-Za-z0-9._@+-]+),server=([A-Za-z0-9._@+-]*)")


class ScriptError(ValueError):
    """A value cannot be placed safely into the batch script."""


def _directive_value(option: str, value: object) -> str:
    """``value`` checked for an ``#SBATCH --option=value`` line."""
    if not isinstance(value, str) or not SBATCH_VALUE_PATTERN.fullmatch(value):
        raise ScriptError(f"#SBATCH --{option}: value must use {SBATCH_VALUE_RULE}; got {value!r}")
    return value


def _time_limit_minutes(request: JobRequest) -> int:
    hours = request.hours
    if not isinstance(hours, Decimal) or not hours.is_finite() or hours <= 0:
        raise ScriptError(f"#SBATCH --time: hours must be a positive Decimal; got {hours!r}")
    minutes = hours * 60
    if minutes != minutes.to_integral_value():
        raise ScriptError(f"#SBATCH --time: hours must be whole minutes; got {hours!r}")
    return int(minutes)


def _gres(request: JobRequest) -> str | None:
    """``gpu:TYPE:N``, or ``None`` for a job without GPUs."""
    gpus = request.gpus
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise ScriptError(f"#SBATCH --gres: gpus must be a whole number >= 0; got {gpus!r}")
    if gpus == 0:
        return None
    if request.gpu_type is None:
        raise ScriptError(f"#SBATCH --gres: {gpus} GPUs requested without a GPU type")
    gpu_type = _directive_value("gres", request.gpu_type)
    if ":" in gpu_type or "," in gpu_type:
        raise ScriptError(f"#SBATCH --gres: GPU type must not contain ':' or ','; got {gpu_type!r}")
    return f"gpu:{gpu_type}:{gpus}"


def _export_list(export_vars: Sequence[str]) -> str:
    """Sorted, de-duplicated ``VAR1,VAR2``; ``NONE`` when empty (never the hub's whole environment)."""
    names = sorted(set(export_vars))
    for name in names:
        if not isinstance(name, str) or not EXPORT_VAR_PATTERN.fullmatch(name):
            raise ScriptError(f"#SBATCH --export: variable names must match ^[A-Z_][A-Z0-9_]*$; got {name!r}")
    return ",".join(names) if names else "NONE"


def render_batch_script(
    request: JobRequest,
    *,
    job_name: str,
    comment: str,
    output_path: str,
    workdir: str,
    export_vars: Sequence[str],
    command: Sequence[str],
    prologue: Sequence[str] = (),
    extra_sbatch: Sequence[str] = (),
) -> str:
    """The sbatch script for ``request``, ending in ``exec`` of ``command``.

    ``export_vars`` names the environment variables passed from the submitting
    process (``--export``; empty means ``NONE``). ``prologue`` lines (trusted
    admin shell) run before the command; ``extra_sbatch`` adds admin directives
    such as ``--mem-per-gpu=16G``. Raises :class:`ScriptError` if any directive
    value falls outside :data:`SBATCH_VALUE_PATTERN` or ``command`` is empty.
    """
    if isinstance(command, str) or not command:
        raise ScriptError("command: must be a non-empty sequence of arguments")
    directives: list[tuple[str, str]] = [
        ("job-name", _directive_value("job-name", job_name)),
        ("account", _directive_value("account", request.slurm_account)),
        ("partition", _directive_value("partition", request.partition)),
    ]
    if request.reservation is not None:
        directives.append(("reservation", _directive_value("reservation", request.reservation)))
    gres = _gres(request)
    if gres is not None:
        directives.append(("gres", gres))
    directives += [
        ("time", str(_time_limit_minutes(request))),
        ("comment", _directive_value("comment", comment)),
        ("output", _directive_value("output", output_path)),
        ("chdir", _directive_value("chdir", workdir)),
        ("export", _export_list(export_vars)),
    ]

    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH --{option}={value}" for option, value in directives]
    for directive in extra_sbatch:
        if not isinstance(directive, str) or not EXTRA_SBATCH_PATTERN.fullmatch(directive):
            raise ScriptError(
                f"#SBATCH extra directive must look like --name or --name=value with {SBATCH_VALUE_RULE}; "
                f"got {directive!r}"
            )
        lines.append(f"#SBATCH {directive}")
    lines.append("")
    lines.append("set -euo pipefail")
    lines.extend(prologue)
    lines.append("exec " + " ".join(shlex.quote(str(argument)) for argument in command))
    return "\n".join(lines) + "\n"


def job_comment(username: str, server_name: str) -> str:
    """The tag put in a job's comment: ``hpchub:user=bob,server=`` (server may be empty).

    Raises :class:`ScriptError` if either part has characters that would make
    the comment unparseable or unsafe for an ``#SBATCH`` line.
    """
    if not isinstance(username, str) or not COMMENT_USER_PATTERN.fullmatch(username):
        raise ScriptError(f"job comment: user name must use letters, digits and . _ @ + -; got {username!r}")
    if not isinstance(server_name, str) or not COMMENT_SERVER_PATTERN.fullmatch(server_name):
        raise ScriptError(f"job comment: server name must use letters, digits and . _ @ + -; got {server_name!r}")
    return f"{COMMENT_PREFIX}user={username},server={server_name}"


def parse_job_comment(comment: str) -> tuple[str, str] | None:
    """``(username, server_name)`` from a comment made by :func:`job_comment`; else ``None``."""
    match = _COMMENT_PATTERN.fullmatch(comment.strip()) if isinstance(comment, str) else None
    if match is None:
        return None
    return match[1], match[2]
