"""The GPU-hour ledger: projects, grants, members, caps, holds and charges.

- ``arithmetic``: pure, exact budget arithmetic (integer weighted milli-GPU-seconds).
- ``types``: enums, name rules, the records the store returns.
- ``models``, ``migrations``: the tables (prefix ``hpchub_``) and their Alembic history.
- ``store``: ``Ledger`` (atomic admission, sessions, charges) and ``upgrade``.
- ``outside_jobs``: running jobs the portal did not start (mixed into ``Ledger``).
- ``reconcile``: ``hpchub reconcile``: final charges from sacct, the Slurm mirror.
- ``cli``: ``hpchub project|grant|member|usage|charges|reconcile``.
"""

from hub.ledger.arithmetic import (
    DEFAULT_RATES,
    Admission,
    BudgetFigures,
    BudgetWarning,
    ChargeRates,
)
from hub.ledger.errors import BudgetRefused, LedgerError, LedgerInputError, NotFound
from hub.ledger.store import Ledger, make_engine, schema_revision, upgrade
from hub.ledger.types import Booking

__all__ = [
    "DEFAULT_RATES",
    "Admission",
    "Booking",
    "BudgetFigures",
    "BudgetRefused",
    "BudgetWarning",
    "ChargeRates",
    "Ledger",
    "LedgerError",
    "LedgerInputError",
    "NotFound",
    "make_engine",
    "schema_revision",
    "upgrade",
]
