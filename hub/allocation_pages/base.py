"""Shared by the allocation pages: who is asking (an ``Actor`` from the ledger's record of the
user's latest login), the ledger in a worker thread, the site's settings and what an award
needs from the hub's configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from jupyterhub.handlers import BaseHandler
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from hub.allocations.award import AwardContext
from hub.allocations.service import Actor, Forbidden, require_manager
from hub.allocations.settings import HPCHubAllocations
from hub.api.handlers import ledger_call
from hub.api.scopes import READ_SCOPE
from hub.envs.config import HPCHubEnvironments
from hub.ledger import Ledger
from hub.ledger.errors import LedgerInputError, NotFound
from hub.ledger.runtime import HPCHubLedger, ledger_from_config
from spawners.slurm.cluster import SlurmCluster

T = TypeVar("T")
PAGES_PREFIX = r"/hpchub"


def actor_of(ledger: Ledger, name: str, admin: bool) -> Actor:
    """The hub user as the allocation rules see them: the principal and the identity provider's
    groups of their latest login (as the ledger recorded them), and whether they are a hub admin."""
    return Actor(user=name, principal=ledger.login_principal(name), groups=ledger.user_login_groups(name),
                 admin=admin)  # fmt: skip


class AllocationPageHandler(BaseHandler):
    """A page of the allocation pages (cookie login; posts carry the form's ``_xsrf``)."""

    @property
    def allocation_settings(self) -> HPCHubAllocations:
        return HPCHubAllocations(config=self.settings["config"])

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await ledger_call(self.log, "hpchub allocation pages", function, *args, **kwargs)

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
        if READ_SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, f"your login lacks the scope {READ_SCOPE}; ask the site's admins")
        ledger = await self.run(ledger_from_config, self.settings["config"])
        if ledger is None:
            raise web.HTTPError(404, "allocations need the GPU-hour ledger (HPCHubLedger.db_url)")
        return ledger

    async def actor(self, ledger: Ledger) -> Actor:
        user = self.current_user
        return await self.run(actor_of, ledger, user.name, bool(user.admin))

    def require_manager(self, actor: Actor) -> None:
        try:
            require_manager(actor, self.allocation_settings)
        except Forbidden as exc:
            raise web.HTTPError(403, str(exc)) from None

    def who(self) -> str:
        """What the ledger records as the author of a change made on a page."""
        return f"{self.current_user.name} (hpchub pages)"

    def award_context(self) -> AwardContext:
        """Slurm, the cluster's name and the site's settings, from the hub's configuration."""
        config = self.settings["config"]
        cluster = SlurmCluster.from_config(config)
        return AwardContext(
            client=cluster.client(log=self.log), cluster=cluster.name or HPCHubLedger(config=config).cluster,
            settings=self.allocation_settings, environments=HPCHubEnvironments(config=config),
        )  # fmt: skip

    def today(self, ledger: Ledger):
        return ledger.clock().astimezone(ledger.site_timezone).date()
