"""What the REST API reads from requests and writes in responses (pure: no database, no framework).

Every parser raises :class:`~hub.ledger.errors.LedgerInputError`, whose message starts
with the field it names ("cap_gpu_hours: must be >= 0 GPU-h, got -1"); the handlers
answer it with HTTP 400. Numbers go through the ledger's own parsers, so the API accepts
exactly what the ledger and the command line accept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub.api.access import ProjectAccess
from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError
from hub.ledger.types import ChargeRecord, Role, check_enum, check_gpu_type, check_text
from hub.numbers import NumberError, parse_whole
from spawners.slurm.options import ALLOWED_KEYS

# The same columns, in the same order, as `hpchub charges NAME --csv`.
CSV_COLUMNS = (
    "cluster", "job_id", "user", "project", "gpu_type", "gpus", "start", "end",
    "elapsed_seconds", "gpu_hours", "source", "kind",
)  # fmt: skip
SPAWN_OPTION_KEYS = ALLOWED_KEYS  # the spawn options, as the spawner defines them
MEMBER_KEYS = ("role", "cap_gpu_hours", "reason")
CAP_KEYS = ("cap_gpu_hours", "reason")
API_CAP_REASON = "set through the API"


# --- responses -------------------------------------------------------------------------------------


def caller_role(usage: Mapping[str, Any], caller: str | None) -> Role | None:
    """The caller's active role in a project, from its ``usage`` (None: not a member)."""
    if caller is None:
        return None
    for member in usage["members"]:
        if member["user"] == caller:
            return Role(member["role"])
    return None


def visible_usage(usage: Mapping[str, Any], caller: str | None, access: ProjectAccess) -> dict:
    """A project's ``usage --json`` figures as this caller may see them: the project's totals,
    and every member row or only the caller's own."""
    members = [dict(m) for m in usage["members"] if access.read_all_members or m["user"] == caller]
    return {**usage, "members": members}


def member_row(usage: Mapping[str, Any], user: str) -> dict | None:
    for member in usage["members"]:
        if member["user"] == user:
            return dict(member)
    return None


def visible_charges(charges: Iterable[ChargeRecord], caller: str | None, access: ProjectAccess) -> list[ChargeRecord]:
    """Every charge of the project, or only the caller's own."""
    return [charge for charge in charges if access.read_all_members or charge.user == caller]


