"""Benchmark: the hub at scale, side by side with stock batchspawner.

    /opt/hpchub/venv/bin/python benchmarks/scale.py [--quick] [--strict] [--state-dir DIR]
        [--sessions 1,10,50,200] [--pairs N] [--burst N] [--users N] [--interval S] [--window S]
        [--pause S] [--keep]

It starts a private bench-profile cluster (four nodes of 64 h200 GPUs) and two hubs on it,
each with its own proxy on free ports (``benchmarks/scale_setup.py``): ours
(``SlurmGPUSpawner``, the shared job watcher, the ledger) and stock
``batchspawner.SlurmSpawner`` with its defaults (one ``squeue`` per server per poll, every
0.5 s per pending spawn), both polling at ``--interval`` (default 30 s, both spawners'
default). Every session is a stand-in single-user server (``benchmarks/standin.py``) that
registers with the hub like ``batchspawner-singleuser`` and answers HTTP: 200 JupyterLabs
do not fit on 2 cores. Every Slurm command either hub runs goes through a counting wrapper,
so calls are counted exactly and the same way for both. Measured, each for both hubs:

1. scheduler calls per minute with 1, 10, 50 and 200 running sessions, counted over
   ``--window`` seconds once all are running (target: ours at most 2 per poll interval);
2. spawn latency, from the POST to the stand-in answering through the proxy, ``--pairs``
   pairs interleaved (ours, stock, ours, ...): median, spread, the ratio per pair
   (target: ours no slower than stock + 5 %);
3. a class starting: ``--burst`` spawns requested within one second; the time until all
   jobs are submitted (the last sbatch returned) and until all servers are ready, and the
   latency of ``GET /hub/api/users/NAME`` from a poller running throughout;
4. the hub's resident memory (VmRSS) at start, with ``--users`` users (created through the
   API), and with them plus the largest session count running.

The hubs run the installed package (``make bench-scale`` installs first). A missed target
never fails the run unless ``--strict``. Everything is stopped by pid files at the end,
also after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_setup as setup  # noqa: E402
from standin import STANDIN_HEADER  # noqa: E402

TARGET_CALLS_PER_INTERVAL = 2
TARGET_LATENCY_RATIO = 1.05
SPAWN_BATCH = 25  # sessions requested at once while filling up (JupyterHub refuses > 100 pending)
READY_TIMEOUT = 600.0  # seconds for a batch of spawns to be ready (stock's start_timeout is 300)


# --- talking to a hub ------------------------------------------------------------------------------


def call(hub: setup.BenchHub, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {hub.token}"}
    return requests.request(method, f"{hub.api}{path}", headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs)


def request_spawn(hub: setup.BenchHub, user: str) -> int:
    response = call(hub, "POST", f"/users/{user}/server", json={"user_options": hub.options})
    if response.status_code not in (201, 202):
        print(f"  {hub.label}: spawn of {user} refused: {response.status_code} {response.text[:200]}", file=sys.stderr)
    return response.status_code


def users_in_state(hub: setup.BenchHub, state: str) -> set[str]:
    response = call(hub, "GET", f"/users?state={state}&limit={setup.PAGE_LIMIT}")
    response.raise_for_status()
    return {user["name"] for user in response.json()}


def wait_ready(hub: setup.BenchHub, users: list[str], timeout: float = READY_TIMEOUT) -> float:
    """Seconds until every user's default server is ready; raises with the hub's log on timeout."""
    started = time.monotonic()
    wanted = set(users)
    while True:
        missing = wanted - users_in_state(hub, "ready")
        if not missing:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{hub.label}: {len(missing)} servers not ready after {timeout:.0f} s "
                               f"(e.g. {sorted(missing)[:3]}); end of its log:\n{hub.log_tail()}")  # fmt: skip
        time.sleep(0.5)


def stop_servers(hub: setup.BenchHub, users: list[str], timeout: float = 300.0) -> None:
    """Stop the users' servers (DELETE, 25 at a time) and wait until none is active."""
    with ThreadPoolExecutor(25) as pool:
        list(pool.map(lambda u: call(hub, "DELETE", f"/users/{u}/server", timeout=120), users))
    started = time.monotonic()
    while users_in_state(hub, "active") & set(users):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{hub.label}: servers still active {timeout:.0f} s after the stop")
        time.sleep(0.5)


