"""The allocation pages' routes and the top bar's roles (a template variable of every page)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from hub.allocation_pages import apply, invitations, manage, review
from hub.allocations.service import is_manager, is_reviewer
from hub.allocations.settings import HPCHubAllocations
from hub.api.allocations import actor_of
from hub.ledger import LedgerError
from hub.ledger.runtime import ledger_from_config

log = logging.getLogger(__name__)

ROUTES = [*apply.ROUTES, *review.ROUTES, *manage.ROUTES, *invitations.ROUTES]


class Roles:
    """Whether the user reviews and manages calls, read on first use only (the top bar of every
    page asks; a page that never renders it costs nothing). The pages decide again."""

    def __init__(self, config, user) -> None:
        self._config, self._user, self._value = config, user, None

    def _get(self) -> tuple[bool, bool]:
        if self._value is None:
            self._value = (False, bool(self._user.admin))
            ledger = ledger_from_config(self._config)
            if ledger is not None:
                try:
                    actor = actor_of(ledger, self._user.name, bool(self._user.admin))
                except (LedgerError, ValueError, SQLAlchemyError) as exc:
                    log.warning("allocation roles of %s: %s", self._user.name, exc)
                else:
                    settings = HPCHubAllocations(config=self._config)
                    self._value = (is_reviewer(actor, settings), is_manager(actor, settings))
        return self._value

    @property
    def reviewer(self) -> bool:
        return self._get()[0]

    @property
    def manager(self) -> bool:
        return self._get()[1]


def allocation_roles(config):
    """The ``hpchub_allocation_roles`` template variable: a ``Roles`` for a logged-in user, else None."""
    return lambda user: None if user is None else Roles(config, user)
