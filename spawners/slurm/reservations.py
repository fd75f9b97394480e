"""Slurm reservations for a course's lab hours: read, create, end (argv only, validated).

Creating and deleting a reservation needs a Slurm operator or administrator (the hub's
service account is an operator, see docs/real-cluster.md); reading one needs nothing.
Slurm prints reservation times in the controller's local time without a zone: they are
read as this host's local time (the hub runs beside the controller's clock).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from spawners.slurm.client import SlurmClient, SlurmCommandError, validate_account_name

RESERVATION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NODE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_RESERVATION_MINUTES = 7 * 24 * 60
CACHE_SECONDS = 10.0  # how long a read of a reservation is reused (the spawner, the course page)
# (SLURM_CONF, name) -> (expiry on time.monotonic(), the reservation or None): one per hub process
_CACHE: dict[tuple[str | None, str], tuple[float, "Reservation | None"]] = {}


@dataclass(frozen=True)
class Reservation:
    name: str
    start: datetime  # aware
    end: datetime  # aware
    nodes: str
    accounts: str
    state: str  # Slurm's: ACTIVE or INACTIVE
    users: str = ""  # Slurm's Users= ("(null)": none), e.g. for a reservation someone else made

    def active_at(self, now: datetime) -> bool:
        """Slurm keeps State=ACTIVE for a moment after the end: the times decide."""
        return self.state == "ACTIVE" and self.start <= now < self.end


def validate_reservation_name(name: str) -> str:
    if not isinstance(name, str) or not RESERVATION_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"not a valid Slurm reservation name: {name!r}")
    return name


def _local_time(raw: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(raw).astimezone()
    except ValueError:
        raise ValueError(f"scontrol show reservation: {field}={raw!r} is not a time") from None


def parse_reservations(text: str) -> dict[str, Reservation]:
    """``scontrol show reservation --oneliner`` (every reservation, one per line) -> by name."""
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("No reservations"):
            continue
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        for key in ("ReservationName", "StartTime", "EndTime", "State"):
            if key not in fields:
                raise ValueError(f"scontrol show reservation: no {key} in {line[:200]!r}")
        found[fields["ReservationName"]] = Reservation(
            name=fields["ReservationName"], start=_local_time(fields["StartTime"], "StartTime"),
            end=_local_time(fields["EndTime"], "EndTime"), nodes=fields.get("Nodes", ""),
            accounts=fields.get("Accounts", ""), state=fields["State"], users=fields.get("Users", ""),
        )  # fmt: skip
    return found


async def show_reservation(client: SlurmClient, name: str) -> Reservation | None:
    """The reservation called ``name`` (None: there is none). All are listed: for one that
    does not exist ``scontrol show reservation NAME`` exits 1, like a real failure."""
    validate_reservation_name(name)
    return parse_reservations(await client.run(["scontrol", "show", "reservation", "--oneliner"])).get(name)


async def cached_reservation(client: SlurmClient, name: str, ttl: float = CACHE_SECONDS) -> Reservation | None:
    """``show_reservation``, reused for ``ttl`` seconds (per Slurm configuration and name): the
    spawner reads it at every student's spawn and the course page at every refresh."""
    key = (client.slurm_conf, validate_reservation_name(name))
    entry = _CACHE.get(key)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    found = await show_reservation(client, name)
    _CACHE[key] = (time.monotonic() + ttl, found)
    return found


def forget_reservation(client: SlurmClient, name: str) -> None:
    """Drop the cached read (after the hub created or deleted the reservation)."""
    _CACHE.pop((client.slurm_conf, name), None)


async def create_reservation(
    client: SlurmClient, name: str, *, minutes: int, nodes: Sequence[str], accounts: Sequence[str]
) -> None:
    """A reservation from now for ``minutes`` on ``nodes`` for ``accounts`` (running jobs are
    left alone: ``Flags=IGNORE_JOBS``; new jobs of those accounts may use the nodes)."""
    validate_reservation_name(name)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_RESERVATION_MINUTES:
        raise ValueError(f"minutes must be whole minutes from 1 to {MAX_RESERVATION_MINUTES}, got {minutes!r}")
    if isinstance(nodes, str) or not nodes or not all(NODE_NAME_PATTERN.fullmatch(node) for node in nodes):
        raise ValueError(f"nodes must be a list of node names, got {nodes!r}")
    if isinstance(accounts, str) or not accounts:
        raise ValueError(f"accounts must be a list of account names, got {accounts!r}")
    account_list = ",".join(validate_account_name(account) for account in accounts)
    await client.run([
        "scontrol", "create", "reservation", f"ReservationName={name}", "StartTime=now", f"Duration={minutes}",
        f"Accounts={account_list}", f"Nodes={','.join(nodes)}", "Flags=IGNORE_JOBS",
    ])  # fmt: skip


async def delete_reservation(client: SlurmClient, name: str) -> bool:
    """End the reservation; False if there was none."""
    validate_reservation_name(name)
    try:
        await client.run(["scontrol", "delete", f"ReservationName={name}"])
    except SlurmCommandError as exc:
        if "requested reservation is invalid" in (exc.stderr or "").lower():  # none by that name
            return False
        raise
    return True
