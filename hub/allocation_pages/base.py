"""Shared by the allocation pages: who is asking (an ``Actor`` from the ledger's record of the
user's latest login, as the API sees them), the scope each page needs, the ledger in a worker
thread, the site's settings and what an award needs from the hub's configuration."""

from __future__ import annotations

import asyncio
import pwd
from collections.abc import Callable
from typing import Any, TypeVar

from jupyterhub.handlers import BaseHandler
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from hub.allocations.award import AwardContext, context_from_config
from hub.allocations.service import Actor, Forbidden
from hub.allocations.settings import HPCHubAllocations
from hub.api.allocations import actor_of
from hub.api.handlers import ledger_call
from hub.api.scopes import APPLY_SCOPE
from hub.ledger import Ledger
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.runtime import ledger_from_config

T = TypeVar("T")
PAGES_PREFIX = r"/hpchub"


class AllocationPageHandler(BaseHandler):
    """A page of the allocation pages (cookie login; posts carry the form's ``_xsrf``). ``scope``: the
    JupyterHub scope the page needs, as the API's endpoint for the same action does."""

    scope = APPLY_SCOPE

    @property
    def allocation_settings(self) -> HPCHubAllocations:
        return HPCHubAllocations(config=self.settings["config"])

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await ledger_call(self.log, "hpchub allocation pages", function, *args, **kwargs)
        except Forbidden as exc:
            raise web.HTTPError(403, str(exc)) from None

    async def attempt(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A ledger write whose refusal the page shows under the field it names: like ``run``, but a
        ``LedgerInputError`` comes back as is (``NotFound`` is still a 404)."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except NotFound as exc:
            raise web.HTTPError(404, exc.message) from None
        except LedgerInputError:
            raise
        except SQLAlchemyError as exc:
            self.log.error(
                "hpchub allocation pages: ledger database error: %s", str(getattr(exc, "orig", None) or exc)[:500]
            )
            raise web.HTTPError(503, "the GPU-hour ledger is not answering; try again shortly") from None

    async def ledger(self) -> Ledger:
        if self.scope not in self.expanded_scopes:
            raise web.HTTPError(403, f"this page needs the scope {self.scope}; ask the site's admins")
        ledger = await self.run(ledger_from_config, self.settings["config"])
        if ledger is None:
            raise web.HTTPError(404, "allocations need the GPU-hour ledger (HPCHubLedger.db_url)")
        return ledger

    async def actor(self, ledger: Ledger) -> Actor:
        user = self.current_user
        return await self.run(actor_of, ledger, user.name, bool(user.admin))

    async def applicant(self, ledger: Ledger) -> Actor:
        """The user as an applicant, as the API has them: a Unix account on the cluster (an award
        makes the first Slurm association) and a recorded login principal."""
        actor = await self.actor(ledger)
        try:
            pwd.getpwnam(actor.user)
        except KeyError:
            raise web.HTTPError(403, f"applying needs a cluster account; {actor.user} does not exist yet") from None
        if not actor.principal:
            raise web.HTTPError(403, f"no login of {actor.user} is recorded yet: log out and in again to apply")
        return actor

    def who(self) -> str:
        """What the ledger records as the author of a change made on a page."""
        return f"{self.current_user.name} (hpchub pages)"

    def award_context(self, ledger: Ledger) -> AwardContext:
        """Slurm, the cluster's name and the site's settings, from the hub's configuration."""
        return context_from_config(self.settings["config"], log=self.log, ledger=ledger)

    def today(self, ledger: Ledger):
        return ledger.clock().astimezone(ledger.site_timezone).date()
