"""Benchmark: what the calls page and the proposal lists read, with many proposals and reviews.

    /opt/hpchub/venv/bin/python benchmarks/allocations.py [--proposals N] [--reviews N]
        [--backend sqlite|postgresql|both] [--iterations N] [--quick] [--explain] [--no-http]
        [--seed N] [--strict]

For each backend it builds two ledger databases: the data set (``--proposals``, default
10,000, and ``--reviews`` review assignments, each with its review, default 50,000) and the
baseline, 100 proposals with reviews in the same proportion, by the same generator. Each
has 3 open calls (an academic one and an industry one with review, a start-up one without),
proposals spread over one applicant per 5 proposals (2,000 for 10,000) and the calls, in
every state (a draft has one event, the others 2 to 4: submitted, in review, decided), each
with 1 to 3 saved versions; an awarded one has its project, grant and award. Loaded in bulk
(SQLAlchemy core ``insert()`` executemany), then measured after a warm-up, the baseline and
the data set taking turns so that both see the same machine:

- ``calls page``: what the managers' calls page reads and renders: ``Ledger.calls()``, each
  call's awarded hours (``call_awarded_mgs``) and ``call_json``, and the first 50 proposals of
  the busiest call (``proposals(call=)``, ``count_proposals``) with their reviews
  (``reviews_of``, one query) and score summaries, each ``proposal_json`` for a manager;
- ``list manager``: ``GET /proposals`` for a manager: the newest 200 proposals of all calls,
  ``proposal_json`` each;
- ``list applicant``: ``GET /proposals`` for an applicant (a random one each time): their own;
- ``list states``: the managers' list filtered to ``submitted`` and ``in_review``;
- ``list reviewer``: the proposals assigned to one reviewer (a random one each time), without
  those they are conflicted with (``conflicts_of``; the reviewers' logins are loaded too).

Each answer is the JSON text the API would send (``json.dumps``), and is checked (its size,
the applicant's and the states filter's rows). When the allocation pages are in the checkout
(``hub/allocation_pages``), what each page reads is measured too, by the pages' own functions
without the HTML: ``page /calls`` (every call with its awarded hours), ``page /calls/{name}``
(the call's first 50 proposals past the drafts, with their scores and, for each one open to a
decision, every reviewer candidate's conflict) and ``page /reviews`` (a reviewer's assignments).
When the allocation API is (``hub/api/allocations.py``), the ``GET`` requests are measured over
HTTP as well, from a hub per database that serves only the API (``benchmarks/api_hub.py``; no
cluster, no proxy, no spawner), with a token of a manager (a hub admin), of applicants and of
reviewers (in the reviewers' group); ``--no-http`` skips that. The target is p99 < 300 ms for the data set;
the ratio to the baseline says how it grows with the number of proposals. ``--explain``
prints the query plans of every statement of each operation on the data set (EXPLAIN QUERY
PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL). PostgreSQL is a private server started for
the run (``hub/demo/devtools/pgserver.py``) and stopped after; SQLite files in WAL mode like
the hub's; both in a temporary directory, removed after.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BACKENDS,
    REPO,
    Result,
    after_bulk_load,
    bulk_insert,
    databases,
    load_average,
    machine,
    query_plans,
    stop_cleanly_on_sigterm,
    timed,
)

from hub.allocations.service import View, call_json, proposal_json  # noqa: E402
from hub.ledger import Ledger, upgrade  # noqa: E402
from hub.ledger.allocation_models import (  # noqa: E402
    Award,
    Call,
    LoginPrincipal,
    Proposal,
    ProposalEvent,
    ProposalReview,
    ProposalVersion,
    ReviewAssignment,
)
from hub.ledger.allocations import DEFAULT_CRITERIA, FIELDS_OF_SCIENCE, ProposalKind, ProposalState  # noqa: E402
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR  # noqa: E402
from hub.ledger.models import Grant, LoginGroups, Project  # noqa: E402
from hub.ledger.types import ProjectKind, ProjectState  # noqa: E402

TARGET_P99_MS = 300.0
BASELINE_PROPOSALS = 100
PROPOSALS_PER_APPLICANT = 5
REVIEWERS = 300
REVIEWER_GROUP = "hpc-reviewers"  # HPCHubAllocations.reviewer_groups' default
CALLS_PAGE_SIZE = 50
LIST_PAGE_SIZE = 200
WARMUP = 10
NOW = datetime.now(timezone.utc).replace(microsecond=0)
TODAY = NOW.date()
FILTERED = (ProposalState.SUBMITTED, ProposalState.IN_REVIEW)
OPERATIONS = ("calls page", "list manager", "list applicant", "list states", "list reviewer")
# Over HTTP (the ledger's API in a hub, ``api_hub``): (operation, who asks, path and query)
API = "/hub/api/hpchub/v1"
HTTP_OPERATIONS = (
    ("GET /calls", "manager", f"{API}/calls"),
    ("GET /proposals?call", "manager", f"{API}/proposals?call={{call}}&limit={CALLS_PAGE_SIZE}"),
    ("GET /proposals?all", "manager", f"{API}/proposals?all=1&limit={LIST_PAGE_SIZE}"),
    ("GET /proposals", "applicant", f"{API}/proposals?limit={LIST_PAGE_SIZE}"),
    ("GET /proposals?state", "manager", f"{API}/proposals?state=submitted,in_review&limit={LIST_PAGE_SIZE}"),
    ("GET /proposals?assigned", "reviewer", f"{API}/proposals?assigned=1&limit={LIST_PAGE_SIZE}"),
)
# The pages, over HTTP too (HTML), when they are in the checkout
HTTP_PAGES = (
    ("GET page /calls", "manager", "/hub/hpchub/calls"),
    ("GET page /calls/{name}", "manager", "/hub/hpchub/calls/{call}"),
    ("GET page /reviews", "reviewer", "/hub/hpchub/reviews"),
)
HTTP_USERS = 10  # applicants and reviewers with a token, per database
MANAGER = "admin"
API_MODULE = REPO / "hub" / "api" / "allocations.py"
# What the allocation pages read (their gather functions, without the HTML), when in the checkout
PAGES_MODULE = REPO / "hub" / "allocation_pages" / "manage.py"
PAGE_OPERATIONS = ("page /calls", "page /calls/{name}", "page /reviews")

# (name, audiences, review, start-up, share of the proposals)
CALLS = (
    ("academic-2027", "academic,education", True, False, 0.60),
    ("industry-2027", "startup,sme,industry", True, False, 0.25),
    ("startup", "academic,startup,sme", False, True, 0.15),
)
# state: (share, the events that lead to it) for calls with review; start-up calls below
REVIEWED_STATES = {
    ProposalState.DRAFT: (0.05, (ProposalState.DRAFT,)),
    ProposalState.SUBMITTED: (0.10, (ProposalState.DRAFT, ProposalState.SUBMITTED)),
    ProposalState.IN_REVIEW: (0.25, (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.IN_REVIEW)),
    ProposalState.AWARDED: (0.20, (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.IN_REVIEW,
                                   ProposalState.AWARDED)),
    ProposalState.REJECTED: (0.20, (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.IN_REVIEW,
                                    ProposalState.REJECTED)),
    ProposalState.RETURNED: (0.10, (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.IN_REVIEW,
                                    ProposalState.RETURNED)),
    ProposalState.WITHDRAWN: (0.10, (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.WITHDRAWN)),
}  # fmt: skip
STARTUP_STATES = {
    ProposalState.DRAFT: (0.10, (ProposalState.DRAFT,)),
    ProposalState.AWARDED: (0.80, (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.AWARDED)),
    ProposalState.WITHDRAWN: (0.10, (ProposalState.DRAFT, ProposalState.WITHDRAWN)),
}
REVIEWED = (ProposalState.IN_REVIEW, ProposalState.AWARDED, ProposalState.REJECTED, ProposalState.RETURNED)
WORDS = ("gpu", "training", "model", "simulation", "protein", "climate", "lattice", "inference", "vision", "language",
         "graph", "turbulence", "materials", "genome", "solver", "dataset", "benchmark", "scaling")  # fmt: skip


# --- the data set ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSet:
    proposals: int
    reviews: int
    seed: int

    @property
    def applicants(self) -> int:
        return max(1, self.proposals // PROPOSALS_PER_APPLICANT)


def applicant_of(index: int) -> str:
    return f"ap{index:05d}"


def reviewer_of(index: int) -> str:
    return f"rv{index:03d}"


def _prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words).capitalize() + "."


def _pick_state(rng: random.Random, states: dict) -> tuple[ProposalState, tuple[ProposalState, ...]]:
    draw = rng.random()
    for state, (share, path) in states.items():
        draw -= share
        if draw < 0:
            return state, path
    return state, path


def build(url: str, data: DataSet, say: Callable[[str], None]) -> dict:
    """Create the ledger's tables and load the data set in bulk; returns counts and timings."""
    rng = random.Random(data.seed)
    started = time.perf_counter()
    upgrade(url)
    ledger = Ledger(url)
    engine = ledger.engine
    calls = []
    for call_id, (name, audiences, review, startup, _share) in enumerate(CALLS, 1):
        calls.append(dict(
            id=call_id, name=name, title=f"{name} allocation round", audiences=audiences,
            opens=TODAY - timedelta(days=300), closes=TODAY + timedelta(days=60),
            available_mgs=500_000 * MGS_PER_GPU_HOUR, max_request_mgs=(500 if startup else 50_000) * MGS_PER_GPU_HOUR,
            period_months=12, review_required=review, criteria="" if startup else "\n".join(DEFAULT_CRITERIA),
            reviews_visible=review, startup=startup, report_required=False, created_at=NOW - timedelta(days=310),
            created_by="bench",
        ))  # fmt: skip
    shares = [c[4] for c in CALLS]
    fields = list(FIELDS_OF_SCIENCE)
    proposals, versions, events, projects, grants, awards = [], [], [], [], [], []
    reviewable: list[tuple[int, datetime]] = []
    step = timedelta(days=290) / data.proposals
    for pid in range(1, data.proposals + 1):
        call_index = rng.choices(range(len(CALLS)), shares)[0]
        startup = CALLS[call_index][3]
        who = applicant_of(rng.randrange(data.applicants))
        institution = f"inst{rng.randrange(400):03d}.example"
        created = NOW - timedelta(days=295) + step * pid
        proposals.append(dict(id=pid, call_id=call_index + 1, kind=ProposalKind.NEW, applicant=who,
                              applicant_principal=f"{who}@{institution}", created_at=created))  # fmt: skip
        team = [f"{who}@{institution}"] + [
            f"m{rng.randrange(9999):04d}@{institution}" for _ in range(rng.randint(0, 2))
        ]
        requested = rng.randint(10, 500 if startup else 50_000)
        for version in range(1, rng.randint(1, 3) + 1):
            versions.append(dict(
                proposal_id=pid, version=version, title=_prose(rng, 60)[:200], abstract=_prose(rng, 800),
                field_of_science=rng.choice(fields), gpu_hours_mgs=requested * MGS_PER_GPU_HOUR, period_months=12,
                justification=_prose(rng, 1200), team="\n".join(team), organisation=f"Institute {institution}",
                project_name=f"bench-{pid:06d}", attachment_sha256=None, attachment_name=None,
                saved_at=created + timedelta(minutes=version), saved_by=who,
            ))  # fmt: skip
        state, path = _pick_state(rng, STARTUP_STATES if startup else REVIEWED_STATES)
        at = created
        for step_state in path:
            at += timedelta(hours=rng.randint(1, 72))
            awarded = None
            if step_state is ProposalState.AWARDED:
                awarded = rng.randint(1, requested) * MGS_PER_GPU_HOUR
            by = (
                who
                if step_state in (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.WITHDRAWN)
                else "admin"
            )
            events.append(dict(proposal_id=pid, state=step_state, at=at, by=by, reason=f"{step_state.value} (bench)",
                               awarded_mgs=awarded))  # fmt: skip
        if state is ProposalState.AWARDED:
            project_id = len(projects) + 1
            projects.append(dict(
                id=project_id, name=f"bench-{pid:06d}", slurm_account=f"bench-{pid:06d}", kind=ProjectKind.RESEARCH,
                state=ProjectState.ACTIVE, state_reason=None, period_start=at.date(),
                period_end=at.date() + timedelta(days=365), created_at=at, created_by="admin",
            ))  # fmt: skip
            grants.append(dict(id=project_id, project_id=project_id, amount_mgs=awarded,
                               reason=f"call {CALLS[call_index][0]}, proposal #{pid}", granted_by="admin",
                               granted_at=at))  # fmt: skip
            awards.append(dict(proposal_id=pid, project_id=project_id, grant_id=project_id, amount_mgs=awarded,
                               period_start=at.date(), period_end=at.date() + timedelta(days=365), at=at, by="admin",
                               message="awarded"))  # fmt: skip
        if not startup and state in REVIEWED:
            reviewable.append((pid, created + timedelta(days=1)))
    assignments, reviews = [], []
    if reviewable and data.reviews:
        per, extra = divmod(data.reviews, len(reviewable))
        for n, (pid, at) in enumerate(reviewable):
            count = min(REVIEWERS, per + (1 if n < extra else 0))
            for r in rng.sample(range(REVIEWERS), count):
                reviewer = reviewer_of(r)
                assignments.append(dict(proposal_id=pid, reviewer=reviewer, at=at, by="admin"))
                scores = "\n".join(f"{criterion}={rng.randint(1, 5)}" for criterion in DEFAULT_CRITERIA)
                reviews.append(dict(proposal_id=pid, reviewer=reviewer, scores=scores, comment=_prose(rng, 300),
                                    at=at + timedelta(hours=rng.randint(1, 200))))  # fmt: skip
    # the reviewers' logins: their institutions (what the conflict check compares) and groups
    principals = [dict(user=reviewer_of(r), principal=f"{reviewer_of(r)}@inst{r % 400:03d}.example", seen_at=NOW)
                  for r in range(REVIEWERS)]  # fmt: skip
    groups = [dict(user=reviewer_of(r), groups=REVIEWER_GROUP, seen_at=NOW) for r in range(REVIEWERS)]
    generated = time.perf_counter()
    with engine.begin() as connection:
        for model, rows in ((LoginPrincipal, principals), (LoginGroups, groups), (Call, calls), (Proposal, proposals), (ProposalVersion, versions),
                            (ProposalEvent, events), (Project, projects), (Grant, grants), (Award, awards),
                            (ReviewAssignment, assignments), (ProposalReview, reviews)):  # fmt: skip
            bulk_insert(connection, model, rows)
            say(f"  {model.__tablename__}: {len(rows):,} rows")
    after_bulk_load(engine, [Call.__tablename__, Proposal.__tablename__, Project.__tablename__, Grant.__tablename__])
    loaded = time.perf_counter()
    ledger.close()
    return {"proposals": len(proposals), "versions": len(versions), "events": len(events), "awards": len(awards),
            "reviews": len(reviews), "generate_s": generated - started, "load_s": loaded - generated}  # fmt: skip


