"""One shared status cache for all of the portal's Slurm jobs.

batchspawner runs one ``squeue`` per server per poll (and ~2 per second per
pending spawn); at a few hundred users that loads the login node and
slurmctld. Here every spawner in the hub process reads a single
:class:`JobWatcher`, which asks Slurm about *all* portal jobs at once:

* one ``squeue --name=JOB_NAME --states=all`` per refresh, whatever the number
  of tracked jobs (every portal job carries that job name);
* one ``sacct`` per refresh, only for tracked jobs that squeue no longer lists
  (ended and purged from slurmctld's memory), for their final state;
* polling every ``interval`` seconds, every ``fast_interval`` while a tracked
  job is pending or just submitted and not yet listed, and not at all while
  nothing is tracked.

A failed query is never read as "job gone" (batchspawner#315): if squeue
fails, every tracked job becomes UNKNOWN and polling backs off exponentially;
if sacct fails, the jobs it was asked about become UNKNOWN. A job is GONE only
when both queries *succeeded* and neither listed it for at least
``gone_after`` seconds (Slurm may not list a job submitted a moment ago).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from spawners.slurm.parsers import parse_sacct, parse_squeue
from spawners.slurm.types import UNKNOWN_STATUS_REASON, JobState, JobStatus

NOT_YET_QUERIED_REASON = "not yet queried"
NOT_TRACKED_REASON = "not tracked by the watcher"
NOT_LISTED_REASON = "not listed by squeue or sacct"
_FINAL_STATES = frozenset({JobState.ENDED, JobState.GONE})


class SlurmQueries(Protocol):
    """What the watcher needs from :class:`spawners.slurm.client.SlurmClient`."""

    async def squeue(self, *, name: str | None = None, job_ids: Any = None) -> str: ...

    async def sacct(self, job_ids: Any) -> str: ...


@dataclass
class _TrackedJob:
    """The watcher's bookkeeping for one job id."""

    job_id: str
    status: JobStatus
    last_known: JobStatus | None = None  # last status from a successful query
    absent_since: float | None = None  # clock time of the first "listed nowhere"
    cycles: int = 0  # completed refreshes that covered this job

    @property
    def wants_fast_polling(self) -> bool:
        """Pending, or submitted and not yet listed by Slurm."""
        if self.status.state in _FINAL_STATES:
            return False
        if self.last_known is None:
            return True
        return self.last_known.state is JobState.PENDING


