"""``hpchub call create|list|close`` and ``hpchub proposal list|show|assign|decide``
(hub/commands/allocations.py via hub.cli.main), on a SQLite ledger with a recording Slurm client."""

from __future__ import annotations

import json

import pytest

from hub import cli
from hub.allocations.award import AwardContext
from hub.allocations.settings import HPCHubAllocations
from hub.commands import allocations as allocations_cli
from hub.commands.ledger import LEDGER_URL_ENV
from hub.ledger import Ledger, upgrade
from spawners.slurm.client import SlurmCommandError

pytestmark = pytest.mark.unit

ACADEMIC = (
    "call", "create", "2027-academic", "--title", "Academic call 2027", "--audience", "academic",
    "--opens", "2026-01-01", "--closes", "2099-12-31", "--gpu-hours", "5000", "--max-request", "500",
    "--period-months", "12",
)  # fmt: skip
PROPOSAL = {
    "title": "Diffusion models for cell images", "abstract": "We train.", "field_of_science": "1.6",
    "gpu_hours": "60", "period_months": 12, "justification": "A100s are too small.", "team": "gus@lab.example",
    "organisation": "Uni", "project_name": "cells",
}  # fmt: skip


class RecordingSlurm:
    """The sacctmgr calls an award makes, recorded; ``fail`` names the one that fails."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail, self.accounts, self.associations, self.calls = fail, set(), set(), []

    def _maybe_fail(self, what: str) -> None:
        self.calls.append(what)
        if self.fail == what:
            raise SlurmCommandError(["sacctmgr"], 1, f"sacctmgr: error: {what} refused")

    async def account_exists(self, account: str) -> bool:
        return account in self.accounts

    async def sacctmgr_add_account(self, account, *, parent, cluster, description) -> str:
        self._maybe_fail("add account")
        self.accounts.add(account)
        return ""

    async def sacctmgr_add_user(self, user, *, account, cluster, settings=None) -> str:
        self._maybe_fail("add user")
        self.associations.add((user, account))
        return ""

    async def sacctmgr_remove_user(self, user, *, account, cluster) -> str:
        self.associations.discard((user, account))
        return ""

    async def sacctmgr_remove_account(self, account, *, cluster=None) -> str:
        self.accounts.discard(account)
        return ""


@pytest.fixture
def hpchub(ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path):
    """``hpchub ARGS`` against the test's ledger, with no hub configuration; (exit code, stdout, stderr)."""
    monkeypatch.setenv(LEDGER_URL_ENV, ledger_url)
    monkeypatch.setenv("HPCHUB_CONFIG", str(tmp_path / "none.py"))
    (tmp_path / "none.py").write_text("# no site configuration\n")

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def slurm(monkeypatch: pytest.MonkeyPatch) -> RecordingSlurm:
    recording = RecordingSlurm()
    monkeypatch.setattr(allocations_cli, "award_context",
                        lambda ledger, args: AwardContext(recording, "hpchub", HPCHubAllocations()))  # fmt: skip
    return recording


@pytest.fixture
def submitted(hpchub, ledger_url: str) -> int:
    """fiona's proposal to 2027-academic, submitted; rev1 (inst.example) and rev2 (uni.example) logged in
    as reviewers."""
    assert hpchub(*ACADEMIC)[0] == 0
    upgrade(ledger_url)
    with Ledger(ledger_url) as ledger:
        for user, principal in (("fiona", "fiona@uni.example"), ("rev1", "rev1@inst.example"),
                                ("rev2", "rev2@uni.example")):  # fmt: skip
            ledger.record_login_principal(user, principal)
        for reviewer in ("rev1", "rev2"):
            ledger.record_login_groups(reviewer, {"hpc-users", "hpc-reviewers"})
        info = ledger.save_proposal(call="2027-academic", applicant="fiona", applicant_principal="fiona@uni.example",
                                    fields=PROPOSAL)  # fmt: skip
        ledger.submit_proposal(info.id, applicant="fiona")
        return info.id


