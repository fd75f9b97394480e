"""Which Slurm accounts and reservations a course may use: Slurm's account tree parsed from its
own output, the account rule, the reservation rule, the check before deleting a reservation,
and the reconciler's closed-project limit."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hub.ledger.course_accounts import (
    AccountRule,
    account_rule,
    check_course_account,
    check_course_reservation,
    foreign_reservation,
    lab_reservation_name,
    mirror_refusal,
)
from hub.ledger.errors import LedgerInputError
from hub.reconcile.plan import closed_limit
from spawners.slurm.accounts import TREE_ARGV, parse_account_tree, read_account_tree
from spawners.slurm.client import CommandResult, SlurmClient
from spawners.slurm.reservations import parse_reservations
from spawners.slurm.types import AssociationUsage

pytestmark = pytest.mark.unit

# sacctmgr --noheader --parsable2 show associations where user= format=Cluster,Account,ParentName,User
# (Slurm 22.05, the demo cluster with a department of two accounts added)
SACCTMGR_TREE = """hpchub|root||
hpchub|cs101|root|
hpchub|dept|root|
hpchub|dept-a|dept|
hpchub|dept-b|dept|
hpchub|tiny-lab|root|
hpchub|vision-lab|root|
sc6|root||
sc6|vision-lab|root|
sc6|sc6-only|vision-lab|
"""
TREE = parse_account_tree(SACCTMGR_TREE)


def test_the_tree_is_read_from_slurms_own_lines() -> None:
    assert TREE.accounts == {"root", "cs101", "dept", "dept-a", "dept-b", "tiny-lab", "vision-lab", "sc6-only"}
    assert TREE.children("dept") == ("dept-a", "dept-b")
    assert TREE.children("root") == ("cs101", "dept", "tiny-lab", "vision-lab")
    assert TREE.children("vision-lab") == ("sc6-only",)  # a parent on one cluster is a parent
    assert TREE.children("cs101") == ()


def test_user_rows_are_skipped_should_slurm_list_them() -> None:
    tree = parse_account_tree("hpchub|root||\nhpchub|root||root\nhpchub|cs101|root|\nhpchub|cs101||carol\n")
    assert tree.accounts == {"root", "cs101"} and tree.is_leaf("cs101")


@pytest.mark.parametrize("text", [
    pytest.param("hpchub|cs101|root\n", id="three-fields"),
    pytest.param("hpchub|cs101|root||extra\n", id="five-fields"),
    pytest.param("hpchub||root|\n", id="no-account"),
    pytest.param("sacctmgr: error: Problem talking to the database\n", id="an-error-on-stdout"),
])  # fmt: skip
def test_an_unreadable_tree_is_an_error_not_an_empty_tree(text) -> None:
    with pytest.raises(ValueError, match="sacctmgr show associations line 1"):
        parse_account_tree(text)


async def test_the_tree_is_one_sacctmgr_call() -> None:
    calls = []

    async def runner(argv, *, input, env, timeout):
        calls.append(list(argv))
        return CommandResult(0, SACCTMGR_TREE, "")

    tree = await read_account_tree(SlurmClient(runner=runner))
    assert calls == [list(TREE_ARGV)] and tree == TREE
    assert TREE_ARGV[-2:] == ("user=", "format=Cluster,Account,ParentName,User")


@pytest.mark.parametrize(("account", "rule"), [
    pytest.param("root", AccountRule.ROOT, id="root"),
    pytest.param("dept", AccountRule.PARENT, id="a-parent"),
    pytest.param("vision-lab", AccountRule.PARENT, id="a-parent-on-another-cluster"),
    pytest.param("cs102", AccountRule.UNKNOWN, id="unknown"),
    pytest.param("cs101", None, id="a-leaf-under-root"),
    pytest.param("dept-a", None, id="a-leaf-under-a-department"),
])  # fmt: skip
def test_the_account_rule(account, rule) -> None:
    assert account_rule(account, TREE) is rule
    if rule is None:
        assert check_course_account(account, TREE) == account and mirror_refusal(account, TREE) is None
        return
    with pytest.raises(LedgerInputError) as caught:
        check_course_account(account, TREE)
    assert caught.value.field == "account" and repr(account) in caught.value.rule
    refusal = mirror_refusal(account, TREE)
    assert (refusal is None) is (rule is AccountRule.UNKNOWN)  # unknown: "no Slurm association", as before


def test_an_account_without_a_parent_is_a_root_whatever_its_name() -> None:
    tree = parse_account_tree("hpchub|top||\nhpchub|cs101|top|\n")
    assert account_rule("top", tree) is AccountRule.ROOT and account_rule("cs101", tree) is None


@pytest.mark.parametrize(("course", "reservation", "allowed"), [
    pytest.param("cs101", None, True, id="none"),
    pytest.param("cs101", "cs101-lab", True, id="its-own"),
    pytest.param("cs101", "cs102-lab", False, id="another-courses"),
    pytest.param("cs101", "maint", False, id="a-site-reservation"),
    pytest.param("cs101", "cs101-lab-2", False, id="a-longer-name"),
    pytest.param("cs101", "CS101-lab", False, id="another-case"),
])  # fmt: skip
def test_the_reservation_rule(course, reservation, allowed) -> None:
    if allowed:
        assert check_course_reservation(course, reservation) == reservation
        return
    with pytest.raises(LedgerInputError) as caught:
        check_course_reservation(course, reservation)
    assert caught.value.field == "reservation" and lab_reservation_name(course) in caught.value.rule


def _reservation(line: str):
    return parse_reservations(
        f"ReservationName=cs101-lab StartTime=2026-11-29T10:00:00 EndTime=2026-11-29T11:00:00 Duration=01:00:00 "
        f"Nodes=gpu03 NodeCnt=1 CoreCnt=16 Features=(null) PartitionName=(null) Flags=IGNORE_JOBS {line} "
        "Licenses=(null) State=ACTIVE BurstBuffer=(null) Watts=n/a MaxStartDelay=(null)\n"
    )["cs101-lab"]


@pytest.mark.parametrize(("reservation", "slurm_line", "refused"), [
    pytest.param("cs101-lab", None, None, id="none-there"),
    pytest.param("cs101-lab", "TRES=cpu=16 Users=(null) Groups=(null) Accounts=cs101", None, id="the-hubs-own"),
    pytest.param("cs101-lab", "TRES=cpu=16 Users=(null) Groups=(null) Accounts=vision-lab",
                 "not the course's: Slurm's record has Accounts=vision-lab", id="other-accounts"),
    pytest.param("cs101-lab", "TRES=cpu=16 Users=(null) Groups=(null) Accounts=cs101,vision-lab",
                 "Accounts=cs101,vision-lab", id="also-other-accounts"),
    pytest.param("cs101-lab", "TRES=cpu=16 Users=root Groups=(null) Accounts=(null)", "Users=root", id="users"),
    pytest.param("maint", None, "is not named like cs101's own (cs101-lab)", id="a-foreign-name"),
])  # fmt: skip
def test_the_hub_deletes_only_the_courses_own_reservation(reservation, slurm_line, refused) -> None:
    found = None if slurm_line is None else _reservation(slurm_line)
    answer = foreign_reservation("cs101", "cs101", reservation, found)
    if refused is None:
        assert answer is None
    else:
        assert answer is not None and refused in answer, answer


@pytest.mark.parametrize(("limit", "used", "running", "expected"), [
    pytest.param(6000, 10, 20, 30, id="lowered-to-what-was-used"),
    pytest.param(30, 10, 20, 30, id="already-frozen-unchanged"),
    pytest.param(None, 10, 20, None, id="cleared-by-an-admin-stays-cleared"),
    pytest.param(5, 10, 20, 5, id="below-S-never-raised"),
])  # fmt: skip
def test_a_closed_project_is_only_ever_lowered_to_what_it_used(limit, used, running, expected) -> None:
    usage = AssociationUsage("hpchub", "cs101", None, None, limit, used, running)
    assert closed_limit(usage) == expected


def test_reservation_users_are_read() -> None:
    found = _reservation("TRES=cpu=16 Users=alice,bob Groups=(null) Accounts=(null)")
    assert (found.users, found.accounts, found.start.tzinfo is not None) == ("alice,bob", "(null)", True)
    assert found.active_at(datetime(2026, 11, 29, 10, 30).astimezone(timezone.utc))