# --- what is measured -----------------------------------------------------------------------------


def calls_page(ledger: Ledger) -> str:
    """The managers' calls page: every call with its awarded hours, and the busiest call's first
    page of proposals with their reviews and score summaries."""
    infos = ledger.calls()
    calls = [call_json(info, ledger.call_awarded_mgs(info.name), TODAY) for info in infos]
    call = next(info for info in infos if info.name == CALLS[0][0])
    page = ledger.proposals(call=call.name, limit=CALLS_PAGE_SIZE)
    reviews = ledger.reviews_of(p.id for p in page)
    listed = [proposal_json(p, View.MANAGER, reviews=reviews[p.id], call=call) for p in page]
    body = {"calls": calls, "call": call.name, "proposals": ledger.count_proposals(call=call.name), "page": listed}
    return json.dumps(body)


def proposal_list(ledger: Ledger, view: View, **query) -> str:
    """``GET /proposals``: a page of proposals as JSON, as ``view`` sees them."""
    found = ledger.proposals(limit=LIST_PAGE_SIZE, **query)
    return json.dumps({"proposals": [proposal_json(info, view) for info in found]})


def reviewer_list(ledger: Ledger, reviewer: str) -> str:
    """``GET /proposals?assigned=1``: the reviewer's assigned proposals without those they
    are conflicted with (``conflicts_of``: one read for all of them), as a reviewer sees them."""
    found = ledger.proposals(reviewer=reviewer, limit=LIST_PAGE_SIZE)
    conflicts = ledger.conflicts_of(reviewer, (info.id for info in found))
    readable = [info for info in found if conflicts.get(info.id) is None]
    return json.dumps({"proposals": [proposal_json(info, View.REVIEWER) for info in readable]})


