"""Slurm's account tree: which accounts exist and which are parents of others.

A limit set on an account association (``GrpTRESMins``) binds every account under it, so the
portal sets limits only on leaf accounts, never on ``root`` (the parent of every account).
The tree is read from slurmdbd's account associations, one line each::

    sacctmgr --noheader --parsable2 show associations where user= format=Cluster,Account,ParentName,User

e.g. ``hpchub|root||`` (root has no parent) and ``hpchub|cs101|root|``. Rows of user
associations (a name in ``User``) are skipped, should a Slurm version list them anyway. With
several clusters an account counts as a parent if it is one on any of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the client runs TREE_ARGV (client.account_tree): it imports this module
    from spawners.slurm.client import SlurmClient

ROOT_ACCOUNT = "root"
TREE_FORMAT = "Cluster,Account,ParentName,User"
TREE_ARGV = ("sacctmgr", "--noheader", "--parsable2", "show", "associations", "where", "user=",
             f"format={TREE_FORMAT}")  # fmt: skip


@dataclass(frozen=True)
class AccountTree:
    """(cluster, account, parent) of every account association; ``parent`` is "" for root."""

    edges: frozenset[tuple[str, str, str]]

    @property
    def accounts(self) -> frozenset[str]:
        return frozenset(account for _cluster, account, _parent in self.edges)

    def exists(self, account: str) -> bool:
        return account in self.accounts

    def children(self, account: str) -> tuple[str, ...]:
        """The accounts directly under ``account`` (on any cluster), sorted."""
        return tuple(
            sorted({child for _cluster, child, parent in self.edges if parent == account and child != account})
        )

    def is_root(self, account: str) -> bool:
        """Slurm's root account (named root, or an account without a parent)."""
        return account == ROOT_ACCOUNT or any(acc == account and not parent for _c, acc, parent in self.edges)

    def is_leaf(self, account: str) -> bool:
        """An account that exists, is not the root and has no accounts under it."""
        return self.exists(account) and not self.is_root(account) and not self.children(account)


def parse_account_tree(text: str) -> AccountTree:
    """``sacctmgr --parsable2`` lines of :data:`TREE_FORMAT` -> the tree. A line with another
    number of fields, or without an account, is an unreadable answer (ValueError naming it)."""
    edges: set[tuple[str, str, str]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = line.split("|")
        if len(fields) != 4:
            raise ValueError(f"sacctmgr show associations line {number}: expected 4 fields, got {line[:200]!r}")
        cluster, account, parent, user = (field.strip() for field in fields)
        if not account:
            raise ValueError(f"sacctmgr show associations line {number}: no account in {line[:200]!r}")
        if user:
            continue
        edges.add((cluster, account, parent))
    return AccountTree(frozenset(edges))


def tree_of(pairs: Iterable[tuple[str, str]], cluster: str = "") -> AccountTree:
    """A tree from (account, parent) pairs (tests, and callers that know the tree already)."""
    return AccountTree(frozenset((cluster, account, parent) for account, parent in pairs))


async def read_account_tree(client: SlurmClient) -> AccountTree:
    """The tree as slurmdbd has it now (one ``sacctmgr``; any cluster)."""
    return parse_account_tree(await client.account_tree())


__all__ = ["ROOT_ACCOUNT", "TREE_ARGV", "AccountTree", "parse_account_tree", "read_account_tree", "tree_of"]
