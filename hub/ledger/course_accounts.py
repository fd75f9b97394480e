"""Which Slurm accounts and reservations a course may use (pure rules).

The reconciler mirrors a project's budget into ``GrpTRESMins`` on its Slurm account, and that
limit binds every account under it; the hub creates and deletes a course's lab-hours
reservation with its Slurm operator rights. So:

- **A project's account is a leaf account of its own**: it exists in Slurm, it is not ``root``
  (the parent of every account), it has no accounts under it, and no other project has it (the
  ledger's own check). A course is refused on any other (``check_course_account``, called by
  ``course_records.new_course`` for the page, the API and the command line alike), and the
  reconciler sets no limit on such an account of a project made before this rule or by other
  means (``mirror_refusal``).
- **A course's reservation is ``COURSE-lab``** (``lab_reservation_name``): the one name the
  course may bind, and the only one the hub creates or deletes for it. Before deleting, the hub
  checks Slurm's record of the reservation is the course's: for its account only, for no users
  (``foreign_reservation``); a reservation of that name someone else made is left alone.
"""

from __future__ import annotations

import enum

from hub.ledger.errors import LedgerInputError
from spawners.slurm.accounts import AccountTree
from spawners.slurm.reservations import Reservation

LAB_SUFFIX = "-lab"
OWN_ACCOUNT = "a course needs a Slurm account of its own with no accounts under it (sacctmgr add account NAME)"


class AccountRule(enum.Enum):
    """Why an account is not a project's own leaf account."""

    UNKNOWN = "unknown"
    ROOT = "root"
    PARENT = "parent"


def account_rule(account: str, tree: AccountTree) -> AccountRule | None:
    """The rule ``account`` breaks as a project's own account (None: it is a leaf of Slurm's tree)."""
    if tree.is_root(account):
        return AccountRule.ROOT
    if not tree.exists(account):
        return AccountRule.UNKNOWN
    if tree.children(account):
        return AccountRule.PARENT
    return None


def _children(account: str, tree: AccountTree) -> str:
    children = tree.children(account)
    shown = ", ".join(children[:5]) + (f" and {len(children) - 5} more" if len(children) > 5 else "")
    return shown


def check_course_account(account: str, tree: AccountTree) -> str:
    """``account`` if a course may use it, else LedgerInputError naming the field and the rule."""
    rule = account_rule(account, tree)
    if rule is AccountRule.UNKNOWN:
        raise LedgerInputError("account", f"Slurm has no account {account!r}; an administrator creates it first "
                                          f"(sacctmgr add account {account}), then the course")  # fmt: skip
    if rule is AccountRule.ROOT:
        raise LedgerInputError("account", f"{account!r} is Slurm's root account, the parent of every account: a "
                                          f"course's limits there would cap the whole cluster; {OWN_ACCOUNT}")  # fmt: skip
    if rule is AccountRule.PARENT:
        raise LedgerInputError("account", f"{account!r} is the parent of other Slurm accounts "
                                          f"({_children(account, tree)}): a course's limits there would cap them "
                                          f"too; {OWN_ACCOUNT}")  # fmt: skip
    return account


def mirror_refusal(account: str, tree: AccountTree) -> str | None:
    """Why the reconciler sets no limit on (and adds no association to) a project's account: it
    is root, a parent of other accounts, or unknown to Slurm. None: a leaf, mirrored."""
    rule = account_rule(account, tree)
    if rule is AccountRule.ROOT:
        return f"{account}: Slurm's root account: no limits set, no associations changed (close the project)"
    if rule is AccountRule.PARENT:
        return (
            f"{account}: the parent of other Slurm accounts ({_children(account, tree)}): no limits set, no "
            "associations changed; a project needs an account of its own with no accounts under it"
        )
    return None  # unknown: the pass reports "no Slurm association" as before


def lab_reservation_name(course: str) -> str:
    """The course's lab-hours reservation: the course's name and ``-lab`` (``cs101-lab``)."""
    return f"{course}{LAB_SUFFIX}"


def check_course_reservation(course: str, reservation: str | None) -> str | None:
    """The reservation a course may bind: none, or its own ``COURSE-lab``."""
    if reservation is None:
        return None
    own = lab_reservation_name(course)
    if reservation != own:
        raise LedgerInputError("reservation", f"must be the course's own lab-hours reservation {own} (the portal's "
                                              f"reservations are named COURSE{LAB_SUFFIX}); got {reservation!r}")  # fmt: skip
    return reservation


def _names(value: str) -> set[str]:
    return {name for name in value.split(",") if name and name != "(null)"}


def foreign_reservation(course: str, account: str, reservation: str, found: Reservation | None) -> str | None:
    """Why the hub must not create or delete ``reservation`` for ``course`` (None: it may): a name
    not of the course's own form, or Slurm's record of it not the course's (other accounts, or
    users)."""
    own = lab_reservation_name(course)
    if reservation != own:
        return (
            f"reservation {reservation} is not named like {course}'s own ({own}): the hub switches only the "
            "lab-hours reservations it names; an admin switches this one with scontrol"
        )
    if found is None:
        return None
    accounts, users = _names(found.accounts), _names(found.users)
    if accounts != {account} or users:
        held = f"Accounts={found.accounts or '(none)'}" + (f" Users={found.users}" if users else "")
        return (
            f"reservation {reservation} is not the course's: Slurm's record has {held}, the course's account is "
            f"{account}; the hub deletes only reservations it made for the course (an admin deletes this one "
            f"with scontrol delete ReservationName={reservation})"
        )
    return None


__all__ = [
    "AccountRule",
    "account_rule",
    "check_course_account",
    "check_course_reservation",
    "foreign_reservation",
    "lab_reservation_name",
    "mirror_refusal",
]
