"""Benchmark: what the project and admin pages cost the hub, on SQLite.

    /opt/hpchub/venv/bin/python benchmarks/pages.py [--rows N] [--projects N] [--iterations N] [--quick]

It builds the budget benchmark's data set (``benchmarks/budget.py``: charges spread over
projects at random, a year of them; ``--projects`` 1 gives one big project) and measures,
one after another, after a warm-up:

- ``project page``: ``gather.project_page`` for the busiest project's pi (its figures, its
  members, its recent sessions): what every view of the page reads;
- ``chart data``: ``gather.chart_data`` (every grant and effective charge of the project, the
  burn-down series): read only when the chart is not cached;
- ``chart draw``: matplotlib's SVG of that data;
- ``admin rows``: ``gather.admin_rows``: every project's figures (the admin page).

The chart is cached per project (``HPCHubPages.chart_cache_seconds``, default 30 s), so a
view pays ``project page`` and, at most every 30 s per project, ``chart data`` + ``chart draw``.
No target is enforced; the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from budget import DataSet, build, members_of  # noqa: E402
from common import machine  # noqa: E402

from hub.ledger import Ledger  # noqa: E402
from hub.project_pages import chart, gather  # noqa: E402


def measure(name: str, call, iterations: int, warmup: int = 2) -> str:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return f"| {name} | {iterations} | {statistics.median(samples):,.1f} | {p95:,.1f} | {samples[-1]:,.1f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="charge rows (default 1,000,000; --quick 100,000)")
    parser.add_argument("--projects", type=int, default=None, help="projects (default 100; --quick 20)")
    parser.add_argument("--iterations", type=int, default=None, help="measured calls each (default 20; --quick 5)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows over 20 projects")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--strict", action="store_true", help="accepted for `make bench` (no target here)")
    args = parser.parse_args(argv)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    projects = args.projects or (20 if args.quick else 100)
    iterations = args.iterations or (5 if args.quick else 20)
    if min(rows, projects, iterations) < 1:
        parser.error("--rows, --projects and --iterations must be at least 1")
    print(f"# benchmarks/pages.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip())
    for line in machine():
        print(f"# {line}")
    work = Path(tempfile.mkdtemp(prefix="hpchub-bench-pages-"))
    try:
        url = f"sqlite:///{work / 'ledger.sqlite'}"
        counts = build(url, DataSet(projects=projects, rows=rows, seed=args.seed), lambda m: print(m, file=sys.stderr))
        with Ledger(url) as ledger:
            busiest = max((info.name for info in ledger.projects()), key=lambda name: len(ledger.charges(name)))
            charges = len(ledger.charges(busiest))
            pi = gather.Viewer(members_of(int(busiest[1:]))[0], False)
            print(f"# data: {projects:,} projects, {counts['charges']:,} charge rows; the busiest project "
                  f"{busiest} has {charges:,} effective charges")  # fmt: skip
            page = gather.project_page(ledger, busiest, pi)
            data = gather.chart_data(ledger, page)
            print(f"# chart: {len(data.points):,} points")
            print("| operation | calls | median ms | p95 ms | max ms |")
            print("|---|---|---|---|---|")
            print(measure("project page", lambda: gather.project_page(ledger, busiest, pi), iterations))
            print(measure("chart data", lambda: gather.chart_data(ledger, page), iterations))
            print(measure("chart draw", lambda: chart.render_svg(data), iterations))
            print(measure(f"admin rows ({projects} projects)", lambda: gather.admin_rows(ledger), iterations))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