def _when(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def charge_json(charge: ChargeRecord) -> dict:
    """One job's effective charge; the CSV's columns, with JSON types."""
    return {
        "cluster": charge.cluster,
        "job_id": charge.job_id,
        "user": charge.user,
        "project": charge.project,
        "gpu_type": charge.gpu_type,
        "gpus": charge.gpus,
        "start": _when(charge.start),
        "end": _when(charge.end),
        "elapsed_seconds": charge.elapsed_seconds,
        "gpu_hours": arith.gpu_hours_json(charge.weighted_mgs),
        "source": charge.source.value,
        "kind": charge.kind.value,
    }


def charges_json(project: str, charges: Sequence[ChargeRecord]) -> dict:
    return {
        "project": project,
        "total_gpu_hours": arith.gpu_hours_json(sum(charge.weighted_mgs for charge in charges)),
        "charges": [charge_json(charge) for charge in charges],
    }


def charges_csv(charges: Iterable[ChargeRecord]) -> str:
    """The CSV `hpchub charges NAME --csv` prints (header line, 4-decimal GPU-hours)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for charge in charges:
        writer.writerow((
            charge.cluster, charge.job_id, charge.user, charge.project, charge.gpu_type, str(charge.gpus),
            _when(charge.start) or "", _when(charge.end) or "", str(charge.elapsed_seconds),
            str(arith.round_gpu_hours(charge.weighted_mgs)), charge.source.value, charge.kind.value,
        ))  # fmt: skip
    return out.getvalue()


# --- requests --------------------------------------------------------------------------------------


def json_object(body: object, allowed: Sequence[str], example: str = "") -> Mapping[str, Any]:
    """A request body that is a JSON object with only ``allowed`` keys (400 naming the key)."""
    if body is None:
        raise LedgerInputError("body", "a JSON object is required" + (f", e.g. {example}" if example else ""))
    if not isinstance(body, Mapping):
        raise LedgerInputError("body", f"must be a JSON object, got {type(body).__name__}")
    for key in body:
        if key not in allowed:
            raise LedgerInputError(str(key)[:64], f"unknown field; allowed: {', '.join(allowed)}")
    return body


def _reason(body: Mapping[str, Any], *, required: bool) -> str | None:
    if "reason" not in body or body["reason"] is None:
        if required:
            raise LedgerInputError("reason", "required: why the cap changes")
        return None
    return check_text(body["reason"], "reason")


def _cap(value: object) -> tuple[object, int | None]:
    """(the value to hand to the ledger, its mgs); null means no cap."""
    if value is None:
        return None, None
    return value, arith.gpu_hours_to_mgs(value, "cap_gpu_hours")


@dataclass(frozen=True)
class MemberChange:
    """``PUT .../members/{user}``: the role, and the cap if the body names one."""

    role: Role
    cap_given: bool
    cap: object  # as sent (the ledger parses it again), None: no cap
    cap_mgs: int | None
    reason: str | None


def parse_member_body(body: object) -> MemberChange:
    body = json_object(body, MEMBER_KEYS)
    if "role" not in body:
        raise LedgerInputError("role", f"required: one of {'|'.join(role.value for role in Role)}")
    role = check_enum(Role, body["role"], "role")
    cap_given = "cap_gpu_hours" in body
    cap, cap_mgs = _cap(body.get("cap_gpu_hours"))
    return MemberChange(role, cap_given, cap, cap_mgs, _reason(body, required=False))


@dataclass(frozen=True)
class CapChange:
    """``POST .../members/{user}/cap``."""

    cap: object  # as sent, None: no cap
    cap_mgs: int | None
    reason: str


def parse_cap_body(body: object) -> CapChange:
    body = json_object(body, CAP_KEYS)
    if "cap_gpu_hours" not in body:
        raise LedgerInputError("cap_gpu_hours", "required: GPU-hours >= 0, or null for no cap")
    cap, cap_mgs = _cap(body["cap_gpu_hours"])
    reason = _reason(body, required=True)
    assert reason is not None
    return CapChange(cap, cap_mgs, reason)


def preview_options(body: object) -> dict:
    """The spawn options of a preview: a bare object, or ``{"user_options": {...}}`` as
    the spawn request sends them. Keys are checked by the spawn's own validation."""
    if isinstance(body, Mapping) and set(body) == {"user_options"}:
        body = body["user_options"]
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise LedgerInputError("body", f"must be a JSON object of spawn options, got {type(body).__name__}")
    return dict(body)


def basic_spawn_request(
    options: Mapping[str, Any],
    *,
    projects: Sequence[str],
    gpu_types: Sequence[str],
    default_hours: Decimal = Decimal(1),
    default_gpus: int = 1,
) -> dict:
    """The preview's check when the hub's spawner cannot describe the cluster: the keys,
    the project (one of the caller's), the GPU type (one the ledger prices), the GPUs
    and the hours (the ledger's parsers). Partition and environment are passed through
    as given. With the portal's Slurm spawner the spawn's own validation runs instead."""
    for key in options:
        if key not in SPAWN_OPTION_KEYS:
            raise LedgerInputError(str(key)[:64], f"unknown option; allowed: {', '.join(SPAWN_OPTION_KEYS)}")
    present = {key: value for key, value in options.items() if value is not None and value != ""}
    project = present.get("project")
    if project is None:
        if len(projects) != 1:
            raise LedgerInputError("project", f"required; choose one of {', '.join(projects) or '(none)'}")
        project = projects[0]
    if project not in projects:
        raise LedgerInputError("project", f"{project!r} is not one of your projects ({', '.join(projects) or 'none'})")
    gpus = present.get("gpus", default_gpus)
    if isinstance(gpus, str):
        try:
            gpus = parse_whole(gpus, "gpus", low=0, high=arith.MAX_GPUS)
        except NumberError as exc:
            raise LedgerInputError("gpus", exc.rule) from None
    gpus = arith.check_gpus(gpus)
    gpu_type = present.get("gpu_type")
    if gpus and gpu_type is None:
        if len(gpu_types) != 1:
            raise LedgerInputError("gpu_type", f"required; choose one of {', '.join(gpu_types)}")
        gpu_type = gpu_types[0]
    if gpu_type is not None:
        check_gpu_type(gpu_type)
        if gpu_type not in gpu_types:
            raise LedgerInputError("gpu_type", f"{gpu_type!r} is not priced here; choose one of {', '.join(gpu_types)}")
    hours = present.get("hours", default_hours)
    seconds = arith.hours_to_seconds(hours)
    for key in ("partition", "environment"):
        if key in present and not isinstance(present[key], str):
            raise LedgerInputError(key, f"must be a string, got {type(present[key]).__name__}")
    return {
        "project": project,
        "partition": present.get("partition"),
        "gpu_type": gpu_type if gpus else None,
        "gpus": gpus,
        "hours": float(Decimal(seconds) / arith.SECONDS_PER_HOUR),
        "environment": present.get("environment"),
    }


# --- lab hours ------------------------------------------------------------------------------------------

LAB_HOURS_KEYS = ("on", "minutes")
LAB_HOURS_EXAMPLE = '{"on": true, "minutes": 60} or {"on": false}'


@dataclass(frozen=True)
class LabHoursChange:
    on: bool
    minutes: int | None  # with on only


def parse_lab_hours_body(body: object, max_minutes: int) -> LabHoursChange:
    """``{"on": true, "minutes": N}`` (whole minutes, 1 to ``max_minutes``) or ``{"on": false}``."""
    body = json_object(body, LAB_HOURS_KEYS, LAB_HOURS_EXAMPLE)
    if "on" not in body:
        raise LedgerInputError("on", f"required: true or false, e.g. {LAB_HOURS_EXAMPLE}")
    on = body["on"]
    if not isinstance(on, bool):
        raise LedgerInputError("on", f"must be true or false, got {str(on)[:40]!r}")
    minutes = body.get("minutes")
    if not on:
        if minutes is not None:
            raise LedgerInputError("minutes", 'only with "on": true')
        return LabHoursChange(False, None)
    if minutes is None:
        raise LedgerInputError("minutes", f'required with "on": true: whole minutes from 1 to {max_minutes}')
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise LedgerInputError("minutes", f"must be whole minutes from 1 to {max_minutes}, got {str(minutes)[:40]!r}")
    if not 1 <= minutes <= max_minutes:
        raise LedgerInputError("minutes", f"must be from 1 to {max_minutes} minutes, got {minutes}")
    return LabHoursChange(True, minutes)
