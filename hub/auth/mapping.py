"""Identity -> cluster account: pure, configurable rules.

A login gives a scoped principal such as ``alice@uni.example``. Which Unix (and
Slurm) account it may use is decided here and nowhere else:

1. the admin-managed mapping table (principal -> account) wins if it names the principal;
2. else the principal's scope (the part after ``@``) must be listed: the account is
   ``prefix + local part + suffix`` for that scope, so ``alice@uni-a.example`` and
   ``alice@uni-b.example`` can never land on the same account (give one a prefix);
3. else the principal is refused, with a message that says so.

Never strip a scope blindly (CVE-2022-31027: a GitHub account with a university
e-mail passed an institution check).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
PRINCIPAL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}")


class MappingRefused(Exception):
    """The principal may not use any cluster account; the message says why."""


@dataclass(frozen=True)
class ScopeRule:
    """How principals of one scope (domain) map to accounts."""

    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class MappingRules:
    scopes: Mapping[str, ScopeRule] = field(default_factory=dict)  # domain -> rule
    table: Mapping[str, str] = field(default_factory=dict)  # principal -> account
    callable_rule: Callable[[str], str | None] | None = None  # last resort, site code

    @classmethod
    def from_config(cls, scopes: Mapping[str, object], table: Mapping[str, str], callable_rule=None) -> "MappingRules":
        parsed: dict[str, ScopeRule] = {}
        for domain, rule in scopes.items():
            if not isinstance(domain, str) or not re.fullmatch(r"[a-z0-9.-]+\.[a-z]{2,}", domain):
                raise ValueError(f"scoped_domains: {domain!r} is not a lower-case domain name")
            rule = rule or {}
            if not isinstance(rule, Mapping) or set(rule) - {"prefix", "suffix"}:
                raise ValueError(f"scoped_domains[{domain!r}]: only 'prefix' and 'suffix' may be set")
            parsed[domain] = ScopeRule(prefix=str(rule.get("prefix", "")), suffix=str(rule.get("suffix", "")))
        normalised_table = {principal.lower(): account for principal, account in table.items()}
        for principal, account in normalised_table.items():
            if not UNIX_NAME.fullmatch(account):
                raise ValueError(f"account_map[{principal!r}]: {account!r} is not a valid Unix user name")
        return cls(scopes=parsed, table=normalised_table, callable_rule=callable_rule)


def load_account_table(path: str) -> dict[str, str]:
    """The admin-managed table: a JSON object {principal: account}. Missing file: empty."""
    if not path:
        return {}
    file = Path(path)
    if not file.exists():
        return {}
    data = json.loads(file.read_text())
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path}: must be a JSON object of principal -> account name")
    return data


def map_principal(principal: object, rules: MappingRules) -> str:
    """The cluster account for ``principal``, or :class:`MappingRefused`."""
    if not isinstance(principal, str) or not PRINCIPAL.fullmatch(principal):
        raise MappingRefused("the identity provider sent no scoped principal (user@institution)")
    principal = principal.lower()
    local, _, scope = principal.rpartition("@")
    account = rules.table.get(principal)
    if account is None and scope in rules.scopes:
        rule = rules.scopes[scope]
        account = f"{rule.prefix}{local}{rule.suffix}"
    if account is None and rules.callable_rule is not None:
        account = rules.callable_rule(principal)
    if account is None:
        allowed = ", ".join(sorted(rules.scopes)) or "none configured"
        raise MappingRefused(f"accounts from {scope} cannot use this portal (allowed institutions: {allowed})")
    if not UNIX_NAME.fullmatch(account):
        raise MappingRefused(f"{principal} maps to {account!r}, which is not a valid cluster account name")
    return account


MAX_SUBJECT = 255  # OpenID Connect: sub is at most 255 ASCII characters


def map_subject(subject: object, table: Mapping[str, str]) -> str:
    """The cluster account registered for the provider's ``sub`` claim, or :class:`MappingRefused`.

    ``sub`` is the provider's immutable identifier of a person (never re-assigned, not editable
    by the user, compared exactly); only the admin's table maps it, nothing is derived from it."""
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT:
        raise MappingRefused("the identity provider sent no subject (sub)")
    account = table.get(subject)
    if account is None:
        raise MappingRefused(f"your identity ({subject[:64]}) is not registered for a cluster account; "
                             "ask the centre to add it")  # fmt: skip
    if not UNIX_NAME.fullmatch(account):
        raise MappingRefused(
            f"the account registered for {subject[:64]}, {account!r}, is not a valid cluster account name"
        )
    return account
