"""Unit tests for what the project and admin pages read (hub/project_pages/gather.py, the ledger's
history) and for the chart (hub/project_pages/chart.py), on a SQLite ledger in tmp_path."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from hub.ledger import BudgetRefused, Ledger, LedgerInputError, NotFound, upgrade
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.types import Booking, SessionState
from hub.project_pages import chart, gather
from hub.project_pages.burndown import burndown
from hub.project_pages.gather import Viewer

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ALICE, BOB, CAROL, TOM, ADMIN = (Viewer("alice", False), Viewer("bob", False), Viewer("carol", False),
                                 Viewer("tom", False), Viewer("admin", True))  # fmt: skip


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
    """vision-lab (alice pi, bob member) with one ended and one running session; cs101 with carol, tom."""
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=clock, cluster="c1") as ledger:
        ledger.create_project(
            "vision-lab",
            account="vision-lab",
            kind="research",
            gpu_hours=100,
            who="admin",
            start="2026-03-01",
            end="2026-12-31",
        )
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=20, who="admin")
        ledger.create_project("cs101", account="cs101", kind="course", gpu_hours=50, who="admin")
        ledger.add_member("cs101", "tom", role="ta", who="admin")
        ledger.add_member("cs101", "carol", role="student", cap_gpu_hours=5, who="admin")
        # alice: 2 x h200 for 1 h, ran 30 min (1.0 GPU-h provisional), then its final charge (1.1)
        first = ledger.admit("vision-lab", "alice", "", Booking("h200", 2, 1), now=T0)
        ledger.record_job_id(first, "101")
        ledger.session_started(first, T0)
        ledger.session_ended(first, T0 + timedelta(minutes=30), 1800)
        ledger.import_final_charge(
            "c1",
            "101",
            "alice",
            "vision-lab",
            {"h200": 2},
            T0,
            T0 + timedelta(minutes=33),
            1980,
            now=T0 + timedelta(hours=1),
        )
        # bob: 1 x h200 for 2 h, running for 15 min at "now"
        second = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 2), now=T0 + timedelta(hours=2))
        ledger.record_job_id(second, "102")
        ledger.session_started(second, T0 + timedelta(hours=2))
        clock.now = T0 + timedelta(hours=2, minutes=15)
        ledger.grant("vision-lab", 10, reason="top-up", who="admin", now=T0 + timedelta(hours=1))
        yield ledger


def test_history_reads_grants_charges_and_sessions(ledger: Ledger, clock: Clock) -> None:
    assert [(g.amount_mgs, g.reason) for g in ledger.grant_history("vision-lab")] == [
        (100 * H, "initial budget"),
        (10 * H, "top-up"),
    ]
    # the final charge replaced the provisional one: 2 x 1980 s = 1.1 GPU-h at the job's end
    assert ledger.charge_timeline("vision-lab") == [(T0 + timedelta(minutes=33), 2 * 1980 * 1000)]
    sessions = ledger.recent_sessions("vision-lab")
    assert [(s.user, s.job_id, s.state) for s in sessions] == [
        ("bob", "102", SessionState.RUNNING),
        ("alice", "101", SessionState.ENDED),
    ]
    assert (sessions[0].cost_mgs, sessions[0].held_mgs) == (H // 4, 2 * H - H // 4)
    assert (sessions[1].cost_mgs, sessions[1].held_mgs) == (2 * 1980 * 1000, 0)
    assert [s.user for s in ledger.recent_sessions("vision-lab", user="alice")] == ["alice"]
    assert [s.job_id for s in ledger.recent_sessions("vision-lab", limit=1)] == ["102"]


def test_refused_sessions_are_not_listed(ledger: Ledger) -> None:
    with pytest.raises(BudgetRefused):
        ledger.admit("vision-lab", "bob", "huge", Booking("h200", 4, 8))  # 32 GPU-h > bob's cap
    assert [s.job_id for s in ledger.recent_sessions("vision-lab")] == ["102", "101"]


@pytest.mark.parametrize(
    ("limit", "user", "field"),
    [
        pytest.param(0, None, "limit", id="zero"),
        pytest.param(501, None, "limit", id="too-many"),
        pytest.param("20", None, "limit", id="string"),
        pytest.param(20, "bob;rm", "user", id="unsafe-user"),
    ],
)
def test_recent_sessions_bad_input(ledger: Ledger, limit, user, field) -> None:
    with pytest.raises(LedgerInputError) as caught:
        ledger.recent_sessions("vision-lab", limit=limit, user=user)
    assert caught.value.field == field


def test_pi_sees_every_member_and_the_figures_of_hpchub_usage(ledger: Ledger) -> None:
    page = gather.project_page(ledger, "vision-lab", ALICE)
    usage = ledger.usage("vision-lab")
    assert {key: page.figures[key]["value"] for key in page.figures} == {
        "budget": usage["budget_gpu_hours"],
        "used": usage["used_gpu_hours"],
        "held": usage["held_gpu_hours"],
        "remaining": usage["remaining_gpu_hours"],
    }
    assert page.usage == usage
    assert usage["used_gpu_hours"] == 1.35  # 1.1 final + 0.25 so far
    assert [m["user"] for m in page.members] == ["alice", "bob"]
    assert [s["user"] for s in page.sessions] == ["bob", "alice"]
    assert page.role.value == "pi" and page.access.read_all_members


def test_member_sees_only_their_own_row_and_sessions(ledger: Ledger) -> None:
    page = gather.project_page(ledger, "vision-lab", BOB)
    assert [m["user"] for m in page.members] == ["bob"]
    assert [s["user"] for s in page.sessions] == ["bob"]
    assert [m["user"] for m in page.usage["members"]] == ["bob"]
    assert page.figures["budget"]["value"] == 110.0  # the project's totals are for every member


def test_ta_sees_every_member_of_the_course(ledger: Ledger) -> None:
    page = gather.project_page(ledger, "cs101", TOM)
    assert [m["user"] for m in page.members] == ["tom", "carol"]


@pytest.mark.parametrize(
    ("project", "viewer"),
    [
        pytest.param("vision-lab", CAROL, id="not-a-member"),
        pytest.param("no-such-lab", ALICE, id="unknown"),
        pytest.param("vision-lab", Viewer("Weird Name!", False), id="hub-name-not-a-ledger-user"),
    ],
)
def test_invisible_and_unknown_projects_are_the_same_not_found(ledger: Ledger, project, viewer) -> None:
    with pytest.raises(NotFound) as caught:
        gather.project_page(ledger, project, viewer)
    assert caught.value.message == f"project: no project {project!r}"
    with pytest.raises(NotFound):
        gather.charges_csv(ledger, project, viewer)


def test_malformed_project_name_is_input_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerInputError) as caught:
        gather.project_page(ledger, "../etc", ALICE)
    assert caught.value.field == "project" and not isinstance(caught.value, NotFound)


def test_admin_sees_every_project(ledger: Ledger) -> None:
    page = gather.project_page(ledger, "cs101", ADMIN)
    assert page.role is None and [m["user"] for m in page.members] == ["tom", "carol"]
    rows = {row.project: row for row in gather.admin_rows(ledger)}
    assert set(rows) == {"vision-lab", "cs101"}
    usage = ledger.usage("vision-lab")
    assert rows["vision-lab"].values == {
        "budget": usage["budget_gpu_hours"],
        "used": usage["used_gpu_hours"],
        "held": usage["held_gpu_hours"],
        "remaining": usage["remaining_gpu_hours"],
        "percent": 1.2,
    }


@pytest.mark.parametrize(
    ("viewer", "users"),
    [pytest.param(ALICE, {"alice"}, id="pi-every-job"), pytest.param(BOB, set(), id="member-own-only")],
)
def test_charges_csv_as_the_api(ledger: Ledger, viewer, users) -> None:
    rows = list(csv.DictReader(io.StringIO(gather.charges_csv(ledger, "vision-lab", viewer))))
    assert {row["user"] for row in rows} == users
    if rows:
        assert rows[0]["gpu_hours"] == "1.1000" and rows[0]["kind"] == "final"


def test_my_projects_for_the_home_page(ledger: Ledger) -> None:
    assert [(p["project"], p["role"], p["path"]) for p in gather.my_projects(ledger, "bob")] == [
        ("vision-lab", "member", "hpchub/projects/vision-lab")
    ]
    assert gather.my_projects(ledger, "Weird Name!") == []


def test_burndown_from_the_ledger(ledger: Ledger, clock: Clock) -> None:
    page = gather.project_page(ledger, "vision-lab", ALICE)
    data = gather.chart_data(ledger, page)
    assert data.start == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert data.end == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert [(p.at, p.budget_mgs, p.remaining_mgs) for p in data.points] == [
        (T0, 100 * H, 100 * H),
        (T0 + timedelta(minutes=33), 100 * H, 100 * H - 3_960_000),
        (T0 + timedelta(hours=1), 110 * H, 110 * H - 3_960_000),
        (clock.now, 110 * H, 110 * H - 3_960_000 - 2 * H),  # bob's running session: cost so far + held
    ]


# --- the chart ----------------------------------------------------------------------------------------


def test_chart_svg_is_inline_scalable_and_labelled(ledger: Ledger) -> None:
    page = gather.project_page(ledger, "vision-lab", ALICE)
    svg = chart.render_svg(gather.chart_data(ledger, page))
    assert svg.startswith("<svg") and "<?xml" not in svg and "<!DOCTYPE" not in svg
    root = svg[: svg.index(">")]
    assert "viewBox=" in root and " width=" not in root and " height=" not in root
    assert 'role="img"' in root and f'aria-labelledby="{chart.TITLE_ID}"' in root
    assert f'<title id="{chart.TITLE_ID}">GPU-hours remaining in vision-lab' in svg
    for gid in (chart.BUDGET_LINE_ID, chart.REMAINING_LINE_ID, chart.NOW_LINE_ID):
        assert f'id="{gid}"' in svg


def test_chart_title_is_escaped() -> None:
    assert '<title id="hpchub-chart-title">a &lt;b&gt; &amp; c</title>' in chart.inline_svg(
        '<?xml version="1.0"?>\n<svg width="10pt" height="5pt" viewBox="0 0 10 5"><g/></svg>', "a <b> & c"
    )


def test_chart_of_a_project_without_any_event() -> None:
    from hub.ledger.types import ProjectUsage

    data = burndown(figures=ProjectUsage("new-lab", 0, 0, 0, ()), grants=[], charges=[], now=T0)
    assert f'id="{chart.BUDGET_LINE_ID}"' in chart.render_svg(data)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_chart_cache_keeps_a_chart_for_its_ttl() -> None:
    clock = FakeMonotonic()
    cache = chart.ChartCache(max_entries=2, clock=clock)
    cache.put("a", "<svg a>", 30)
    clock.now += 29.9
    assert cache.get("a") == "<svg a>"
    clock.now += 0.2
    assert cache.get("a") is None
    cache.put("b", "<svg b>", 0)  # ttl 0: not kept
    assert cache.get("b") is None
    for key in "xyz":
        cache.put(key, key, 30)
    assert cache.get("x") is None and cache.get("z") == "z"  # at most max_entries


async def test_project_chart_reads_and_draws_once_then_reuses(monkeypatch) -> None:
    from hub.ledger.types import ProjectUsage

    drawn, read = [], []
    monkeypatch.setattr(chart, "draw_svg", lambda data: drawn.append(data) or f"<svg {len(drawn)}>")
    data = burndown(figures=ProjectUsage("lab", 0, 0, 0, ()), grants=[], charges=[], now=T0)
    cache = chart.ChartCache()
    first = await chart.project_chart("lab", lambda: read.append(1) or data, 30, cache)
    again = await chart.project_chart("lab", lambda: read.append(1) or data, 30, cache)
    assert first == again
    assert first.svg.startswith("<svg 1 ") and first.summary.startswith("GPU-hours remaining in lab")
    assert len(drawn) == len(read) == 1


async def test_a_kept_chart_states_the_pages_figures_and_is_redrawn_when_remaining_moves(monkeypatch) -> None:
    """While a session runs, used grows and held shrinks by as much: the drawing (budget and
    remaining) still holds, but its words must be the page's, not those of 30 s ago (QA: the
    caption said 0.0856 used under figures saying 0.0883). A stop or an extension moves
    remaining: the chart is drawn again."""
    from hub.ledger.types import ProjectUsage

    drawn = []
    monkeypatch.setattr(chart, "draw_svg", lambda data: drawn.append(data) or f"<svg {len(drawn)}>")
    cache = chart.ChartCache()

    def figures(used_mgs: int, held_mgs: int) -> ProjectUsage:
        return ProjectUsage("lab", 100 * H, used_mgs, held_mgs, ())

    def view(now: datetime, usage: ProjectUsage):
        data = lambda: burndown(figures=usage, grants=[], charges=[], now=now)  # noqa: E731
        return chart.project_chart("lab", data, 30, cache, figures=usage, now=now)

    first = await view(T0, figures(H // 10, 9 * H // 10))
    later = await view(T0 + timedelta(seconds=20), figures(H // 5, 4 * H // 5))  # 0.1 GPU-h more ran
    assert len(drawn) == 1 and later.svg.startswith("<svg 1 ")
    assert "99.0 remaining on 2026-03-02 (0.2 used, 0.8 held by running sessions)" in later.summary
    assert f'<title id="{chart.TITLE_ID}">{later.summary}</title>' in later.svg
    assert first.summary != later.summary
    extended = await view(T0 + timedelta(seconds=25), figures(H // 5, 9 * H // 5))  # one hour more held
    assert len(drawn) == 2 and extended.svg.startswith("<svg 2 ")
    assert "98.0 remaining on 2026-03-02 (0.2 used, 1.8 held" in extended.summary


# --- wiring and settings --------------------------------------------------------------------------------


def test_configure_pages_adds_the_handlers_once_and_the_template_variables() -> None:
    from traitlets.config import Config

    from hub.allocation_pages.routes import ROUTES as ALLOCATION_ROUTES
    from hub.pages import configure_pages
    from hub.project_pages.environments import ROUTES as ENVIRONMENT_ROUTES
    from hub.project_pages.handlers import ROUTES
    from hub.static_files import ROUTES as STATIC_ROUTES

    c = Config()
    c.JupyterHub.extra_handlers = [("/api/other", object)]
    configure_pages(c)
    configure_pages(c)
    assert c.JupyterHub.extra_handlers == [
        ("/api/other", object),
        *ROUTES,
        *ENVIRONMENT_ROUTES,
        *ALLOCATION_ROUTES,
        *STATIC_ROUTES,
    ]
    assert [route for route, _handler in STATIC_ROUTES] == [r"/hpchub/static/([A-Za-z0-9][A-Za-z0-9_.-]*\.(?:js|css))"]
    assert [route for route, _handler in ENVIRONMENT_ROUTES] == [
        r"/hpchub/projects/([^/]+)/environments/?",
        r"/hpchub/projects/([^/]+)/environments/([^/]+)/([^/]+)/?",
    ]
    assert {"hpchub_budget_banners", "hpchub_sessions", "hpchub_projects", "hpchub_allocation_roles"} <= set(
        c.JupyterHub.template_vars
    )
    assert [route for route, _handler in ROUTES] == [
        r"/hpchub/new-course/?",
        r"/hpchub/courses/([^/]+)/report\.csv",
        r"/hpchub/courses/([^/]+)/live",
        r"/hpchub/courses/([^/]+)/?",
        r"/hpchub/projects/([^/]+)/charges\.csv",
        r"/hpchub/projects/([^/]+)/?",
        r"/hpchub/admin/projects/?",
    ]


def test_home_projects_variable_is_computed_only_when_read(ledger_url: str, ledger: Ledger) -> None:
    from traitlets.config import Config

    from hub.pages import my_projects

    c = Config()
    c.HPCHubLedger.db_url = ledger_url
    c.HPCHubLedger.cluster = "c1"

    class User:
        name = "bob"

    value = my_projects(c)(User())
    assert value._value is None  # nothing read yet
    assert [p["project"] for p in value] == ["vision-lab"] and bool(value) and len(value) == 1
    assert not my_projects(c)(None)  # no user: nothing


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        pytest.param("chart_cache_seconds", -1.0, "0 to 86400", id="negative-cache"),
        pytest.param("recent_sessions", 0, "1 to 500", id="no-sessions"),
        pytest.param("recent_sessions", 501, "1 to 500", id="too-many-sessions"),
    ],
)
def test_page_settings_are_checked(setting, value, words) -> None:
    from traitlets import TraitError

    from hub.project_pages.settings import HPCHubPages

    with pytest.raises(TraitError, match=words):
        HPCHubPages(**{setting: value})


def test_project_totals_are_the_totals_of_figures(ledger: Ledger, clock: Clock) -> None:
    totals = ledger.project_totals()
    assert set(totals) == {"vision-lab", "cs101"}
    for name, usage in totals.items():
        figures = ledger.figures(name)
        assert (usage.grants_mgs, usage.used_mgs, usage.held_mgs) == (
            figures.grants_mgs,
            figures.used_mgs,
            figures.held_mgs,
        )
        assert usage.members == ()
