"""The ledger inside the hub: configured once through traitlets, shared by every part.

``c.HPCHubLedger.db_url`` and friends are read by the spawner (admission, holds,
charges), the REST API and the reconciler; :func:`ledger_from_config` returns
one :class:`Ledger` per database URL in the process, migrated to head on first use.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from traitlets import Dict, Float, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from hub.ledger.arithmetic import ChargeRates
from hub.ledger.idle import (
    DEFAULT_REPORT_MAX_AGE_SECONDS,
    IDLE_TIMEOUT_LIMIT,
    REPORT_MAX_AGE_LIMIT,
    idle_timeout_allowed,
    report_max_age_allowed,
)
from hub.ledger.store import Ledger, make_engine, upgrade


class HPCHubLedger(Configurable):
    """Where the ledger lives and how GPU types are charged."""

    db_url = Unicode(
        "",
        help="SQLAlchemy URL of the ledger database; '' disables budgets (Slurm accounts only). "
        "Default ''. Example: 'sqlite:////var/lib/hpchub/ledger.sqlite' or "
        "'postgresql+psycopg://hpchub@db/hpchub'.",
    ).tag(config=True)
    cluster = Unicode(
        "hpchub",
        help="Slurm ClusterName the charges are keyed by (with the job id). Default 'hpchub'.",
    ).tag(config=True)
    gpu_weights = Dict(
        {"h200": "1.0", "a100": "0.5"},
        help="GPU-hours charged per GPU-hour of each type (decimal strings). Default {'h200': '1.0', 'a100': '0.5'}.",
    ).tag(config=True)
    billing_units_per_weighted_gpu_minute = Integer(
        2,
        help="Slurm billing units per weighted GPU-minute (so TRESBillingWeights = weight x units, whole numbers). "
        "Default 2.",
    ).tag(config=True)

    orphan_grace = Float(
        120.0,
        help="Seconds after its submission before the reconciler treats a job tagged 'hpchub:' that no portal "
        "session records as an orphan (cancelled and reported, never adopted), and after a session ended before "
        "its still active job counts as one. Longer than the hub ever takes between sbatch returning and the "
        "record being committed. Default 120. Example: 300. `hpchub reconcile --orphan-grace` overrides it.",
    ).tag(config=True)
    idle_timeout_minutes = Float(
        0.0,
        help="Minutes a running session may stay idle (no cell or terminal command running, no user activity, "
        "its GPUs below idle_gpu_busy_percent or unknown) before the reconciler stops it through the hub's API, "
        "with the reason on the user's pages; users are warned at half that. The project pays only until the "
        "stop (sacct's elapsed time). 0 = off. Default 0. Example: 30. `hpchub reconcile --stop-idle-after` "
        "overrides it. A course's own shorter idle stop (course setting idle-stop-after) applies to its sessions, "
        "even at 0.",
    ).tag(config=True)
    idle_gpu_busy_percent = Integer(
        5,
        help="A session whose GPUs (the most used one, nvidia-smi) are at this utilization or more is computing "
        "and never idle. Percent, 1 to 100. Default 5. Example: 10. `hpchub reconcile --idle-gpu-busy` overrides it.",
    ).tag(config=True)
    idle_report_max_age_seconds = Float(
        float(DEFAULT_REPORT_MAX_AGE_SECONDS),
        help="Seconds after which a session's latest activity report (pushed by the session every "
        "c.SlurmGPUSpawner.activity_report_seconds) no longer counts: the session is then 'unknown' and the idle "
        "stop never stops it. Keep it at least twice the report interval plus 30 s. From 10 to 86400. Default 180. "
        "Example: 300. `hpchub reconcile --idle-report-max-age` overrides it.",
    ).tag(config=True)
    sqlite_busy_timeout = Float(
        30.0,
        help="Seconds a write to a SQLite ledger waits for another writer's lock before it fails (the spawn then "
        "gets HTTP 503 and nothing is written). Default 30. Example: 10. Not used with PostgreSQL.",
    ).tag(config=True)

    @validate("idle_timeout_minutes")
    def _valid_idle_timeout(self, proposal):
        if not idle_timeout_allowed(proposal["value"]):
            raise TraitError(f"c.HPCHubLedger.idle_timeout_minutes: {IDLE_TIMEOUT_LIMIT}, got {proposal['value']:g}")
        return proposal["value"]

    @validate("idle_report_max_age_seconds")
    def _valid_report_max_age(self, proposal):
        if not report_max_age_allowed(proposal["value"]):
            raise TraitError(
                f"c.HPCHubLedger.idle_report_max_age_seconds: {REPORT_MAX_AGE_LIMIT}, got {proposal['value']:g}"
            )
        return proposal["value"]

    @validate("idle_gpu_busy_percent")
    def _valid_idle_gpu_busy(self, proposal):
        if not 1 <= proposal["value"] <= 100:
            raise TraitError(f"c.HPCHubLedger.idle_gpu_busy_percent: from 1 to 100 percent, got {proposal['value']}")
        return proposal["value"]

    def rates(self) -> ChargeRates:
        return ChargeRates(
            weights={name: Decimal(str(weight)) for name, weight in self.gpu_weights.items()},
            billing_units_per_weighted_gpu_minute=self.billing_units_per_weighted_gpu_minute,
        )


_LEDGERS: dict[tuple, Ledger] = {}
_LOCK = threading.Lock()


def ledger_from_config(config) -> Ledger | None:
    """The process's Ledger for this configuration (None when no db_url is configured)."""
    return ledger_for(HPCHubLedger(config=config))


def ledger_for(settings: HPCHubLedger) -> Ledger | None:
    """The process's Ledger for these settings (None without a db_url): one per database and
    rates, shared by every spawner, handler and page of the process."""
    if not settings.db_url:
        return None
    key = (
        settings.db_url,
        settings.cluster,
        tuple(sorted(settings.gpu_weights.items())),
        settings.billing_units_per_weighted_gpu_minute,
        settings.sqlite_busy_timeout,
    )
    with _LOCK:
        ledger = _LEDGERS.get(key)
        if ledger is None:
            upgrade(settings.db_url)
            engine = make_engine(settings.db_url, sqlite_busy_timeout=settings.sqlite_busy_timeout)
            ledger = _LEDGERS[key] = Ledger(engine, rates=settings.rates(), cluster=settings.cluster)
        return ledger
