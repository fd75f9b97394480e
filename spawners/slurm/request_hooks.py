"""The spawn request's side of ``SlurmGPUSpawner``: ``RequestHooks``, a mixin with the user's
projects (the ledger's memberships, else Slurm's associations), the one :class:`RequestContext`
a request is checked against (the form, ``POST /preview`` and the spawn use it alike), the
validation into a :class:`JobRequest` and the budget hold, run in JupyterHub's public
``apply_user_options`` hook. The hook's traitlets ``@default`` stays on the spawner class.

Every refusal is one line in the log and a message naming its reason: the identity rules
(403), an option (400 naming the field), the budget (403), Slurm not answering (503), the
ledger's database (503).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from hub.auth.account_rules import AccountDenied, HPCHubAccountRules
from hub.ledger import BudgetRefused
from hub.metrics import SPAWN_OUTCOMES
from spawners.catalog import CatalogueError
from spawners.slurm import project_envs
from spawners.slurm.client import SlurmCommandError
from spawners.slurm.errors import LedgerUnavailable, database_detail, mark_handled
from spawners.slurm.form_hooks import _FORM_RETRY
from spawners.slurm.options import OptionsError, drop_stale_keys
from spawners.slurm.parsers import parse_user_accounts
from spawners.slurm.request_context import RequestContext, ready_names
from spawners.slurm.ttl_cache import _TTLCache
from spawners.slurm.types import JobRequest

# Marks options that this portal validated and stored; anything else came from a request.
OPTIONS_SCHEMA_KEY = "_hpchub_schema"
OPTIONS_SCHEMA_VERSION = 1
SERVER_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{0,40}")

_CACHE = _TTLCache()  # shared by every spawner in the hub process


def _user_error(status: int, message: str) -> web.HTTPError:
    """An HTTP error whose message JupyterHub shows as is (the form says "Error: MESSAGE",
    not "HTTP 400: error (MESSAGE)"); the API's JSON answer is unchanged."""
    error = web.HTTPError(status, message)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


def _count_spawn(outcome: str) -> None:
    """Count a spawn's outcome for /hub/metrics (started, denied, validation, budget, slurm, ledger, ...)."""
    SPAWN_OUTCOMES.labels(outcome=outcome).inc()


async def _apply_validated_options(spawner: RequestHooks, user_options: dict) -> None:
    """The spawner's ``apply_user_options`` hook (a plain function, as JupyterHub calls it)."""
    await spawner.apply_validated_options(user_options)


