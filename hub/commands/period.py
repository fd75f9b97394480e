"""``hpchub project expire-check`` and the reconciler's notices: the settings they read from the
hub's configuration (``c.HPCHubMail``, ``c.HPCHubAllocations``) and the command's output.

``expire-check`` prints one line per project whose period ends within 30 days, has ended, or whose
space is due for archiving, then one line per mail it queued (the reconciler sends them; it runs
the same check every pass). Exit 0; 2 for bad input; 1 if the ledger fails.
"""

from __future__ import annotations

import os

from sqlalchemy.exc import SQLAlchemyError

from hub.allocations.settings import HPCHubAllocations
from hub.cli_support import load_hub_config
from hub.ledger.errors import LedgerError
from hub.mail.settings import HPCHubMail
from hub.reconcile.notices import expire_check, notice_watch


def hub_config(args):
    """The traitlets configuration of --config if that file exists (else None: the defaults)."""
    config_file = getattr(args, "config", None)
    return load_hub_config(config_file) if config_file and os.path.isfile(config_file) else None


def settings(args) -> tuple[HPCHubMail, int]:
    """``c.HPCHubMail`` and ``c.HPCHubAllocations.data_grace_days`` of --config (one read), else the defaults."""
    config = hub_config(args)
    if config is None:
        return HPCHubMail(), HPCHubAllocations().data_grace_days
    return HPCHubMail(config=config), HPCHubAllocations(config=config).data_grace_days


def cmd_expire_check(ledger, args) -> None:
    mail, grace = settings(args)
    report = expire_check(ledger, mail, data_grace_days=grace)
    for line in report.found or ["no project ends within 30 days, has ended or is due for archiving"]:
        print(line)
    for line in report.queued + report.unreachable:
        print(line)
    if report.queued:
        print(f"{len(report.queued)} mail(s) queued: the reconciler sends them at its next pass")


def reconcile_notices(args):
    """The notices after each reconcile pass (``hub/reconcile/notices.py``); a ledger failure is one
    line in the log and the next pass tries again."""
    mail, grace = settings(args)
    watch = notice_watch(mail, data_grace_days=grace)

    def after_pass(ledger) -> list[str]:
        try:
            return watch(ledger)
        except (LedgerError, SQLAlchemyError) as exc:
            return [f"notices: not this pass: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]

    return after_pass