def fill(hub: setup.BenchHub, users: list[str]) -> float:
    """Start a server for each user, ``SPAWN_BATCH`` requests at a time; seconds until all ready."""
    started = time.monotonic()
    for first in range(0, len(users), SPAWN_BATCH):
        batch = users[first : first + SPAWN_BATCH]
        with ThreadPoolExecutor(len(batch)) as pool:
            list(pool.map(lambda u: request_spawn(hub, u), batch))
        wait_ready(hub, batch)
    return time.monotonic() - started


@dataclass(frozen=True)
class Call:
    start: float
    end: float
    rc: int
    command: str


def read_calls(hub: setup.BenchHub, since: float = 0.0, until: float = float("inf")) -> list[Call]:
    """The Slurm calls logged by the hub's wrappers that started in [since, until)."""
    calls = []
    for line in hub.calls_log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            entry = Call(float(parts[0]), float(parts[1]), int(parts[2]), parts[3])
            if since <= entry.start < until:
                calls.append(entry)
    return calls


def tally(calls: list[Call]) -> str:
    counts = Counter(c.command for c in calls)
    return ", ".join(f"{command} {n}" for command, n in sorted(counts.items())) or "none"


# --- the measurements ------------------------------------------------------------------------------


@dataclass
class Steady:
    hub: str
    sessions: int
    window_s: float
    calls: list[Call]
    fill_s: float
    fill_calls: int
    rss_kb: int
    cpu_s: float  # the hub's CPU time during the window

    @property
    def per_minute(self) -> float:
        return len(self.calls) * 60 / self.window_s


def measure_steady(hub: setup.BenchHub, users: list[str], window: float, say) -> Steady:
    """Fill up to len(users) sessions, then count the scheduler calls over ``window`` seconds."""
    fill_started = time.time()
    fill_s = fill(hub, users)
    fill_calls = len(read_calls(hub, fill_started))
    say(
        f"  {hub.label}: {len(users)} sessions ready in {fill_s:.0f} s ({fill_calls} Slurm calls); counting for {window:.0f} s"
    )
    since, cpu_before = time.time(), hub.cpu_seconds()
    time.sleep(window)
    until, cpu_s = time.time(), hub.cpu_seconds() - cpu_before
    result = Steady(hub.label, len(users), until - since, read_calls(hub, since, until), fill_s, fill_calls, hub.rss_kb(),
                    cpu_s)  # fmt: skip
    say(
        f"  {hub.label}: {len(result.calls)} calls in the window ({tally(result.calls)}); hub RSS {result.rss_kb / 1024:.0f} MiB"
    )
    return result


@dataclass(frozen=True)
class Spawn:
    """One spawn's time, split at the sbatch's return and at the stand-in's start (same host clock)."""

    total: float  # the request until the stand-in answers through the proxy
    submit: float  # the request until sbatch returned: the hub's work before Slurm has the job
    slurm: float  # sbatch returned until the stand-in started: Slurm scheduling and launching it
    after: float  # the stand-in started until it answered through the proxy: the hub noticing


