"""Unit tests for the reconciler's membership sync (hub/reconcile/memberships.py, step 6 of a pass):
the plan on literal ``sacctmgr --parsable2`` and ``squeue`` output, and whole passes against a fake
Slurm that answers only the calls it expects (anything else fails the test)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

import pytest

from hub.ledger import Ledger, upgrade
from hub.ledger.store import MembershipState
from hub.reconcile.memberships import AssociationChange, Verb, plan_memberships
from hub.reconcile.reconciler import reconcile_pass
from spawners.slurm.accounts import TREE_ARGV
from spawners.slurm.client import CommandResult, SlurmClient
from spawners.slurm.parsers import parse_associations

pytestmark = pytest.mark.unit

UTC = timezone.utc
CREATED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
CLUSTER = "hpchub"
ACCOUNTS = ("cs101", "tiny-lab", "vision-lab")

SHOW = [
    "sacctmgr", "--noheader", "--parsable2", "show", "associations", "where", "account=cs101,tiny-lab,vision-lab",
    "cluster=hpchub", "format=Cluster,Account,User,Partition,MaxSubmitJobs",
]  # fmt: skip
SQUEUE_VISION = ["squeue", "--noheader", "--account=vision-lab", "--format=%i|%a|%u|%T|%V|%k"]
# scontrol show assoc_mgr (22.05) of the three account associations, nothing used, no limits set
ASSOC_MGR = "Current Association Manager state\n\nAssociation Records\n\n" + "".join(
    f"ClusterName=hpchub Account={account} UserName= Partition= Priority=0 ID=1\n"
    "    GrpTRESMins=cpu=N(0),billing=N(0)\n    GrpTRESRunMins=cpu=N(0),billing=N(0)\n"
    for account in ACCOUNTS
)
# the limits the account mirror sets on a fresh demo ledger (cs101 50 h, tiny-lab 0.25 h, vision-lab 100 h)
ACCOUNT_LIMITS = [
    ["sacctmgr", "-i", "modify", "account", "where", f"name={account}", "cluster=hpchub", "set", f"GrpTRESMins=billing={limit}"]
    for account, limit in (("cs101", 6000), ("tiny-lab", 30), ("vision-lab", 12000))
]  # fmt: skip


TREE = "hpchub|root||\nhpchub|cs101|root|\nhpchub|tiny-lab|root|\nhpchub|vision-lab|root|\n"  # the account tree


def listing(*lines: str) -> str:
    """sacctmgr's association lines (``Cluster|Account|User|Partition|MaxSubmitJobs``) after the
    three account associations."""
    return "".join(f"{line}\n" for line in ("hpchub|cs101|||", "hpchub|tiny-lab|||", "hpchub|vision-lab|||", *lines))


# --- pure -------------------------------------------------------------------------------------------


ACTIVE, ENDED, AGAIN = MembershipState(True, False), MembershipState(False, True), MembershipState(True, True)


def change(verb: Verb, where: str, member: bool = True) -> AssociationChange:
    account, user = where.split("/")
    return AssociationChange(verb, CLUSTER, account, user, member)


@pytest.mark.parametrize(
    ("memberships", "lines", "prune", "changes", "removals"),
    [
        pytest.param({("vision-lab", "alice"): ACTIVE}, ["hpchub|vision-lab|alice||"], False, [], [], id="in-sync"),
        pytest.param(
            {("vision-lab", "erin"): ACTIVE},
            [],
            False,
            [change(Verb.ADD, "vision-lab/erin")],
            [],
            id="new-member-added",
        ),
        pytest.param(
            {("vision-lab", "bob"): ENDED},
            ["hpchub|vision-lab|bob||"],
            False,
            [change(Verb.BLOCK, "vision-lab/bob")],
            [],
            id="ended-blocked-first",
        ),
        pytest.param(
            {("vision-lab", "bob"): ENDED},
            ["hpchub|vision-lab|bob||0"],
            False,
            [],
            [change(Verb.REMOVE, "vision-lab/bob")],
            id="ended-and-blocked-removal-candidate",
        ),
        pytest.param({("vision-lab", "bob"): ENDED}, [], False, [], [], id="ended-and-gone"),
        pytest.param(
            {("vision-lab", "bob"): AGAIN},
            ["hpchub|vision-lab|bob||0"],
            False,
            [change(Verb.UNBLOCK, "vision-lab/bob")],
            [],
            id="re-added-unblocked",
        ),
        pytest.param(
            {("vision-lab", "bob"): ACTIVE},
            ["hpchub|vision-lab|bob||0"],
            False,
            [],
            [],
            id="site-block-on-a-member-who-never-left-kept",
        ),
        pytest.param(
            {("vision-lab", "bob"): ENDED},
            ["hpchub|vision-lab|bob||0", "hpchub|vision-lab|bob|gpu|"],
            False,
            [change(Verb.BLOCK, "vision-lab/bob")],
            [],
            id="one-partition-still-open",
        ),
        pytest.param({}, ["hpchub|vision-lab|zoe||"], False, [], [], id="unknown-left-alone"),
        pytest.param(
            {},
            ["hpchub|vision-lab|zoe||"],
            True,
            [change(Verb.BLOCK, "vision-lab/zoe", False)],
            [],
            id="unknown-pruned-blocked",
        ),
        pytest.param(
            {},
            ["hpchub|vision-lab|zoe||0"],
            True,
            [],
            [change(Verb.REMOVE, "vision-lab/zoe", False)],
            id="unknown-pruned-removal-candidate",
        ),
        pytest.param({}, ["hpchub|vision-lab|Zoe.X||"], True, [], [], id="unknown-bad-name-never-touched"),
        pytest.param({("other", "erin"): ACTIVE}, ["hpchub|other|||"], False, [], [], id="not-a-project-account"),
        pytest.param(
            {("vision-lab", "erin"): ACTIVE},
            ["elsewhere|vision-lab|bob||"],
            False,
            [change(Verb.ADD, "vision-lab/erin")],
            [],
            id="other-cluster-ignored",
        ),
    ],
)
def test_plan_memberships(memberships, lines, prune, changes, removals) -> None:
    plan = plan_memberships(memberships, parse_associations(listing(*lines)), ACCOUNTS, CLUSTER, prune_unknown=prune)
    assert (list(plan.changes), list(plan.removals)) == (changes, removals)


def test_plan_skips_an_account_without_its_own_association() -> None:
    associations = parse_associations("hpchub|cs101|||\n")
    plan = plan_memberships({("vision-lab", "erin"): ACTIVE}, associations, ACCOUNTS, CLUSTER)
    assert plan.changes == () and plan.removals == ()


@pytest.mark.parametrize(
    ("verb", "member", "dry_run", "line"),
    [
        pytest.param(Verb.ADD, True, False, "vision-lab/erin: association added", id="add"),
        pytest.param(Verb.BLOCK, True, False, "vision-lab/erin: new jobs blocked (membership ended)", id="block"),
        pytest.param(Verb.BLOCK, False, False, "vision-lab/erin: new jobs blocked (not a member)", id="block-unknown"),
        pytest.param(Verb.REMOVE, True, False, "vision-lab/erin: association removed", id="remove"),
        pytest.param(Verb.UNBLOCK, True, False, "vision-lab/erin: new jobs allowed again (member again)", id="unblock"),
        pytest.param(Verb.ADD, True, True, "vision-lab/erin: would add association", id="dry-add"),
        pytest.param(
            Verb.REMOVE,
            True,
            True,
            "vision-lab/erin: would remove association (membership ended, no active jobs)",
            id="dry-remove",
        ),
    ],
)
def test_change_lines(verb, member, dry_run, line) -> None:
    assert change(verb, "vision-lab/erin", member).describe(dry_run=dry_run) == line


# --- whole passes against a strict fake Slurm --------------------------------------------------------


class StrictSlurm:
    """A SlurmClient runner that answers exactly the calls it was told (argv -> answer) and
    raises on any other call, so a test sees every command a pass runs."""

    def __init__(self, expected: Mapping[tuple[str, ...], str | CommandResult]) -> None:
        self.expected = {tuple(argv): answer for argv, answer in expected.items()}
        self.calls: list[list[str]] = []

    async def __call__(self, argv: Sequence[str], *, input, env: Mapping[str, str], timeout: float) -> CommandResult:
        if argv[0] == "sacct":  # the pass's accounting read: no jobs (its window depends on the clock)
            self.calls.append(["sacct"])
            return CommandResult(0, "", "")
        key = tuple(argv)
        if key not in self.expected:
            raise AssertionError(f"unexpected Slurm call: {list(argv)}")
        self.calls.append(list(argv))
        answer = self.expected[key]
        return answer if isinstance(answer, CommandResult) else CommandResult(0, answer, "")

    def changes(self) -> list[list[str]]:
        """sacctmgr calls besides the association read and the account limits."""
        return [
            call
            for call in self.calls
            if call[0] == "sacctmgr" and call not in (SHOW, list(TREE_ARGV)) and call not in ACCOUNT_LIMITS
        ]


def expected(show: str, *more: tuple[list[str], str | CommandResult]) -> dict:
    base = {("scontrol", "show", "assoc_mgr", "accounts=cs101,tiny-lab,vision-lab", "flags=assoc"): ASSOC_MGR,
            tuple(SHOW): show, TREE_ARGV: TREE}  # fmt: skip
    base.update({tuple(argv): " Modified\n" for argv in ACCOUNT_LIMITS})
    base.update({tuple(argv): answer for argv, answer in more})
    return base


@pytest.fixture
def ledger(ledger_url: str):
    """The demo's projects and members at CREATED; the clock then stands at T0."""
    now = [CREATED]
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=lambda: now[0], cluster=CLUSTER) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", who="admin")
        ledger.create_project("cs101", account="cs101", kind="course", gpu_hours=50, who="admin")
        ledger.add_member("cs101", "dave", role="instructor", who="admin")
        ledger.create_project("tiny-lab", account="tiny-lab", kind="research", gpu_hours="0.25", who="admin")
        ledger.add_member("tiny-lab", "erin", role="pi", who="admin")
        now[0] = T0
        yield ledger


