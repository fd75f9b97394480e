"""Unit tests for ``hpchub reconcile`` (hub/reconcile/plan.py, reconciler.py): the pure planning and mirror
on literal Slurm 22.05 output, one pass against a fake Slurm and a real SQLite ledger, and the
command's exit codes with fake Slurm binaries."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hub import cli
from hub.commands.ledger import LEDGER_URL_ENV
from hub.ledger import Ledger, upgrade
from hub.ledger.arithmetic import DEFAULT_RATES, MGS_PER_GPU_HOUR, slurm_job_billing
from hub.ledger.types import (
    Booking,
    MirrorFigures,
    ProjectInfo,
    ProjectKind,
    ProjectState,
)
from hub.reconcile.plan import (
    LimitChange,
    ReconcileError,
    counting_start,
    held_beside_ledger,
    limit_change,
    mirror_limit,
    plan_accounting,
    sacct_window_start,
    slurm_cluster,
)
from hub.reconcile.reconciler import reconcile_pass
from spawners.slurm.accounts import TREE_ARGV
from spawners.slurm.client import CommandResult, SlurmClient
from spawners.slurm.parsers import parse_accounting, parse_assoc_mgr
from spawners.slurm.types import AssociationUsage

pytestmark = pytest.mark.unit

UTC = timezone.utc
H = MGS_PER_GPU_HOUR
T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # "now" in these tests
CREATED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the projects' creation
CLUSTER = "hpchub"


def assoc(
    account: str, user: str = "", limit: str = "N", used: int = 0, running: int = 0, cluster: str = CLUSTER
) -> str:
    """One association record as ``scontrol show assoc_mgr flags=assoc`` prints it (22.05)."""
    return (
        f"ClusterName={cluster} Account={account} UserName={user} Partition= Priority=0 ID=3\n"
        "    SharesRaw/Norm/Level/Factor=1/0.25/4/0.00\n"
        "    GrpJobs=N(0) GrpJobsAccrue=N(0)\n"
        "    GrpTRES=cpu=N(0),mem=N(0),energy=N(0),node=N(0),billing=N(0),fs/disk=N(0),vmem=N(0),pages=N(0),"
        "gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)\n"
        f"    GrpTRESMins=cpu=N(12),mem=N(48300),energy=N(0),node=N(0),billing={limit}({used}),fs/disk=N(0),"
        "vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)\n"
        f"    GrpTRESRunMins=cpu=N(0),mem=N(0),energy=N(0),node=N(0),billing=N({running}),fs/disk=N(0),"
        "vmem=N(0),pages=N(0),gres/gpu=N(0),gres/gpu:a100=N(0),gres/gpu:h200=N(0)\n"
        "    MaxJobs= MaxJobsAccrue= MaxSubmitJobs= MaxWallPJ=\n"
    )


def assoc_mgr(*records: str) -> str:
    return "Current Association Manager state\n\nAssociation Records\n\n" + "".join(records)


# The demo's associations before any limit was set, nothing used.
FRESH = assoc_mgr(
    assoc("cs101"), assoc("cs101", "carol(1005)"), assoc("cs101", "dave(1003)"),
    assoc("tiny-lab"), assoc("tiny-lab", "erin(1006)"),
    assoc("vision-lab"), assoc("vision-lab", "alice(1001)"), assoc("vision-lab", "bob(1002)"),
)  # fmt: skip

# sacct lines (TZ=UTC, the reconciler's --format): finished jobs of the demo's accounts
BOB_H200_90S = "12|bob|vision-lab|COMPLETED|90|billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16000M,node=1|2026-11-29T02:10:00|2026-11-29T02:11:30|hpchub|5"
ALICE_2H200_600S = "13|alice|vision-lab|CANCELLED by 1001|600|billing=4,cpu=8,gres/gpu:h200=2,gres/gpu=2,mem=32000M,node=1|2026-11-29T02:00:00|2026-11-29T02:10:00|hpchub|60"
ALICE_CPU = "14|alice|vision-lab|COMPLETED|2|cpu=1,mem=1000M,node=1|2026-11-29T02:46:23|2026-11-29T02:46:25|hpchub|5"
NEVER_RAN = "15|bob|vision-lab|CANCELLED by 0|0||None|2026-11-29T02:50:40|hpchub|5"
BEFORE_CREATION = "3|bob|vision-lab|COMPLETED|60|billing=2,cpu=4,gres/gpu:h200=1,gres/gpu=1,mem=16000M,node=1|2026-11-27T02:13:33|2026-11-27T02:14:33|hpchub|5"
# running: alice's outside sbatch, 2 x h200 with a 10 min limit; carol's a100 course job, 20 min
ALICE_RUNNING = "20|alice|vision-lab|RUNNING|26|billing=4,cpu=8,gres/gpu:h200=2,gres/gpu=2,mem=32000M,node=1|2026-11-29T02:59:34|Unknown|hpchub|10"
CAROL_A100_RUNNING = "21|carol|cs101|RUNNING|30|billing=1,cpu=4,gres/gpu:a100=1,gres/gpu=1,mem=16000M,node=1|2026-11-29T02:59:30|Unknown|hpchub|20"


def sacct(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


# ``sacctmgr --noheader --parsable2 show associations ... format=Cluster,Account,User,Partition,MaxSubmitJobs``:
# the demo's associations, one per ledger membership (nothing for the membership sync to do)
DEMO_ASSOCIATIONS = (
    "hpchub|cs101|||\nhpchub|cs101|carol||\nhpchub|cs101|dave||\n"
    "hpchub|tiny-lab|||\nhpchub|tiny-lab|erin||\n"
    "hpchub|vision-lab|||\nhpchub|vision-lab|alice||\nhpchub|vision-lab|bob||\n"
)


# ``sacctmgr ... show associations where user= format=Cluster,Account,ParentName,User``: the account tree
DEMO_TREE = "hpchub|root||\nhpchub|cs101|root|\nhpchub|tiny-lab|root|\nhpchub|vision-lab|root|\n"


def command_key(argv: Sequence[str]) -> str:
    """``sacctmgr tree`` for the account tree's read, ``sacctmgr show`` for sacctmgr's other reads,
    else the command's name."""
    if tuple(argv) == TREE_ARGV:
        return "sacctmgr tree"
    return "sacctmgr show" if argv[0] == "sacctmgr" and "show" in argv else argv[0]