def spawn_latency(hub: setup.BenchHub, user: str, timeout: float = READY_TIMEOUT) -> Spawn:
    """The time from the spawn request to the stand-in answering 200 through the proxy."""
    wall = time.time()
    started = time.perf_counter()
    status = request_spawn(hub, user)
    if status not in (201, 202):
        raise RuntimeError(f"{hub.label}: spawn of {user} refused with HTTP {status}")
    url = f"{hub.url}/user/{user}/api"
    while True:
        try:
            response = requests.get(url, allow_redirects=False, timeout=10)
            if response.status_code == 200 and response.headers.get(STANDIN_HEADER):
                total = time.perf_counter() - started
                standin_started = response.json()["started"] - wall
                submitted = max((c.end for c in read_calls(hub, wall) if c.command == "sbatch"), default=wall) - wall
                return Spawn(total, submitted, standin_started - submitted, total - standin_started)
        except requests.RequestException:
            pass
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{hub.label}: {user} did not answer through the proxy in {timeout:.0f} s")
        time.sleep(0.05)


@dataclass
class Burst:
    hub: str
    size: int
    sent_s: float  # from the first spawn request sent to the last one sent
    answered_s: float  # until the last spawn request was answered (201 when ready, 202 after 10 s)
    accepted: int
    submitted_s: float | None  # until the size-th sbatch returned
    ready_s: float | None
    api_ms: list[float] = field(default_factory=list)
    calls: int = 0
    cpu_s: float = 0.0  # the hub's CPU time from the release until all were ready (or given up)

    def percentile(self, q: int) -> float:
        ordered = sorted(self.api_ms)
        if len(ordered) < 2:
            return ordered[0] if ordered else float("nan")
        return statistics.quantiles(ordered, n=100, method="inclusive")[q - 1]


def measure_burst(hub: setup.BenchHub, users: list[str], say) -> Burst:
    """All spawns requested at once (one thread each, released together) while a poller reads
    ``GET /hub/api/users/NAME`` round the users; until every server is ready."""
    done = threading.Event()
    latencies: list[float] = []

    def poll() -> None:
        while not done.is_set():
            for user in users:
                if done.is_set():
                    break
                started = time.perf_counter()
                try:
                    call(hub, "GET", f"/users/{user}", timeout=60)
                except requests.RequestException:
                    pass
                latencies.append((time.perf_counter() - started) * 1000)

    gate = threading.Barrier(len(users) + 1)

    def spawn(user: str) -> tuple[float, int]:
        gate.wait()
        return time.perf_counter(), request_spawn(hub, user)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(1)  # the poller's idle latency is not the burst's: drop it
    latencies.clear()
    with ThreadPoolExecutor(len(users)) as pool:
        futures = [pool.submit(spawn, u) for u in users]
        cpu_before = hub.cpu_seconds()
        gate.wait()
        t0_wall, t0 = time.time(), time.perf_counter()
        answers = [f.result() for f in futures]
        answered_s = time.perf_counter() - t0
    sent = [started for started, _status in answers]
    accepted = sum(status in (201, 202) for _started, status in answers)
    ready_s = None
    try:
        wait_ready(hub, users)
        ready_s = time.perf_counter() - t0
    except RuntimeError as exc:
        say(f"  {hub.label}: {str(exc).splitlines()[0]}")
    cpu_s = hub.cpu_seconds() - cpu_before
    done.set()
    poller.join(timeout=60)
    submits = sorted(c.end for c in read_calls(hub, t0_wall) if c.command == "sbatch" and c.rc == 0)
    submitted_s = submits[len(users) - 1] - t0_wall if len(submits) >= len(users) else None
    result = Burst(hub.label, len(users), max(sent) - min(sent), answered_s, accepted, submitted_s, ready_s, list(latencies),
                   len(read_calls(hub, t0_wall)), cpu_s)  # fmt: skip
    say(f"  {hub.label}: burst of {len(users)}: {accepted} accepted, submitted "
        f"{_s(submitted_s)}, all ready {_s(ready_s)}, API p99 {result.percentile(99):.0f} ms, {result.calls} Slurm calls")  # fmt: skip
    return result


def _s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f} s"


# --- the run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    sessions: tuple[int, ...]
    pairs: int
    burst: int
    users: int
    interval: float
    window: float
    pause: float = 0.0  # the longest random pause before each spawn of the pairs (seconds)

    @property
    def unix_users(self) -> int:
        return max(*self.sessions, self.burst, self.pairs)


