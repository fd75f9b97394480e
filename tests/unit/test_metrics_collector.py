"""The ledger's gauges on /hub/metrics (hub/metrics.py LedgerCollector): sessions running and
pending per project, GPU-hours budget, used, held and remaining, read from a real ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from traitlets.config import Config

from hub.ledger import Ledger, upgrade
from hub.ledger.types import Booking
from hub.metrics import LedgerCollector

pytestmark = pytest.mark.unit


def _samples(collector: LedgerCollector) -> dict[tuple[str, tuple[str, ...]], float]:
    """(metric name, label values) -> value, for every sample the collector yields."""
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_collector_reports_running_and_pending_sessions_and_project_hours(ledger_url):
    upgrade(ledger_url)
    now = datetime.now(timezone.utc)
    with Ledger(ledger_url) as ledger:
        ledger.create_project("p1", account="p1", kind="research", gpu_hours="10", who="test")
        ledger.create_project("p2", account="p2", kind="research", gpu_hours="3", who="test")
        for user in ("u1", "u2"):
            ledger.add_member("p1", user, role="member", who="test")
        running = ledger.admit("p1", "u1", "", Booking("h200", 1, 1))  # 1 x h200 x 1 h = 1 GPU-h held
        ledger.record_job_id(running, "101")
        ledger.session_started(running, now - timedelta(minutes=30))  # half of it used so far
        pending = ledger.admit("p1", "u2", "", Booking("a100", 2, 1))  # 2 x a100 (0.5) x 1 h = 1 GPU-h held
        ledger.record_job_id(pending, "102")
    config = Config()
    config.HPCHubLedger.db_url = ledger_url

    samples = _samples(LedgerCollector(config))

    assert samples[("hpchub_project_sessions", ("p1", "running"))] == 1
    assert samples[("hpchub_project_sessions", ("p1", "pending"))] == 1
    assert samples[("hpchub_project_sessions", ("p2", "running"))] == 0
    assert samples[("hpchub_project_sessions", ("p2", "pending"))] == 0
    assert samples[("hpchub_project_gpu_hours_budget", ("p1",))] == 10
    assert samples[("hpchub_project_gpu_hours_used", ("p1",))] == pytest.approx(0.5, abs=0.01)
    assert samples[("hpchub_project_gpu_hours_held", ("p1",))] == pytest.approx(1.5, abs=0.01)
    assert samples[("hpchub_project_gpu_hours_remaining", ("p1",))] == pytest.approx(8, abs=0.01)
    assert samples[("hpchub_project_gpu_hours_remaining", ("p2",))] == 3


def test_collector_yields_nothing_without_a_ledger():
    assert list(LedgerCollector(Config()).collect()) == []
