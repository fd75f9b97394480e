"""The orphan rule (hub/ledger/orphans.py): the pure planning on literal squeue
output, the ledger's records, and reconcile passes against a fake Slurm and a real SQLite ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone

import pytest

from hub.ledger import Ledger, upgrade
from hub.ledger.orphans import PortalRecord, find_orphans
from hub.ledger.types import Booking
from hub.reconcile.reconciler import reconcile_pass
from spawners.slurm.client import CommandResult, SlurmClient
from spawners.slurm.types import ActiveJob

pytestmark = pytest.mark.unit

UTC = timezone.utc
NOW = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
GRACE = timedelta(seconds=120)
OLD = NOW - timedelta(minutes=10)
CLUSTER = "hpchub"
TAG = "hpchub:user=bob,server="


def job(job_id="41", user="bob", state="RUNNING", submitted=OLD, comment=TAG, account="vision-lab") -> ActiveJob:
    return ActiveJob(job_id, account, user, state, submitted, comment)


# --- pure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "records", "reason"),
    [
        pytest.param(job(), {}, "no portal session records it", id="unrecorded"),
        pytest.param(job(comment="hpchub:user=alice,server="), {}, "no portal session records it", id="forged-tag"),
        pytest.param(
            job(),
            {"41": PortalRecord("alice", "", None)},
            "its portal session belongs to alice, not to bob",
            id="another-users-session",
        ),
        pytest.param(job(), {"41": PortalRecord("bob", "", NOW - GRACE)}, "its portal session ended at", id="ended"),
        pytest.param(job(state="PENDING"), {}, "no portal session records it", id="pending"),
        pytest.param(job(), {"41": PortalRecord("bob", "", None)}, None, id="recorded-running"),
        pytest.param(
            job(comment="hpchub:user=bob,server=renamed"),
            {"41": PortalRecord("bob", "", None)},
            None,
            id="recorded-comment-edited",
        ),
        pytest.param(
            job(), {"41": PortalRecord("bob", "", NOW - GRACE + timedelta(seconds=1))}, None, id="ended-within-grace"
        ),
        pytest.param(job(submitted=NOW - GRACE + timedelta(seconds=1)), {}, None, id="younger-than-grace"),
        pytest.param(job(submitted=None), {}, None, id="no-submit-time"),
        pytest.param(job(comment="my own job"), {}, None, id="untagged"),
        pytest.param(job(state="COMPLETING"), {}, None, id="completing"),
        pytest.param(job(job_id="41_3"), {}, None, id="array-task"),
    ],
)
def test_find_orphans(active: ActiveJob, records: dict, reason: str | None) -> None:
    orphans = find_orphans([active], records, NOW, GRACE)
    if reason is None:
        assert orphans == []
    else:
        [orphan] = orphans
        assert orphan.job == active and orphan.reason.startswith(reason)
        assert orphan.line(dry_run=False).startswith("cancelled orphan job 41 on vision-lab (bob), tagged ")
        assert "never adopted" in orphan.line(dry_run=False)


# --- the ledger's records -----------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW - timedelta(hours=2))


@pytest.fixture
def ledger(ledger_url: str, clock: Clock):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=clock, cluster=CLUSTER) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", who="admin")
        clock.now = NOW
        yield ledger


def test_portal_records_and_orphan_notes(ledger: Ledger) -> None:
    running = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1), now=OLD)
    ledger.record_job_id(running, "50")
    ended = ledger.admit("vision-lab", "alice", "x", Booking("h200", 1, 1), now=OLD)
    ledger.record_job_id(ended, "51")
    ledger.session_ended(ended, NOW - timedelta(minutes=5), 0)
    ledger.admit("vision-lab", "bob", "nojob", Booking("h200", 1, 1), now=OLD)
    assert ledger.portal_records(CLUSTER, ["50", "51", "52"]) == {
        "50": PortalRecord("bob", "", None), "51": PortalRecord("alice", "x", NOW - timedelta(minutes=5)),
    }  # fmt: skip
    assert ledger.portal_records("other", ["50"]) == {}

    assert ledger.record_orphan(CLUSTER, "60", account="vision-lab", user="bob", tag="hpchub:user=alice,server=\x07",
                                reason="no portal session records it", submitted_at=OLD)  # fmt: skip
    assert not ledger.record_orphan(CLUSTER, "60", account="vision-lab", user="bob", tag=TAG, reason="again",
                                    submitted_at=OLD)  # fmt: skip
    [note] = ledger.orphan_jobs()
    assert (note.job_id, note.project, note.user, note.tag, note.cancelled_at) == (
        "60",
        "vision-lab",
        "bob",
        "hpchub:user=alice,server=?",
        NOW,
    )
    assert ledger.orphan_jobs("vision-lab") == [note]
    with pytest.raises(Exception, match="no project has the Slurm account"):
        ledger.record_orphan(CLUSTER, "61", account="other", user="bob", tag=TAG, reason="x", submitted_at=None)


# --- reconcile passes ---------------------------------------------------------------------------


class FakeSlurm:
    """Answers squeue from ``squeue`` and everything else with nothing; records every argv."""

    def __init__(self, squeue: str | CommandResult) -> None:
        self.squeue = squeue
        self.calls: list[list[str]] = []

    async def __call__(self, argv: Sequence[str], *, input, env: Mapping[str, str], timeout: float) -> CommandResult:
        self.calls.append(list(argv))
        if argv[0] == "squeue":
            assert env.get("TZ") == "UTC"
            answer = self.squeue
            return answer if isinstance(answer, CommandResult) else CommandResult(0, answer, "")
        return CommandResult(0, "", "")  # no association, no accounting: only the orphan step acts

    def cancelled(self) -> list[str]:
        return [call[-1] for call in self.calls if call[0] == "scancel"]


SQUEUE = (
    "70|vision-lab|bob|RUNNING|2026-11-29T04:50:00|hpchub:user=alice,server=\n"  # forged by bob by hand
    "71|vision-lab|bob|RUNNING|2026-11-29T04:50:00|hpchub:user=bob,server=\n"  # the portal's, recorded
    "72|vision-lab|bob|PENDING|2026-11-29T04:59:50|hpchub:user=bob,server=new\n"  # just submitted: grace
    "73|vision-lab|alice|RUNNING|2026-11-29T04:00:00|my analysis\n"  # untagged outside job
)


async def test_a_pass_cancels_and_notes_orphans_once_and_never_touches_recorded_jobs(ledger: Ledger, capsys) -> None:
    session = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1), now=OLD)
    ledger.record_job_id(session, "71")
    slurm = FakeSlurm(SQUEUE)
    client = SlurmClient(runner=slurm)

    report = await reconcile_pass(ledger, client, cluster=CLUSTER, orphan_grace=GRACE)
    assert slurm.cancelled() == ["70"]
    assert [call for call in slurm.calls if call[0] == "scancel"] == [["scancel", "70"]]  # as the reconciler
    [line] = [line for line in report.lines if "orphan" in line]
    assert line.startswith(
        "cancelled orphan job 70 on vision-lab (bob), tagged 'hpchub:user=alice,server=': no portal session records it"
    )
    assert [(o.job_id, o.user) for o in ledger.orphan_jobs()] == [("70", "bob")]
    assert ledger.session(session).job_id == "71" and ledger.session(session).user == "bob"

    await reconcile_pass(ledger, client, cluster=CLUSTER, orphan_grace=GRACE)  # still listed: cancelled again
    assert slurm.cancelled() == ["70", "70"] and len(ledger.orphan_jobs()) == 1

    dry = FakeSlurm(SQUEUE)
    report = await reconcile_pass(ledger, SlurmClient(runner=dry), cluster=CLUSTER, orphan_grace=GRACE, dry_run=True)
    assert dry.cancelled() == [] and any(line.startswith("would cancel orphan job 70") for line in report.lines)

    off = FakeSlurm(SQUEUE)
    await reconcile_pass(ledger, SlurmClient(runner=off), cluster=CLUSTER)  # orphan_grace None: no check
    assert [call for call in off.calls if call[0] in ("squeue", "scancel")] == []


async def test_a_failed_squeue_is_one_problem_and_the_pass_goes_on(ledger: Ledger) -> None:
    slurm = FakeSlurm(CommandResult(1, "", "squeue: error: Unable to contact slurm controller\n"))
    report = await reconcile_pass(ledger, SlurmClient(runner=slurm), cluster=CLUSTER, orphan_grace=GRACE)
    assert [p.message for p in report.problems if "orphan" in p.message] == [
        "orphan check skipped: squeue exited with 1: squeue: error: Unable to contact slurm controller"
    ]
    assert slurm.cancelled() == [] and any(call[0] == "sacctmgr" for call in slurm.calls)  # the rest ran


async def test_a_hold_that_never_got_a_job_is_released_after_the_grace(ledger: Ledger, clock: Clock) -> None:
    stale = ledger.admit("vision-lab", "bob", "crashed", Booking("h200", 1, 1), now=NOW - GRACE - timedelta(seconds=61))
    fresh = ledger.admit("vision-lab", "bob", "starting", Booking("h200", 1, 1), now=NOW - GRACE)
    recorded = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1), now=OLD - timedelta(hours=1))
    ledger.record_job_id(recorded, "71")
    held = ledger.figures("vision-lab").held_mgs
    report = await reconcile_pass(ledger, SlurmClient(runner=FakeSlurm("")), cluster=CLUSTER, orphan_grace=GRACE)
    assert [line for line in report.lines if line.startswith("released")] == [
        f"released the hold of session {stale} (vision-lab, bob/crashed): admitted at 2026-11-29 04:56:59 UTC, "
        "the hub never recorded a job for it"
    ]
    assert ledger.session(stale).state.value == "ended" and ledger.session(stale).message.startswith("stopped: ")
    assert ledger.session(fresh).state.value == "admitted" and ledger.session(recorded).state.value == "admitted"
    assert ledger.figures("vision-lab").held_mgs == held - 1 * 3600 * 1000  # one h200-hour less held
    assert ledger.charges("vision-lab") == []  # nothing ran, nothing charged
    dry = await reconcile_pass(
        ledger, SlurmClient(runner=FakeSlurm("")), cluster=CLUSTER, orphan_grace=GRACE, dry_run=True
    )
    assert not [line for line in dry.lines if line.startswith("released")]


def test_the_grace_comes_from_the_option_else_the_config_file_else_the_default(tmp_path) -> None:
    from types import SimpleNamespace

    from hub.cli_support import UsageError
    from hub.commands.ledger import _orphan_grace

    config = tmp_path / "hpchub_config.py"
    config.write_text("c.HPCHubLedger.orphan_grace = 45\n")
    assert _orphan_grace(SimpleNamespace(orphan_grace=7.5, config=str(config))) == timedelta(seconds=7.5)
    assert _orphan_grace(SimpleNamespace(orphan_grace=None, config=str(config))) == timedelta(seconds=45)
    assert _orphan_grace(SimpleNamespace(orphan_grace=None, config=str(tmp_path / "none.py"))) == timedelta(seconds=120)
    with pytest.raises(UsageError, match="--orphan-grace: from 0 to 86400 seconds"):
        _orphan_grace(SimpleNamespace(orphan_grace=-1.0, config=None))