class FakeSlurm:
    """A SlurmClient runner answering each command from a queue (the last answer repeats).
    ``sacctmgr show`` (the association read) answers the demo's associations unless told."""

    def __init__(self, **answers: str | CommandResult) -> None:
        self.answers: dict[str, list] = {"sacctmgr show": [DEMO_ASSOCIATIONS], "sacctmgr tree": [DEMO_TREE]}
        self.answers.update({name: [answer] for name, answer in answers.items()})
        self.calls: list[list[str]] = []

    def answer(self, command: str, *answers: str | CommandResult) -> None:
        self.answers[command] = list(answers)

    async def __call__(self, argv: Sequence[str], *, input, env: Mapping[str, str], timeout: float) -> CommandResult:
        self.calls.append(list(argv))
        queue = self.answers.get(command_key(argv), [""])
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer if isinstance(answer, CommandResult) else CommandResult(0, answer, "")

    def commands(self, name: str) -> list[list[str]]:
        return [call for call in self.calls if command_key(call) == name]

    @property
    def limits_set(self) -> list[str]:
        """``where=billing`` for every sacctmgr modify, e.g. ``vision-lab/bob=billing=2400``."""
        out = []
        for call in self.commands("sacctmgr"):
            if "GrpTRESMins" not in call[-1]:
                continue
            names = dict(word.split("=", 1) for word in call if "=" in word and not word.startswith("GrpTRESMins"))
            where = names["name"] if call[3] == "account" else f"{names['account']}/{names['name']}"
            out.append(f"{where}={call[-1].removeprefix('GrpTRESMins=')}")
        return out


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(CREATED)


@pytest.fixture
def ledger(ledger_url: str, clock: Clock):
    """The demo's projects, created at CREATED; the clock then stands at T0."""
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=clock, cluster=CLUSTER) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=20, who="admin")
        ledger.create_project("cs101", account="cs101", kind="course", gpu_hours=50, who="admin")
        ledger.add_member("cs101", "dave", role="instructor", who="admin")
        ledger.add_member("cs101", "carol", role="student", cap_gpu_hours=5, who="admin")
        ledger.create_project("tiny-lab", account="tiny-lab", kind="research", gpu_hours="0.25", who="admin")
        ledger.add_member("tiny-lab", "erin", role="pi", who="admin")
        clock.now = T0
        yield ledger


async def run_pass(ledger: Ledger, slurm: FakeSlurm, **kwargs):
    return await reconcile_pass(ledger, SlurmClient(runner=slurm), **kwargs)


# --- pure: planning -----------------------------------------------------------------------------


def project(
    name: str = "vision-lab", start: date | None = None, created: datetime | None = CREATED, **kwargs
) -> ProjectInfo:
    fields = {"state": ProjectState.ACTIVE, "state_reason": None, "period_end": None} | kwargs
    return ProjectInfo(name, name, ProjectKind.RESEARCH, fields["state"], fields["state_reason"], start,
                       fields["period_end"], created)  # fmt: skip


@pytest.mark.parametrize(
    ("projects", "expected"),
    [
        pytest.param([project()], T0 - timedelta(days=30), id="no-period-30-days"),
        pytest.param(
            [project(start=date(2026, 9, 1)), project("cs101")], datetime(2026, 9, 1, tzinfo=UTC), id="earliest-start"
        ),
        pytest.param([project(start=date(2026, 11, 20))], datetime(2026, 11, 20, tzinfo=UTC), id="recent-start"),
        pytest.param(
            [project(start=date(2026, 11, 20)), project("cs101")], T0 - timedelta(days=30), id="no-period-is-earlier"
        ),
        pytest.param([project(start=date(2026, 12, 1))], T0, id="future-start-now"),
        pytest.param([], T0, id="no-projects"),
    ],
)
def test_sacct_window_start(projects: list[ProjectInfo], expected: datetime) -> None:
    assert sacct_window_start(projects, T0, UTC) == expected


def test_counting_start_is_the_period_start_in_the_site_zone_else_the_creation() -> None:
    berlin = timezone(timedelta(hours=1))
    assert counting_start(project(start=date(2026, 9, 1)), berlin) == datetime(2026, 8, 31, 23, 0, tzinfo=UTC)
    assert counting_start(project(), UTC) == CREATED