@dataclass
class Results:
    steady: list[Steady] = field(default_factory=list)
    pairs: list[tuple[float, float]] = field(default_factory=list)  # (ours, stock) seconds
    pair_parts: list[tuple[Spawn, Spawn]] = field(default_factory=list)
    pair_cpu: list[tuple[float, float]] = field(default_factory=list)  # the hubs' CPU seconds per spawn
    bursts: list[Burst] = field(default_factory=list)
    rss_start: dict[str, int] = field(default_factory=dict)
    rss_users: dict[str, int] = field(default_factory=dict)
    versions: list[str] = field(default_factory=list)


def create_hub_users(hub: setup.BenchHub, count: int) -> None:
    """``count`` users through the API (POST /hub/api/users), in pages of 500 names."""
    names = [setup.user_name(i) for i in range(1, count + 1)]
    for first in range(0, count, 500):
        response = call(hub, "POST", "/users", json={"usernames": names[first : first + 500]}, timeout=300)
        if response.status_code not in (201, 409):
            raise RuntimeError(f"{hub.label}: creating users: HTTP {response.status_code} {response.text[:200]}")


def run(plan: Plan, state: Path, results: Results, say) -> None:
    setup.teardown(state, say, cluster=False)  # hubs left by an interrupted run (a running cluster is reused)
    setup.fresh_hub_state(state)
    cluster = setup.start_cluster(state, say)
    cluster.cancel_all_jobs()  # jobs left by an interrupted run
    results.versions = versions(cluster)
    unix = setup.ensure_unix_users(plan.unix_users, say)
    setup.ensure_slurm_associations(cluster, unix, say)
    standin = setup.write_standin(state / "standin")
    ours = setup.start_ours(state, cluster, unix, standin, plan.interval, say)
    stock = setup.start_stock(state, cluster, standin, plan.interval, say)
    hubs = (ours, stock)
    for hub in hubs:
        results.rss_start[hub.label] = hub.rss_kb()
        create_hub_users(hub, max(plan.users, plan.unix_users))
        results.rss_users[hub.label] = hub.rss_kb()
    say(
        f"hubs: {plan.users} users each; RSS {', '.join(f'{k} {v / 1024:.0f} MiB' for k, v in results.rss_users.items())}"
    )

    say(f"1. scheduler calls with {', '.join(map(str, plan.sessions))} sessions ({plan.window:.0f} s windows)")
    for n in plan.sessions:
        for hub in hubs:
            results.steady.append(measure_steady(hub, unix[:n], plan.window, say))
            stop_servers(hub, unix[:n])

    say(f"2. spawn latency, {plan.pairs} pairs")
    rng = random.Random(6)
    for i in range(plan.pairs):
        user = unix[i % len(unix)]
        pair, cpu = [], []
        for hub in hubs:
            time.sleep(rng.uniform(0, plan.pause))  # so that no spawner locks onto Slurm's backfill tick
            before = hub.cpu_seconds()
            pair.append(spawn_latency(hub, user))
            cpu.append(hub.cpu_seconds() - before)
            stop_servers(hub, [user])
        results.pair_parts.append((pair[0], pair[1]))
        results.pairs.append((pair[0].total, pair[1].total))
        results.pair_cpu.append((cpu[0], cpu[1]))
        say(f"  pair {i + 1}: ours {pair[0].total:.2f} s, stock {pair[1].total:.2f} s")

    say(f"3. a class starting: {plan.burst} spawns at once")
    for hub in hubs:
        results.bursts.append(measure_burst(hub, unix[: plan.burst], say))
        stop_servers(hub, unix[: plan.burst])