def test_call_create_list_and_close(hpchub) -> None:
    code, out, err = hpchub(*ACADEMIC, "--criteria", "merit;readiness")
    assert (code, err) == (0, "")
    assert out.startswith("created call 2027-academic: 5000.0 GPU-h, at most 500.0 per proposal")
    assert "review required" in out  # the default for a call that is not a start-up call
    code, out, _err = hpchub("call", "list", "--json")
    (call,) = json.loads(out)
    assert (call["name"], call["open"], call["review_required"], call["criteria"]) == (
        "2027-academic", True, True, ["merit", "readiness"])  # fmt: skip
    assert hpchub("call", "list")[1].splitlines()[1].split()[:5] == [
        "2027-academic", "academic", "2026-01-01", "2099-12-31", "open"]  # fmt: skip
    code, out, _err = hpchub("call", "close", "2027-academic", "--reason", "the round is full")
    assert code == 0 and "is closed" in out
    assert json.loads(hpchub("call", "list", "--json")[1])[0]["open"] is False
    assert hpchub("call", "close", "2027-academic", "--reason", "again") == (
        2, "", "hpchub: NAME: 2027-academic is closed already\n")  # fmt: skip


def test_a_startup_call_has_no_review_by_default(hpchub) -> None:
    code, out, _err = hpchub("call", "create", "starter", "--title", "Start-up", "--audience",
                             "academic,startup,sme,industry,education", "--opens", "2026-01-01", "--closes",
                             "2099-12-31", "--gpu-hours", "100000", "--max-request", "10", "--period-months", "12",
                             "--startup")  # fmt: skip
    assert code == 0 and out.rstrip().endswith("no review")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(("--gpu-hours", "1000000000"), "--gpu-hours: at most 100,000,000 GPU-h", id="hours-too-many"),
        pytest.param(("--closes", "2025-12-31"), "--closes: 2025-12-31 is before the opening date", id="end-before-start"),
        pytest.param(("--audience", "students"), "--audience: one or more of academic", id="audience"),
        pytest.param(("--title", ""), "--title: is required", id="title-missing"),
        pytest.param(("--max-request", "6000"), "--max-request: at most 5000.0 GPU-h", id="request-above-round"),
        pytest.param(("--opens", "1 Jan"), "--opens: an ISO date", id="date"),
    ],
)  # fmt: skip
def test_call_create_bad_input_exits_2_naming_the_option(hpchub, change, message) -> None:
    args = list(ACADEMIC)
    args[args.index(change[0]) + 1] = change[1]
    code, out, err = hpchub(*args)
    assert (code, out) == (2, "") and err.startswith(f"hpchub: {message}") and err.count("\n") == 1
    assert json.loads(hpchub("call", "list", "--json")[1]) == []  # nothing stored


def test_proposal_list_show_assign_and_award(hpchub, submitted, slurm, ledger_url) -> None:
    code, out, _err = hpchub("proposal", "list", "--call", "2027-academic", "--state", "submitted", "--json")
    (listed,) = json.loads(out)
    assert (listed["id"], listed["applicant"], listed["state"]) == (submitted, "fiona", "submitted")
    code, _out, err = hpchub("proposal", "assign", str(submitted), "rev2")
    assert code == 2 and err.startswith("hpchub: REVIEWER: rev2 shares the institution of the applicant")
    assert hpchub("proposal", "assign", str(submitted), "rev1")[0] == 0
    with Ledger(ledger_url) as ledger:
        criteria = ledger.proposal_call(submitted).spec.criteria
        ledger.submit_review(submitted, "rev1", scores=dict.fromkeys(criteria, 4), comment="Sound.")
    code, out, _err = hpchub("proposal", "show", str(submitted))
    assert "reviewers: rev1" in out and "mean 4.0 over 1, spread 0" in out
    code, out, err = hpchub(
        "proposal", "decide", str(submitted), "award", "--gpu-hours", "40", "--message", "Well argued"
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"#{submitted}: awarded 40.0 GPU-h to cells (Slurm account cells, PI fiona)")
    assert slurm.accounts == {"cells"} and slurm.associations == {("fiona", "cells")}
    usage = json.loads(hpchub("usage", "cells", "--json")[1])
    assert usage["budget_gpu_hours"] == 40.0 and usage["members"][0]["user"] == "fiona"
    with Ledger(ledger_url) as ledger:  # the team's invitation waits for gus's first login
        assert "invited: gus@lab.example" in out and ledger.open_invitations("gus@lab.example") == ["cells"]
        ledger.accept_invitations("gus@lab.example", "gus")
        assert ledger.open_invitations("gus@lab.example") == []
    code, _out, err = hpchub("proposal", "decide", str(submitted), "reject", "--message", "again")
    assert code == 2 and "it was decided already" in err
    assert json.loads(hpchub("usage", "cells", "--json")[1])["budget_gpu_hours"] == 40.0


