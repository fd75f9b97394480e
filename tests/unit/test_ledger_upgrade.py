"""An upgrade from the previous release's schema (0002, session 1's head) with data in it loses
nothing: every project's figures and charges are the same after ``upgrade`` to head.
Runs on SQLite here and on PostgreSQL in tests/integration (it takes ``ledger_url``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.script import ScriptDirectory

from hub.ledger import Ledger, schema_revision, upgrade
from hub.ledger.store import alembic_config
from hub.ledger.types import Booking, OutsideJobSeen

pytestmark = pytest.mark.unit

PREVIOUS_RELEASE = "0002"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
LATER = T0 + timedelta(hours=2)


def _fill(ledger: Ledger) -> None:
    """What the previous release wrote: projects, grants, members and caps, sessions (ended,
    running, admitted), provisional and final charges, an outside job."""
    ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin", now=T0)
    ledger.add_member("vision-lab", "alice", role="pi", who="admin", now=T0)
    ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=20, who="admin", now=T0)
    ledger.grant("vision-lab", "12.5", reason="second round", who="admin", now=T0)
    ledger.set_cap("vision-lab", "bob", "22.25", reason="extension", who="alice", now=T0)
    ledger.create_project("cs101", account="cs101", kind="course", gpu_hours=50, start="2026-01-01",
                          end="2026-06-30", who="admin", now=T0)  # fmt: skip
    ledger.add_member("cs101", "carol", role="student", cap_gpu_hours=5, who="admin", now=T0)
    first = ledger.admit("vision-lab", "bob", "", Booking("h200", 2, 1), now=T0)
    ledger.record_job_id(first, "201")
    ledger.session_started(first, T0)
    ledger.session_ended(first, T0 + timedelta(minutes=20), 1201)
    ledger.import_final_charge("hpchub", "201", "bob", "vision-lab", {"h200": 2}, T0, T0 + timedelta(minutes=20), 1199,
                               now=T0)  # fmt: skip
    second = ledger.admit("vision-lab", "bob", "two", Booking("a100", 1, "0.5"), now=T0)
    ledger.record_job_id(second, "202")
    ledger.session_started(second, T0)
    ledger.session_ended(second, T0 + timedelta(minutes=7), 420)  # provisional only
    running = ledger.admit("vision-lab", "alice", "", Booking("a100", 4, 3), now=T0)
    ledger.record_job_id(running, "203")
    ledger.session_started(running, T0 + timedelta(minutes=1))
    ledger.admit("vision-lab", "bob", "three", Booking("h200", 1, 1), now=T0)  # admitted, pending
    outside = OutsideJobSeen("301", "alice", "vision-lab", {"a100": 1}, T0, 3600)
    ledger.sync_outside_jobs("hpchub", ["vision-lab", "cs101"], [outside], now=T0)


def _everything(ledger: Ledger) -> dict:
    return {p.name: (ledger.usage(p.name, now=LATER), ledger.charges(p.name)) for p in ledger.projects()}


def test_an_upgrade_from_the_previous_release_keeps_every_figure(ledger_url: str) -> None:
    upgrade(ledger_url, PREVIOUS_RELEASE)
    assert schema_revision(ledger_url) == PREVIOUS_RELEASE
    with Ledger(ledger_url) as ledger:
        _fill(ledger)
        before = _everything(ledger)
    assert before["vision-lab"][0]["budget_gpu_hours"] == 112.5 and len(before["vision-lab"][1]) == 2
    upgrade(ledger_url)
    assert schema_revision(ledger_url) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    with Ledger(ledger_url) as ledger:
        assert _everything(ledger) == before