def versions(cluster) -> list[str]:
    import batchspawner  # noqa: PLC0415
    import jupyterhub  # noqa: PLC0415

    memory_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    slurm = cluster.slurm("squeue", "--version", check=False).stdout.strip() or "?"
    return [
        f"machine: {os.cpu_count()} CPUs ({model}), {memory_kb / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"software: Python {platform.python_version()}, JupyterHub {jupyterhub.__version__}, "
        f"batchspawner {batchspawner.__version__}, {slurm}",
    ]


# --- output ----------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _steady(results: Results, hub: str, sessions: int) -> Steady | None:
    return next((s for s in results.steady if s.hub == hub and s.sessions == sessions), None)


def report(plan: Plan, results: Results) -> tuple[list[str], list[str]]:
    """The tables, and the missed targets."""
    lines: list[str] = []
    misses: list[str] = []
    iv = plan.interval
    lines.append(f"1. Scheduler calls per minute, running sessions, {plan.window:.0f} s window; poll interval {iv:g} s "
                 f"for both; sessions are stand-ins (benchmarks/standin.py): 200 JupyterLabs do not fit on 2 cores")  # fmt: skip
    lines.append(f"{'sessions':>8} {'ours/min':>9} {'stock/min':>10} {'stock/ours':>11} {'ours per interval':>18}  "
                 f"{'ours: commands in window':<26} {'hub CPU s/min ours':>18} {'stock':>6}  "
                 f"target <= {TARGET_CALLS_PER_INTERVAL} per interval")  # fmt: skip
    for n in plan.sessions:
        ours, stock = _steady(results, "ours", n), _steady(results, "stock", n)
        if ours is None or stock is None:
            continue
        per_interval = len(ours.calls) / (ours.window_s / iv)
        verdict = "PASS" if per_interval <= TARGET_CALLS_PER_INTERVAL else "MISS"
        if verdict == "MISS":
            misses.append(f"{n} sessions: {per_interval:.1f} calls per interval")
        lines.append(f"{n:>8} {ours.per_minute:>9.1f} {stock.per_minute:>10.1f} {_ratio(stock.per_minute, ours.per_minute):>11} "
                     f"{per_interval:>18.2f}  {tally(ours.calls):<26} {ours.cpu_s * 60 / ours.window_s:>18.2f} "
                     f"{stock.cpu_s * 60 / stock.window_s:>6.2f}  {verdict}")  # fmt: skip
    lines.append(f"{'':>8} filling up (Slurm calls to start the sessions, {SPAWN_BATCH} requested at a time):")
    for n in plan.sessions:
        ours, stock = _steady(results, "ours", n), _steady(results, "stock", n)
        if ours is None or stock is None:
            continue
        lines.append(f"{n:>8} ours {ours.fill_calls} calls in {ours.fill_s:.0f} s, stock {stock.fill_calls} calls "
                     f"in {stock.fill_s:.0f} s")  # fmt: skip

    lines.append("")
    lines.append(f"2. Spawn latency: POST /hub/api/users/NAME/server until the stand-in answers 200 through the proxy, "
                 f"{len(results.pairs)} pairs interleaved (ours first)")  # fmt: skip
    lines.append(f"{'pair':>8} {'ours s':>9} {'stock s':>10} {'ours/stock':>11}   hub CPU ms per spawn: ours, stock")
    for i, ((ours_s, stock_s), (ours_cpu, stock_cpu)) in enumerate(zip(results.pairs, results.pair_cpu), 1):
        lines.append(f"{i:>8} {ours_s:>9.2f} {stock_s:>10.2f} {_ratio(ours_s, stock_s):>11}   "
                     f"{ours_cpu * 1000:>5.0f}, {stock_cpu * 1000:.0f}")  # fmt: skip
    if results.pairs:
        ours_all = [p[0] for p in results.pairs]
        stock_all = [p[1] for p in results.pairs]
        ratios = [o / s for o, s in results.pairs]
        m_ours, m_stock = statistics.median(ours_all), statistics.median(stock_all)
        verdict = "PASS" if m_ours <= TARGET_LATENCY_RATIO * m_stock else "MISS"
        if verdict == "MISS":
            misses.append(f"spawn latency: ours median {m_ours:.2f} s > {TARGET_LATENCY_RATIO} x stock {m_stock:.2f} s")
        lines.append(f"{'median':>8} {m_ours:>9.2f} {m_stock:>10.2f} {_ratio(m_ours, m_stock):>11}  "
                     f"median of the per-pair ratios {statistics.median(ratios):.2f}x; "
                     f"target ours <= stock + {round((TARGET_LATENCY_RATIO - 1) * 100)} %: {verdict}")  # fmt: skip
        lines.append(f"{'spread':>8} {min(ours_all):.2f}-{max(ours_all):.2f} {min(stock_all):>5.2f}-{max(stock_all):.2f} "
                     f"{min(ratios):.2f}-{max(ratios):.2f}x  (min-max)")  # fmt: skip
        lines.append(f"{'':>8} split, median s (ours, stock): request to sbatch returned; Slurm until the stand-in "
                     f"started; started to answering through the proxy")  # fmt: skip
        for name in ("submit", "slurm", "after"):
            ours_part = statistics.median(getattr(p[0], name) for p in results.pair_parts)
            stock_part = statistics.median(getattr(p[1], name) for p in results.pair_parts)
            lines.append(f"{name:>8} {ours_part:>9.2f} {stock_part:>10.2f}")
        spawner = (
            [p[0].submit + p[0].after for p in results.pair_parts],
            [p[1].submit + p[1].after for p in results.pair_parts],
        )
        lines.append(f"{'hub part':>8} {statistics.median(spawner[0]):>9.2f} {statistics.median(spawner[1]):>10.2f} "
                     f"{_ratio(statistics.median(spawner[0]), statistics.median(spawner[1])):>11}  "
                     f"(submit + after, per spawn; Slurm's part is not the spawner's)")  # fmt: skip

    lines.append("")
    lines.append(f"3. A class starting: {plan.burst} spawn requests released together; times from the release; "
                 f"a poller reads GET /hub/api/users/NAME throughout")  # fmt: skip
    lines.append(f"{'spawner':>8} {'sent within':>12} {'accepted':>9} {'all submitted':>14} {'all ready':>10} "
                 f"{'API p50 ms':>11} {'p99 ms':>7} {'max ms':>7} {'polls':>6} {'Slurm calls':>12} {'hub CPU s':>10}")  # fmt: skip
    for b in results.bursts:
        lines.append(f"{b.hub:>8} {b.sent_s * 1000:>9.0f} ms {b.accepted:>9} {_s(b.submitted_s):>14} {_s(b.ready_s):>10} "
                     f"{b.percentile(50):>11.0f} {b.percentile(99):>7.0f} {max(b.api_ms, default=0):>7.0f} "
                     f"{len(b.api_ms):>6} {b.calls:>12} {b.cpu_s:>10.2f}")  # fmt: skip

    lines.append("")
    top = max(plan.sessions)
    lines.append(
        f"4. Hub resident memory (VmRSS of the jupyterhub process), MiB; {plan.users:,} users created through the API"
    )
    lines.append(f"{'spawner':>8} {'at start':>9} {f'{plan.users} users':>12} {f'+ {top} sessions':>15}")
    for label in ("ours", "stock"):
        steady = _steady(results, label, top)
        if label not in results.rss_users or steady is None:
            continue
        lines.append(f"{label:>8} {results.rss_start[label] / 1024:>9.0f} {results.rss_users[label] / 1024:>12.0f} "
                     f"{steady.rss_kb / 1024:>15.0f}")  # fmt: skip
    ours_top, stock_top = _steady(results, "ours", top), _steady(results, "stock", top)
    if ours_top and stock_top:
        lines.append(
            f"{'ratio':>8} ours/stock with {plan.users} users and {top} sessions: "
            f"{_ratio(ours_top.rss_kb, stock_top.rss_kb)}"
        )
    return lines, misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 and 10 sessions, 3 pairs, a burst of 10, 100 users, 10 s interval (a few minutes)")  # fmt: skip
    parser.add_argument("--sessions", help="comma-separated session counts (default 1,10,50,200)")
    parser.add_argument("--pairs", type=int, help="spawn latency pairs (default 10)")
    parser.add_argument("--burst", type=int, help="spawns requested at once (default 50)")
    parser.add_argument("--users", type=int, help="hub users for the memory figure (default 1000)")
    parser.add_argument("--interval", type=float,
                        help="poll interval of both spawners in seconds (default 30, both defaults; --quick 10)")  # fmt: skip
    parser.add_argument(
        "--window", type=float, help="seconds calls are counted per session count (default 2 intervals)"
    )
    parser.add_argument("--state-dir", default=os.environ.get("HPCHUB_BENCH_DIR", "/var/lib/hpchub-bench-scale"),
                        help="the benchmark's own state directory (default /var/lib/hpchub-bench-scale)")  # fmt: skip
    parser.add_argument("--pause", type=float, default=2.0,
                        help="a random pause of up to this many seconds before each spawn of the pairs, as users "
                        "arrive at random moments of Slurm's 1-2 s backfill tick (default 2; 0 lets a fixed "
                        "spawn/stop cycle lock onto the tick, which decides the latency more than the spawner)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the cluster and hubs running (for debugging)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    try:
        sessions = tuple(int(n) for n in (args.sessions or ("1,10" if args.quick else "1,10,50,200")).split(","))
    except ValueError:
        parser.error("--sessions: comma-separated whole numbers, e.g. 1,10,50,200")
    interval = args.interval or (10.0 if args.quick else 30.0)
    plan = Plan(sessions=sessions, pairs=args.pairs or (3 if args.quick else 10), burst=args.burst or (10 if args.quick else 50),
                users=args.users or (100 if args.quick else 1000), interval=interval, window=args.window or 2 * interval,
                pause=args.pause)  # fmt: skip
    if not all(1 <= n <= 240 for n in sessions):
        parser.error("--sessions: each from 1 to 240 (the bench cluster has 256 GPUs)")
    if not (1 <= plan.pairs <= 100 and 1 <= plan.burst <= 100 and 1 <= plan.users <= 100_000):
        parser.error("--pairs and --burst: from 1 to 100; --users: from 1 to 100,000")
    if not (1 <= plan.interval <= 3600 and plan.interval <= plan.window <= 7200):
        parser.error("--interval: from 1 to 3600 s; --window: from one interval to 7200 s")
    if not 0 <= plan.pause <= 60:
        parser.error("--pause: from 0 to 60 seconds")
    if os.geteuid() != 0:
        parser.error("run as root: the benchmark creates Unix users and runs Slurm daemons")

    sys.stdout.reconfigure(line_buffering=True)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    state = Path(args.state_dir)
    results = Results()
    started = time.monotonic()
    failure = None
    try:
        run(plan, state, results, say)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001  (print what was measured, then fail)
        failure = exc
    finally:
        if not args.keep:
            say("stopping the hubs, proxies and cluster (pid files)")
            try:
                setup.teardown(state, say)
            except Exception as exc:  # noqa: BLE001  (report, and keep the benchmark's own error)
                say(f"teardown: {exc}")
    command = "benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# {command.strip()}  ({(time.monotonic() - started) / 60:.1f} min)")
    for line in results.versions:
        print(f"# {line}")
    print()
    lines, misses = report(plan, results)
    for line in lines:
        print(line)
    if misses:
        print("# missed: " + "; ".join(misses))
    if failure is not None:
        print(
            f"# the run failed before the end (the tables hold what was measured): {str(failure).splitlines()[0] if str(failure) else repr(failure)}"
        )
        raise failure
    return 1 if misses and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
