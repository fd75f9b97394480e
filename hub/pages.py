"""What the hub's pages show besides JupyterHub's own: template variables computed per user."""

from __future__ import annotations

import logging

from .ledger import LedgerError
from datetime import datetime, timezone

from .ledger.enforce import Banner, warnings_for
from .ledger.runtime import ledger_from_config

log = logging.getLogger(__name__)


def budget_banners(config):
    """A ``template_vars`` callable: the user's budget warnings (never breaks a page)."""

    def banners(user) -> list[Banner]:
        if user is None:
            return []
        ledger = ledger_from_config(config)
        if ledger is None:
            return []
        try:
            usages = [ledger.figures(project.name) for project, _role in ledger.memberships(user.name)]
            stopped = ledger.recently_stopped(user.name, datetime.now(timezone.utc))
        except LedgerError as exc:
            log.warning("budget banners for %s: %s", user.name, exc)
            return []
        stopped_banners = [
            Banner(project, 100, f"Your server {server or '(default)'} in {project} was {reason}.")
            for project, server, reason in stopped
        ]
        return stopped_banners + warnings_for(user.name, usages)

    return banners


def configure_pages(c, *, apply_url: str = "") -> None:
    """Template variables of hpchub's templates (templates/*.html extend JupyterHub's)."""
    c.JupyterHub.template_vars = {
        "hpchub_apply_url": apply_url,
        "hpchub_budget_banners": budget_banners(c),
    }
