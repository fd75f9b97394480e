"""Unit tests for the ledger's records of running jobs the portal did not start
(hub/ledger/outside_jobs.py, migration 0002) and how admission, usage and the mirror count them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub.ledger import BudgetRefused, Ledger, LedgerInputError, upgrade
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.types import Booking, MirrorFigures, OutsideJobSeen, OutsideJobState

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
CLUSTER = "hpchub"
ACCOUNTS = ("vision-lab", "tiny-lab")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=clock, cluster=CLUSTER) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=20, who="admin")
        ledger.create_project("tiny-lab", account="tiny-lab", kind="lab", gpu_hours="0.25", who="admin")
        ledger.add_member("tiny-lab", "erin", role="pi", who="admin")
        yield ledger


def seen(job_id: str, user: str = "bob", account: str = "vision-lab", gpus=None, minutes: int = 60) -> OutsideJobSeen:
    return OutsideJobSeen(job_id, user, account, gpus or {"h200": 2}, T0, minutes * 60)


def test_an_outside_job_holds_gpus_x_time_limit_x_weight(ledger: Ledger, clock: Clock) -> None:
    changes = ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("41")])
    [job] = changes.started
    assert (job.job_id, job.project, job.user, job.gpu_type, job.gpus, job.state) == (
        "41", "vision-lab", "bob", "h200", 2, OutsideJobState.RUNNING,
    )  # fmt: skip
    assert job.reservation_mgs == 2 * H and changes.ended == ()
    clock.now = T0 + timedelta(minutes=15)  # cost so far 0.5 GPU-h, held 1.5
    usage = ledger.usage("vision-lab")
    assert (usage["used_gpu_hours"], usage["held_gpu_hours"], usage["remaining_gpu_hours"]) == (0.5, 1.5, 98.0)
    bob = next(member for member in usage["members"] if member["user"] == "bob")
    assert (bob["used_gpu_hours"], bob["held_gpu_hours"]) == (0.5, 1.5)
    # admission counts it: bob's cap of 20 has 18 left
    with pytest.raises(BudgetRefused, match="bob's cap in vision-lab has 18.0 GPU-h left"):
        ledger.admit("vision-lab", "bob", "", Booking("h200", 4, 5))
    # the mirror takes running outside jobs from sacct itself, not from this record
    assert ledger.mirror_figures("vision-lab") == MirrorFigures(100 * H, 0, 0)


def test_sync_is_idempotent_refreshes_and_ends(ledger: Ledger) -> None:
    ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("41"), seen("42", "erin", "tiny-lab", {"a100": 1}, 10)])
    again = ledger.sync_outside_jobs(
        CLUSTER, ACCOUNTS, [seen("41", minutes=90), seen("42", "erin", "tiny-lab", {"a100": 1}, 10)]
    )
    assert again.started == again.ended == ()
    assert ledger.outside_jobs("vision-lab")[0].time_limit_seconds == 90 * 60  # scontrol update: refreshed
    gone = ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("41", minutes=90)])
    assert [job.job_id for job in gone.ended] == ["42"]
    assert ledger.usage("tiny-lab")["held_gpu_hours"] == 0.0
    assert [job.job_id for job in ledger.outside_jobs(running_only=False)] == ["41", "42"]
    # an account that is not synced keeps its running jobs
    ledger.sync_outside_jobs(CLUSTER, ["tiny-lab"], [])
    assert [job.job_id for job in ledger.outside_jobs()] == ["41"]


def test_portal_jobs_final_charged_jobs_and_cpu_jobs_are_not_outside_jobs(ledger: Ledger) -> None:
    session_id = ledger.admit("vision-lab", "alice", "", Booking("h200", 1, 1))
    ledger.record_job_id(session_id, "50")
    ledger.import_final_charge(CLUSTER, "51", "bob", "vision-lab", {"h200": 1}, T0, T0, 60)
    changes = ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("50"), seen("51"), seen("52", gpus={"h200": 0})])
    assert changes.started == () and ledger.outside_jobs() == []
    assert ledger.portal_job_ids(CLUSTER, ["50", "51", "52"]) == {"50"}
    assert ledger.final_charge_job_ids(CLUSTER, ["50", "51", "52"]) == {"51"}
    assert ledger.final_charge_job_ids("other", ["51"]) == set()


def test_recording_the_job_id_ends_its_outside_record_so_it_never_holds_twice(ledger: Ledger, clock: Clock) -> None:
    """The hub died between sbatch and recording the job id; the reconciler met the job
    running and recorded it as an outside job; the restarted hub records it: one hold."""
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 2, 1))
    ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("41")])
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 4.0  # both, until the record
    clock.now = T0 + timedelta(minutes=1)
    ledger.record_job_id(session_id, "41")
    assert ledger.outside_jobs() == []
    [job] = ledger.outside_jobs(running_only=False)
    assert (job.state, job.ended_at) == (OutsideJobState.ENDED, clock.now)
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 2.0  # the session's hold only
    assert ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("41")]).started == ()  # the portal's now
    ledger.record_job_id(session_id, "41")  # idempotent
    assert ledger.usage("vision-lab")["held_gpu_hours"] == 2.0


def test_the_final_charge_ends_the_outside_job(ledger: Ledger, clock: Clock) -> None:
    ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("41")])
    clock.now = T0 + timedelta(minutes=30)
    assert ledger.import_final_charge(CLUSTER, "41", "bob", "vision-lab", {"h200": 2}, T0, clock.now, 1800)
    assert ledger.outside_jobs() == []
    [job] = ledger.outside_jobs(running_only=False)
    assert (job.state, job.ended_at) == (OutsideJobState.ENDED, clock.now)
    usage = ledger.usage("vision-lab")
    assert (usage["used_gpu_hours"], usage["held_gpu_hours"]) == (1.0, 0.0)  # counted once


def test_mirror_figures_count_an_admitted_session_that_slurm_already_runs(ledger: Ledger) -> None:
    session_id = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 2))
    ledger.record_job_id(session_id, "60")
    assert ledger.mirror_figures("vision-lab").running_reservations_mgs == 0  # pending: room left open
    assert ledger.mirror_figures("vision-lab", running_job_ids={(CLUSTER, "60")}).running_reservations_mgs == 2 * H
    assert ledger.mirror_figures("vision-lab", "bob", running_job_ids={(CLUSTER, "60")}) == MirrorFigures(
        20 * H, 0, 2 * H
    )
    assert ledger.mirror_figures("vision-lab", running_job_ids={("other", "60")}).running_reservations_mgs == 0


@pytest.mark.parametrize(
    ("job", "field"),
    [
        pytest.param(seen("41", account="cs101"), "account", id="account-not-synced"),
        pytest.param(seen("41;x"), "job_id", id="bad-job-id"),
        pytest.param(seen("41", gpus={"v100": 1}), "gpu_type", id="unknown-gpu-type"),
        pytest.param(
            OutsideJobSeen("41", "bob", "vision-lab", {"h200": 1}, datetime(2026, 1, 1), 60),
            "started_at",
            id="naive-start",
        ),
    ],
)
def test_sync_bad_input_changes_nothing(ledger: Ledger, job: OutsideJobSeen, field: str) -> None:
    ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [seen("40")])
    with pytest.raises(LedgerInputError) as caught:
        ledger.sync_outside_jobs(CLUSTER, ACCOUNTS, [job])
    assert caught.value.field == field
    assert [job.job_id for job in ledger.outside_jobs()] == ["40"]


def test_job_ids_of_array_tasks_and_heterogeneous_jobs(ledger: Ledger) -> None:
    assert ledger.import_final_charge(CLUSTER, "70_3", "bob", "vision-lab", {"h200": 1}, T0, T0, 60)
    assert ledger.import_final_charge(CLUSTER, "71+1", "bob", "vision-lab", {"h200": 1}, T0, T0, 60)
    assert ledger.final_charge_job_ids(CLUSTER, ["70_3", "71+1", "71"]) == {"70_3", "71+1"}


def test_projects_know_when_they_were_created(ledger: Ledger) -> None:
    assert ledger.project("vision-lab").created_at == T0