def operation(name: str, ledger: Ledger, data: DataSet, rng: random.Random) -> Callable[[], str]:
    if name == "calls page":
        return lambda: calls_page(ledger)
    if name == "list manager":
        return lambda: proposal_list(ledger, View.MANAGER)
    if name == "list applicant":
        who = applicant_of(rng.randrange(data.applicants))
        return lambda: proposal_list(ledger, View.APPLICANT, applicant=who)
    if name == "list states":
        return lambda: proposal_list(ledger, View.MANAGER, states=FILTERED)
    if name == "list reviewer":
        who = reviewer_of(rng.randrange(REVIEWERS))
        return lambda: reviewer_list(ledger, who)
    if name in PAGE_OPERATIONS:
        from hub.allocation_pages import manage, review  # noqa: PLC0415 (only when the pages exist)

        if name == "page /calls":
            return lambda: json.dumps({"count": len(manage.calls_page(ledger, TODAY))})
        if name == "page /calls/{name}":
            return lambda: json.dumps(
                {"count": len(manage.call_page(ledger, CALLS[0][0], [REVIEWER_GROUP], TODAY, 0)["rows"])}
            )
        who = reviewer_of(rng.randrange(REVIEWERS))
        return lambda: json.dumps({"count": len(review.reviews_page(ledger, who))})
    raise ValueError(name)


