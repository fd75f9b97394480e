"""Unit tests for spawners.slurm.watcher.JobWatcher (one shared Slurm status cache)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest

from spawners.slurm.client import SlurmCommandError, SlurmTimeoutError
from spawners.slurm.types import UNKNOWN_STATUS_REASON, JobState
from spawners.slurm.watcher import (
    NOT_LISTED_REASON,
    NOT_TRACKED_REASON,
    NOT_YET_QUERIED_REASON,
    JobWatcher,
    clear_shared_watchers,
    get_shared_watcher,
)

pytestmark = pytest.mark.unit

JOB_NAME = "hpchub"


class UnexpectedCall(BaseException):
    """Raised by the fake for any call it was not told to expect.

    A BaseException so the watcher's ``except Exception`` cannot swallow it and
    turn a test bug into a "Slurm failure" that passes by accident.
    """


class FakeSlurm:
    """A scripted stand-in for SlurmClient: answers only the calls it expects.

    ``squeue_answers``/``sacct_answers`` are queues of text (or an exception to
    raise). ``sacct`` must be asked exactly ``expect_sacct_ids`` when set.
    Any other attribute, argument or an empty queue raises UnexpectedCall.
    """

    def __init__(self) -> None:
        self.squeue_answers: list[str | Exception] = []
        self.sacct_answers: list[str | Exception] = []
        self.expect_sacct_ids: list[str] | None = None
        self.squeue_calls: list[dict] = []
        self.sacct_calls: list[list[str]] = []
        self.unexpected: list[str] = []
        self.squeue_gate: asyncio.Event | None = None  # when set, squeue waits for it
        self.squeue_entered = asyncio.Event()

    def _fail(self, message: str) -> None:
        self.unexpected.append(message)
        raise UnexpectedCall(message)

    def __getattr__(self, name: str):  # only called for attributes not defined above
        self._fail(f"unexpected attribute {name!r}")

    @staticmethod
    def _answer(queue: list[str | Exception]) -> str:
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def squeue(self, *, name: str | None = None, job_ids: Sequence[str] | None = None) -> str:
        self.squeue_calls.append({"name": name, "job_ids": job_ids})
        if name != JOB_NAME or job_ids is not None:
            self._fail(f"unexpected squeue(name={name!r}, job_ids={job_ids!r})")
        if not self.squeue_answers:
            self._fail("squeue called more often than expected")
        self.squeue_entered.set()
        if self.squeue_gate is not None:
            await self.squeue_gate.wait()
        return self._answer(self.squeue_answers)

    async def sacct(self, job_ids: Sequence[str]) -> str:
        self.sacct_calls.append(list(job_ids))
        if not job_ids:
            self._fail("sacct called without job ids")
        if self.expect_sacct_ids is not None and sorted(job_ids) != sorted(self.expect_sacct_ids):
            self._fail(f"sacct asked {list(job_ids)}, expected {self.expect_sacct_ids}")
        if not self.sacct_answers:
            self._fail(f"unexpected sacct({list(job_ids)})")
        return self._answer(self.sacct_answers)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slurm() -> Iterator[FakeSlurm]:
    fake = FakeSlurm()
    yield fake
    assert fake.unexpected == [], fake.unexpected


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_watcher(slurm: FakeSlurm, clock: FakeClock, **kwargs) -> JobWatcher:
    return JobWatcher(slurm, JOB_NAME, clock=clock, **kwargs)


def running(job_id: str, node: str = "gpu01") -> str:
    return f"{job_id}|RUNNING|None|{node}|2026-11-29T02:10:00|2026-11-29T03:10:00"


def pending(job_id: str, reason: str = "Resources") -> str:
    return f"{job_id}|PENDING|{reason}|n/a|2026-11-29T03:10:00|2026-11-29T04:10:00"


def sacct_line(job_id: str, state: str = "COMPLETED", exit_code: str = "0:0") -> str:
    return (
        f"{job_id}|{state}|{exit_code}|2026-11-29T01:00:00|2026-11-29T01:30:00|gpu01|1800|"
        "billing=2,gres/gpu=1|physics|alice"
    )


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


async def test_one_squeue_call_for_fifty_jobs(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    job_ids = [str(100 + n) for n in range(50)]
    for job_id in job_ids:
        watcher.track(job_id)
    other_users_job = "999|RUNNING|None|gpu09|N/A|N/A"
    slurm.squeue_answers = [
        lines(*(running(j) for j in job_ids[:25]), *(pending(j) for j in job_ids[25:]), other_users_job)
    ]
    await watcher.refresh()
    assert len(slurm.squeue_calls) == 1 and slurm.sacct_calls == []
    assert (watcher.squeue_calls_total, watcher.sacct_calls_total, watcher.failures_total) == (1, 0, 0)
    assert watcher.status("100").state is JobState.RUNNING and watcher.status("100").node == "gpu01"
    assert watcher.status("149").state is JobState.PENDING and watcher.status("149").reason == "Resources"
    assert watcher.status("999").reason == NOT_TRACKED_REASON  # listed but not ours to track


async def test_pending_reasons_and_start_estimates_come_from_the_one_squeue_call(
    slurm: FakeSlurm, clock: FakeClock
) -> None:
    """The progress page's reason and start estimate (squeue %r and %S, the figure `squeue
    --start` prints) need no call per spawn: FakeSlurm refuses squeue_start or any other call."""
    watcher = make_watcher(slurm, clock)
    for job_id in ("201", "202", "203"):
        watcher.track(job_id)
    slurm.squeue_answers = [lines(pending("201"), pending("202", "Priority"), pending("203", "AssocGrpBillingMinutes"))]
    await watcher.refresh()
    assert len(slurm.squeue_calls) == 1 and slurm.sacct_calls == []
    seen = {
        job_id: (watcher.status(job_id).reason, watcher.status(job_id).start_time) for job_id in ("201", "202", "203")
    }
    assert seen == {"201": ("Resources", "2026-11-29T03:10:00"), "202": ("Priority", "2026-11-29T03:10:00"),
                    "203": ("AssocGrpBillingMinutes", "2026-11-29T03:10:00")}  # fmt: skip


async def test_sacct_only_for_absent_jobs_in_one_call(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    for job_id in ("1", "2", "3", "4"):
        watcher.track(job_id)
    slurm.squeue_answers = [lines(running("1"), pending("2"))]
    slurm.expect_sacct_ids = ["3", "4"]
    slurm.sacct_answers = [lines(sacct_line("3", "CANCELLED by 0", "0:15"), sacct_line("4", "TIMEOUT", "0:1"))]
    await watcher.refresh()
    assert slurm.sacct_calls == [["3", "4"]]
    three = watcher.status("3")
    assert (three.state, three.slurm_state, three.reason, three.exit_code) == (
        JobState.ENDED,
        "CANCELLED",
        "cancelled by uid 0",
        "0:15",
    )
    assert watcher.status("4").slurm_state == "TIMEOUT"

    # ended jobs are final: once squeue drops them too, no further sacct for them
    slurm.squeue_answers = [lines(running("1"), running("2"))]
    slurm.expect_sacct_ids = None
    await watcher.refresh()
    assert len(slurm.sacct_calls) == 1
    assert watcher.status("3").state is JobState.ENDED


async def test_unknown_before_first_query_and_for_untracked(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    watcher.track("7")
    assert watcher.status("7").state is JobState.UNKNOWN
    assert watcher.status("7").reason == NOT_YET_QUERIED_REASON
    assert watcher.status("8").reason == NOT_TRACKED_REASON
    watcher.untrack("7")
    await watcher.refresh()  # nothing tracked: no Slurm call at all
    assert slurm.squeue_calls == []


async def test_squeue_failure_is_unknown_with_backoff_then_recovery(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, interval=30, fast_interval=1, max_backoff=300)
    watcher.track("1")
    slurm.squeue_answers = [lines(running("1", node="gpu07"))]
    await watcher.refresh()
    assert watcher.next_delay() == 30

    controller_down = SlurmCommandError(
        ["squeue"], 1, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    )
    slurm.squeue_answers = [controller_down, SlurmTimeoutError(["squeue"], 30), controller_down, controller_down]
    delays = []
    for _ in range(4):
        clock.now += 1000  # far past any grace period: still never GONE
        await watcher.refresh()
        delays.append(watcher.next_delay())
        status = watcher.status("1")
        assert status.state is JobState.UNKNOWN and status.reason == UNKNOWN_STATUS_REASON
        assert status.node == "gpu07"  # last node kept
    assert delays == [60, 120, 240, 300]
    assert watcher.failures_total == 4 and watcher.consecutive_failures == 4
    last_known = watcher.last_known("1")
    assert last_known is not None and last_known.state is JobState.RUNNING
    assert "Unable to contact" in watcher.last_error
    assert slurm.sacct_calls == []  # a failed squeue says nothing about absence

    slurm.squeue_answers = [lines(running("1", node="gpu07"))]
    await watcher.refresh()
    assert watcher.status("1").state is JobState.RUNNING
    assert watcher.next_delay() == 30 and watcher.consecutive_failures == 0
    assert watcher.failures_total == 4


async def test_unparseable_squeue_counts_as_failure(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    watcher.track("1")
    slurm.squeue_answers = ["squeue: error: something odd\n"]
    await watcher.refresh()
    assert watcher.status("1").state is JobState.UNKNOWN
    assert watcher.failures_total == 1 and slurm.sacct_calls == []


async def test_sacct_failure_leaves_absent_jobs_unknown_not_gone(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, gone_after=60)
    watcher.track("1")
    watcher.track("2")
    slurm.squeue_answers = [lines(running("1"))] * 3
    slurm.sacct_answers = [SlurmCommandError(["sacct"], 1, "sacct: error: Problem talking to the database")] * 3
    for _ in range(3):
        await watcher.refresh()
        clock.now += 100
    assert watcher.status("1").state is JobState.RUNNING
    assert watcher.status("2").state is JobState.UNKNOWN
    assert watcher.status("2").reason == UNKNOWN_STATUS_REASON
    assert watcher.failures_total == 3 and watcher.consecutive_failures == 3


async def test_gone_only_after_grace_and_reset_when_seen(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, gone_after=60)
    watcher.track("5")
    slurm.squeue_answers = [""] * 5
    slurm.sacct_answers = [""] * 5

    await watcher.refresh()  # t=0: just submitted, not listed yet
    assert watcher.status("5").state is JobState.UNKNOWN and watcher.status("5").reason == NOT_LISTED_REASON
    clock.now += 30
    await watcher.refresh()  # t=30
    assert watcher.status("5").state is JobState.UNKNOWN

    slurm.squeue_answers.insert(0, lines(pending("5")))
    clock.now += 20
    await watcher.refresh()  # t=50: listed, the absence clock resets
    assert watcher.status("5").state is JobState.PENDING

    clock.now += 10
    await watcher.refresh()  # t=60: absent again (first time)
    clock.now += 59
    await watcher.refresh()  # t=119: absent for 59 s
    assert watcher.status("5").state is JobState.UNKNOWN
    clock.now += 1
    await watcher.refresh()  # t=120: absent for 60 s with both queries answering
    assert watcher.status("5").state is JobState.GONE
    assert watcher.next_delay() == watcher.interval  # a GONE job needs no fast polling


async def test_job_tracked_during_a_query_is_not_judged_by_it(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, gone_after=0)
    watcher.track("1")
    slurm.squeue_answers = [lines(running("1"))]
    slurm.squeue_gate = asyncio.Event()
    refresh = asyncio.create_task(watcher.refresh())
    await asyncio.wait_for(slurm.squeue_entered.wait(), 2)
    watcher.track("2")  # submitted while squeue was already answering
    slurm.squeue_gate.set()
    await refresh
    assert slurm.sacct_calls == []  # job 2 was not in this query's scope
    assert watcher.status("2").reason == NOT_YET_QUERIED_REASON


async def test_untrack_during_a_query_drops_the_result(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    watcher.track("1")
    slurm.squeue_answers = [lines(running("1"))]
    slurm.squeue_gate = asyncio.Event()
    refresh = asyncio.create_task(watcher.refresh())
    await asyncio.wait_for(slurm.squeue_entered.wait(), 2)
    watcher.untrack("1")
    slurm.squeue_gate.set()
    await refresh
    assert watcher.status("1").reason == NOT_TRACKED_REASON


async def test_cadence_fast_while_pending_or_unseen_slow_when_running(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, interval=30, fast_interval=1)
    assert watcher.next_delay() == 30  # nothing tracked
    watcher.track("1")
    assert watcher.next_delay() == 1  # just submitted, not yet seen
    slurm.squeue_answers = [lines(pending("1", "AssocGrpBillingMinutes"))]
    await watcher.refresh()
    assert watcher.next_delay() == 1
    watcher.track("2")
    slurm.squeue_answers = [lines(running("1"), running("2"))]
    await watcher.refresh()
    assert watcher.next_delay() == 30
    # a failure while a job is pending backs off from the fast cadence
    watcher.track("3")
    slurm.squeue_answers = [lines(running("1"), running("2"), pending("3")), SlurmTimeoutError(["squeue"], 30)]
    await watcher.refresh()
    await watcher.refresh()
    assert watcher.status("3").state is JobState.UNKNOWN
    assert watcher.next_delay() == 2


async def test_wait_for_change_wakes_after_refresh(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    watcher.track("1")
    waiter = asyncio.create_task(watcher.wait_for_change("1", timeout=5))
    await asyncio.sleep(0)
    assert not waiter.done()
    slurm.squeue_answers = [lines(running("1"))]
    await watcher.refresh()
    status = await asyncio.wait_for(waiter, 1)
    assert status.state is JobState.RUNNING


async def test_wait_for_change_ignores_a_query_that_did_not_cover_the_job(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    watcher.track("1")
    slurm.squeue_answers = [lines(running("1")), lines(running("1"), pending("2"))]
    slurm.squeue_gate = asyncio.Event()
    first = asyncio.create_task(watcher.refresh())
    await asyncio.wait_for(slurm.squeue_entered.wait(), 2)
    watcher.track("2")
    waiter = asyncio.create_task(watcher.wait_for_change("2", timeout=5))
    slurm.squeue_gate.set()
    await first
    await asyncio.sleep(0)
    assert not waiter.done()  # that refresh started before job 2 was tracked
    await watcher.refresh()
    assert (await asyncio.wait_for(waiter, 1)).state is JobState.PENDING


async def test_wait_for_change_times_out_with_cached_status(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock)
    watcher.track("1")
    status = await watcher.wait_for_change("1", timeout=0.05)
    assert status.reason == NOT_YET_QUERIED_REASON


async def test_background_loop_polls_only_while_jobs_are_tracked(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, interval=0.05, fast_interval=0.01, max_backoff=1)
    watcher.start()
    watcher.start()  # idempotent
    await asyncio.sleep(0.1)
    assert slurm.squeue_calls == []  # idle: nothing tracked

    slurm.squeue_answers = [lines(running("1"))] * 100
    watcher.track("1")
    status = await watcher.wait_for_change("1", timeout=1)
    assert status.state is JobState.RUNNING
    await asyncio.sleep(0.2)
    calls = len(slurm.squeue_calls)
    assert 1 <= calls <= 8  # slow cadence (0.05 s) once running, not the fast one

    watcher.untrack("1")
    await asyncio.sleep(0.1)
    settled = len(slurm.squeue_calls)
    await asyncio.sleep(0.15)
    assert len(slurm.squeue_calls) == settled  # idle again
    await watcher.stop()
    await watcher.stop()  # idempotent
    assert not watcher.running


async def test_poke_wakes_the_loop_early(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, interval=60, fast_interval=0.01, max_backoff=60)
    watcher.track("1")
    slurm.squeue_answers = [lines(running("1"))] * 3
    watcher.start()
    await watcher.wait_for_change("1", timeout=5)  # returns at the refresh (a bound for a loaded machine)
    assert len(slurm.squeue_calls) == 1  # next refresh would be 60 s away
    watcher.poke()
    await watcher.wait_for_change("1", timeout=5)
    assert len(slurm.squeue_calls) == 2
    await watcher.stop()


def test_shared_watcher_registry(slurm: FakeSlurm, clock: FakeClock) -> None:
    clear_shared_watchers()
    made: list[JobWatcher] = []

    def factory() -> JobWatcher:
        made.append(make_watcher(slurm, clock))
        return made[-1]

    first = get_shared_watcher(("/etc/slurm/slurm.conf", JOB_NAME), factory)
    again = get_shared_watcher(("/etc/slurm/slurm.conf", JOB_NAME), factory)
    other = get_shared_watcher(("/other/slurm.conf", JOB_NAME), factory)
    assert first is again and first is not other and len(made) == 2
    assert clear_shared_watchers() == [first, other]
    assert get_shared_watcher(("/etc/slurm/slurm.conf", JOB_NAME), factory) is not first
    clear_shared_watchers()


def test_interval_validation(slurm: FakeSlurm, clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        make_watcher(slurm, clock, interval=0)
    with pytest.raises(ValueError):
        make_watcher(slurm, clock, fast_interval=-1)
    lenient = make_watcher(slurm, clock, interval=600, fast_interval=900, max_backoff=300)
    assert (lenient.fast_interval, lenient.max_backoff) == (600, 600)


async def test_pokes_never_push_refreshes_closer_than_fast_interval(slurm: FakeSlurm, clock: FakeClock) -> None:
    watcher = make_watcher(slurm, clock, interval=60, fast_interval=0.1, max_backoff=60)
    watcher.track("1")
    slurm.squeue_answers = [lines(running("1"))] * 100
    watcher.start()
    loop = asyncio.get_running_loop()
    end = loop.time() + 0.45
    while loop.time() < end:  # a burst of submits
        watcher.poke()
        await asyncio.sleep(0.005)
    await watcher.stop()
    assert 1 <= len(slurm.squeue_calls) <= 6  # about one per 0.1 s, not one per poke


async def test_an_urgent_poke_refreshes_after_urgent_gap_not_fast_interval(slurm: FakeSlurm, clock: FakeClock) -> None:
    """A server's port report (its job runs) may bring the next refresh closer: one urgent
    poke, one refresh after ``urgent_gap``; plain pokes still wait for ``fast_interval``."""
    watcher = make_watcher(slurm, clock, interval=60, fast_interval=30, urgent_gap=0.01, max_backoff=60)
    watcher.track("1")
    slurm.squeue_answers = [lines(pending("1")), lines(running("1"))]
    watcher.start()
    assert (await watcher.wait_for_change("1", timeout=5)).state is JobState.PENDING
    watcher.poke()  # a plain poke: the next refresh is fast_interval (30 s) away
    await asyncio.sleep(0.05)
    assert len(slurm.squeue_calls) == 1
    watcher.poke(urgent=True)
    assert (await watcher.wait_for_change("1", timeout=5)).state is JobState.RUNNING
    assert len(slurm.squeue_calls) == 2
    await watcher.stop()


def test_urgent_gap_is_positive_and_at_most_fast_interval(slurm: FakeSlurm, clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        make_watcher(slurm, clock, urgent_gap=0)
    assert make_watcher(slurm, clock, fast_interval=0.5, urgent_gap=2).urgent_gap == 0.5
