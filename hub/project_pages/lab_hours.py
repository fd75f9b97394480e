"""A course's lab hours from the hub: its settings (``c.HPCHubCourses``), the hub's Slurm client,
and the reservation's state for the course page and the lab-hours endpoint.

The hub reads and switches the course's Slurm reservation with the hub's cluster
(``c.SlurmCluster``, see :mod:`spawners.slurm.cluster`), so the page, the endpoint and the
spawner see the same cluster; a read is shared with the
spawner for ``spawners.slurm.reservations.CACHE_SECONDS`` (10 s) and dropped when the hub
switches the reservation. Creating and deleting a reservation needs a Slurm operator (the
demo's hub runs as root).
"""

from __future__ import annotations

import logging
from datetime import datetime

from traitlets import Integer, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from spawners.slurm.client import SlurmClient, SlurmCommandError
from spawners.slurm.cluster import SlurmCluster
from spawners.slurm.reservations import MAX_RESERVATION_MINUTES, NODE_NAME_PATTERN, cached_reservation

from .course_tables import LabHours, lab_hours

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


def hub_slurm_client(config) -> SlurmClient:
    """The Slurm client of the hub's cluster (``c.SlurmCluster``) from the hub's configuration."""
    return SlurmCluster.from_config(config).client(log=log)


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