def test_plan_accounting_sorts_sacct_jobs() -> None:
    records = parse_accounting(sacct(
        BOB_H200_90S, ALICE_CPU, NEVER_RAN, BEFORE_CREATION, ALICE_RUNNING, CAROL_A100_RUNNING,
        "30|bob|vision-lab|COMPLETED|60|billing=0,cpu=4,gres/gpu:v100=1,gres/gpu=1,node=1|2026-11-29T02:00:00|2026-11-29T02:01:00|hpchub|5",
        "31|bob|vision-lab|COMPLETED|60|billing=0,cpu=4,gres/gpu=1,node=1|2026-11-29T02:00:00|2026-11-29T02:01:00|hpchub|5",
        "32|bob|other-lab|COMPLETED|60|billing=2,gres/gpu:h200=1,gres/gpu=1|2026-11-29T02:00:00|2026-11-29T02:01:00|hpchub|5",
        "33|bob|vision-lab|COMPLETED|60|billing=0,gres/gpu:v100=1,gres/gpu=1|2026-11-20T02:00:00|2026-11-20T02:01:00|hpchub|5",
    ))  # fmt: skip
    plan = plan_accounting(records, [project(), project("cs101")], CLUSTER, DEFAULT_RATES, UTC)
    assert [r.job_id for r in plan.charges] == ["12", "14"]  # 15 never ran, 3 ended before the project, 32 not ours
    # 33 (v100) ended before the project: not its problem either
    assert [r.job_id for r in plan.running] == ["20", "21"]
    assert [(p.account, p.message) for p in plan.problems] == [
        ("vision-lab", "job 30 on vision-lab: unknown GPU type v100 (known: a100, h200)"),
        ("vision-lab", "job 31 on vision-lab: 1 GPUs, 0 of them with a type: GPUs without a type cannot be weighted"),
    ]
    elsewhere = plan_accounting(records[:1], [project()], "other", DEFAULT_RATES, UTC)
    assert elsewhere.problems[0].message == "job 12 on vision-lab: cluster 'hpchub', expected 'other'"


def test_held_beside_ledger_outside_reservations_and_jobs_ended_after_s() -> None:
    records = parse_accounting(sacct(ALICE_RUNNING, CAROL_A100_RUNNING, BOB_H200_90S))
    plan = plan_accounting(records, [project(), project("cs101")], CLUSTER, DEFAULT_RATES, UTC)
    # S read long after bob's job ended: only the running outside jobs, whole reservations
    held = held_beside_ledger(plan, set(), T0, DEFAULT_RATES)
    assert held == {
        ("vision-lab", None): 2 * 600 * 1000, ("vision-lab", "alice"): 2 * 600 * 1000,
        ("cs101", None): 1200 * 500, ("cs101", "carol"): 1200 * 500,
    }  # fmt: skip
    # carol's job is the portal's: the ledger's session counts it, not this
    assert ("cs101", None) not in held_beside_ledger(plan, {"21"}, T0, DEFAULT_RATES)
    # S read while bob's job still ran: it also holds the unused part of its 5 min (300 - 90 s)
    read_before_end = datetime(2026, 11, 29, 2, 11, 0, tzinfo=UTC)
    assert held_beside_ledger(plan, set(), read_before_end, DEFAULT_RATES)[("vision-lab", "bob")] == 210 * 1000


@pytest.mark.parametrize(
    ("usage", "figures", "beside", "is_open", "expected"),
    [
        pytest.param(
            AssociationUsage(CLUSTER, "vision-lab", None, None, None, 0, 0),
            MirrorFigures(100 * H, 0, 0),
            0,
            True,
            12_000,
            id="fresh",
        ),
        pytest.param(
            AssociationUsage(CLUSTER, "vision-lab", None, None, 12_000, 3, 40),
            MirrorFigures(100 * H, 0, 0),
            2 * H // 6,
            True,
            12_003,
            id="outside-job-running",
        ),
        pytest.param(
            AssociationUsage(CLUSTER, "vision-lab", None, None, 900, 500, 0),
            MirrorFigures(H, 2 * H, 0),
            0,
            True,
            500,
            id="overspent-never-below-S",
        ),
        pytest.param(
            AssociationUsage(CLUSTER, "cs101", None, None, 6_000, 10, 20),
            MirrorFigures(50 * H, 0, 0),
            0,
            False,
            30,
            id="closed-L-is-S",
        ),
        pytest.param(
            AssociationUsage(CLUSTER, "vision-lab", "alice", None, 2_400, 0, 0),
            MirrorFigures(None, 0, 0),
            0,
            True,
            None,
            id="no-cap-no-limit",
        ),
    ],
)
def test_mirror_limit(usage, figures, beside, is_open, expected) -> None:
    assert mirror_limit(usage, figures, beside, is_open=is_open, rates=DEFAULT_RATES) == expected