class RequestHooks:
    """The spawn request's hooks. Mixed into ``SlurmGPUSpawner`` (which gives ``user``, ``name``,
    ``log``, ``ledger``, ``client``, ``cluster``, ``catalogue``, ``cluster_info``, ``admit``,
    ``course_lab_hours``, ``default_hours`` and the form's ``_note_form_error``)."""

    async def project_accounts(self) -> dict[str, str]:
        """The user's projects -> their Slurm accounts: the ledger is the truth when configured."""
        ledger = self.ledger
        if ledger is None:
            return {account: account for account in await self.user_projects()}
        memberships = await asyncio.to_thread(ledger.memberships, self.user.name)
        return {project.name: project.slurm_account for project, _role in memberships}

    async def user_projects(self) -> list[str]:
        key = ("accounts", self.cluster.slurm_conf, self.user.name)
        cached = _CACHE.get(key)
        if cached is None:
            cached = parse_user_accounts(await self.client.user_accounts(self.user.name))
            _CACHE.put(key, cached, self.accounts_ttl)
        return list(cached)  # type: ignore[call-overload]

    async def apply_validated_options(self, user_options: dict) -> None:
        """JupyterHub's ``apply_user_options`` hook: validate into a JobRequest and hold the budget.
        First the identity deny rules (whatever the authenticator): HTTP 403 naming the rule; a
        refused option is HTTP 400 naming the field. Every error raised here was logged here in
        one line, so JupyterHub's own traceback for it is left out (:func:`.errors.quiet_handled_errors`)."""
        try:
            await self._check_and_hold(user_options)
        except web.HTTPError as exc:
            raise mark_handled(exc)
        except Exception as exc:  # a fault, not the user's: a 500 with JupyterHub's traceback, as before
            raise web.HTTPError(500, f"the spawn options could not be checked: {type(exc).__name__}") from exc

    async def _check_and_hold(self, user_options: dict) -> None:
        try:
            self.check_account_rules()
        except AccountDenied as exc:
            _count_spawn("denied")
            raise _user_error(403, f"No server can start for {self.user.name}: {exc}.") from None
        try:
            await self.validate_options(user_options or {})
        except OptionsError as exc:
            self.log.info("refused options for %s: %s", self._log_name, exc)
            _count_spawn("validation")
            self._note_form_error(exc.field, str(exc))
            raise _user_error(400, str(exc)) from None
        except BudgetRefused as exc:
            self.log.info("budget refused for %s: %s", self._log_name, exc.message)
            _count_spawn("budget")
            self._note_form_error("budget", exc.message)
            raise _user_error(403, exc.message) from None
        except SlurmCommandError as exc:
            _count_spawn("slurm")
            self.log.warning("Slurm did not answer while checking options for %s: %s", self._log_name, exc)
            raise web.HTTPError(503, f"Slurm is not answering, try again shortly ({exc.summary})") from None
        except SQLAlchemyError as exc:  # admission is one transaction: it wrote nothing
            _count_spawn("ledger")
            self.log.error("ledger database failed while admitting %s: %s", self._log_name, database_detail(exc))
            raise LedgerUnavailable(exc) from None
        _FORM_RETRY.pop(self.user.name)  # accepted: the next form shows the last options again

    def check_account_rules(self) -> None:
        """:class:`AccountDenied` if the user's account is on the deny-list or below the minimum UID now."""
        try:
            HPCHubAccountRules(parent=self).check(self.user.name)
        except AccountDenied as exc:
            self.log.warning("spawn refused for %s by the %s rule: %s", self._log_name, exc.rule.value, exc)
            raise

    async def request_context(self) -> RequestContext:
        """What this user's options are checked against now (the form, the preview and the
        spawn all use this one): the cluster, the user's projects, the catalogue, each
        project's ready environments and the defaults."""
        try:
            catalogue = self.catalogue()
        except (OSError, CatalogueError) as exc:
            raise web.HTTPError(500, f"the environment catalogue is broken: {exc}") from None
        accounts = await self.project_accounts()
        cluster = await self.cluster_info()
        ready = await asyncio.to_thread(project_envs.ready_environments, self.environment_settings, list(accounts))
        return RequestContext(
            user=self.user.name,
            cluster=cluster,
            accounts=dict(accounts),
            catalogue=catalogue,
            project_environments=ready_names(ready),
            default_hours=Decimal(str(self.default_hours)),
        )

    async def validate_options(self, user_options: dict) -> JobRequest:
        if not SERVER_NAME_PATTERN.fullmatch(self.name or ""):
            raise OptionsError("server_name", "server name: letters, digits, '.', '_' and '-' only, at most 40")
        options = dict(user_options)
        if options.pop(OPTIONS_SCHEMA_KEY, None) is not None:
            # Stored by us at an earlier spawn: drop keys from an older schema instead of refusing.
            options, dropped = drop_stale_keys(options)
            if dropped:
                self.log.warning("dropped stored options of %s from an older schema: %s", self._log_name, dropped)
        context = await self.request_context()
        self.user_project_names = context.projects
        request = context.validate(options)
        reservation, lab_hours_on = await self.course_lab_hours(request.project)
        await self.admit(request, lab_hours_on=lab_hours_on)
        if reservation and lab_hours_on is None:  # a course that queues students outside its lab hours
            lab_hours_on = await self.lab_hours_active(request.project, reservation)
        if reservation and lab_hours_on:
            self.log.info("%s: in the lab hours of %s (reservation %s)", self._log_name, request.project, reservation)
            request = dataclasses.replace(request, reservation=reservation)
        self.job_request = request
        # What a spawn without options re-uses: the validated set, marked as ours.
        self.user_options = {**request.to_options(), OPTIONS_SCHEMA_KEY: OPTIONS_SCHEMA_VERSION}
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = self.user_options
        return request
