"""A course's lab hours: their settings (``c.HPCHubCourses``), the reservation's read, and its
state in words and as the lab-hours endpoint's JSON, for the endpoint and the course page alike.

The hub reads and switches the course's Slurm reservation with the hub's cluster
(``c.SlurmCluster``, see :mod:`spawners.slurm.cluster`), so the page, the endpoint and the
spawner see the same cluster; a read is shared with the
spawner for ``spawners.slurm.reservations.CACHE_SECONDS`` (10 s) and dropped when the hub
switches the reservation. Creating and deleting a reservation needs a Slurm operator (the
demo's hub runs as root).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from traitlets import Integer, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from spawners.slurm.client import SlurmClient, SlurmCommandError
from spawners.slurm.reservations import (
    MAX_RESERVATION_MINUTES,
    NODE_NAME_PATTERN,
    cached_reservation,
)

log = logging.getLogger(__name__)


class HPCHubCourses(Configurable):
    """Courses in the hub: the lab hours the course page and API switch on."""

    lab_hours_nodes = List(
        Unicode(),
        default_value=[],
        help="Slurm nodes a course's lab hours reserve when an instructor or admin switches them on from the "
        "course page or POST .../projects/{p}/lab-hours. Default [] (switching on is refused with a message "
        "saying so; reservations made with scontrol still bind students). Example: ['gpu03'].",
    ).tag(config=True)
    lab_hours_max_minutes = Integer(
        240,
        help=f"Longest lab hours (minutes) one switch-on may reserve, 1 to {MAX_RESERVATION_MINUTES}. Default 240. "
        "Example: 180.",
    ).tag(config=True)

    @validate("lab_hours_nodes")
    def _check_nodes(self, proposal):
        nodes = list(proposal["value"])
        for node in nodes:
            if not NODE_NAME_PATTERN.fullmatch(node):
                raise TraitError(f"HPCHubCourses.lab_hours_nodes: {node!r} is not a Slurm node name")
        if len(set(nodes)) != len(nodes):
            raise TraitError("HPCHubCourses.lab_hours_nodes: a node is listed twice")
        return nodes

    @validate("lab_hours_max_minutes")
    def _check_max(self, proposal):
        value = proposal["value"]
        if not 1 <= value <= MAX_RESERVATION_MINUTES:
            raise TraitError(f"HPCHubCourses.lab_hours_max_minutes: 1 to {MAX_RESERVATION_MINUTES}, got {value}")
        return value


async def read_lab_hours(client: SlurmClient, reservation: str | None, now: datetime) -> LabHours:
    """The course's lab hours now (the read is cached ~10 s); a Slurm failure is an "unknown" state."""
    if not reservation:
        return lab_hours(None, None, now)
    try:
        found = await cached_reservation(client, reservation)
    except (SlurmCommandError, ValueError) as exc:
        log.warning("lab hours: cannot read reservation %s: %s", reservation, exc)
        summary = getattr(exc, "summary", None) or str(exc)
        return lab_hours(reservation, None, now, error=summary[:200])
    return lab_hours(reservation, found, now)


class LabState(Enum):
    ON = "on"
    OFF = "off"
    SCHEDULED = "scheduled"  # the reservation exists but is not active now
    UNKNOWN = "unknown"  # Slurm did not answer
    NONE = "none"  # the course has no lab-hours reservation


@dataclass(frozen=True)
class LabHours:
    state: LabState
    text: str
    reservation: str | None = None
    until: datetime | None = None  # while on

    @property
    def until_iso(self) -> str | None:
        return None if self.until is None else self.until.astimezone(timezone.utc).isoformat()


def _clock(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def lab_hours(reservation_name: str | None, found, now: datetime, *, error: str | None = None) -> LabHours:
    """The lab hours in words. ``found``: the reservation as Slurm shows it
    (:class:`spawners.slurm.reservations.Reservation`) or None (there is none); ``error``: why
    it could not be read."""
    if not reservation_name:
        return LabHours(LabState.NONE, "This course has no lab-hours reservation.")
    if error is not None:
        return LabHours(LabState.UNKNOWN, f"Unknown: Slurm did not answer ({error}).", reservation_name)
    if found is None:
        return LabHours(LabState.OFF, f"Off (no reservation {reservation_name}): sessions queue normally.",
                        reservation_name)  # fmt: skip
    if found.active_at(now):
        return LabHours(
            LabState.ON, f"On until {_clock(found.end)}: students' new sessions run in reservation {found.name} "
            f"on {found.nodes or 'its nodes'}.", reservation_name, found.end,
        )  # fmt: skip
    return LabHours(
        LabState.SCHEDULED,
        f"Off now; reservation {found.name} is set from {_clock(found.start)} to {_clock(found.end)}.",
        reservation_name,
    )


def lab_hours_json(lab: LabHours) -> dict:
    """The lab-hours endpoint's answer."""
    return {"state": lab.state.value, "on": lab.state is LabState.ON, "reservation": lab.reservation,
            "until": lab.until_iso, "text": lab.text}  # fmt: skip