def test_limit_change_only_when_it_differs() -> None:
    usage = AssociationUsage(CLUSTER, "vision-lab", "bob", None, 2_400, 3, 40)
    assert limit_change(usage, 2_400) is None
    change = limit_change(usage, None)
    assert change == LimitChange(CLUSTER, "vision-lab", "bob", 2_400, None, 43)
    assert (change.setting, change.describe()) == (
        "billing=-1",
        "vision-lab/bob: GrpTRESMins billing limit 2400 -> none (no cap)",
    )
    assert limit_change(AssociationUsage(CLUSTER, "cs101", None, None, None, 0, 0), 0).setting == "billing=0"


def test_slurm_cluster_comes_from_slurmctld() -> None:
    usages = parse_assoc_mgr(FRESH)
    assert slurm_cluster(usages, None) == slurm_cluster(usages, CLUSTER) == CLUSTER
    with pytest.raises(ReconcileError, match="--cluster other: slurmctld of this SLURM_CONF is cluster hpchub"):
        slurm_cluster(usages, "other")
    with pytest.raises(ReconcileError, match="no association"):
        slurm_cluster([], None)
    assert slurm_cluster([], "other") == "other"


# --- the mirror's required cases, one pass each ------------------------------------------


async def test_an_outside_job_running_when_the_mirror_runs(ledger: Ledger) -> None:
    """alice's sbatch, 2 x h200 with a 10 min limit: Slurm already counts 40 run-minutes
    for it; the ledger holds 2 x 10/60 x 1.0 GPU-h for it, so L = 40 + 120 x (100 - 1/3) = 12000."""
    slurm = FakeSlurm(
        scontrol=assoc_mgr(assoc("cs101"), assoc("tiny-lab"), assoc("vision-lab", running=40),
                           assoc("vision-lab", "alice(1001)", running=40), assoc("vision-lab", "bob(1002)")),
        sacct=sacct(ALICE_RUNNING),
    )  # fmt: skip
    report = await run_pass(ledger, slurm)
    assert report.problems == []
    assert "vision-lab=billing=12000" in slurm.limits_set
    assert "vision-lab/bob=billing=2400" in slurm.limits_set  # bob's cap: his S is 0, alice's job is not his
    assert "outside job 20 on vision-lab (alice) running: holds 0.3333 GPU-h" in report.lines
    usage = ledger.usage("vision-lab")  # 26 s of it used so far, the rest held
    assert (usage["used_gpu_hours"], usage["held_gpu_hours"]) == (0.0144, 0.3189)
    # without counting the outside job Slurm would let its 40 billing-minutes be spent twice
    plain = mirror_limit(AssociationUsage(CLUSTER, "vision-lab", None, None, None, 0, 40), ledger.mirror_figures("vision-lab"),
                         0, is_open=True, rates=DEFAULT_RATES)  # fmt: skip
    assert plain == 12_040


async def test_a_mirror_run_between_two_slurm_usage_updates(ledger: Ledger, clock: Clock) -> None:
    """Slurm refreshes used/run-minutes every PriorityCalcPeriod; the ledger subtracts the
    whole reservation of a running job, so L stays put whether Slurm has refreshed or not."""
    slurm = FakeSlurm(
        scontrol=assoc_mgr(assoc("cs101"), assoc("tiny-lab"), assoc("vision-lab", used=3, running=40),
                           assoc("vision-lab", "alice(1001)", used=3, running=40)),
        sacct=sacct(ALICE_RUNNING),
    )  # fmt: skip
    await run_pass(ledger, slurm)
    assert slurm.limits_set[-1] == "vision-lab=billing=12003"
    first = len(slurm.commands("sacctmgr"))
    # 30 s later, before Slurm's next usage update: the same S, the job 30 s older
    clock.now = T0 + timedelta(seconds=30)
    slurm.answer("scontrol", assoc_mgr(assoc("cs101", limit="6000"), assoc("tiny-lab", limit="30"),
                                       assoc("vision-lab", limit="12003", used=3, running=40),
                                       assoc("vision-lab", "alice(1001)", used=3, running=40)))  # fmt: skip
    slurm.answer("sacct", sacct(ALICE_RUNNING.replace("|26|", "|56|")))
    report = await run_pass(ledger, slurm)
    assert (report.lines, report.problems, len(slurm.commands("sacctmgr"))) == ([], [], first)
    # after the update 5 minutes in: used 3 + 20, run-minutes 40 - 20 -> S unchanged, L unchanged
    clock.now = T0 + timedelta(minutes=5)
    slurm.answer("scontrol", assoc_mgr(assoc("cs101", limit="6000"), assoc("tiny-lab", limit="30"),
                                       assoc("vision-lab", limit="12003", used=23, running=20),
                                       assoc("vision-lab", "alice(1001)", used=23, running=20)))  # fmt: skip
    slurm.answer("sacct", sacct(ALICE_RUNNING.replace("|26|", "|326|")))
    report = await run_pass(ledger, slurm)
    assert (report.lines, len(slurm.commands("sacctmgr"))) == ([], first)