@pytest.mark.parametrize(
    ("assigned", "args", "message"),
    [
        pytest.param(True, ("award", "--gpu-hours", "1000000000", "--message", "x"), "--gpu-hours: at most 100,000,000",
                     id="award-too-many-hours"),
        pytest.param(True, ("award", "--gpu-hours", "61", "--message", "x"), "--gpu-hours: at most 60.0 GPU-h (the hours "
                     "requested)", id="award-more-than-asked"),
        pytest.param(True, ("reject", "--gpu-hours", "5", "--message", "x"), "--gpu-hours: only an award", id="reject-hours"),
        pytest.param(False, ("award", "--message", "x"), "DECISION: call 2027-academic requires review", id="no-review-yet"),
        pytest.param(True, ("reject", "--message", ""), "--message: is required", id="reject-message"),
    ],
)  # fmt: skip
def test_decide_bad_input_exits_2_and_changes_nothing(hpchub, submitted, slurm, assigned, args, message) -> None:
    if assigned:
        assert hpchub("proposal", "assign", str(submitted), "rev1")[0] == 0
    state = "in_review" if assigned else "submitted"
    code, _out, err = hpchub("proposal", "decide", str(submitted), *args)
    assert code == 2 and err.startswith(f"hpchub: {message}"), err
    assert slurm.calls == []
    assert json.loads(hpchub("proposal", "show", str(submitted), "--json")[1])["state"] == state


@pytest.mark.parametrize("failing", ["add account", "add user"])
def test_a_failed_award_leaves_nothing_and_can_be_retried(hpchub, submitted, slurm, failing) -> None:
    assert hpchub("proposal", "assign", str(submitted), "rev1")[0] == 0
    slurm.fail = failing
    code, out, err = hpchub("proposal", "decide", str(submitted), "award", "--message", "ok")
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert "the award was not made" in err and f"sacctmgr: error: {failing} refused" in err
    assert slurm.accounts == set() and slurm.associations == set()
    code, _out, err = hpchub("usage", "cells")
    assert code == 2 and "cells" in err  # no project
    assert json.loads(hpchub("proposal", "show", str(submitted), "--json")[1])["state"] == "in_review"
    slurm.fail = None
    assert hpchub("proposal", "decide", str(submitted), "award", "--message", "ok")[0] == 0
    assert json.loads(hpchub("usage", "cells", "--json")[1])["budget_gpu_hours"] == 60.0


def test_unknown_proposal_and_help(hpchub) -> None:
    assert hpchub(*ACADEMIC)[0] == 0
    code, _out, err = hpchub("proposal", "show", "99")
    assert code == 2 and err == "hpchub: ID: no proposal #99\n"
    for group in (("call",), ("proposal",), ("call", "create"), ("proposal", "decide")):
        with pytest.raises(SystemExit) as done:
            cli.build_parser().parse_args([*group, "--help"])
        assert done.value.code == 0
