"""The ledger inside the hub: configured once through traitlets, shared by every part.

``c.HPCHubLedger.db_url`` and friends are read by the spawner (admission, holds,
charges), the REST API and the reconciler; :func:`ledger_from_config` returns
one :class:`Ledger` per database URL in the process, migrated to head on first use.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from traitlets import Dict, Integer, Unicode
from traitlets.config import Configurable

from .arithmetic import ChargeRates
from .store import Ledger, upgrade


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

    def rates(self) -> ChargeRates:
        return ChargeRates(
            weights={name: Decimal(str(weight)) for name, weight in self.gpu_weights.items()},
            billing_units_per_weighted_gpu_minute=self.billing_units_per_weighted_gpu_minute,
        )


_LEDGERS: dict[tuple, Ledger] = {}
_LOCK = threading.Lock()


def ledger_from_config(config) -> Ledger | None:
    """The process's Ledger for this configuration (None when no db_url is configured)."""
    settings = HPCHubLedger(config=config)
    if not settings.db_url:
        return None
    key = (settings.db_url, settings.cluster, tuple(sorted(settings.gpu_weights.items())),
           settings.billing_units_per_weighted_gpu_minute)
    with _LOCK:
        ledger = _LEDGERS.get(key)
        if ledger is None:
            upgrade(settings.db_url)
            ledger = _LEDGERS[key] = Ledger(settings.db_url, rates=settings.rates(), cluster=settings.cluster)
        return ledger
