"""Prometheus metrics of hpchub, on the hub's own /hub/metrics endpoint.

JupyterHub serves ``prometheus_client``'s default registry; we add to it:

* counters the spawner increments: scheduler calls and their latency (from the shared
  watcher), spawn outcomes by reason;
* a collector read at scrape time: sessions running and pending per project, and the
  GPU-hours used, held and remaining per project, straight from the ledger (the same
  numbers as ``hpchub usage``); and ``hpchub_orphan_jobs_cancelled_total`` per project:
  the tagged jobs no session recorded that the reconciler cancelled (hub/ledger/orphans.py).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from hub.ledger import LedgerError
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR
from hub.ledger.runtime import ledger_from_config
from hub.ledger.types import SessionState

log = logging.getLogger(__name__)

SCHEDULER_CALLS = Counter(
    "hpchub_scheduler_calls", "Slurm commands the hub ran, by command and outcome", ["command", "outcome"]
)
SCHEDULER_LATENCY = Histogram(
    "hpchub_scheduler_call_seconds", "Duration of the hub's Slurm commands", ["command"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
SPAWN_OUTCOMES = Counter(
    "hpchub_spawn_outcomes",
    "Spawn requests by outcome (started, budget, validation, denied, slurm, ledger, failed)",
    ["outcome"],
)


def observe_scheduler_call(command: str, seconds: float, ok: bool) -> None:
    SCHEDULER_CALLS.labels(command=command, outcome="ok" if ok else "error").inc()
    SCHEDULER_LATENCY.labels(command=command).observe(seconds)


class LedgerCollector:
    """Per-project gauges read from the ledger at scrape time (never raises into a scrape)."""

    def __init__(self, config) -> None:
        self.config = config

    def collect(self):
        ledger = ledger_from_config(self.config)
        if ledger is None:
            return
        hours = {
            name: GaugeMetricFamily(
                f"hpchub_project_gpu_hours_{name}", f"GPU-hours {name} per project", labels=["project"]
            )
            for name in ("budget", "used", "held", "remaining")
        }
        sessions = GaugeMetricFamily("hpchub_project_sessions", "Portal sessions per project and state",
                                     labels=["project", "state"])  # fmt: skip
        orphan_jobs = CounterMetricFamily("hpchub_orphan_jobs_cancelled", "Jobs tagged hpchub: that no portal "
                                          "session recorded, cancelled by the reconciler", labels=["project"])  # fmt: skip
        try:
            for project in ledger.projects():
                figures = ledger.figures(project.name)
                for name, mgs in (("budget", figures.grants_mgs), ("used", figures.used_mgs),
                                  ("held", figures.held_mgs), ("remaining", figures.remaining_mgs)):  # fmt: skip
                    hours[name].add_metric([project.name], mgs / MGS_PER_GPU_HOUR)
            counts = Tally((s.project, s.state) for s in ledger.active_sessions())
            orphans = Tally(job.project for job in ledger.orphan_jobs())
            for project in ledger.projects():
                for state, label in ((SessionState.RUNNING, "running"), (SessionState.ADMITTED, "pending")):
                    sessions.add_metric([project.name, label], counts[(project.name, state)])
                orphan_jobs.add_metric([project.name], orphans[project.name])
        except (LedgerError, SQLAlchemyError) as exc:
            log.warning("ledger metrics: %s", exc)
            return
        yield from hours.values()
        yield sessions
        yield orphan_jobs


_REGISTERED: list[LedgerCollector] = []


def register_ledger_metrics(config) -> None:
    """Add the ledger's gauges to the registry /hub/metrics serves (once per process)."""
    if not _REGISTERED:
        collector = LedgerCollector(config)
        REGISTRY.register(collector)
        _REGISTERED.append(collector)