async def test_an_a100_only_course_job_billing_never_0(ledger: Ledger, clock: Clock) -> None:
    """carol's 1 x a100 for 20 min: Slurm bills it 1 per minute (0.5 x 2: never 0), 20 run-minutes;
    the ledger holds 1 x 20/60 x 0.5 GPU-h; course L = 20 + 120 x (50 - 1/6) = 6000, carol's 600."""
    [record] = parse_accounting(sacct(CAROL_A100_RUNNING))
    assert record.gpu_type_counts == {"a100": 1} and slurm_job_billing(record.gpu_type_counts) == 1
    slurm = FakeSlurm(
        scontrol=assoc_mgr(assoc("cs101", running=20), assoc("cs101", "carol(1005)", running=20),
                           assoc("cs101", "dave(1003)"), assoc("tiny-lab"), assoc("vision-lab")),
        sacct=sacct(CAROL_A100_RUNNING),
    )  # fmt: skip
    await run_pass(ledger, slurm)
    assert slurm.limits_set == [
        "cs101=billing=6000",
        "cs101/carol=billing=600",
        "tiny-lab=billing=30",
        "vision-lab=billing=12000",
    ]
    # ended after 1 minute: final charge 60 s x 1 x 0.5 (1/120 GPU-h = one billing-minute), not 0
    clock.now = T0 + timedelta(minutes=2)
    slurm.answer(
        "sacct",
        sacct(CAROL_A100_RUNNING.replace("RUNNING|30|", "COMPLETED|60|").replace("Unknown", "2026-11-29T03:00:30")),
    )
    slurm.answer("scontrol", assoc_mgr(assoc("cs101", limit="6000", used=1), assoc("cs101", "carol(1005)", limit="600", used=1),
                                       assoc("tiny-lab", limit="30"), assoc("vision-lab", limit="12000")))  # fmt: skip
    report = await run_pass(ledger, slurm)
    assert "charged job 21 on cs101 (carol): 1 x a100 x 60 s = 0.0083 GPU-h" in report.lines
    assert ledger.charges("cs101")[0].weighted_mgs == 60 * 500
    # S = 1 used; room = 120 x (50 - 1/120) = 5999 -> L = 6000 (no change); carol: 1 + 599 = 600
    assert slurm.limits_set[4:] == []


# --- one pass: charges --------------------------------------------------------------------------


async def test_ended_jobs_are_charged_once_as_sacct_measured(ledger: Ledger) -> None:
    slurm = FakeSlurm(
        scontrol=FRESH, sacct=sacct(BOB_H200_90S, ALICE_2H200_600S, ALICE_CPU, NEVER_RAN, BEFORE_CREATION)
    )
    report = await run_pass(ledger, slurm)
    assert report.lines[:3] == [
        "charged job 12 on vision-lab (bob): 1 x h200 x 90 s = 0.025 GPU-h",
        "charged job 13 on vision-lab (alice): 2 x h200 x 600 s = 0.3333 GPU-h",
        "charged job 14 on vision-lab (alice): 0 GPUs x 2 s = 0.0 GPU-h",
    ]
    charges = {charge.job_id: charge for charge in ledger.charges("vision-lab")}
    assert set(charges) == {"12", "13", "14"}
    assert charges["13"].weighted_mgs == 600 * 2 * 1000  # ElapsedRaw x GPUs x weight
    assert (charges["13"].start, charges["13"].end) == (
        datetime(2026, 11, 29, 2, tzinfo=UTC),
        datetime(2026, 11, 29, 2, 10, tzinfo=UTC),
    )
    assert ledger.usage("vision-lab")["used_gpu_hours"] == 0.3583
    # L = 0 + floor(120 x (100 - 0.358333)) = 11957; bob: 120 x (20 - 0.025) = 2397
    assert slurm.limits_set == ["cs101=billing=6000", "cs101/carol=billing=600", "tiny-lab=billing=30",
                                "vision-lab=billing=11957", "vision-lab/bob=billing=2397"]  # fmt: skip
    # a second pass imports nothing twice and writes nothing (one read of the known job ids)
    slurm.answer("scontrol", FRESH.replace("billing=N(0),fs", "billing=0(0),fs"))  # any limit: all differ again
    again = await run_pass(ledger, slurm)
    assert not any(line.startswith("charged") for line in again.lines)
    assert len(ledger.charges("vision-lab")) == 3


async def test_a_portal_job_final_charge_ends_its_session(ledger: Ledger) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1))
    ledger.record_job_id(session_id, "12")
    ledger.session_started(session_id, datetime(2026, 11, 29, 2, 10, tzinfo=UTC))
    await run_pass(ledger, FakeSlurm(scontrol=FRESH, sacct=sacct(BOB_H200_90S)))
    assert ledger.active_sessions() == []
    [charge] = ledger.charges("vision-lab")
    assert (charge.kind.value, charge.source.value, charge.weighted_mgs) == ("final", "sacct", 90_000)


async def test_a_running_portal_job_is_not_an_outside_job(ledger: Ledger) -> None:
    session_id = ledger.admit("vision-lab", "alice", "", Booking("h200", 2, "0.25"))  # 10 min would not fit the steps
    ledger.record_job_id(session_id, "20")  # admitted: the hub has not seen it run yet
    slurm = FakeSlurm(
        scontrol=assoc_mgr(assoc("cs101"), assoc("tiny-lab"), assoc("vision-lab", running=40)),
        sacct=sacct(ALICE_RUNNING),
    )
    report = await run_pass(ledger, slurm)
    assert ledger.outside_jobs() == [] and not any("outside" in line for line in report.lines)
    # Slurm runs it: the session's whole reservation (2 x 0.25 h) is subtracted, not left open
    assert "vision-lab=billing=11980" in slurm.limits_set  # 40 + 120 x (100 - 0.5)