IN_SYNC = listing(
    "hpchub|cs101|dave||", "hpchub|tiny-lab|erin||", "hpchub|vision-lab|alice||", "hpchub|vision-lab|bob||"
)
BOB_BLOCKED = listing("hpchub|cs101|dave||", "hpchub|tiny-lab|erin||", "hpchub|vision-lab|alice||",
                      "hpchub|vision-lab|bob||0")  # fmt: skip
ADD_ERIN = ["sacctmgr", "-i", "add", "user", "erin", "account=vision-lab", "cluster=hpchub"]
BLOCK_BOB = ["sacctmgr", "-i", "modify", "user", "where", "name=bob", "account=vision-lab", "cluster=hpchub",
             "set", "MaxSubmitJobs=0"]  # fmt: skip
UNBLOCK_BOB = [*BLOCK_BOB[:-1], "MaxSubmitJobs=-1"]
REMOVE_BOB = ["sacctmgr", "-i", "remove", "user", "where", "name=bob", "account=vision-lab", "cluster=hpchub"]


async def run_pass(ledger: Ledger, slurm: StrictSlurm, **kwargs):
    return await reconcile_pass(ledger, SlurmClient(runner=slurm), **kwargs)


async def test_in_sync_changes_nothing(ledger: Ledger) -> None:
    slurm = StrictSlurm(expected(IN_SYNC))
    report = await run_pass(ledger, slurm)
    assert (slurm.changes(), report.problems) == ([], [])
    assert not [line for line in report.lines if "association" in line or "jobs" in line]


