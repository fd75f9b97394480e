"""The burn-down chart's data (pure: no database, no clock, no plotting).

From a project's grants and effective charges, the budget and the GPU-hours remaining as
two step series over the project's period, and today's figures:

- **budget** = the sum of the grants appended so far (a reduced grant lowers it);
- **remaining** = budget - effective charges counted so far (a job's charge counts at its
  end). The last point, at ``now``, is the ledger's own ``remaining`` = grants - used - held,
  so running sessions' cost so far and holds show as the final step down.

A step holds its value from its point until the next one. Many jobs at scale: events at
the same instant are one point, and beyond ``max_points`` the series keeps the last state
of each of ``max_points`` equal slices of the time axis (exact at every slice's end).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from hub.ledger.errors import LedgerInputError
from hub.ledger.types import GrantRecord, ProjectUsage

DEFAULT_MAX_POINTS = 1_000
MIN_SPAN = timedelta(days=1)  # an axis of at least a day (ahead of a new project), so it is not a dot


@dataclass(frozen=True)
class BurnDownPoint:
    at: datetime
    budget_mgs: int
    remaining_mgs: int


@dataclass(frozen=True)
class BurnDown:
    """What the chart draws: the x-axis from ``start`` to ``end``, ``now`` marked, the steps."""

    project: str
    start: datetime
    end: datetime
    now: datetime
    points: tuple[BurnDownPoint, ...]
    budget_mgs: int  # now (the ledger's figures)
    used_mgs: int
    held_mgs: int
    remaining_mgs: int


def _day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def axis_bounds(
    now: datetime,
    first_event: datetime | None,
    period_start: date | None,
    period_end: date | None,
    tz: tzinfo = timezone.utc,
) -> tuple[datetime, datetime]:
    """The x-axis: from the period's first day (or the first event, if earlier or no period)
    to the end of the period's last day (inclusive end date), but always up to ``now``; at
    least ``MIN_SPAN`` long, reaching ahead of ``now`` (a new project's line starts at the left)."""
    starts = [moment for moment in (first_event, now) if moment is not None]
    if period_start is not None:
        starts.append(_day_start(period_start, tz))
    start = min(starts)
    end = now if period_end is None else max(now, _day_start(period_end + timedelta(days=1), tz))
    if end - start < MIN_SPAN:
        end = start + MIN_SPAN
    return start, end


def _coalesce(points: list[BurnDownPoint]) -> list[BurnDownPoint]:
    """One point per instant: the state after every event at that instant."""
    merged: list[BurnDownPoint] = []
    for point in points:
        if merged and merged[-1].at == point.at:
            merged[-1] = point
        else:
            merged.append(point)
    return merged


def _thin(points: list[BurnDownPoint], start: datetime, end: datetime, max_points: int) -> list[BurnDownPoint]:
    """At most about ``max_points``: the last state in each equal slice of [start, end], plus the
    first and last points as they are."""
    if len(points) <= max_points:
        return points
    width = (end - start) / max_points
    kept: dict[int, BurnDownPoint] = {}
    for point in points[1:-1]:
        kept[int((point.at - start) / width)] = point
    return [points[0], *(kept[key] for key in sorted(kept)), points[-1]]


def burndown(
    *,
    figures: ProjectUsage,
    grants: Iterable[GrantRecord],
    charges: Iterable[tuple[datetime, int]],
    now: datetime,
    period_start: date | None = None,
    period_end: date | None = None,
    tz: tzinfo = timezone.utc,
    max_points: int = DEFAULT_MAX_POINTS,
) -> BurnDown:
    """The chart's data; ``charges`` are (when, mgs) of each job's effective charge (any order).

    Events dated after ``now`` (clocks apart) count at ``now``.
    """
    if now.tzinfo is None:
        raise LedgerInputError("now", "must be timezone-aware")
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise LedgerInputError("max_points", f"a whole number >= 2, got {max_points!r}")
    # (when, order, budget change, charge): grants before charges at the same instant
    events = [(min(g.granted_at, now), 0, g.amount_mgs, 0) for g in grants]
    events += [(min(when, now), 1, 0, mgs) for when, mgs in charges]
    events.sort(key=lambda event: (event[0], event[1]))
    budget = charged = 0
    points: list[BurnDownPoint] = []
    for when, _order, granted, cost in events:
        budget += granted
        charged += cost
        points.append(BurnDownPoint(when, budget, budget - charged))
    points.append(BurnDownPoint(now, figures.grants_mgs, figures.remaining_mgs))
    start, end = axis_bounds(now, events[0][0] if events else None, period_start, period_end, tz)
    points = _thin(_coalesce(points), start, now, max_points)
    return BurnDown(
        project=figures.project, start=start, end=end, now=now, points=tuple(points),
        budget_mgs=figures.grants_mgs, used_mgs=figures.used_mgs, held_mgs=figures.held_mgs,
        remaining_mgs=figures.remaining_mgs,
    )  # fmt: skip
