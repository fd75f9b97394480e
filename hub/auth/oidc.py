"""Institutional login: OpenID Connect through oauthenticator, mapped to cluster accounts.

``HPCHubOIDCAuthenticator`` is GenericOAuthenticator configured from the issuer
URL alone: it reads ``/.well-known/openid-configuration`` at start
(oauthenticator 17 has no discovery) and refuses to start when the issuer is
unreachable, inconsistent, or plain http off loopback. The principal claim is
mapped to a cluster account by :mod:`hub.auth.mapping` (or, with ``map_by_subject``, the
provider's immutable ``sub`` through the admin's table) and checked against the identity deny
rules (:mod:`hub.auth.account_rules`: never root, the service account or a system account), at
login and before every spawn; a login whose account does not exist on the cluster gets a clear
page (group ``hpchub-no-cluster-account``) and cannot spawn.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import pwd
import urllib.error
import urllib.request
from inspect import isawaitable
from urllib.parse import urlparse

from oauthenticator.generic import GenericOAuthenticator
from sqlalchemy.exc import SQLAlchemyError
from tornado import web
from traitlets import Any, Bool, Dict, Unicode, default

from hub.allocations.provision import ProvisionFailed, provision
from hub.allocations.settings import HPCHubAllocations
from hub.auth import log_redaction
from hub.auth.account_rules import AccountDenied, HPCHubAccountRules
from hub.auth.mapping import (
    MappingRefused,
    MappingRules,
    load_account_table,
    map_principal,
    map_subject,
)
from hub.ledger import LedgerError
from hub.ledger.courses import DEFAULT_GROUP_ROLES
from hub.ledger.errors import LedgerInputError
from hub.ledger.mail_outbox import check_mail_address
from hub.ledger.runtime import ledger_from_config
from hub.site_secrets import check_hub_secrets
from spawners.slurm.client import SlurmCommandError
from spawners.slurm.cluster import SlurmCluster
from spawners.slurm.parsers import parse_user_accounts
from spawners.slurm.refused_traits import check_spawner_config

NO_CLUSTER_ACCOUNT_GROUP = "hpchub-no-cluster-account"


class IssuerError(RuntimeError):
    """The configured issuer cannot be trusted or reached: the hub must not start."""


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer_url(issuer: str, *, allow_insecure: bool) -> None:
    """An https issuer, or http on loopback when explicitly allowed (demo mode)."""
    parsed = urlparse(issuer)
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and is_loopback_host(parsed.hostname):
        if allow_insecure:
            return
        raise IssuerError(
            f"issuer {issuer}: plain http is refused; set allow_insecure_issuer = True only for a demo on loopback"
        )
    raise IssuerError(f"issuer {issuer!r}: must be an https:// URL (plain http only on loopback in demo mode)")


def validate_discovery(issuer: str, document: dict) -> dict[str, str]:
    """The endpoints of a discovery document that matches ``issuer`` exactly."""
    if document.get("issuer") != issuer:
        raise IssuerError(f"issuer {issuer}: the discovery document names issuer {document.get('issuer')!r} instead")
    origin = urlparse(issuer)
    endpoints = {}
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
        url = document.get(key)
        if not isinstance(url, str):
            raise IssuerError(f"issuer {issuer}: the discovery document has no {key}")
        parsed = urlparse(url)
        if (parsed.scheme, parsed.netloc) != (origin.scheme, origin.netloc):
            raise IssuerError(f"issuer {issuer}: {key} {url} is not on the issuer's own origin")
        endpoints[key] = url
    methods = document.get("code_challenge_methods_supported") or []
    if "S256" not in methods:
        raise IssuerError(f"issuer {issuer}: PKCE S256 is not supported (code_challenge_methods_supported={methods})")
    return endpoints


def fetch_discovery(issuer: str, timeout: float = 10.0) -> dict:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IssuerError(f"issuer {issuer}: cannot read {url}: {exc}") from None


def login_mail_address(claims: dict, principal: object) -> str | None:
    """The mail address a login gives: the ``email`` claim unless the provider says it is not
    verified, else the principal when it has the form of an address; None when neither is one
    (an address with a line break or a display name is never taken)."""
    for candidate in (claims.get("email") if claims.get("email_verified") is not False else None, principal):
        try:
            return check_mail_address(candidate, "email")
        except LedgerInputError:
            continue
    return None


class HPCHubOIDCAuthenticator(GenericOAuthenticator):
    """OpenID Connect login for an institution, mapped to cluster accounts."""

    issuer = Unicode(
        "",
        help="OpenID Connect issuer URL; the endpoints come from its discovery document. Required. "
        "Example: 'https://login.uni.example/realms/staff'.",
    ).tag(config=True)
    allow_insecure_issuer = Bool(
        False,
        help="Allow a plain http issuer on loopback (demo and tests only). Default False.",
    ).tag(config=True)
    principal_claim = Unicode(
        "preferred_username",
        help="Claim holding the scoped principal (user@institution). Default 'preferred_username', which "
        "many identity providers let users edit: prefer an attribute the institution controls. "
        "Example: 'eduPersonPrincipalName'.",
    ).tag(config=True)
    map_by_subject = Bool(
        False,
        help="Map logins by the provider's immutable 'sub' claim through account_map_file ({sub: account}) "
        "only; scoped_domains and account_mapper are then not used, and a sub not in the table is refused. "
        "Default False (map the principal_claim). Example: True with account_map_file = "
        "'/etc/hpchub/subjects.json'.",
    ).tag(config=True)
    scoped_domains = Dict(
        {},
        help="Institutions whose principals may log in, each with an optional account prefix/suffix. "
        "Default {} (none). Example: {'uni-a.example': {}, 'uni-b.example': {'prefix': 'b-'}}.",
    ).tag(config=True)
    account_map_file = Unicode(
        "",
        help="Admin-managed JSON table {principal: account} that overrides the scope rules. Default '' (none). "
        "Example: '/etc/hpchub/accounts.json'.",
    ).tag(config=True)
    account_mapper = Any(
        None,
        help="Optional callable principal -> account name (or None), tried after the table and the scopes. "
        "Default None.",
    ).tag(config=True)
    cluster_account_check = Bool(
        True,
        help="Check at login that the mapped account has a Unix user and a Slurm association. Default True.",
    ).tag(config=True)
    slurm_conf = Unicode(
        "",
        help="Deprecated: set c.SlurmCluster.slurm_conf. Still honoured: set, it wins for the association check. "
        "slurm.conf for the association check (SLURM_CONF). Default '' (the cluster's). "
        "Example: '/etc/slurm/slurm.conf'.",
    ).tag(config=True)
    apply_url = Unicode(
        "",
        help="Where a user without a cluster account applies for one (shown on the page). Default ''. "
        "Example: 'https://hpc.uni.example/apply'.",
    ).tag(config=True)
    course_group_roles = Dict(
        dict(DEFAULT_GROUP_ROLES),
        help="IdP group patterns that make a user a member of a course at login (and at the refresh before "
        "a spawn), with the role each gives; '{course}' is the course's name. A membership a group gave ends "
        "when the group is gone. The groups are recorded in the ledger when they change, for hpchub course "
        "sync (the claims reach the hub only at logins). Default {'{course}-students': 'student', '{course}-tas': 'ta', "
        "'{course}-instructors': 'instructor'}; {} turns it off.",
    ).tag(config=True)

    @default("login_service")
    def _login_service_default(self) -> str:
        return "your institution"

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email", "groups", "offline_access"]

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True

    @default("refresh_pre_spawn")
    def _refresh_pre_spawn_default(self) -> bool:
        return True

    @default("auth_state_groups_key")
    def _auth_state_groups_key_default(self) -> str:
        return "oauth_user.groups"

    @default("username_claim")
    def _username_claim_default(self):
        return self.principal_claim

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # No OAuth code or state in the hub's log, whoever logs the callback's URL (tornado, oauthenticator).
        log_redaction.install(self.log)
        # Before anything else: outside demo mode, no demo secret and a site crypt key.
        check_hub_secrets(self)
        # The spawner's settings too, while the hub starts: a batchspawner setting it would ignore is refused.
        app = getattr(self, "parent", None)
        if app is not None and hasattr(app, "spawner_class"):
            check_spawner_config(app.config, app.spawner_class)
        if not self.issuer:
            raise IssuerError("HPCHubOIDCAuthenticator.issuer is not set")
        self.issuer = self.issuer.rstrip("/")
        check_issuer_url(self.issuer, allow_insecure=self.allow_insecure_issuer)
        endpoints = validate_discovery(self.issuer, fetch_discovery(self.issuer))
        # Only the configured issuer is trusted: every endpoint comes from its own document.
        self.authorize_url = endpoints["authorization_endpoint"]
        self.token_url = endpoints["token_endpoint"]
        self.userdata_url = endpoints["userinfo_endpoint"]
        table = load_account_table(self.account_map_file)
        self.subject_table = dict(table) if self.map_by_subject else {}  # sub is compared exactly
        self.mapping_rules = MappingRules.from_config(
            {} if self.map_by_subject else self.scoped_domains,
            {} if self.map_by_subject else table,
            None if self.map_by_subject else self.account_mapper,
        )
        self.account_rules = HPCHubAccountRules(parent=self)
        self.log.info("OpenID Connect issuer %s: endpoints read from its discovery document", self.issuer)

    # ----- identity -> account -----
    def user_info_to_username(self, user_info: dict) -> str:
        try:
            if self.map_by_subject:
                account = map_subject(user_info.get("sub"), self.subject_table)
            else:
                account = map_principal(user_info.get(self.principal_claim), self.mapping_rules)
        except MappingRefused as exc:
            self.log.warning("login refused: %s", exc)
            raise web.HTTPError(403, f"Your login worked, but {exc}.") from None
        try:
            self.account_rules.check(account)
        except AccountDenied as exc:
            self.log.warning("login refused by the %s rule: %s", exc.rule.value, exc)
            raise web.HTTPError(403, f"Your login worked, but {exc}. Ask your centre for a personal account.") from None
        return account

    def cluster_account_exists(self, account: str) -> bool:
        try:
            pwd.getpwnam(account)
        except KeyError:
            return False
        return True

    async def slurm_association_exists(self, account: str) -> bool:

        client = SlurmCluster.from_config(self.config, slurm_conf=self.slurm_conf).client(log=self.log)
        try:
            return bool(parse_user_accounts(await client.user_accounts(account)))
        except SlurmCommandError as exc:
            self.log.warning("could not check the Slurm association of %s: %s", account, exc)
            return True  # do not lock people out while Slurm is down; the spawn will say why

    async def update_auth_model(self, auth_model: dict) -> dict:
        account = auth_model["name"]
        auth_state = auth_model.get("auth_state") or {}
        user = auth_state.get("oauth_user") or {}
        principal = user.get(self.principal_claim)
        if isinstance(principal, str):
            # before the account check: the site's hook may make an invited member's account now
            await self.allocation_login(principal, account)
        has_account = True
        if self.cluster_account_check:
            has_account = self.cluster_account_exists(account) and await self.slurm_association_exists(account)
        auth_state["hpchub"] = {
            "principal": principal,
            "cluster_account": has_account,
        }
        auth_model["auth_state"] = auth_state
        if isinstance(principal, str) and self.cluster_account_exists(account):
            # the Unix account is enough: the reconciler makes the Slurm association of a new member
            await self.sync_course_memberships(principal, account, await self.get_user_groups(auth_state))
        if self.cluster_account_exists(account):
            await self.record_mail_address(account, login_mail_address(user, principal))
        return auth_model

    async def allocation_login(self, principal: str, account: str) -> None:
        """Allocations at each login: the ledger keeps the principal the account logged in as (its
        institution decides reviewers' conflicts of interest); open invitations of the principal become
        memberships; an invited principal whose account does not exist yet is handed to the site's
        ``c.HPCHubAllocations.provision_command``. A failure is logged and never blocks the login."""
        ledger = ledger_from_config(self.config)
        if ledger is None:
            return
        try:
            await asyncio.to_thread(ledger.record_login_principal, account, principal)
            if not self.cluster_account_exists(account):
                invited = await asyncio.to_thread(ledger.open_invitations, principal)
                if not invited:
                    return
                await self.provision_account(principal, account, invited)
                if not self.cluster_account_exists(account):
                    return
            for project, role in await asyncio.to_thread(ledger.accept_invitations, principal, account):
                self.log.info("%s (%s) accepted the invitation to %s as %s", account, principal, project, role)
        except (LedgerError, SQLAlchemyError) as exc:
            self.log.warning("could not record the allocations login of %s: %s", account, exc)

    async def provision_account(self, principal: str, account: str, invited: list[str]) -> None:
        """The site's hook makes the Unix account of an invited member (the login waits for it)."""
        settings = HPCHubAllocations(config=self.config)
        if not settings.provision_command:
            self.log.info("%s (%s) is invited to %s but has no Unix account, and no provision_command is set",
                          account, principal, ", ".join(invited))  # fmt: skip
            return
        try:
            await provision(settings.provision_command, principal, account, timeout=settings.provision_timeout)
        except ProvisionFailed as exc:
            self.log.error("the provision command for %s (%s) failed: %s", account, principal, exc)
            return
        self.log.info("the provision command made the account %s for %s (invited to %s)", account, principal,
                      ", ".join(invited))  # fmt: skip

    async def record_mail_address(self, account: str, address: str | None) -> None:
        """The user's mail address as this login gave it, for the portal's mail (budget and period
        warnings, allocations). A ledger failure is logged and never blocks the login."""

        ledger = ledger_from_config(self.config)
        if ledger is None or address is None:
            return
        try:
            await asyncio.to_thread(ledger.record_mail_address, account, address)
        except (LedgerError, SQLAlchemyError) as exc:
            self.log.warning("could not record the mail address of %s: %s", account, exc)

    async def sync_course_memberships(self, principal: str, account: str, groups: set[str]) -> None:
        """Course memberships from the login: a principal on a course's roster (CSV upload)
        joins it; the IdP groups (``course_group_roles``) add and end memberships. A ledger
        failure is logged and never blocks the login (the next login or refresh catches up)."""

        ledger = ledger_from_config(self.config)
        if ledger is None:
            return
        try:
            joined = await asyncio.to_thread(ledger.join_roster, principal, account)
            changes = [f"{account} joined {course} as {role} (on its roster)" for course, role in joined]
            # what the IdP said, for hpchub course sync (which cannot ask it for another user's groups)
            await asyncio.to_thread(ledger.record_login_groups, account, groups - {NO_CLUSTER_ACCOUNT_GROUP})
            if self.course_group_roles:
                changes += await asyncio.to_thread(ledger.sync_course_groups, account, groups, self.course_group_roles)
        except (LedgerError, SQLAlchemyError) as exc:
            self.log.warning("could not update the course memberships of %s: %s", account, exc)
            return
        for change in changes:
            self.log.info("%s", change)

    async def get_user_groups(self, auth_state: dict) -> set[str]:
        groups = super().get_user_groups(auth_state)
        if isawaitable(groups):
            groups = await groups
        groups = set(groups)
        if not (auth_state.get("hpchub") or {}).get("cluster_account", True):
            groups.add(NO_CLUSTER_ACCOUNT_GROUP)
        else:
            groups.discard(NO_CLUSTER_ACCOUNT_GROUP)  # only we set it
        return groups

    # ----- authorisation -----
    def is_allowed_model(self, username: str, auth_model: dict) -> bool:
        if auth_model.get("admin") or username in self.allowed_users:
            return True
        return bool(self.allowed_groups and set(auth_model.get("groups") or ()) & self.allowed_groups)

    async def check_allowed(self, username: str, auth_model: dict) -> bool:
        if await super().check_allowed(username, auth_model):
            return True
        required = ", ".join(sorted(self.allowed_groups)) or "(none configured)"
        raise web.HTTPError(
            403,
            f"Your login worked, but your institution account is not in a group that may use this portal "
            f"({required}). Ask your centre or your PI for access.",
        )

    async def refresh_user(self, user, handler=None, **kwargs):
        refreshed = await super().refresh_user(user, handler, **kwargs)
        if isinstance(refreshed, dict) and not self.is_allowed_model(refreshed["name"], refreshed):
            self.log.info("user %s is no longer in an allowed group: a new login is required", user.name)
            return False
        return refreshed

    async def pre_spawn_start(self, user, spawner) -> None:
        """Every spawn, whoever asks for it (JupyterHub skips its own refresh for cross-user requests).
        The deny rules first: a user who logged in before the rules changed, or whose account's UID
        changed since, is refused by the rule's name."""
        try:
            self.account_rules.check(user.name)
        except AccountDenied as exc:
            self.log.warning("spawn refused by the %s rule: %s", exc.rule.value, exc)
            raise web.HTTPError(403, f"No server can start for {user.name}: {exc}.") from None
        if any(group.name == NO_CLUSTER_ACCOUNT_GROUP for group in user.groups):
            raise web.HTTPError(
                403,
                f"No server can start: the cluster account {user.name} does not exist yet."
                + (f" Apply at {self.apply_url}" if self.apply_url else ""),
            )
        if self.enable_auth_state and self.refresh_pre_spawn:
            refreshed = await self.refresh_user(user)
            if refreshed is False:
                raise web.HTTPError(
                    403,
                    f"No server can start for {user.name}: the identity provider no longer confirms access to "
                    "this portal (a group membership may have ended). Log in again.",
                )