def check(name: str, answer: str, data: DataSet) -> None:
    """The answer is what was asked for (not an empty page that happens to be fast)."""
    body = json.loads(answer)
    if name == "calls page":
        assert len(body["calls"]) == len(CALLS) and body["page"], "the calls page lists the calls and proposals"
        assert any(p.get("scores") for p in body["page"]) or data.reviews == 0, "the page has score summaries"
        return
    if "count" in body:  # a page's rows
        assert body["count"] or name == "page /reviews", f"{name} shows nothing"
        return
    listed = body["proposals"]
    if name == "list manager":
        assert len(listed) == min(LIST_PAGE_SIZE, data.proposals), len(listed)
        assert [p["id"] for p in listed] == sorted((p["id"] for p in listed), reverse=True), "newest first"
    elif name == "list applicant":
        assert len({p["applicant"] for p in listed}) <= 1, "an applicant's list has only their own"
    elif name == "list states":
        assert listed and {p["state"] for p in listed} <= {s.value for s in FILTERED}, "the states filter"


def listed(answer: str) -> int:
    """The proposals (or, for the calls alone, the calls) in an answer."""
    body = json.loads(answer)
    if isinstance(body, list):
        return len(body)
    if "count" in body:
        return body["count"]
    return len(body.get("page", body.get("proposals", body.get("calls", []))))