async def test_outside_job_ends(ledger: Ledger, clock: Clock) -> None:
    slurm = FakeSlurm(scontrol=FRESH, sacct=sacct(ALICE_RUNNING))
    await run_pass(ledger, slurm)
    clock.now = T0 + timedelta(minutes=11)
    ended = ALICE_RUNNING.replace("RUNNING|26|", "COMPLETED|120|").replace("Unknown", "2026-11-29T03:01:34")
    slurm.answer("sacct", sacct(ended))
    report = await run_pass(ledger, slurm)
    assert report.lines[0] == "charged job 20 on vision-lab (alice): 2 x h200 x 120 s = 0.0667 GPU-h"
    assert ledger.outside_jobs() == []
    assert (ledger.usage("vision-lab")["used_gpu_hours"], ledger.usage("vision-lab")["held_gpu_hours"]) == (0.0667, 0.0)
    # a job that vanished without an end (requeued, pending again) is no longer held either
    await run_pass(ledger, FakeSlurm(scontrol=FRESH, sacct=sacct(CAROL_A100_RUNNING)))
    report = await run_pass(ledger, FakeSlurm(scontrol=FRESH, sacct=""))
    assert report.lines[0] == "outside job 21 on cs101 (carol) no longer running"


# --- one pass: the mirror's other rules -----------------------------------------------------------


async def test_user_limits_follow_caps_and_are_cleared_without_one(ledger: Ledger) -> None:
    slurm = FakeSlurm(
        scontrol=assoc_mgr(assoc("cs101", limit="6000"), assoc("cs101", "carol(1005)", limit="600"),
                           assoc("cs101", "dave(1003)", limit="100"), assoc("tiny-lab", limit="30"),
                           assoc("vision-lab", limit="12000"), assoc("vision-lab", "bob(1002)", limit="2400")),
        sacct="",
    )  # fmt: skip
    report = await run_pass(ledger, slurm)
    assert report.lines == ["cs101/dave: GrpTRESMins billing limit 100 -> none (no cap)"]
    assert slurm.commands("sacctmgr") == [[
        "sacctmgr", "-i", "modify", "user", "where", "name=dave", "account=cs101", "cluster=hpchub", "set", "GrpTRESMins=billing=-1",
    ]]  # fmt: skip
    ledger.set_cap("cs101", "carol", "2.5", reason="halved", who="admin")
    await run_pass(ledger, slurm)
    assert slurm.limits_set[1:] == ["cs101/carol=billing=300", "cs101/dave=billing=-1"]  # (this fake Slurm forgets)


async def test_a_closed_project_starts_nothing_new_in_slurm_and_is_then_left_alone(ledger: Ledger) -> None:
    ledger.close_project("tiny-lab", reason="ended", who="admin")
    slurm = FakeSlurm(scontrol=assoc_mgr(assoc("cs101"), assoc("tiny-lab", limit="30", used=7, running=3),
                                         assoc("tiny-lab", "erin(1006)", limit="20"), assoc("vision-lab")), sacct="")  # fmt: skip
    await run_pass(ledger, slurm)
    assert "tiny-lab=billing=10" in slurm.limits_set  # lowered to what was used (used + running)
    assert "tiny-lab/erin=billing=-1" not in slurm.limits_set  # no cap recomputed: nothing raised or cleared
    # an admin cleared the limit by hand: the reconciler no longer mirrors a closed project
    slurm = FakeSlurm(
        scontrol=assoc_mgr(assoc("cs101"), assoc("tiny-lab", used=7, running=3), assoc("vision-lab")), sacct=""
    )
    report = await run_pass(ledger, slurm)
    assert not [limit for limit in slurm.limits_set if limit.startswith("tiny-lab")]
    assert not any(line.startswith("tiny-lab") for line in report.lines)


@pytest.mark.parametrize(("tree", "why"), [
    pytest.param("hpchub|root||\nhpchub|cs101|root|\nhpchub|vision-lab|root|\n", "Slurm's root account", id="root"),
    pytest.param("hpchub|root||\nhpchub|cs101|root|\nhpchub|tiny-lab|root|\nhpchub|vision-lab|root|\n"
                 "hpchub|dept-a|tiny-lab|\n", "the parent of other Slurm accounts (dept-a)", id="a-parent"),
])  # fmt: skip
async def test_no_limit_is_set_on_an_account_that_is_not_a_projects_own_leaf(ledger: Ledger, tree, why) -> None:
    """tiny-lab's account is root (a project made before the account rule, or by other means), or
    a parent: the pass sets no limit on it and changes none of its associations, and says so."""
    if why.startswith("Slurm's root"):
        with ledger._write() as session:  # noqa: SLF001 (a record the rules of today would refuse)
            ledger._project(session, "tiny-lab", lock=True).slurm_account = "root"  # noqa: SLF001
        associations = DEMO_ASSOCIATIONS.replace("hpchub|tiny-lab|||\nhpchub|tiny-lab|erin||\n", "hpchub|root|||\n")
        scontrol = assoc_mgr(assoc("cs101"), assoc("root"), assoc("vision-lab"))
    else:
        associations, scontrol = DEMO_ASSOCIATIONS, assoc_mgr(assoc("cs101"), assoc("tiny-lab"), assoc("vision-lab"))
    account = "root" if why.startswith("Slurm's root") else "tiny-lab"
    slurm = FakeSlurm(scontrol=scontrol, sacct="")
    slurm.answer("sacctmgr tree", tree)
    slurm.answer("sacctmgr show", associations)
    report = await run_pass(ledger, slurm)
    assert slurm.limits_set == ["cs101=billing=6000", "vision-lab=billing=12000"]
    assert not [
        call for call in slurm.commands("sacctmgr") if f"account={account}" in call or f"name={account}" in call
    ]
    assert [p.message for p in report.problems] == [f"project tiny-lab: {account}: {why}" + p.message.split(why, 1)[1]
                                                    for p in report.problems]  # fmt: skip
    assert len(report.problems) == 1 and "no limits set" in report.problems[0].message


