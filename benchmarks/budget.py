"""Benchmark: the spawn-time budget check of the ledger.

    /opt/hpchub/venv/bin/python benchmarks/budget.py [--rows N] [--projects N]
        [--backend sqlite|postgresql|both] [--iterations N] [--quick] [--seed N]

For each backend it builds a ledger database with ``--projects`` projects (5 members each,
one with a cap) and ``--rows`` charge rows spread over them at random (final sacct charges,
portal jobs with a provisional and a final charge, portal jobs with only a provisional
one, jobs of non-members; the portal jobs' ended sessions; two running sessions per
project). It loads them in bulk (SQLAlchemy core ``insert()`` executemany), then measures
on random (project, member) pairs, one after another, after a warm-up:

- ``preview``: ``Ledger.preview`` (the spawn form's check: reads only; autocommit on PostgreSQL);
- ``admit``: ``Ledger.admit``, the real admission: row locks, the project's and the
  member's figures, the hold written and committed;
- ``admit+end``: ``admit`` and then ``session_ended`` (the hold released, no job ran),
  the whole cycle, which keeps the data set unchanged;
- ``naive``: the baseline, in the same run on the same database: a full scan, all charge
  rows of all projects loaded into Python, each job's effective charge picked and the
  project's summed there (plus its grants and holds). Its answer is checked against the
  ledger's. Fewer iterations: one takes about a second.

The target is p99 < 5 ms for ``preview`` and ``admit``. PostgreSQL is a private server
started for the run (``hub/demo/devtools/pgserver.py``) with its durable defaults (fsync and
synchronous commit on), stopped after; SQLite is a file in WAL mode (``upgrade``), like
the hub's. Both databases are in a temporary directory, removed after.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BACKENDS,
    Result,
    after_bulk_load,
    bulk_insert,
    databases,
    machine,
    stop_cleanly_on_sigterm,
    timed,
)
from sqlalchemy import func, select  # noqa: E402

from hub.ledger import Ledger, upgrade  # noqa: E402
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR  # noqa: E402
from hub.ledger.models import CapEntry, Charge, Grant, Member, PortalSession, Project  # noqa: E402
from hub.ledger.types import Booking, ChargeKind, ChargeSource, ProjectKind, ProjectState, Role, SessionState  # noqa: E402

TARGET_P99_MS = 5.0
MEMBERS_PER_PROJECT = 5
RUNNING_PER_PROJECT = 2
CLUSTER = "hpchub"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
WEIGHTS = {"h200": 1000, "a100": 500}


# --- the data set ---------------------------------------------------------------------------------


def members_of(project: int) -> list[str]:
    return [f"u{(project * 7 + j) % 5000:04d}" for j in range(MEMBERS_PER_PROJECT)]


@dataclass
class DataSet:
    projects: int
    rows: int
    seed: int


def build(url: str, data: DataSet, say: Callable[[str], None]) -> dict:
    """Create the ledger's tables and load the data set in bulk; returns counts and timings."""
    rng = random.Random(data.seed)
    started = time.perf_counter()
    upgrade(url)
    ledger = Ledger(url)
    engine = ledger.engine
    period = timedelta(days=365)
    projects, grants, members, caps, sessions, charges = [], [], [], [], [], []
    for p in range(1, data.projects + 1):
        name = f"p{p:04d}"
        projects.append(dict(
            id=p, name=name, slurm_account=name, kind=ProjectKind.RESEARCH, state=ProjectState.ACTIVE,
            state_reason=None, period_start=None, period_end=None, created_at=NOW - period, created_by="bench",
        ))  # fmt: skip
        grants.append(dict(project_id=p, amount_mgs=10_000_000 * MGS_PER_GPU_HOUR, reason="initial budget",
                           granted_by="bench", granted_at=NOW - period))  # fmt: skip
        for j, user in enumerate(members_of(p)):
            members.append(dict(project_id=p, user=user, role=Role.PI if j == 0 else Role.MEMBER, active=True,
                                added_at=NOW - period, added_by="bench", ended_at=None, ended_by=None))  # fmt: skip
            if j == 1:
                caps.append(dict(project_id=p, user=user, cap_mgs=1_000_000 * MGS_PER_GPU_HOUR, reason="cap",
                                 set_by="bench", set_at=NOW - period))  # fmt: skip
    session_id = 0
    job = 10_000_000
    while len(charges) < data.rows:
        job += 1
        p = rng.randint(1, data.projects)
        user = rng.choice(members_of(p)) if rng.random() < 0.95 else f"x{rng.randint(0, 9999):04d}"
        gpu_type = rng.choice(("h200", "a100"))
        gpus = rng.choice((1, 1, 2, 4, 8))
        elapsed = rng.randint(60, 86_400)
        end = NOW - timedelta(seconds=rng.randint(3600, int(period.total_seconds())))
        start = end - timedelta(seconds=elapsed)
        mgs = gpus * elapsed * WEIGHTS[gpu_type]
        common = dict(cluster=CLUSTER, job_id=str(job), user=user, project_id=p, gpu_type=gpu_type, gpus=gpus,
                      start_at=start, end_at=end, recorded_at=end)  # fmt: skip
        kind = rng.random()
        sid = None
        if kind < 0.14:  # a portal job: its ended session and a provisional charge
            session_id += 1
            sid = session_id
            sessions.append(dict(
                id=sid, project_id=p, user=user, server_name="", cluster=CLUSTER, job_id=str(job), gpu_type=gpu_type,
                gpus=gpus, reserved_seconds=86_400, weight_milli=WEIGHTS[gpu_type], state=SessionState.ENDED,
                message=None, admitted_at=start, started_at=start, ended_at=end, elapsed_seconds=elapsed,
            ))  # fmt: skip
            charges.append(dict(common, elapsed_seconds=elapsed, weighted_mgs=mgs, source=ChargeSource.PORTAL,
                                kind=ChargeKind.PROVISIONAL, session_id=sid))  # fmt: skip
        if kind >= 0.02 and len(charges) < data.rows:  # the final charge (all but 2 % of jobs have one)
            final_elapsed = elapsed + (rng.randint(0, 30) if sid else 0)
            charges.append(dict(common, elapsed_seconds=final_elapsed, weighted_mgs=gpus * final_elapsed * WEIGHTS[gpu_type],
                                source=ChargeSource.SACCT, kind=ChargeKind.FINAL, session_id=sid))  # fmt: skip
    for p in range(1, data.projects + 1):  # running sessions: what admission sums as holds
        for user in members_of(p)[:RUNNING_PER_PROJECT]:
            session_id += 1
            job += 1
            sessions.append(dict(
                id=session_id, project_id=p, user=user, server_name="run", cluster=CLUSTER, job_id=str(job),
                gpu_type="h200", gpus=1, reserved_seconds=4 * 3600, weight_milli=1000, state=SessionState.RUNNING,
                message=None, admitted_at=NOW - timedelta(hours=1), started_at=NOW - timedelta(hours=1), ended_at=None,
                elapsed_seconds=None,
            ))  # fmt: skip
    generated = time.perf_counter()
    with engine.begin() as connection:
        for model, rows in ((Project, projects), (Grant, grants), (Member, members), (CapEntry, caps),
                            (PortalSession, sessions), (Charge, charges)):  # fmt: skip
            bulk_insert(connection, model, rows)
            say(f"  {model.__tablename__}: {len(rows):,} rows")
    after_bulk_load(engine, [Project.__tablename__, PortalSession.__tablename__])
    loaded = time.perf_counter()
    ledger.close()
    return {"charges": len(charges), "sessions": len(sessions), "generate_s": generated - started,
            "load_s": loaded - generated}  # fmt: skip


