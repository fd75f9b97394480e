"""Slurm associations that follow the ledger's memberships (part of each ``hpchub reconcile`` pass).

The membership rule of the budget arithmetic (docs/ledger.md): the ledger is the truth; the portal creates
the matching Slurm associations with ``sacctmgr``. Ending a membership first blocks new jobs
on the association (``MaxSubmitJobs=0``); the association is removed when no job of that user
runs or pends on the account (``sacctmgr`` refuses while jobs are active).

Per pass: one ``sacctmgr show associations`` for every project account, then only the changes:

* an active member without a user association on the project's account: ``sacctmgr -i add
  user NAME account=ACC cluster=C`` (with the member's ``GrpTRESMins`` limit when they have a
  cap, from the same mirror formula with S = 0, so a capped member is bounded from the start);
* an ended membership whose association still takes jobs: ``MaxSubmitJobs=0``;
* an ended membership whose association is blocked already (an earlier pass) and has no
  active job on the account (one ``squeue --account=...``, only when there is such an
  association): ``sacctmgr -i remove user where name=U account=ACC cluster=C``. Blocking and
  removing in different passes means no job can be submitted between the squeue and the removal;
* a member again (an active and an ended membership) whose association is blocked:
  ``MaxSubmitJobs=-1``. An active member who never left keeps a block the site set by hand;
* an association of a user who is not and never was a member (e.g. made by the site by hand)
  is left alone, unless the site opts in (``prune_unknown``): then it is blocked and removed
  like an ended membership.

Each change is one ``sacctmgr`` command; a failure is reported for that association (one line)
and the others go on. Accounts without their own Slurm association are left to the mirror,
which reports them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from hub.ledger.store import MembershipState
from spawners.slurm.client import SlurmClient, SlurmCommandError, validate_user_name
from spawners.slurm.types import SlurmAssociation


class Verb(Enum):
    ADD = "add"
    BLOCK = "block"
    REMOVE = "remove"
    UNBLOCK = "unblock"


@dataclass(frozen=True)
class AssociationChange:
    """One sacctmgr command on a user association."""

    verb: Verb
    cluster: str
    account: str
    user: str
    member: bool  # the user has or had a membership (else: pruned as unknown)
    settings: Mapping[str, str] = field(default_factory=dict)  # for ADD: e.g. GrpTRESMins

    @property
    def where(self) -> str:
        return f"{self.account}/{self.user}"

    def describe(self, *, dry_run: bool = False) -> str:
        why = "membership ended" if self.member else "not a member"
        text = {
            Verb.ADD: ("association added", "would add association"),
            Verb.BLOCK: (f"new jobs blocked ({why})", f"would block new jobs ({why})"),
            Verb.REMOVE: ("association removed", f"would remove association ({why}, no active jobs)"),
            Verb.UNBLOCK: ("new jobs allowed again (member again)", "would allow new jobs again (member again)"),
        }[self.verb][1 if dry_run else 0]
        limit = self.settings.get("GrpTRESMins")
        if limit is not None:
            text += f" (GrpTRESMins {limit})"
        return f"{self.where}: {text}"


# --- pure ------------------------------------------------------------------------------------------


def _valid_user(user: str) -> bool:
    try:
        validate_user_name(user)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class MembershipPlan:
    """What the ledger's memberships ask of Slurm: changes now, and removals that wait on squeue."""

    changes: tuple[AssociationChange, ...]
    removals: tuple[AssociationChange, ...]  # blocked associations to remove if no job is active


def plan_memberships(
    memberships: Mapping[tuple[str, str], MembershipState],
    associations: Iterable[SlurmAssociation],
    accounts: Iterable[str],
    cluster: str,
    *,
    prune_unknown: bool = False,
) -> MembershipPlan:
    """Compare the ledger's memberships on ``accounts`` with Slurm's associations on ``cluster``.
    Accounts without their own association in Slurm are skipped (the mirror reports them)."""
    wanted_accounts = set(accounts)
    existing = set()
    blocked: dict[tuple[str, str], bool] = defaultdict(bool)  # any association (partition) at 0
    open_: dict[tuple[str, str], bool] = defaultdict(bool)  # any association (partition) not at 0
    account_there = set()
    for association in associations:
        if association.cluster != cluster or association.account not in wanted_accounts:
            continue
        if association.user is None:
            account_there.add(association.account)
            continue
        key = (association.account, association.user)
        existing.add(key)
        if association.max_submit_jobs == 0:
            blocked[key] = True
        else:
            open_[key] = True

    changes, removals = [], []
    for account, user in sorted(key for key, state in memberships.items() if state.active):
        if account not in wanted_accounts or account not in account_there:
            continue
        if (account, user) not in existing:
            changes.append(AssociationChange(Verb.ADD, cluster, account, user, True))
        elif blocked[(account, user)] and memberships[(account, user)].ended:
            changes.append(AssociationChange(Verb.UNBLOCK, cluster, account, user, True))
    for account, user in sorted(existing):
        state = memberships.get((account, user))
        if state is not None and state.active:
            continue
        if state is None and (not prune_unknown or not _valid_user(user)):
            continue  # the site's own association: left alone
        if open_[(account, user)]:
            changes.append(AssociationChange(Verb.BLOCK, cluster, account, user, state is not None))
        else:
            removals.append(AssociationChange(Verb.REMOVE, cluster, account, user, state is not None))
    return MembershipPlan(tuple(changes), tuple(removals))


# --- I/O ---------------------------------------------------------------------------------------------


async def apply_change(client: SlurmClient, change: AssociationChange) -> None:
    """Run the change's one sacctmgr command (SlurmCommandError when it fails)."""
    if change.verb is Verb.ADD:
        await client.sacctmgr_add_user(change.user, account=change.account, cluster=change.cluster,
                                       settings=change.settings)  # fmt: skip
    elif change.verb is Verb.REMOVE:
        await client.sacctmgr_remove_user(change.user, account=change.account, cluster=change.cluster)
    else:
        value = "0" if change.verb is Verb.BLOCK else "-1"
        await client.sacctmgr_modify("user", change.user, account=change.account, cluster=change.cluster,
                                     settings={"MaxSubmitJobs": value})  # fmt: skip


__all__ = [
    "AssociationChange",
    "MembershipPlan",
    "SlurmCommandError",
    "Verb",
    "apply_change",
    "plan_memberships",
]
