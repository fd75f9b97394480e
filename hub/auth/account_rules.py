"""Identity deny rules: cluster accounts that no login may map to and no spawn may run as.

The mapping (:mod:`hub.auth.mapping`) turns a principal into an account name; whether that
account may be used at all is decided here, after every mapping rule (the admin table, the
scopes, the site's callable), at login and again at every spawn:

1. the account is not on the deny-list (default: ``root``, the hub's service account ``hpchub``,
   ``nobody``; the account the hub itself runs as is always denied, whatever the list says);
2. the account's UID, if the account exists, is at least the minimum (default 1000, Debian's
   ``UID_MIN``): system accounts (``daemon``, ``mysql``, a service account made with
   ``useradd --system``) are never portal users.

An account that does not exist yet passes both (it cannot be on the list and has no UID): the
login shows the "no cluster account" page as before. A claim such as ``preferred_username`` is
user-editable at many identity providers, so these rules must hold whatever the principal is.
"""

from __future__ import annotations

import enum
import os
import pwd
from dataclasses import dataclass

from traitlets import Integer, Set, Unicode, default
from traitlets.config import Configurable

DEFAULT_MINIMUM_UID = 1000
DEFAULT_DENIED = ("root", "hpchub", "nobody")
DENIED_SETTING = "c.HPCHubAccountRules.denied_accounts"
MINIMUM_UID_SETTING = "c.HPCHubAccountRules.minimum_uid"


class DenyRule(enum.Enum):
    DENY_LIST = "deny-list"
    MINIMUM_UID = "minimum UID"


@dataclass(frozen=True)
class AccountRules:
    denied: frozenset[str]
    minimum_uid: int


class AccountDenied(Exception):
    """The account may not be used by any login or spawn; the message names the rule."""

    def __init__(self, account: str, rule: DenyRule, message: str) -> None:
        self.account = account
        self.rule = rule
        super().__init__(message)


def check_account(account: str, uid: int | None, rules: AccountRules) -> None:
    """Raise :class:`AccountDenied` if ``account`` (with ``uid``; None: no such account) is denied."""
    if account in rules.denied:
        raise AccountDenied(account, DenyRule.DENY_LIST,
                            f"the cluster account {account} is on the portal's deny-list ({DENIED_SETTING}): "
                            "no login may use it")  # fmt: skip
    if uid is not None and uid < rules.minimum_uid:
        raise AccountDenied(account, DenyRule.MINIMUM_UID,
                            f"the cluster account {account} has UID {uid}, below the portal's minimum UID "
                            f"{rules.minimum_uid} ({MINIMUM_UID_SETTING}): system accounts are not portal users")  # fmt: skip


def account_uid(account: str) -> int | None:
    """The account's UID now (never cached: a UID may change), None if there is no such account."""
    try:
        return pwd.getpwnam(account).pw_uid
    except KeyError:
        return None


def running_account() -> str:
    """The account this process (the hub) runs as."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return ""


class HPCHubAccountRules(Configurable):
    """The deny rules' settings, read by the authenticator (at login), the spawner (at every
    spawn) and ``hpchub doctor``."""

    denied_accounts = Set(
        Unicode(),
        help="Cluster accounts no login may map to and no spawn may run as (Unix user names). Default: "
        "{'root', 'hpchub', 'nobody'}; the account the hub runs as is always added. Replaces the default: "
        "keep root in it (hpchub doctor fails without). Example: {'root', 'hpchub', 'nobody', 'backup-admin'}.",
    ).tag(config=True)
    minimum_uid = Integer(
        DEFAULT_MINIMUM_UID,
        help="Lowest UID (a number) a mapped cluster account may have; accounts below it (system accounts) are "
        "refused at login and at spawn. Default 1000 (Debian's UID_MIN). Example: 5000 at a site whose "
        "users start there.",
    ).tag(config=True)

    @default("denied_accounts")
    def _denied_accounts_default(self) -> set[str]:
        return set(DEFAULT_DENIED)

    def rules(self) -> AccountRules:
        denied = set(self.denied_accounts)
        own = running_account()
        if own:
            denied.add(own)
        return AccountRules(denied=frozenset(denied), minimum_uid=self.minimum_uid)

    def check(self, account: str) -> None:
        """:func:`check_account` with the account's current UID."""
        check_account(account, account_uid(account), self.rules())