# --- measuring ------------------------------------------------------------------------------------


def naive_remaining_mgs(engine, project_id: int) -> int:
    """The baseline: every charge row into Python, effective charges picked and summed there."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Charge.project_id, Charge.cluster, Charge.job_id, Charge.kind, Charge.weighted_mgs)
        ).all()
        grants = connection.execute(
            select(func.sum(Grant.amount_mgs)).where(Grant.project_id == project_id)
        ).scalar_one()
        holds = connection.execute(
            select(PortalSession.gpus, PortalSession.reserved_seconds, PortalSession.weight_milli)
            .where(PortalSession.project_id == project_id, PortalSession.state.in_((SessionState.ADMITTED, SessionState.RUNNING)))
        ).all()  # fmt: skip
    finals = {(cluster, job_id) for _p, cluster, job_id, kind, _m in rows if kind is ChargeKind.FINAL}
    used = sum(
        mgs for p, cluster, job_id, kind, mgs in rows
        if p == project_id and (kind is ChargeKind.FINAL or (cluster, job_id) not in finals)
    )  # fmt: skip
    # (the running sessions' cost so far moves from held to used: their sum is the reservation)
    return int(grants) - used - sum(g * s * w for g, s, w in holds)


def measure(backend: str, url: str, data: DataSet, iterations: int, naive_iterations: int, say) -> list[Result]:
    rng = random.Random(data.seed + 1)
    picks = [(p, rng.choice(members_of(p))) for p in (rng.randint(1, data.projects) for _ in range(iterations + 50))]
    results = {name: Result(backend, name, []) for name in ("preview", "admit", "admit+end")}
    with Ledger(url) as ledger:

        def preview(p: int, user: str):
            return ledger.preview(f"p{p:04d}", user, Booking("h200", 1, 1))

        def admit(p: int, user: str):
            return ledger.admit(f"p{p:04d}", user, "bench", Booking("h200", 1, 1))

        for index, (p, user) in enumerate(picks):  # 50 warm-up calls, then measured ones
            preview_ms, answer = timed(lambda: preview(p, user))
            assert answer.allowed, answer.message
            admit_ms, session_id = timed(lambda: admit(p, user))
            end_ms, _ = timed(lambda: ledger.session_ended(session_id, datetime.now(timezone.utc), 0))
            if index >= 50:
                results["preview"].samples_ms.append(preview_ms)
                results["admit"].samples_ms.append(admit_ms)
                results["admit+end"].samples_ms.append(admit_ms + end_ms)
        say(f"  {backend}: {iterations} previews and admissions measured")

        naive = Result(backend, "naive", [])
        for _ in range(naive_iterations):
            p, _user = rng.choice(picks)
            naive_ms, remaining = timed(lambda: naive_remaining_mgs(ledger.engine, p))
            naive.samples_ms.append(naive_ms)
            expected = ledger.figures(f"p{p:04d}").remaining_mgs
            assert remaining == expected, f"the naive sum {remaining} differs from the ledger's {expected}"
        say(f"  {backend}: {naive_iterations} naive full scans measured (each agreed with the ledger)")
    return [*results.values(), naive]


# --- output ---------------------------------------------------------------------------------------


def table(results: list[Result]) -> list[str]:
    lines = [
        f"{'backend':<11} {'operation':<10} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'naive/op p50':>13}  target p99 < {TARGET_P99_MS:g} ms"
    ]
    for backend in dict.fromkeys(r.backend for r in results):
        rows = [r for r in results if r.backend == backend]
        naive = next(r for r in rows if r.operation == "naive")
        for r in rows:
            ratio = "1x (baseline)" if r is naive else f"{naive.p50 / r.p50:,.0f}x"
            if r.operation in ("preview", "admit"):
                verdict = "PASS" if r.p99 < TARGET_P99_MS else "MISS"
            else:
                verdict = "-"
            lines.append(
                f"{backend:<11} {r.operation:<10} {len(r.samples_ms):>5} {r.p50:>9.2f} {r.p99:>9.2f} {ratio:>13}  {verdict}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="charge rows (default 1,000,000; --quick 100,000)")
    parser.add_argument("--projects", type=int, default=None, help="projects (default 1,000; --quick 200)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--iterations", type=int, default=None, help="measured checks per operation (default 500; --quick 200)"
    )
    parser.add_argument("--naive-iterations", type=int, default=None, help="naive full scans (default 10; --quick 5)")
    parser.add_argument("--quick", action="store_true", help="a smaller run: 100,000 rows, 200 projects")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    projects = args.projects or (200 if args.quick else 1_000)
    iterations = args.iterations or (200 if args.quick else 500)
    naive_iterations = args.naive_iterations or (5 if args.quick else 10)
    if rows < 1 or projects < 1 or iterations < 1 or naive_iterations < 1:
        parser.error("--rows, --projects and the iterations must be at least 1")
    data = DataSet(projects=projects, rows=rows, seed=args.seed)
    backends = BACKENDS if args.backend == "both" else (args.backend,)

    sys.stdout.reconfigure(line_buffering=True)  # the figures and the progress (stderr) in order
    stop_cleanly_on_sigterm()

    def say(message: str) -> None:
        print(message, file=sys.stderr)

    command = "benchmarks/budget.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# {command.strip()}")
    for line in machine():
        print(f"# {line}")
    print(f"# data: {projects:,} projects x {MEMBERS_PER_PROJECT} members, {rows:,} charge rows; "
          f"{iterations} measured checks per operation (after 50 warm-up), {naive_iterations} naive scans")  # fmt: skip
    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="hpchub-bench-"))
    try:
        for backend in backends:
            say(f"{backend}: building the database")
            with databases(backend, work) as create:
                url = create("ledger")
                built = build(url, data, say)
                analyzed = ", then VACUUM ANALYZE" if backend == "postgresql" else ""
                print(
                    f"# {backend}: loaded in {built['load_s']:.1f} s (+{built['generate_s']:.1f} s generating rows){analyzed}"
                )
                results += measure(backend, url, data, iterations, naive_iterations, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    for line in table(results):
        print(line)
    print(
        f"# naive: all {rows:,} charge rows of all projects loaded into Python and summed there (the effective "
        "charge of each job picked in Python), plus the project's grants and holds; checked equal to the ledger's answer"
    )
    print(
        "# admit+end: admit, then session_ended for the same session (the hold released); the target applies to preview and admit"
    )
    misses = [r for r in results if r.operation in ("preview", "admit") and r.p99 >= TARGET_P99_MS]
    return 1 if misses and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
