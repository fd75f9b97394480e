"""The award's steps in order, and what a failed step leaves behind: nothing (a scripted Slurm
that answers only the commands it expects and fails the ones it is told to)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone

import pytest

from hub.allocations.award import AwardContext, AwardFailed, award, submit
from hub.allocations.settings import HPCHubAllocations
from hub.ledger import Ledger, upgrade
from hub.ledger.allocations import ProposalState, check_call_spec
from spawners.slurm.client import CommandResult, SlurmClient

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 11, 9, 0, tzinfo=timezone.utc)
FIELDS = {
    "title": "Cells", "abstract": "We train.", "field_of_science": "1.6", "gpu_hours": "60",
    "justification": "Memory.", "project_name": "cells",
}  # fmt: skip
ADD_ACCOUNT = ["sacctmgr", "-i", "add", "account", "cells", "parent=root", "cluster=hpchub",
               "Description=project cells, proposal #1"]  # fmt: skip
ADD_PI = ["sacctmgr", "-i", "add", "user", "fiona", "account=cells", "cluster=hpchub"]
REMOVE_PI = ["sacctmgr", "-i", "remove", "user", "where", "name=fiona", "account=cells", "cluster=hpchub"]
REMOVE_ACCOUNT = ["sacctmgr", "-i", "remove", "account", "where", "name=cells"]  # every cluster: the record too


class ScriptedSlurm:
    """Answers the account lookup with ``existing`` accounts, each listed sacctmgr change with
    success unless it is in ``failing``; any other command is a test failure."""

    def __init__(self, failing: Sequence[list[str]] = (), existing: Sequence[str] = ()) -> None:
        self.failing = [tuple(argv) for argv in failing]
        self.existing = existing
        self.calls: list[list[str]] = []

    async def __call__(self, argv: Sequence[str], *, input, env: Mapping[str, str], timeout: float) -> CommandResult:
        argv = list(argv)
        if argv[:5] == ["sacctmgr", "--noheader", "--parsable2", "show", "associations"]:
            account = argv[5].removeprefix("account=")
            return CommandResult(0, f"{account}|\n" if account in self.existing else "", "")
        self.calls.append(argv)
        if argv not in (ADD_ACCOUNT, ADD_PI, REMOVE_PI, REMOVE_ACCOUNT):
            raise AssertionError(f"unexpected Slurm call: {argv}")
        if tuple(argv) in self.failing:
            return CommandResult(1, "", " Problem adding: the account's parent does not exist\n")
        return CommandResult(0, " Adding\n", "")


@pytest.fixture
def ledger(ledger_url: str):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=lambda: NOW) as ledger:
        ledger.create_call(check_call_spec(
            name="starter", title="Start-up", audiences="academic", opens=date(2027, 1, 1), closes=date(2027, 12, 31),
            gpu_hours=1000, max_request=100, period_months=12, review_required=False, startup=True,
        ), who="admin")  # fmt: skip
        yield ledger


def context(slurm: ScriptedSlurm) -> AwardContext:
    return AwardContext(SlurmClient(runner=slurm), "hpchub", HPCHubAllocations())


async def test_a_startup_proposal_is_awarded_at_submission(ledger: Ledger) -> None:
    slurm = ScriptedSlurm()
    draft = ledger.save_proposal(
        call="starter", fields=FIELDS, applicant="fiona", applicant_principal="fiona@uni.example"
    )
    done = await submit(ledger, draft.id, context(slurm), applicant="fiona")
    assert done.state is ProposalState.AWARDED
    assert slurm.calls == [ADD_ACCOUNT, ADD_PI]
    assert ledger.usage("cells")["budget_gpu_hours"] == 60


@pytest.mark.parametrize(
    ("failing", "commands"),
    [
        pytest.param([ADD_ACCOUNT], [ADD_ACCOUNT], id="account-refused"),
        pytest.param([ADD_PI], [ADD_ACCOUNT, ADD_PI, REMOVE_ACCOUNT], id="association-refused-account-removed"),
    ],
)
async def test_a_failed_step_leaves_nothing_and_the_award_can_be_retried(ledger: Ledger, failing, commands) -> None:
    slurm = ScriptedSlurm(failing=failing)
    draft = ledger.save_proposal(
        call="starter", fields=FIELDS, applicant="fiona", applicant_principal="fiona@uni.example"
    )
    with pytest.raises(AwardFailed) as failed:
        await submit(ledger, draft.id, context(slurm), applicant="fiona")
    assert "parent does not exist" in str(failed.value)
    assert slurm.calls == commands
    assert ledger.projects() == []
    assert ledger.proposal(draft.id).state is ProposalState.SUBMITTED
    again = ScriptedSlurm()
    await award(ledger, draft.id, context(again), who="admin", message="retried")
    assert ledger.proposal(draft.id).state is ProposalState.AWARDED


async def test_an_account_slurm_has_already_is_not_taken_over(ledger: Ledger) -> None:
    slurm = ScriptedSlurm(existing=["cells"])
    draft = ledger.save_proposal(
        call="starter", fields=FIELDS, applicant="fiona", applicant_principal="fiona@uni.example"
    )
    with pytest.raises(AwardFailed, match="has an account cells already"):
        await submit(ledger, draft.id, context(slurm), applicant="fiona")
    assert slurm.calls == [] and ledger.projects() == []


async def test_a_ledger_failure_undoes_slurm(ledger: Ledger, monkeypatch) -> None:
    slurm = ScriptedSlurm()
    draft = ledger.save_proposal(
        call="starter", fields=FIELDS, applicant="fiona", applicant_principal="fiona@uni.example"
    )
    ledger.submit_proposal(draft.id, applicant="fiona")
    # another project takes the name between the plan and the ledger's transaction
    real_plan = ledger.plan_award

    def plan_then_race(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        ledger.create_project("cells", account="cells-other", kind="research", gpu_hours=1, who="someone")
        return plan

    monkeypatch.setattr(ledger, "plan_award", plan_then_race)
    with pytest.raises(AwardFailed, match="the ledger failed"):
        await award(ledger, draft.id, context(slurm), who="admin", message="")
    assert slurm.calls == [ADD_ACCOUNT, ADD_PI, REMOVE_PI, REMOVE_ACCOUNT]
    assert [p.slurm_account for p in ledger.projects()] == ["cells-other"]