@pytest.mark.parametrize(
    ("prepare", "show", "more", "lines", "changes"),
    [
        pytest.param(
            lambda ledger: ledger.add_member("vision-lab", "erin", role="member", who="pi"),
            IN_SYNC,
            [(ADD_ERIN, " Associations =\n  U = erin      A = vision-lab C = hpchub    \n")],
            ["vision-lab/erin: association added"],
            [ADD_ERIN],
            id="member-added",
        ),
        pytest.param(
            lambda ledger: ledger.add_member("vision-lab", "erin", role="member", who="pi", cap_gpu_hours=2),
            IN_SYNC,
            [([*ADD_ERIN, "GrpTRESMins=billing=240"], " Associations =\n")],
            ["vision-lab/erin: association added (GrpTRESMins billing=240)"],
            [[*ADD_ERIN, "GrpTRESMins=billing=240"]],
            id="capped-member-added-with-its-limit",
        ),
        pytest.param(
            lambda ledger: ledger.remove_member("vision-lab", "bob", who="pi"),
            IN_SYNC,
            [(BLOCK_BOB, " Modified user associations...\n")],
            ["vision-lab/bob: new jobs blocked (membership ended)"],
            [BLOCK_BOB],
            id="member-removed-blocked",
        ),
        pytest.param(
            lambda ledger: ledger.remove_member("vision-lab", "bob", who="pi"),
            BOB_BLOCKED,
            [
                (
                    SQUEUE_VISION,
                    "77|vision-lab|bob|RUNNING|2026-11-29T02:00:00|\n"
                    "78|vision-lab|alice|PENDING|2026-11-29T02:30:00|\n",
                )
            ],
            [],
            [],
            id="blocked-but-a-job-runs-kept",
        ),
        pytest.param(
            lambda ledger: ledger.remove_member("vision-lab", "bob", who="pi"),
            BOB_BLOCKED,
            [
                (SQUEUE_VISION, "78|vision-lab|alice|PENDING|2026-11-29T02:30:00|\n"),
                (REMOVE_BOB, " Deleting user associations...\n"),
            ],
            ["vision-lab/bob: association removed"],
            [REMOVE_BOB],
            id="blocked-no-jobs-removed",
        ),
        pytest.param(
            lambda ledger: (
                ledger.remove_member("vision-lab", "bob", who="pi"),
                ledger.add_member("vision-lab", "bob", role="member", who="pi"),
            ),
            BOB_BLOCKED,
            [(UNBLOCK_BOB, " Modified user associations...\n")],
            ["vision-lab/bob: new jobs allowed again (member again)"],
            [UNBLOCK_BOB],
            id="re-added-unblocked",
        ),
    ],
)
async def test_a_pass_makes_associations_follow_memberships(ledger, prepare, show, more, lines, changes) -> None:
    prepare(ledger)
    slurm = StrictSlurm(expected(show, *more))
    report = await run_pass(ledger, slurm)
    assert report.problems == []
    assert [line for line in report.lines if line.startswith(("vision-lab/erin:", "vision-lab/bob:"))] == lines
    assert slurm.changes() == changes