class JobWatcher:
    """Caches the status of every tracked portal job; see the module docstring."""

    def __init__(
        self,
        client: SlurmQueries,
        job_name: str,
        *,
        interval: float = 30.0,
        fast_interval: float = 1.0,
        urgent_gap: float = 0.1,
        max_backoff: float = 300.0,
        gone_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        """``job_name`` "" means: ask squeue by job ids instead of by name.

        Intervals must be positive; ``fast_interval`` is capped at ``interval``,
        ``urgent_gap`` at ``fast_interval``, and ``max_backoff`` raised to at least ``interval``.
        """
        if min(interval, fast_interval, urgent_gap, max_backoff) <= 0 or gone_after < 0:
            raise ValueError("intervals must be positive and gone_after not negative")
        self.client = client
        self.job_name = job_name
        self.interval = interval
        self.fast_interval = min(fast_interval, interval)
        self.urgent_gap = min(urgent_gap, self.fast_interval)
        self.max_backoff = max(max_backoff, interval)
        self.gone_after = gone_after
        self.clock = clock
        self.log = log or logging.getLogger(__name__)
        # metrics
        self.squeue_calls_total = 0
        self.sacct_calls_total = 0
        self.failures_total = 0
        self.refreshes_total = 0
        self.last_refresh_duration = 0.0
        # consecutive failed refreshes (0 after a fully successful one)
        self.consecutive_failures = 0
        self.last_error = ""
        self._jobs: dict[str, _TrackedJob] = {}
        self._refresh_lock = asyncio.Lock()
        self._cycle_done: asyncio.Event | None = None  # set (and replaced) after each refresh
        self._wake = asyncio.Event()
        self._urgent = False
        self._task: asyncio.Task[None] | None = None

    # -- tracking -------------------------------------------------------------

    def track(self, job_id: str) -> None:
        """Start watching ``job_id`` (no-op if already tracked) and wake the loop."""
        if job_id not in self._jobs:
            self._jobs[job_id] = _TrackedJob(job_id, JobStatus(job_id, JobState.UNKNOWN, reason=NOT_YET_QUERIED_REASON))
        self.poke()

    def untrack(self, job_id: str) -> None:
        """Stop watching ``job_id`` (no-op if not tracked)."""
        self._jobs.pop(job_id, None)

    @property
    def tracked(self) -> tuple[str, ...]:
        """The tracked job ids."""
        return tuple(self._jobs)

    def status(self, job_id: str) -> JobStatus:
        """The cached status; UNKNOWN until a refresh that covered the job completes."""
        record = self._jobs.get(job_id)
        if record is None:
            return JobStatus(job_id, JobState.UNKNOWN, reason=NOT_TRACKED_REASON)
        return record.status

    def last_known(self, job_id: str) -> JobStatus | None:
        """The status from the last successful query that listed the job, if any."""
        record = self._jobs.get(job_id)
        return record.last_known if record else None

    # -- refreshing -------------------------------------------------------------

    async def refresh(self) -> None:
        """Query Slurm once for all tracked jobs and update the cache. Never raises
        for a Slurm failure (it is counted, logged and turns statuses UNKNOWN)."""
        async with self._refresh_lock:
            started = self.clock()
            # Only jobs tracked before the query starts are judged by it: a job
            # tracked mid-query may have been submitted after squeue answered.
            covered = dict(self._jobs)
            try:
                if covered:
                    await self._query_and_apply(covered, started)
            finally:
                self.refreshes_total += 1
                self.last_refresh_duration = self.clock() - started
                for record in covered.values():
                    record.cycles += 1
                self._signal_cycle_done()

    async def _query_and_apply(self, covered: dict[str, _TrackedJob], started: float) -> None:
        try:
            self.squeue_calls_total += 1
            if self.job_name:
                text = await self.client.squeue(name=self.job_name)
            else:
                text = await self.client.squeue(job_ids=sorted(covered))
            listed = parse_squeue(text)
        except Exception as exc:  # noqa: BLE001  (any failure: UNKNOWN, never GONE)
            self._record_failure("squeue", exc)
            for record in covered.values():
                self._set(record, self._unknown(record, UNKNOWN_STATUS_REASON))
            return

        absent = sorted(
            job_id
            for job_id, record in covered.items()
            if job_id not in listed and record.status.state not in _FINAL_STATES
        )
        accounted: dict[str, JobStatus] = {}
        sacct_ok = True
        if absent:
            try:
                self.sacct_calls_total += 1
                accounted = parse_sacct(await self.client.sacct(absent))
            except Exception as exc:  # noqa: BLE001  (absent jobs: UNKNOWN, never GONE)
                self._record_failure("sacct", exc)
                sacct_ok = False
        if sacct_ok:
            self.consecutive_failures = 0

        for job_id, record in covered.items():
            found = listed.get(job_id) or accounted.get(job_id)
            if found is not None:
                record.last_known = found
                record.absent_since = None
                self._set(record, found)
            elif job_id not in absent:
                continue  # already ENDED/GONE and no longer listed: keep it
            elif not sacct_ok:
                self._set(record, self._unknown(record, UNKNOWN_STATUS_REASON))
            else:
                if record.absent_since is None:
                    record.absent_since = started
                if started - record.absent_since >= self.gone_after:
                    self._set(record, JobStatus(job_id, JobState.GONE, reason=NOT_LISTED_REASON))
                else:
                    self._set(record, self._unknown(record, NOT_LISTED_REASON))

    def _set(self, record: _TrackedJob, status: JobStatus) -> None:
        """Store ``status`` unless the job was untracked (or re-tracked) meanwhile."""
        if self._jobs.get(record.job_id) is record:
            record.status = status

    @staticmethod
    def _unknown(record: _TrackedJob, reason: str) -> JobStatus:
        """UNKNOWN, keeping the node and times last seen (the server is probably still there)."""
        base = record.last_known
        if base is None:
            return JobStatus(record.job_id, JobState.UNKNOWN, reason=reason)
        return replace(base, state=JobState.UNKNOWN, slurm_state="", reason=reason, exit_code="")

    def _record_failure(self, command: str, exc: Exception) -> None:
        self.failures_total += 1
        self.consecutive_failures += 1
        self.last_error = f"{command}: {exc}"
        self.log.warning(
            "Slurm %s failed (%d in a row; next try in %.0fs): %s",
            command,
            self.consecutive_failures,
            self.next_delay(),
            exc,
            exc_info=not isinstance(exc, RuntimeError),  # tracebacks for parse errors and bugs
        )

    def _signal_cycle_done(self) -> None:
        if self._cycle_done is not None:
            self._cycle_done.set()
            self._cycle_done = None

    def next_delay(self) -> float:
        """Seconds until the next refresh: fast/slow cadence, times 2**failures, capped."""
        fast = any(record.wants_fast_polling for record in self._jobs.values())
        base = self.fast_interval if fast else self.interval
        if self.consecutive_failures:
            return min(base * 2.0**self.consecutive_failures, self.max_backoff)
        return base

    async def wait_for_change(self, job_id: str, timeout: float | None) -> JobStatus:
        """Wait until a refresh covering ``job_id`` completes (or ``timeout``); return its status.

        For an untracked job, waits for the next refresh of any kind. Never
        raises on timeout: it returns the cached status.
        """
        record = self._jobs.get(job_id)
        seen_cycles = record.cycles if record else 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    if self._cycle_done is None:
                        self._cycle_done = asyncio.Event()
                    await self._cycle_done.wait()
                    current = self._jobs.get(job_id)
                    if record is None or current is not record or current.cycles > seen_cycles:
                        break
        return self.status(job_id)

    # -- background loop ----------------------------------------------------------

    def poke(self, *, urgent: bool = False) -> None:
        """Wake the loop for an early refresh (e.g. right after a submit).

        Refreshes stay at least ``fast_interval`` apart however often this is called. An
        ``urgent`` poke brings the next refresh to ``urgent_gap`` after the last one: a
        spawner calls it once per start, when its server reports a port (so its job runs)
        while the cache still says pending; the spawn then need not wait up to a whole
        ``fast_interval`` for the node. Urgent pokes stay ``urgent_gap`` apart too.
        """
        if urgent:
            self._urgent = True
        self._wake.set()

    def start(self) -> None:
        """Start the background loop in the running event loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"slurm-job-watcher:{self.job_name}")

    async def stop(self) -> None:
        """Stop the background loop and wait for it to end (idempotent)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        """True while the background loop runs."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:  # idle: nothing to poll until something is tracked
                self._wake.clear()
                await self._wake.wait()
                continue
            self._wake.clear()
            last_start = loop.time()
            try:
                await self.refresh()
                delay = self.next_delay()
            except Exception:  # a bug, not Slurm: keep the loop alive
                self.log.exception("job watcher refresh crashed")
                delay = self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            # poked early: still keep refreshes fast_interval apart (urgent_gap once urgently poked)
            while (wait := last_start + (self.urgent_gap if self._urgent else self.fast_interval) - loop.time()) > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            self._urgent = False


# -- one watcher per (slurm_conf, job_name) in the hub process ------------------------

_SHARED_WATCHERS: dict[Hashable, JobWatcher] = {}


def get_shared_watcher(key: Hashable, factory: Callable[[], JobWatcher]) -> JobWatcher:
    """The hub-wide watcher for ``key`` (e.g. ``(slurm_conf, job_name)``), made once by ``factory``."""
    watcher = _SHARED_WATCHERS.get(key)
    if watcher is None:
        watcher = _SHARED_WATCHERS[key] = factory()
    return watcher


def clear_shared_watchers() -> list[JobWatcher]:
    """Forget all shared watchers (tests, hub shutdown); returns them so callers can ``stop()`` them."""
    watchers = list(_SHARED_WATCHERS.values())
    _SHARED_WATCHERS.clear()
    return watchers
