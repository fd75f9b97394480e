"""Lab-hours reservations (pure parts): scontrol's listing read, every argument validated."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from spawners.slurm.reservations import (
    create_reservation,
    parse_reservations,
    validate_reservation_name,
)

pytestmark = pytest.mark.unit

LISTING = (
    "ReservationName=cs101-lab StartTime=2026-11-29T05:06:02 EndTime=2026-11-29T06:06:02 Duration=01:00:00 "
    "Nodes=gpu03 NodeCnt=1 CoreCnt=16 Features=(null) PartitionName=(null) Flags=IGNORE_JOBS,SPEC_NODES "
    "TRES=cpu=16 Users=(null) Groups=(null) Accounts=cs101 Licenses=(null) State=ACTIVE BurstBuffer=(null) "
    "Watts=n/a MaxStartDelay=(null)\n"
)


def test_the_listing_is_read_by_name_in_local_time() -> None:
    (found,) = parse_reservations(LISTING).values()
    assert (found.name, found.nodes, found.accounts, found.state) == ("cs101-lab", "gpu03", "cs101", "ACTIVE")
    start = datetime(2026, 11, 29, 5, 6, 2).astimezone()
    assert found.start == start and found.end == start + timedelta(hours=1)
    assert found.active_at(start) and not found.active_at(start + timedelta(hours=1))  # Slurm still says ACTIVE
    assert parse_reservations("No reservations in the system\n") == {}


def test_a_listing_without_times_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="no EndTime"):
        parse_reservations("ReservationName=x StartTime=2026-11-29T05:06:02 State=ACTIVE\n")


@pytest.mark.parametrize("name", ["cs101-lab", "Lab_1.a"])
def test_good_names(name: str) -> None:
    assert validate_reservation_name(name) == name


@pytest.mark.parametrize("name", ["", "-lab", "lab hour", "lab;reboot", "a" * 65, None])
def test_bad_names(name) -> None:
    with pytest.raises(ValueError):
        validate_reservation_name(name)


class _NeverRun:
    async def run(self, argv):  # pragma: no cover - reaching it is the failure
        raise AssertionError(f"ran {argv}")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"minutes": 0, "nodes": ["gpu03"], "accounts": ["cs101"]}, "minutes", id="minutes"),
        pytest.param({"minutes": 60, "nodes": "gpu03", "accounts": ["cs101"]}, "nodes", id="nodes-string"),
        pytest.param({"minutes": 60, "nodes": ["gpu03,gpu01"], "accounts": ["cs101"]}, "nodes", id="nodes-comma"),
        pytest.param({"minutes": 60, "nodes": ["gpu03"], "accounts": ["cs101 x"]}, "account", id="account"),
    ],
)
async def test_nothing_runs_with_a_bad_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await create_reservation(_NeverRun(), "cs101-lab", **kwargs)