async def test_an_unknown_association_is_pruned_only_when_asked(ledger: Ledger) -> None:
    show = listing("hpchub|cs101|dave||", "hpchub|tiny-lab|erin||", "hpchub|vision-lab|alice||",
                   "hpchub|vision-lab|bob||", "hpchub|vision-lab|zoe||")  # fmt: skip
    slurm = StrictSlurm(expected(show))
    assert (await run_pass(ledger, slurm)).problems == [] and slurm.changes() == []
    block_zoe = ["sacctmgr", "-i", "modify", "user", "where", "name=zoe", "account=vision-lab", "cluster=hpchub",
                 "set", "MaxSubmitJobs=0"]  # fmt: skip
    slurm = StrictSlurm(expected(show, (block_zoe, " Modified\n")))
    report = await run_pass(ledger, slurm, prune_unknown_associations=True)
    assert "vision-lab/zoe: new jobs blocked (not a member)" in report.lines
    assert slurm.changes() == [block_zoe]


async def test_a_failed_change_is_one_problem_and_the_others_go_on(ledger: Ledger) -> None:
    ledger.add_member("vision-lab", "erin", role="member", who="pi")
    ledger.remove_member("vision-lab", "bob", who="pi")
    refused = CommandResult(1, "", "sacctmgr: error: Problem adding user associations: Connection refused\n")
    slurm = StrictSlurm(expected(IN_SYNC, (ADD_ERIN, refused), (BLOCK_BOB, " Modified\n")))
    report = await run_pass(ledger, slurm)
    assert [p.message for p in report.problems] == [
        "vision-lab/erin: sacctmgr exited with 1: sacctmgr: error: Problem adding user associations: Connection refused"
    ]
    assert "vision-lab/bob: new jobs blocked (membership ended)" in report.lines
    assert not [line for line in report.lines if line.startswith("vision-lab/erin")]


async def test_a_refused_removal_is_a_problem(ledger: Ledger) -> None:
    """sacctmgr refuses to remove an association with active jobs (one started since squeue)."""
    ledger.remove_member("vision-lab", "bob", who="pi")
    refused = CommandResult(
        1, " Job(s) active, cancel job(s) before remove\n  JobID = 79   C = hpchub   A = vision-lab   U = bob\n", ""
    )
    slurm = StrictSlurm(expected(BOB_BLOCKED, (SQUEUE_VISION, ""), (REMOVE_BOB, refused)))
    report = await run_pass(ledger, slurm)
    assert [p.message for p in report.problems] == [
        "vision-lab/bob: sacctmgr exited with 1: Job(s) active, cancel job(s) before remove"
    ]


@pytest.mark.parametrize(
    ("command", "answer", "message"),
    [
        pytest.param(
            SHOW,
            CommandResult(1, "", "sacctmgr: error: Problem talking to the database: Connection refused\n"),
            "associations not synced with memberships: sacctmgr exited with 1: sacctmgr: error: Problem "
            "talking to the database: Connection refused",
            id="show-fails",
        ),
        pytest.param(
            SHOW,
            "Cluster|Account\n",
            "associations not synced with memberships: unreadable answer: "
            "sacctmgr line 1: 2 fields, expected 5: 'Cluster|Account'",
            id="show-garbled",
        ),
        pytest.param(
            SQUEUE_VISION,
            CommandResult(1, "", "squeue: error: Unable to contact slurm controller\n"),
            "vision-lab/bob: association not removed: squeue: squeue exited with 1: squeue: error: Unable "
            "to contact slurm controller",
            id="squeue-fails",
        ),
    ],
)
async def test_a_failed_read_changes_no_association(ledger: Ledger, command, answer, message) -> None:
    ledger.add_member("vision-lab", "erin", role="member", who="pi")
    ledger.remove_member("vision-lab", "bob", who="pi")
    slurm = StrictSlurm(expected(BOB_BLOCKED, (command, answer)))
    if command == SQUEUE_VISION:  # the read worked: erin is still added, only the removal waits
        slurm.expected[tuple(ADD_ERIN)] = " Associations =\n"
    report = await run_pass(ledger, slurm)
    assert [p.message for p in report.problems] == [message]
    assert [call for call in slurm.changes() if "remove" in call] == []


