"""Unit tests for the burn-down chart's data (hub/project_pages/burndown.py): pure, exact."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from hub.ledger import LedgerInputError
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.types import GrantRecord, ProjectUsage
from hub.project_pages.burndown import MIN_SPAN, BurnDownPoint, axis_bounds, burndown

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=10)


def grant(hours: float, at: datetime) -> GrantRecord:
    return GrantRecord(int(hours * H), "test", "admin", at)


def figures(budget: float, used: float, held: float = 0.0) -> ProjectUsage:
    return ProjectUsage("vision-lab", int(budget * H), int(used * H), int(held * H), ())


def steps(data) -> list[tuple[datetime, float, float]]:
    return [(p.at, p.budget_mgs / H, p.remaining_mgs / H) for p in data.points]


@pytest.mark.parametrize(
    ("grants", "charges", "now_figures", "expected"),
    [
        pytest.param([], [], figures(0, 0), [(NOW, 0, 0)], id="nothing-yet"),
        pytest.param(
            [grant(100, T0)],
            [],
            figures(100, 0),
            [(T0, 100, 100), (NOW, 100, 100)],
            id="one-grant",
        ),
        pytest.param(
            [grant(100, T0)],
            [(T0 + timedelta(days=1), 3 * H), (T0 + timedelta(days=2), H // 2)],
            figures(100, 3.5),
            [(T0, 100, 100), (T0 + timedelta(days=1), 100, 97), (T0 + timedelta(days=2), 100, 96.5), (NOW, 100, 96.5)],
            id="charges-step-down",
        ),
        pytest.param(
            [grant(100, T0), grant(-40, T0 + timedelta(days=3))],
            [(T0 + timedelta(days=1), 10 * H)],
            figures(60, 10),
            [(T0, 100, 100), (T0 + timedelta(days=1), 100, 90), (T0 + timedelta(days=3), 60, 50), (NOW, 60, 50)],
            id="reduced-grant-lowers-both",
        ),
        pytest.param(
            [grant(100, T0)],
            [(T0 + timedelta(days=1), 10 * H)],
            figures(100, 12, held=3),
            [(T0, 100, 100), (T0 + timedelta(days=1), 100, 90), (NOW, 100, 85)],
            id="now-point-is-the-ledgers-remaining-with-holds",
        ),
        pytest.param(
            [grant(100, T0)],
            [(T0, 5 * H)],
            figures(100, 5),
            [(T0, 100, 95), (NOW, 100, 95)],
            id="same-instant-is-one-point-grant-first",
        ),
        pytest.param(
            [grant(100, T0)],
            [(NOW + timedelta(hours=2), 5 * H)],
            figures(100, 5),
            [(T0, 100, 100), (NOW, 100, 95)],
            id="future-dated-charge-counts-now",
        ),
    ],
)
def test_burndown_steps(grants, charges, now_figures, expected) -> None:
    data = burndown(figures=now_figures, grants=grants, charges=charges, now=NOW)
    assert steps(data) == expected
    assert data.points[-1] == BurnDownPoint(NOW, now_figures.grants_mgs, now_figures.remaining_mgs)
    assert (data.budget_mgs, data.used_mgs, data.held_mgs) == (
        now_figures.grants_mgs,
        now_figures.used_mgs,
        now_figures.held_mgs,
    )


def test_charges_in_any_order_give_the_same_steps() -> None:
    charges = [(T0 + timedelta(hours=h), H) for h in range(1, 6)]
    ordered = burndown(figures=figures(100, 5), grants=[grant(100, T0)], charges=charges, now=NOW)
    shuffled = burndown(figures=figures(100, 5), grants=[grant(100, T0)], charges=charges[::-1], now=NOW)
    assert ordered == shuffled


def test_many_charges_are_thinned_but_exact_at_the_ends() -> None:
    charges = [(T0 + timedelta(minutes=m), 1_000) for m in range(1, 10_001)]  # 10,000 jobs of 1 mgs-second
    total = 10_000 * 1_000
    data = burndown(
        figures=ProjectUsage("p", 100 * H, total, 0, ()),
        grants=[grant(100, T0)],
        charges=charges,
        now=T0 + timedelta(days=10),
        max_points=100,
    )
    assert len(data.points) <= 102
    assert data.points[0] == BurnDownPoint(T0, 100 * H, 100 * H)
    assert data.points[-1].remaining_mgs == 100 * H - total
    # every kept point is a true state: remaining never rises, budget constant
    remaining = [p.remaining_mgs for p in data.points]
    assert remaining == sorted(remaining, reverse=True)
    assert {p.budget_mgs for p in data.points} == {100 * H}


@pytest.mark.parametrize(
    ("first", "start", "end", "expected"),
    [
        pytest.param(T0, None, None, (T0, NOW), id="no-period-first-event-to-now"),
        pytest.param(
            T0,
            date(2026, 3, 1),
            date(2026, 6, 30),
            (datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 7, 1, tzinfo=timezone.utc)),
            id="period-inclusive-end-day",
        ),
        pytest.param(
            T0,
            date(2026, 3, 5),
            None,
            (T0, NOW),
            id="event-before-the-period-widens-the-axis",
        ),
        pytest.param(
            T0,
            date(2026, 1, 1),
            date(2026, 3, 3),
            (datetime(2026, 1, 1, tzinfo=timezone.utc), NOW),
            id="ended-period-still-shows-now",
        ),
        pytest.param(None, None, None, (NOW, NOW + MIN_SPAN), id="no-events-a-day-ahead"),
        pytest.param(
            NOW - timedelta(hours=2),
            None,
            None,
            (NOW - timedelta(hours=2), NOW + timedelta(hours=22)),
            id="new-project-a-day-from-its-start",
        ),
    ],
)
def test_axis_bounds(first, start, end, expected) -> None:
    assert axis_bounds(NOW, first, start, end) == expected


def test_axis_bounds_in_the_sites_time_zone() -> None:
    from zoneinfo import ZoneInfo

    start, end = axis_bounds(NOW, None, date(2026, 3, 1), date(2026, 3, 31), ZoneInfo("Europe/Berlin"))
    assert start == datetime(2026, 2, 28, 23, 0, tzinfo=timezone.utc)
    assert end == datetime(2026, 3, 31, 22, 0, tzinfo=timezone.utc)  # summer time from 29 March


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"now": datetime(2026, 3, 2)}, "now", id="naive-now"),
        pytest.param({"max_points": 1}, "max_points", id="too-few-points"),
        pytest.param({"max_points": True}, "max_points", id="bool-points"),
    ],
)
def test_bad_input_names_the_field(kwargs, field) -> None:
    arguments = {"figures": figures(0, 0), "grants": [], "charges": [], "now": NOW, **kwargs}
    with pytest.raises(LedgerInputError) as caught:
        burndown(**arguments)
    assert caught.value.field == field
