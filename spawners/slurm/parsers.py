"""Pure parsers for the text that Slurm's query commands print.

Each ``*_FORMAT`` / ``*_FIELDS`` constant here is exactly what
:class:`spawners.slurm.client.SlurmClient` asks the command for, so the client
and its parser cannot drift apart.

The parsers are strict about shape: a line with the wrong number of fields
raises ``ValueError`` (the watcher then counts the query as *failed*, so the
jobs become UNKNOWN, never GONE). Lines for job ids the portal never creates
(array tasks ``123_4``, het-job parts ``123+0``) are skipped.

What the cluster is made of (partitions, nodes, GRES, slurmctld's configuration) is read
by :mod:`spawners.slurm.cluster_parsers`.

Pure module: no subprocess, no JupyterHub import.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone, tzinfo

from spawners.slurm.types import (
    AccountingRecord,
    ActiveJob,
    AssociationUsage,
    JobState,
    JobStatus,
    SlurmAssociation,
    job_state_from_slurm,
)

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
# sacct --format for the ledger's reconciler: every job of the project accounts, all users
ACCOUNTING_SACCT_FIELDS: tuple[str, ...] = (
    "JobID",
    "User",
    "Account",
    "State",
    "ElapsedRaw",
    "AllocTRES",
    "Start",
    "End",
    "Cluster",
    "TimelimitRaw",
)
ACCOUNTING_SACCT_FORMAT = ",".join(ACCOUNTING_SACCT_FIELDS)
# sacct --state: the end states of a job that may have run, and RUNNING (sacct's short codes)
ACCOUNTING_SACCT_STATES: tuple[str, ...] = ("CD", "CA", "F", "TO", "NF", "PR", "OOM", "DL", "BF", "R")
# squeue --account --format, run with TZ=UTC: job id | account | user | state | submit time | comment
# (the comment last: it may hold "|")
SQUEUE_ACTIVE_FORMAT = "%i|%a|%u|%T|%V|%k"
# sacctmgr show associations format= of the accounts one user or account has associations with
USER_ACCOUNTS_FORMAT = "Account"
# sacctmgr show associations format= (with --parsable2)
SACCTMGR_ASSOCIATION_FORMAT = "Cluster,Account,User,Partition,MaxSubmitJobs"

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


def _squeue_utc_time(text: str, line_number: int) -> datetime | None:
    value = text.strip()
    if not value or value.upper() in ("N/A", "UNKNOWN", "NONE"):
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"squeue line {line_number}: submit time is not a time: {value!r}") from None


def parse_active_jobs(text: str) -> list[ActiveJob]:
    """Read ``squeue --noheader --account=... --format=`` :data:`SQUEUE_ACTIVE_FORMAT` (TZ=UTC).

    Strict: a line without the six fields, an empty account or user, or a bad submit time
    raises ValueError (a garbled answer is never read as "no jobs"). The comment is the last
    field and keeps any "|" it holds.
    """
    jobs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|", 5)
        if len(fields) != 6 or not fields[1].strip() or not fields[2].strip():
            raise ValueError(f"squeue line {number}: expected job|account|user|state|submit|comment: {line[:200]!r}")
        job_id, account, user, state, submitted, comment = fields
        jobs.append(ActiveJob(job_id.strip(), account.strip(), user.strip(), state.strip().upper(),
                              _squeue_utc_time(submitted, number), comment.strip()))  # fmt: skip
    return jobs


# --- accounting (the ledger's reconciler) ---------------------------------------------------------

# sacct -X job ids that are allocations: plain, an array task (123_4), a het-job component (123+1).
# A pending array's "123_[5-9]" is not an allocation.
ACCOUNTING_JOB_ID_PATTERN = re.compile(r"[0-9]{1,20}(?:_[0-9]{1,10}|\+[0-9]{1,5})?")
_TRES_GPU_TYPED = "gres/gpu:"
_TRES_GPU = "gres/gpu"
_ASSOC_TRES_ITEM = re.compile(r"(?P<name>[^=,]+)=(?P<limit>N|[0-9]+)\((?P<usage>[0-9]+)\)")


def parse_alloc_tres(text: str) -> tuple[dict[str, int], int]:
    """``billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16000M,node=1`` -> ({"h200": 1}, 1).

    The first item maps each GPU type (``gres/gpu:TYPE=N``) to its count; the second is the
    untyped ``gres/gpu=N`` (every GPU of the job, typed or not; 0 if absent). Other TRES
    are ignored. A malformed GPU item raises ValueError.
    """
    typed: dict[str, int] = {}
    untyped = 0
    for item in text.strip().split(","):
        if not item.startswith(_TRES_GPU):
            continue
        name, equals, count = item.partition("=")
        if not equals or not count.isdigit():
            raise ValueError(f"AllocTRES: not a GPU count: {item!r}")
        if name == _TRES_GPU:
            untyped = int(count)
        elif name.startswith(_TRES_GPU_TYPED) and name[len(_TRES_GPU_TYPED) :]:
            gpu_type = name[len(_TRES_GPU_TYPED) :]
            typed[gpu_type] = typed.get(gpu_type, 0) + int(count)
        else:
            raise ValueError(f"AllocTRES: not a GPU item: {item!r}")
    return typed, untyped


def _sacct_time(raw: str, tz: tzinfo, field: str, line_number: int) -> datetime | None:
    value = _value(raw)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=tz)
    except ValueError:
        raise ValueError(f"sacct line {line_number}: {field} is not a time: {raw!r}") from None


def parse_accounting(text: str, tz: tzinfo = timezone.utc) -> list[AccountingRecord]:
    """Read ``sacct --noheader --parsable2 -X --format=`` :data:`ACCOUNTING_SACCT_FORMAT` output.

    Times are read in ``tz``: the client runs this sacct with ``TZ=UTC``. Strict: a line
    with the wrong number of fields, a non-numeric ElapsedRaw or a bad time raises
    ValueError, so a garbled answer is never read as "no jobs". Job ids that are not
    allocations (a pending array's ``123_[5-9]``) are skipped.
    """
    records: list[AccountingRecord] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = dict(zip(ACCOUNTING_SACCT_FIELDS, _split(line, len(ACCOUNTING_SACCT_FIELDS), "sacct", line_number)))
        job_id = row["JobID"].strip()
        if not ACCOUNTING_JOB_ID_PATTERN.fullmatch(job_id):
            continue
        elapsed = row["ElapsedRaw"].strip()
        if not elapsed.isdigit():
            raise ValueError(f"sacct line {line_number}: ElapsedRaw is not whole seconds: {elapsed!r}")
        limit = row["TimelimitRaw"].strip()
        try:
            typed, untyped = parse_alloc_tres(row["AllocTRES"])
        except ValueError as exc:
            raise ValueError(f"sacct line {line_number}: {exc}") from None
        state = row["State"].strip()
        records.append(AccountingRecord(
            job_id=job_id,
            user=row["User"].strip(),
            account=row["Account"].strip(),
            state=job_state_from_slurm(state) if state else JobState.UNKNOWN,
            slurm_state=_slurm_word(state),
            elapsed_seconds=int(elapsed),
            gpu_type_counts=typed,
            untyped_gpus=untyped,
            start=_sacct_time(row["Start"], tz, "Start", line_number),
            end=_sacct_time(row["End"], tz, "End", line_number),
            cluster=row["Cluster"].strip(),
            time_limit_minutes=int(limit) if limit.isdigit() else None,  # UNLIMITED, Partition_Limit
        ))  # fmt: skip
    return records


def _header_fields(line: str) -> dict[str, str]:
    """``ClusterName=hpchub Account=cs101 UserName= Partition= ...`` -> a dict."""
    fields = {}
    for word in line.split():
        key, _, value = word.partition("=")
        fields[key] = value
    return fields


def _billing_item(line: str, key: str, where: str) -> tuple[int | None, int]:
    """``GrpTRESMins=cpu=N(0),...,billing=12000(56),...`` -> (12000, 56); ``N`` -> None."""
    for item in line[len(key) + 1 :].split(","):
        if item.startswith("billing="):
            match = _ASSOC_TRES_ITEM.fullmatch(item)
            if match is None:
                raise ValueError(f"assoc_mgr {where}: {key} has an unreadable billing item {item!r}")
            limit = match.group("limit")
            return (None if limit == "N" else int(limit)), int(match.group("usage"))
    raise ValueError(f"assoc_mgr {where}: {key} has no billing item")


def parse_assoc_mgr(text: str) -> list[AssociationUsage]:
    """Read ``scontrol show assoc_mgr accounts=... flags=assoc`` output.

    Every association record starts with a ``ClusterName=... Account=... UserName=...
    Partition=...`` line; its ``GrpTRESMins`` and ``GrpTRESRunMins`` lines give the billing
    figures. ``UserName=alice(1001)`` is read as ``alice``; an empty UserName is the
    account's own association. "No associations currently cached" is an empty list. A
    record without both billing figures raises ValueError.
    """
    usages: list[AssociationUsage] = []
    header: dict[str, str] | None = None
    figures: dict[str, tuple[int | None, int]] = {}

    def finish() -> None:
        if header is None:
            return
        where = f"record {header.get('Account', '?')}/{header.get('UserName', '')}"
        for key in ("GrpTRESMins", "GrpTRESRunMins"):
            if key not in figures:
                raise ValueError(f"assoc_mgr {where}: no {key} line")
        user = re.sub(r"\([0-9]+\)$", "", header.get("UserName", ""))
        usages.append(AssociationUsage(
            cluster=header.get("ClusterName", ""),
            account=header.get("Account", ""),
            user=user or None,
            partition=header.get("Partition") or None,
            billing_limit_minutes=figures["GrpTRESMins"][0],
            billing_used_minutes=figures["GrpTRESMins"][1],
            billing_running_minutes=figures["GrpTRESRunMins"][1],
        ))  # fmt: skip

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("ClusterName="):
            finish()
            header, figures = _header_fields(stripped), {}
            if not header.get("Account"):
                raise ValueError(f"assoc_mgr: a record without an account: {stripped!r}")
        elif header is not None:
            where = f"record {header['Account']}/{header.get('UserName', '')}"
            for key in ("GrpTRESMins", "GrpTRESRunMins"):
                if stripped.startswith(f"{key}="):
                    figures[key] = _billing_item(stripped, key, where)
    finish()
    return usages


# --- associations (sacctmgr) ----------------------------------------------------------------------


def parse_associations(text: str) -> list[SlurmAssociation]:
    """``sacctmgr --noheader --parsable2 show associations format=`` :data:`SACCTMGR_ASSOCIATION_FORMAT`;
    ValueError for a line that is not five fields."""
    associations = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 5:
            raise ValueError(f"sacctmgr line {number}: {len(fields)} fields, expected 5: {line[:200]!r}")
        cluster, account, user, partition, max_submit = (value.strip() for value in fields)
        if not cluster or not account:
            raise ValueError(f"sacctmgr line {number}: no cluster or account: {line[:200]!r}")
        if max_submit and not max_submit.isdigit():
            raise ValueError(f"sacctmgr line {number}: MaxSubmitJobs {max_submit!r}")
        associations.append(SlurmAssociation(
            cluster, account, user or None, partition or None, int(max_submit) if max_submit else None,
        ))  # fmt: skip
    return associations


def parse_user_accounts(text: str) -> list[str]:
    """Accounts from ``sacctmgr --noheader --parsable2 show associations user=NAME format=``
    :data:`USER_ACCOUNTS_FORMAT`.

    One account per line; blanks skipped, duplicates (one per partition or
    cluster association) dropped, first-seen order kept.
    """
    accounts: list[str] = []
    for line in text.splitlines():
        account = line.split("|", 1)[0].strip()
        if account and account not in accounts:
            accounts.append(account)
    return accounts