async def test_dry_run_reads_but_changes_no_association(ledger: Ledger) -> None:
    ledger.add_member("vision-lab", "erin", role="member", who="pi")
    ledger.remove_member("vision-lab", "bob", who="pi")
    slurm = StrictSlurm(expected(BOB_BLOCKED, (SQUEUE_VISION, "")))
    report = await run_pass(ledger, slurm, dry_run=True)
    assert report.problems == []
    assert [line for line in report.lines if line.startswith("vision-lab/")] == [
        "vision-lab/erin: would add association",
        "vision-lab/bob: would remove association (membership ended, no active jobs)",
    ]
    assert slurm.changes() == [] and not [call for call in slurm.calls if call in ACCOUNT_LIMITS]


# --- the client's association commands: argument lists, allowlist, names checked -----------------


async def test_client_association_commands_argv() -> None:
    slurm = StrictSlurm({
        tuple(SHOW): "", tuple(ADD_ERIN): "", tuple(REMOVE_BOB): "", tuple(SQUEUE_VISION): "",
        (*ADD_ERIN, "GrpTRESMins=billing=240", "MaxSubmitJobs=0"): "",
    })  # fmt: skip
    client = SlurmClient(runner=slurm)
    await client.sacctmgr_associations(ACCOUNTS, cluster=CLUSTER)
    await client.sacctmgr_add_user("erin", account="vision-lab", cluster=CLUSTER)
    await client.sacctmgr_add_user("erin", account="vision-lab", cluster=CLUSTER,
                                   settings={"GrpTRESMins": "billing=240", "MaxSubmitJobs": "0"})  # fmt: skip
    await client.sacctmgr_remove_user("bob", account="vision-lab", cluster=CLUSTER)
    await client.squeue_account_jobs(["vision-lab"])
    assert len(slurm.calls) == 5
    assert await client.sacctmgr_associations([], cluster=CLUSTER) == "" and await client.squeue_account_jobs([]) == ""


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda c: c.sacctmgr_add_user("Erin;rm", account="vision-lab", cluster=CLUSTER),
            "not a valid Unix user name",
            id="add-bad-user",
        ),
        pytest.param(
            lambda c: c.sacctmgr_add_user("erin", account="vision-lab where", cluster=CLUSTER),
            "not a valid Slurm account name",
            id="add-bad-account",
        ),
        pytest.param(
            lambda c: c.sacctmgr_add_user(
                "erin", account="vision-lab", cluster=CLUSTER, settings={"AdminLevel": "Administrator"}
            ),
            "not a setting this client changes",
            id="add-setting-not-allowed",
        ),
        pytest.param(
            lambda c: c.sacctmgr_add_user(
                "erin", account="vision-lab", cluster=CLUSTER, settings={"MaxSubmitJobs": "0 account=root"}
            ),
            "not a valid value for MaxSubmitJobs",
            id="add-bad-value",
        ),
        pytest.param(
            lambda c: c.sacctmgr_remove_user("-bob", account="vision-lab", cluster=CLUSTER),
            "not a valid Unix user name",
            id="remove-bad-user",
        ),
        pytest.param(
            lambda c: c.sacctmgr_remove_user("bob", account="vision-lab", cluster="A=B"),
            "not a valid Slurm cluster name",
            id="remove-bad-cluster",
        ),
        pytest.param(
            lambda c: c.sacctmgr_associations(["vision-lab,root"], cluster=CLUSTER),
            "not a valid Slurm account name",
            id="show-bad-account",
        ),
        pytest.param(
            lambda c: c.squeue_account_jobs("vision-lab"), "sequence of account names", id="squeue-one-string"
        ),
    ],
)
async def test_client_refuses_bad_names_and_settings_before_running(call, message) -> None:
    slurm = StrictSlurm({})
    with pytest.raises((ValueError, TypeError), match=message):
        await call(SlurmClient(runner=slurm))
    assert slurm.calls == []