async def test_tiny_budget_rounds_down(ledger: Ledger) -> None:
    ledger.grant("tiny-lab", "-0.2496", reason="test", who="admin")  # 0.0004 GPU-h = 0.048 billing-minutes
    slurm = FakeSlurm(scontrol=assoc_mgr(assoc("cs101"), assoc("tiny-lab"), assoc("vision-lab")), sacct="")
    await run_pass(ledger, slurm)
    assert "tiny-lab=billing=0" in slurm.limits_set  # a limit of 0: GPU jobs pend (AssocGrpBillingMinutes)


# --- one pass: failures and the dry run ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "answer", "message"),
    [
        pytest.param(
            "sacct",
            CommandResult(1, "", "sacct: error: Problem talking to the database: Connection refused\n"),
            "sacct exited with 1: sacct: error: Problem talking to the database: Connection refused",
            id="sacct-fails",
        ),
        pytest.param(
            "sacct",
            "slurm_load_jobs error: Unable to contact slurm controller\n",
            "sacct: unreadable answer: sacct line 1",
            id="sacct-garbled",
        ),
        pytest.param(
            "scontrol",
            CommandResult(1, "", "slurm_load_assoc_mgr_info error: Unable to contact slurm controller\n"),
            "scontrol exited with 1",
            id="scontrol-fails",
        ),
        pytest.param(
            "scontrol",
            "ClusterName=hpchub Account=vision-lab UserName= Partition=\n",
            "no GrpTRESMins",
            id="assoc-garbled",
        ),
    ],
)
async def test_a_failed_slurm_query_stops_the_pass_and_changes_nothing(
    ledger: Ledger, command, answer, message
) -> None:
    slurm = FakeSlurm(scontrol=FRESH, sacct=sacct(BOB_H200_90S, ALICE_RUNNING))
    slurm.answer(command, answer)
    with pytest.raises(ReconcileError, match=message):
        await run_pass(ledger, slurm)
    assert ledger.charges("vision-lab") == [] and ledger.outside_jobs() == [] and slurm.commands("sacctmgr") == []


async def test_a_job_the_ledger_cannot_weigh_leaves_its_accounts_limits_alone(ledger: Ledger) -> None:
    v100 = "30|bob|vision-lab|COMPLETED|60|billing=0,gres/gpu:v100=1,gres/gpu=1|2026-11-29T02:00:00|2026-11-29T02:01:00|hpchub|5"
    slurm = FakeSlurm(scontrol=FRESH, sacct=sacct(v100, BOB_H200_90S))
    report = await run_pass(ledger, slurm)
    assert [p.message for p in report.problems] == [
        "job 30 on vision-lab: unknown GPU type v100 (known: a100, h200)",
        "vision-lab: Slurm limits left as they are (problems above)",
    ]
    assert len(ledger.charges("vision-lab")) == 1  # the other jobs are still charged
    assert not any(limit.startswith("vision-lab") for limit in slurm.limits_set)
    assert "cs101=billing=6000" in slurm.limits_set


async def test_a_project_account_missing_in_slurm_and_a_failed_sacctmgr_are_problems(ledger: Ledger) -> None:
    slurm = FakeSlurm(scontrol=assoc_mgr(assoc("cs101"), assoc("vision-lab")), sacct="")
    slurm.answer("sacctmgr", CommandResult(1, " Nothing modified\n", ""))
    report = await run_pass(ledger, slurm)
    assert [p.message for p in report.problems] == [
        "cs101: sacctmgr exited with 1: Nothing modified",
        "tiny-lab: no Slurm association on cluster hpchub",
        "vision-lab: sacctmgr exited with 1: Nothing modified",
    ]
    assert report.lines == []


async def test_dry_run_changes_nothing(ledger: Ledger) -> None:
    slurm = FakeSlurm(scontrol=FRESH, sacct=sacct(BOB_H200_90S, ALICE_RUNNING))
    report = await run_pass(ledger, slurm, dry_run=True)
    assert report.lines == [
        "would charge job 12 on vision-lab (bob): 1 x h200 x 90 s = 0.025 GPU-h",
        "would record outside job 20 on vision-lab (alice) running: holds 0.3333 GPU-h",
        "would set cs101: GrpTRESMins billing limit none -> 6000 (Slurm used+running 0)",
        "would set cs101/carol: GrpTRESMins billing limit none -> 600 (Slurm used+running 0)",
        "would set tiny-lab: GrpTRESMins billing limit none -> 30 (Slurm used+running 0)",
        "vision-lab: limits not computed in a dry run (1 charges to import first)",
    ]
    assert ledger.charges("vision-lab") == [] and ledger.outside_jobs() == []
    assert [command_key(call) for call in slurm.calls] == [
        "scontrol",
        "sacct",
        "sacctmgr tree",
        "sacctmgr show",
    ]  # reads only