@dataclass
class Database:
    label: str  # "data set" or "baseline"
    data: DataSet
    ledger: Ledger


def measure(backend: str, databases: list[Database], iterations: int, seed: int, say) -> dict:
    """{(operation, label): Result}: each operation, baseline and data set taking turns."""
    rng = random.Random(seed)
    results, counts = {}, {}
    for name in OPERATIONS + (PAGE_OPERATIONS if PAGES_MODULE.exists() else ()):
        for db in databases:
            results[name, db.label] = Result(backend, name)
        for index in range(WARMUP + iterations):
            for db in databases:
                call = operation(name, db.ledger, db.data, rng)
                elapsed, answer = timed(call)
                if index == 0:
                    check(name, answer, db.data)
                if index >= WARMUP:
                    results[name, db.label].samples_ms.append(elapsed)
                    counts.setdefault((name, db.label), []).append(listed(answer))
        say(f"  {backend}: {name}: {iterations} measured on each database")
    for key, listed_rows in counts.items():
        results[key].rows = round(statistics.mean(listed_rows))
    return results


def measure_http(backend: str, databases: list[Database], urls: list[str], work: Path, iterations: int, seed: int,
                 say) -> dict:  # fmt: skip
    """{(operation, label): Result} over HTTP: a hub per database (``api_hub``), each
    operation's requests taking turns between them, each with its own keep-alive session."""
    from api_hub import api_hub  # noqa: PLC0415 (imports requests; only for --http)

    rng = random.Random(seed)
    results, counts = {}, {}
    with ExitStack() as stack:
        hubs = []
        for db, url in zip(databases, urls, strict=True):
            applicants = sorted({applicant_of(rng.randrange(db.data.applicants)) for _ in range(HTTP_USERS)})
            reviewers = sorted({reviewer_of(rng.randrange(REVIEWERS)) for _ in range(HTTP_USERS)})
            hub = stack.enter_context(api_hub(url, work / f"hub-{db.label.replace(' ', '_')}",
                                              [MANAGER, *applicants, *reviewers], {REVIEWER_GROUP: reviewers}))  # fmt: skip
            sessions = {user: stack.enter_context(hub.session(user)) for user in hub.tokens}
            browsers = {user: stack.enter_context(hub.browser(user)) for user in hub.tokens}
            people = {"manager": [MANAGER], "applicant": applicants, "reviewer": reviewers}
            hubs.append((db, hub, sessions, browsers, people))
        say(f"  {backend}: a hub per database serving the API")
        for name, who, path in HTTP_OPERATIONS + (HTTP_PAGES if PAGES_MODULE.exists() else ()):
            for db, *_ in hubs:
                results[name, db.label] = Result(backend, name)
            for index in range(WARMUP + iterations):
                for db, hub, sessions, browsers, people in hubs:
                    session = (browsers if path.startswith("/hub/hpchub/") else sessions)[rng.choice(people[who])]
                    url = hub.root + path.format(call=CALLS[0][0])
                    elapsed, answer = timed(lambda session=session, url=url: session.get(url))
                    if answer.status_code != 200 or answer.history:
                        raise RuntimeError(
                            f"{name} on the {db.label}: {answer.status_code} at {answer.url}: {answer.text[:300]}"
                        )
                    if index >= WARMUP:
                        results[name, db.label].samples_ms.append(elapsed)
                        if answer.headers.get("Content-Type", "").startswith("application/json"):
                            counts.setdefault((name, db.label), []).append(listed(answer.text))
            say(f"  {backend}: {name}: {iterations} requests to each hub")
    for key, listed_rows in counts.items():
        results[key].rows = round(statistics.mean(listed_rows))
    return results


