"""The 20-way race: 20 concurrent admissions against a budget that fits exactly 5.

Every thread admits through its own connection; exactly 5 must be held, the other 15
refused with the message, and the ledger must add up afterwards. ``ledger_url`` (see
conftest.py) is SQLite now; parametrized over PostgreSQL later, this test runs on both.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from hub.ledger import BudgetRefused, Ledger, upgrade
from hub.ledger.types import Booking, SessionState

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
RACERS = 20
ADVICE = "Ask for fewer GPUs or hours."

SCENARIOS = [
    # 20 members, a project budget of 5 GPU-h, each asks 1 x h200 x 1 h
    pytest.param(
        {"budget": 5, "cap": None, "users": [f"user{i:02d}" for i in range(RACERS)]},
        f"race-lab has 0.0 GPU-h left; this request needs 1.0 (1 x h200 x 1 h). {ADVICE}",
        id="project-budget",
    ),
    # one member with a cap of 5 GPU-h in a large project, 20 servers at once
    pytest.param(
        {"budget": 1000, "cap": 5, "users": ["bob"] * RACERS},
        f"bob's cap in race-lab has 0.0 GPU-h left (cap 5.0 GPU-h); this request needs 1.0 (1 x h200 x 1 h). {ADVICE}",
        id="member-cap",
    ),
]


def seed(ledger_url: str, budget: int, cap: int | None, users: list[str]) -> None:
    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        ledger.create_project("race-lab", account="race-lab", kind="research", gpu_hours=budget, who="test", now=NOW)
        for user in sorted(set(users)):
            ledger.add_member("race-lab", user, role="member", cap_gpu_hours=cap, who="test", now=NOW)


@pytest.mark.parametrize(
    "ledger_per_thread", [pytest.param(True, id="ledger-per-thread"), pytest.param(False, id="shared-ledger")]
)
@pytest.mark.parametrize(("scenario", "refusal"), SCENARIOS)
def test_twenty_concurrent_admissions_hold_exactly_five(
    ledger_url: str, scenario: dict, refusal: str, ledger_per_thread: bool
) -> None:
    seed(ledger_url, **scenario)
    shared = None if ledger_per_thread else Ledger(ledger_url)
    start_line = threading.Barrier(RACERS)

    def spawn(index: int) -> tuple[str, object]:
        ledger = Ledger(ledger_url) if ledger_per_thread else shared
        try:
            start_line.wait(timeout=30)
            session_id = ledger.admit(
                "race-lab", scenario["users"][index], f"s{index:02d}", Booking("h200", 1, 1), now=NOW
            )
            return ("admitted", session_id)
        except BudgetRefused as refused:
            return ("refused", refused.message)
        finally:
            if ledger_per_thread:
                ledger.close()

    try:
        with ThreadPoolExecutor(max_workers=RACERS) as pool:
            results = list(pool.map(spawn, range(RACERS)))
    finally:
        if shared is not None:
            shared.close()

    admitted = [value for outcome, value in results if outcome == "admitted"]
    refused = [value for outcome, value in results if outcome == "refused"]
    assert (len(admitted), len(refused)) == (5, 15)
    assert set(refused) == {refusal}
    with Ledger(ledger_url) as ledger:
        usage = ledger.usage("race-lab", now=NOW)
        assert usage["held_gpu_hours"] == 5.0
        assert usage["remaining_gpu_hours"] == scenario["budget"] - 5
        held = ledger.active_sessions()
        assert sorted(s.id for s in held) == sorted(admitted)
        assert all(s.state is SessionState.ADMITTED for s in held)
