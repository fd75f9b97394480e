"""Pure parsers for the text that Slurm's query commands print.

Each ``*_FORMAT`` / ``*_FIELDS`` constant here is exactly what
:class:`spawners.slurm.client.SlurmClient` asks the command for, so the client
and its parser cannot drift apart.

The parsers are strict about shape: a line with the wrong number of fields
raises ``ValueError`` (the watcher then counts the query as *failed*, so the
jobs become UNKNOWN, never GONE). Lines for job ids the portal never creates
(array tasks ``123_4``, het-job parts ``123+0``) are skipped.

Pure module: no subprocess, no JupyterHub import.
"""

from __future__ import annotations

import re

from spawners.slurm.types import JobState, JobStatus, job_state_from_slurm

# squeue --format: job id | long state | reason | batch host | start | end
SQUEUE_FORMAT = "%i|%T|%r|%B|%S|%e"
# squeue --start --format: job id | expected start | reason
SQUEUE_START_FORMAT = "%i|%S|%r"
# sacct --format (sacct 22.05 has no Reason field)
SACCT_FIELDS: tuple[str, ...] = (
    "JobID",
    "State",
    "ExitCode",
    "Start",
    "End",
    "NodeList",
    "ElapsedRaw",
    "AllocTRES",
    "Account",
    "User",
)
SACCT_FORMAT = ",".join(SACCT_FIELDS)
# sinfo --Node --format: node name | NodeAddr
NODE_ADDRESS_FORMAT = "%N|%o"
# sinfo --format (parsed by spawners.slurm.options.parse_sinfo)
SINFO_FORMAT = "%P|%l|%G|%N"

JOB_ID_PATTERN = re.compile(r"[0-9]+")

# What Slurm prints for "no value" in the fields we read: squeue prints N/A for
# an unknown start/end, n/a or (null) for a pending job's batch host and None for
# "no reason"; sacct prints Unknown/None for times and "None assigned" for nodes.
_EMPTY_MARKERS = frozenset({"", "n/a", "(null)", "none", "unknown", "none assigned"})

_CANCELLED_BY = re.compile(r"CANCELLED by (\d+)", re.IGNORECASE)


def is_job_id(value: str) -> bool:
    """True for a plain Slurm job id (ASCII digits only)."""
    return bool(JOB_ID_PATTERN.fullmatch(value))


def _value(raw: str) -> str:
    """``raw`` stripped, or ``""`` for Slurm's spellings of "nothing"."""
    value = raw.strip()
    return "" if value.lower() in _EMPTY_MARKERS else value


def _split(line: str, expected: int, command: str, line_number: int) -> list[str]:
    fields = line.split("|")
    if len(fields) != expected:
        raise ValueError(
            f"{command} line {line_number}: expected {expected} fields separated by |, got {len(fields)}: {line!r}"
        )
    return fields


def _slurm_word(slurm_state: str) -> str:
    """``CANCELLED by 1000`` -> ``CANCELLED``; ``COMPLETED+`` -> ``COMPLETED``."""
    parts = slurm_state.strip().split(" ", 1)
    return parts[0].rstrip("+").upper() if parts and parts[0] else ""


def parse_squeue(text: str) -> dict[str, JobStatus]:
    """Read ``squeue --noheader --format=`` :data:`SQUEUE_FORMAT` output.

    Returns job id -> :class:`JobStatus`. ``--states=all`` also lists jobs that
    ended recently (still in slurmctld's memory); they map to ``ENDED``.
    """
    statuses: dict[str, JobStatus] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        job_id, state, reason, host, start, end = _split(line, 6, "squeue", line_number)
        job_id = job_id.strip()
        if not is_job_id(job_id):
            continue
        statuses[job_id] = JobStatus(
            job_id=job_id,
            state=job_state_from_slurm(state),
            slurm_state=_slurm_word(state),
            reason=_value(reason),
            node=_value(host),
            start_time=_value(start),
            end_time=_value(end),
        )
    return statuses


def parse_sacct(text: str) -> dict[str, JobStatus]:
    """Read ``sacct --noheader --parsable2 -X --format=`` :data:`SACCT_FORMAT` output.

    Returns job id -> :class:`JobStatus` with ``exit_code`` set. A state such as
    ``CANCELLED by 0`` keeps ``CANCELLED`` as ``slurm_state`` and says who
    cancelled in ``reason`` (``cancelled by uid 0``). If a job id appears twice,
    the last line wins.
    """
    statuses: dict[str, JobStatus] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = dict(zip(SACCT_FIELDS, _split(line, len(SACCT_FIELDS), "sacct", line_number)))
        job_id = row["JobID"].strip()
        if not is_job_id(job_id):
            continue
        state = row["State"].strip()
        cancelled_by = _CANCELLED_BY.fullmatch(state)
        statuses[job_id] = JobStatus(
            job_id=job_id,
            state=job_state_from_slurm(state) if state else JobState.UNKNOWN,
            slurm_state=_slurm_word(state),
            reason=f"cancelled by uid {cancelled_by.group(1)}" if cancelled_by else "",
            node=_value(row["NodeList"]),
            start_time=_value(row["Start"]),
            end_time=_value(row["End"]),
            exit_code=row["ExitCode"].strip(),
        )
    return statuses


def parse_squeue_start(text: str) -> dict[str, tuple[str, str]]:
    """Read ``squeue --start --noheader --format=`` :data:`SQUEUE_START_FORMAT` output.

    Returns job id -> (expected start time or ``""``, reason or ``""``). Only
    pending jobs are listed by ``squeue --start``.
    """
    estimates: dict[str, tuple[str, str]] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        job_id, start, reason = _split(line, 3, "squeue --start", line_number)
        job_id = job_id.strip()
        if is_job_id(job_id):
            estimates[job_id] = (_value(start), _value(reason))
    return estimates


def parse_node_addresses(text: str) -> dict[str, str]:
    """Read ``sinfo --noheader --Node --format=`` :data:`NODE_ADDRESS_FORMAT` output.

    Returns node name -> NodeAddr. ``sinfo --Node`` prints a node once per
    partition; duplicates collapse. A node without an address maps to its name
    (Slurm's own default for NodeAddr).
    """
    addresses: dict[str, str] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        node, address = (field.strip() for field in _split(line, 2, "sinfo", line_number))
        if not node:
            raise ValueError(f"sinfo line {line_number}: empty node name: {line!r}")
        addresses[node] = _value(address) or node
    return addresses