def explain(backend: str, db: Database, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for name in OPERATIONS:
        lines.append(f"## {backend} {db.label}: {name}")
        lines += query_plans(db.ledger.engine, operation(name, db.ledger, db.data, rng))
    return lines


# --- output ---------------------------------------------------------------------------------------


def table(results: dict, backends: tuple[str, ...], sizes: dict[str, DataSet]) -> list[str]:
    data_n = f"{sizes['data set'].proposals:,}"
    base_n = f"{sizes['baseline'].proposals:,}"
    head = (f"{'backend':<11} {'operation':<24} {'n':>4} {'rows':>8} {base_n + ' p50':>10} {base_n + ' p99':>10} "
            f"{data_n + ' p50':>11} {data_n + ' p99':>11} {'p50 ratio':>9} {'p99 ratio':>9}  "
            f"target {data_n} p99 < {TARGET_P99_MS:g} ms")  # fmt: skip
    lines = [head]
    for backend in backends:
        names = dict.fromkeys(name for name, _label in results[backend])
        for name in names:
            base, full = results[backend][name, "baseline"], results[backend][name, "data set"]
            verdict = "PASS" if full.p99 < TARGET_P99_MS else "FAIL"
            rows = f"{base.rows}/{full.rows}" if full.rows is not None else "-"
            lines.append(
                f"{backend:<11} {name:<24} {len(full.samples_ms):>4} {rows:>8} {base.p50:>10.2f} {base.p99:>10.2f} "
                f"{full.p50:>11.2f} {full.p99:>11.2f} {full.p50 / base.p50:>8.1f}x {full.p99 / base.p99:>8.1f}x  {verdict}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proposals", type=int, default=None, help="proposals (default 10,000; --quick 2,000)")
    parser.add_argument("--reviews", type=int, default=None,
                        help="review assignments, each with its review (default 50,000; --quick 10,000)")  # fmt: skip
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--iterations", type=int, default=None,
                        help="measured calls per operation and database (default 200; --quick 50)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smaller run: 2,000 proposals, 10,000 reviews")
    parser.add_argument("--explain", action="store_true", help="print the query plans of each operation")
    parser.add_argument("--no-http", action="store_true", help="skip the measurement over HTTP (a hub per database)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    proposals = args.proposals or (2_000 if args.quick else 10_000)
    reviews = args.reviews if args.reviews is not None else (10_000 if args.quick else 50_000)
    iterations = args.iterations or (50 if args.quick else 200)
    if proposals < 1 or reviews < 0 or iterations < 1:
        parser.error("--proposals and --iterations must be at least 1, --reviews at least 0")
    sizes = {
        "baseline": DataSet(BASELINE_PROPOSALS, reviews * BASELINE_PROPOSALS // proposals, args.seed),
        "data set": DataSet(proposals, reviews, args.seed),
    }
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    http = not args.no_http and API_MODULE.exists()

    sys.stdout.reconfigure(line_buffering=True)  # the figures and the progress (stderr) in order
    stop_cleanly_on_sigterm()

    def say(message: str) -> None:
        print(message, file=sys.stderr)

    command = "benchmarks/allocations.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# {command.strip()}")
    for line in machine():
        print(f"# {line}")
    print(f"# {iterations} measured calls per operation and database (after {WARMUP} warm-up), baseline and "
          "data set taking turns")  # fmt: skip
    results: dict[str, dict] = {}
    plans: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="hpchub-bench-alloc-"))
    try:
        for backend in backends:
            with databases(backend, work) as create:
                opened, urls = [], []
                try:
                    for label, data in sizes.items():
                        say(f"{backend}: building the {label} ({data.proposals:,} proposals)")
                        url = create(label.replace(" ", "_"))
                        built = build(url, data, say)
                        print(f"# {backend} {label}: {built['proposals']:,} proposals ({built['versions']:,} versions, "
                              f"{built['events']:,} events, {built['awards']:,} awards), {built['reviews']:,} "
                              f"assignments with reviews, {data.applicants:,} applicants; loaded in "
                              f"{built['load_s']:.1f} s (+{built['generate_s']:.1f} s generating)"
                              + (", then VACUUM ANALYZE" if backend == "postgresql" else ""))  # fmt: skip
                        opened.append(Database(label, data, Ledger(url)))
                        urls.append(url)
                    print(f"# {backend}: measuring from {load_average()}")
                    results[backend] = measure(backend, opened, iterations, args.seed + 1, say)
                    if http:
                        results[backend] |= measure_http(backend, opened, urls, work, iterations, args.seed + 3, say)
                    if args.explain:
                        plans += explain(backend, opened[-1], args.seed + 2)
                finally:
                    for db in opened:
                        db.ledger.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# done at {load_average()}")
    print()
    for line in table(results, backends, sizes):
        print(line)
    print(f"# calls page: calls() + awarded hours of each call + the first {CALLS_PAGE_SIZE} proposals of "
          f"{CALLS[0][0]} with reviews_of and score summaries; list: the first {LIST_PAGE_SIZE}, newest first; "
          "each rendered to JSON; rows: the proposals (calls for GET /calls) in an answer, on average, baseline/data set")  # fmt: skip
    if http:
        print("# GET ...: the same over HTTP, from a client with a keep-alive connection to a hub serving the ledger's "
              "API on the database (benchmarks/api_hub.py: JupyterHub's token check and scopes, the handler, the ledger, "
              "the JSON)")  # fmt: skip
    elif not args.no_http:
        print(f"# not measured over HTTP: {API_MODULE.relative_to(REPO)} (the allocation API) is not in this checkout")
    for line in plans:
        print(line)
    misses = [r for per in results.values() for (name, label), r in per.items()
              if label == "data set" and r.p99 >= TARGET_P99_MS]  # fmt: skip
    return 1 if misses and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