# --- the command ----------------------------------------------------------------------------------


def fake_slurm_binaries(directory: Path, answers: dict[str, dict]) -> None:
    """scontrol, sacct and sacctmgr that answer from ``answers`` and log their argv (an answer's
    ``show`` entry, if any, answers sacctmgr's reads; its ``tree`` entry the account tree's read,
    by default the demo's)."""
    for name, answer in answers.items():
        path = directory / name
        path.write_text(
            f"#!{sys.executable}\n"
            "import json, sys\n"
            f"answer = json.loads({json.dumps(json.dumps(answer))})\n"
            f"tree = {{'stdout': {DEMO_TREE!r}}} if 'show' in answer else answer\n"
            f"answer = answer.get('tree', tree) if {TREE_ARGV[-1]!r} in sys.argv else answer\n"
            "answer = answer.get('show', answer) if 'show' in sys.argv else answer\n"
            f"open({str(directory / 'calls.log')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
            "sys.stdout.write(answer.get('stdout', '')); sys.stderr.write(answer.get('stderr', ''))\n"
            "sys.exit(answer.get('rc', 0))\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def command(ledger: Ledger, ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """``hpchub reconcile ARGS`` with fake Slurm binaries first in PATH; returns (code, out, err)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv(LEDGER_URL_ENV, ledger_url)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("SLURM_CONF", raising=False)

    def run(answers: dict[str, dict], *args: str) -> tuple[int, str, str]:
        fake_slurm_binaries(bin_dir, answers)
        code = cli.main(["reconcile", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_command_one_pass(command, ledger: Ledger) -> None:
    answers = {
        "scontrol": {"stdout": FRESH},
        "sacct": {"stdout": sacct(BOB_H200_90S)},
        "squeue": {"stdout": ""},
        "sacctmgr": {"stdout": " Modified\n", "show": {"stdout": DEMO_ASSOCIATIONS}},
    }
    code, out, err = command(answers, "--slurm-conf", "/etc/slurm/x.conf")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "charged job 12 on vision-lab (bob): 1 x h200 x 90 s = 0.025 GPU-h"
    assert len(ledger.charges("vision-lab")) == 1


def test_command_slurm_failure_exits_1_with_one_line(command, ledger: Ledger) -> None:
    answers = {
        "scontrol": {"stdout": FRESH},
        "sacct": {"rc": 1, "stderr": "sacct: error: Problem talking to the database: Connection refused\n"},
    }
    code, out, err = command(answers)
    assert (code, out) == (1, "")
    assert (
        err
        == "hpchub reconcile: sacct exited with 1: sacct: error: Problem talking to the database: Connection refused\n"
    )


def test_command_problem_exits_1(command) -> None:
    answers = {
        "scontrol": {"stdout": assoc_mgr(assoc("cs101"), assoc("vision-lab"))},
        "sacct": {"stdout": ""},
        "squeue": {"stdout": ""},
        "sacctmgr": {},
    }
    code, _out, err = command(answers)
    assert (code, err) == (1, "hpchub reconcile: tiny-lab: no Slurm association on cluster hpchub\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--every", "0"), "hpchub: --every: must be more than 0 seconds, got 0\n", id="every-0"),
        pytest.param(
            ("--every", "x"), "hpchub reconcile: argument --every: invalid float value: 'x'\n", id="every-word"
        ),
        pytest.param(("--cluster", "A;B"), "hpchub: --cluster: not a valid Slurm cluster name: 'A;B'\n", id="cluster"),
        pytest.param(("--db-url", "nothing"), "hpchub: --db-url: not a database URL: 'nothing'\n", id="db-url"),
        pytest.param(
            ("--orphan-grace", "-1"), "hpchub: --orphan-grace: from 0 to 86400 seconds, got -1\n", id="orphan-grace"
        ),
    ],
)
def test_command_bad_input_exits_2(command, args, message) -> None:
    assert command({}, *args) == (2, "", message)


async def test_every_runs_passes_until_sigterm_and_survives_a_failed_pass(ledger: Ledger, capsys) -> None:
    import asyncio
    import os
    import signal

    from hub.reconcile.reconciler import run_reconcile

    slurm = FakeSlurm(scontrol=FRESH, sacct=sacct(BOB_H200_90S))
    slurm.answer("sacct", CommandResult(1, "", "sacct: error: slurmdbd down\n"), sacct(BOB_H200_90S))
    task = asyncio.create_task(run_reconcile(ledger, SlurmClient(runner=slurm), every=0.05))
    for _ in range(200):
        if len(slurm.commands("scontrol")) >= 3:
            break
        await asyncio.sleep(0.02)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 5) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0].endswith(
        "Z hpchub reconcile: sacct exited with 1: sacct: error: slurmdbd down"
    )  # stamped
    assert out.count("charged job 12") == 1  # the next pass imported it, later passes nothing
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
