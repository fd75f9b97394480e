"""The project page, the admin page and the home page in a real browser (Playwright driving Debian's
chromium), through the real OpenID Connect login, against the real cluster and ledger.

Every page is also checked at 390 px wide (no page-wide horizontal scrolling) and kept as a
screenshot in test-artifacts/ (project-*, admin-*, home-*, at 1280 and 390 px).
"""

from __future__ import annotations

import re
import time
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WIDTHS = (1280, 390)
FIGURES = {
    "budget": "budget_gpu_hours",
    "used": "used_gpu_hours",
    "held": "held_gpu_hours",
    "remaining": "remaining_gpu_hours",
}
CSV_HEADER = "cluster,job_id,user,project,gpu_type,gpus,start,end,elapsed_seconds,gpu_hours,source,kind"
BOB_A100 = {
    "project": "vision-lab",
    "partition": "gpu",
    "gpu_type": "a100",
    "gpus": 4,
    "hours": 1,
    "environment": "default",
}


def _project_url(portal, project: str) -> str:
    return f"{portal.url}/hub/hpchub/projects/{project}"


def _fits(page, width: int) -> None:
    """No page-wide horizontal overflow: wide tables scroll inside their own box."""
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width} px wide at {width} px"


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _page_figures(page) -> dict[str, float]:
    return {key: float(page.get_attribute(f'#hpchub-figures dd[data-figure="{key}"]', "data-value")) for key in FIGURES}


def _usage_figures(usage: dict) -> dict[str, float]:
    return {key: usage[field] for key, field in FIGURES.items()}


@pytest.mark.parametrize("width", WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def test_alice_sees_vision_labs_page_with_chart_members_and_the_ledgers_figures(portal, log_in, width) -> None:
    page = log_in("alice", width)
    for _attempt in range(3):  # equal when no session's cost moved between the two reads
        before = portal.usage("vision-lab")
        response = page.goto(_project_url(portal, "vision-lab"))
        after = portal.usage("vision-lab")
        if before == after:
            break
    assert response.status == 200
    assert before == after, "vision-lab's figures kept moving (a session running?)"
    assert _page_figures(page) == _usage_figures(after)
    # the burn-down chart, server-side SVG, with its budget and remaining lines and an accessible name
    svg = page.locator("#hpchub-chart svg")
    assert svg.count() == 1 and svg.get_attribute("role") == "img"
    assert page.locator("#hpchub-chart svg #hpchub-budget-line path").count() >= 1
    assert page.locator("#hpchub-chart svg #hpchub-remaining-line").count() == 1
    assert "GPU-hours remaining in vision-lab" in page.locator("#hpchub-chart svg title").text_content()
    # every member's row (alice is the pi), with the ledger's figures
    rows = page.locator("#hpchub-members tbody tr")
    assert [rows.nth(i).get_attribute("data-user") for i in range(rows.count())] == ["alice", "bob"]
    for member in after["members"]:
        used = page.get_attribute(f'#hpchub-members tr[data-user="{member["user"]}"] td:nth-of-type(2)', "data-value")
        assert float(used) == member["used_gpu_hours"]
    _fits(page, width)
    _shot(page, f"project-alice-{width}")


def test_alice_downloads_the_charges_csv_with_her_cookie(portal, log_in) -> None:
    page = log_in("alice")
    page.goto(_project_url(portal, "vision-lab"))
    for _attempt in range(3):  # equal unless the reconciler imported a final charge in between
        before = portal.ledger_cli("charges", "vision-lab", "--csv").stdout
        with page.expect_download() as download:
            page.click("#hpchub-charges-csv")
        text = open(download.value.path()).read()
        if before == portal.ledger_cli("charges", "vision-lab", "--csv").stdout:
            break
    assert download.value.suggested_filename == "vision-lab-charges.csv"
    assert text.splitlines()[0] == CSV_HEADER
    assert text == before


@pytest.mark.parametrize("width", WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def test_bob_sees_only_his_own_row(portal, log_in, width) -> None:
    page = log_in("bob", width)
    assert page.goto(_project_url(portal, "vision-lab")).status == 200
    rows = page.locator("#hpchub-members tbody tr")
    assert [rows.nth(i).get_attribute("data-user") for i in range(rows.count())] == ["bob"]
    assert page.locator("#hpchub-members-title").inner_text() == "Your usage"
    sessions = page.locator("#hpchub-recent-sessions tbody tr")
    assert {sessions.nth(i).get_attribute("data-user") for i in range(sessions.count())} <= {"bob"}
    assert (
        float(page.get_attribute('#hpchub-figures dd[data-figure="budget"]', "data-value"))
        == portal.usage("vision-lab")["budget_gpu_hours"]
    )
    _fits(page, width)
    _shot(page, f"project-bob-{width}")


def test_carol_gets_404_for_vision_lab_as_for_an_unknown_project(portal, log_in) -> None:
    page = log_in("carol")
    response = page.goto(_project_url(portal, "vision-lab"))
    assert response.status == 404
    assert "no project 'vision-lab'" in page.content()
    assert page.goto(_project_url(portal, "no-such-lab")).status == 404
    download = page.request.get(f"{_project_url(portal, 'vision-lab')}/charges.csv")
    assert download.status == 404
    assert page.goto(f"{portal.url}/hub/hpchub/admin/projects").status == 403
    assert page.goto(_project_url(portal, "cs101")).status == 200  # her own course
    _shot(page, "project-carol-404")


@pytest.mark.parametrize("width", WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def test_admin_sees_every_project_and_sorts_by_remaining_with_the_keyboard(portal, log_in, width) -> None:
    page = log_in("admin", width)
    assert page.goto(f"{portal.url}/hub/hpchub/admin/projects").status == 200
    names = page.locator("#hpchub-projects-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.project)")
    assert {"vision-lab", "cs101", "tiny-lab"} <= set(names)
    assert names == sorted(names)  # by project, ascending, at first
    assert page.get_attribute('th[data-column="project"]', "aria-sort") == "ascending"
    _fits(page, width)
    _shot(page, f"admin-projects-{width}")
    # to the "Remaining" heading with Tab, then Enter: sorted descending (figures start with the largest)
    target = page.locator('th[data-column="remaining"] a')
    for _ in range(60):
        page.keyboard.press("Tab")
        if target.evaluate("link => link === document.activeElement"):
            break
    else:
        raise AssertionError("the Remaining heading is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=remaining&dir=desc"))
    assert page.get_attribute('th[data-column="remaining"]', "aria-sort") == "descending"
    assert page.get_attribute('th[data-column="project"]', "aria-sort") is None
    remaining = [
        float(v)
        for v in page.locator('#hpchub-projects-table td[data-column="remaining"]').evaluate_all(
            "cells => cells.map(c => c.dataset.value)"
        )
    ]
    assert remaining == sorted(remaining, reverse=True)
    # again: ascending, and the figures are the ledger's
    page.click('th[data-column="remaining"] a')
    page.wait_for_url(re.compile(r"sort=remaining&dir=asc"))
    assert page.get_attribute('th[data-column="remaining"]', "aria-sort") == "ascending"
    cells = page.locator('#hpchub-projects-table tr[data-project="tiny-lab"] td[data-column="budget"]')
    assert float(cells.get_attribute("data-value")) == portal.usage("tiny-lab")["budget_gpu_hours"]
    remaining = [
        float(v)
        for v in page.locator('#hpchub-projects-table td[data-column="remaining"]').evaluate_all(
            "cells => cells.map(c => c.dataset.value)"
        )
    ]
    assert remaining == sorted(remaining)
    _fits(page, width)
    _shot(page, f"admin-projects-by-remaining-{width}")
    # a project page from the overview; a bad sort is a 400 naming the parameter
    page.click('#hpchub-projects-table tr[data-project="cs101"] th a')
    page.wait_for_url(_project_url(portal, "cs101"))
    assert page.locator("#hpchub-members tbody tr").count() == len(portal.usage("cs101")["members"])
    _fits(page, width)
    _shot(page, f"project-admin-cs101-{width}")
    response = page.goto(f"{portal.url}/hub/hpchub/admin/projects?sort=cost")
    assert response.status == 400 and "sort: one of project, kind" in page.content()
    _fits(page, width)


@pytest.fixture(scope="module")
def bob_a100(portal):
    """bob's named server "pages": 4 x a100 for 1 h on vision-lab (extending costs 4 x 0.5 = 2.0 GPU-h)."""
    response = portal.session().post(portal.spawn_path("bob", "pages"), json={"user_options": BOB_A100}, timeout=120)
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready("bob", "pages")
        yield
    finally:
        if portal.server("bob", "pages") is not None:
            portal.session().delete(portal.spawn_path("bob", "pages"), timeout=60)
            portal.wait_stopped("bob", "pages")


def test_home_shows_the_session_its_extend_cost_and_project_links_then_stop_ends_it(portal, log_in, bob_a100) -> None:
    for width in WIDTHS:
        page = log_in("bob", width)
        row = page.locator('tr.hpchub-session-row[data-server-name="pages"]')
        assert row.count() == 1
        assert row.locator('[data-label="Project"] a').get_attribute("href") == "/hub/hpchub/projects/vision-lab"
        assert row.locator('[data-label="GPUs"]').inner_text() == "4 x a100"
        assert row.locator('[data-label="Node"]').inner_text() == "gpu03"
        assert row.locator(".hpchub-extend").inner_text().strip() == "Extend by 1 h (costs 2.0 GPU-h)"
        assert re.search(r"\d", row.locator('[data-label="Time left"]').inner_text())
        link = page.locator('#hpchub-projects li[data-project="vision-lab"] a')
        assert link.get_attribute("href") == "/hub/hpchub/projects/vision-lab"
        _fits(page, width)
        _shot(page, f"home-bob-session-{width}")
    # the project page lists the running session with its cost so far
    page.goto(_project_url(portal, "vision-lab"))
    running = page.locator("#hpchub-recent-sessions tbody tr").first
    assert running.get_attribute("data-user") == "bob" and "running" in running.inner_text()
    assert "4 x a100" in running.inner_text()
    # enough use for the banner test below to set a budget 4-decimal grants can make ~97 % used
    deadline = time.monotonic() + 90
    while portal.usage("vision-lab")["used_gpu_hours"] < 0.012 and time.monotonic() < deadline:
        time.sleep(1)
    # Stop, from the keyboard: the job ends and the hold is released
    page.goto(f"{portal.url}/hub/home")
    stop = page.locator('tr.hpchub-session-row[data-server-name="pages"] .hpchub-stop')
    stop.focus()
    page.keyboard.press("Enter")
    portal.wait_stopped("bob", "pages", timeout=60)
    page.wait_for_function(
        "() => !document.querySelector('tr.hpchub-session-row[data-server-name=\"pages\"]')", timeout=30000
    )
    assert all("server=pages" not in job["comment"] for job in portal.jobs().values())


def test_budget_banner_shows_on_the_project_page(portal, log_in) -> None:
    portal.wait_final_charges("vision-lab")
    figures = portal.usage("vision-lab")
    used = Decimal(str(figures["used_gpu_hours"]))
    assert used >= Decimal("0.012"), "the home test ran a session on vision-lab"
    # a budget of which used is 97 % or a little more (grants have 4 decimals at most)
    budget = (used / Decimal("0.97")).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)
    assert Decimal("0.95") * budget <= used < budget
    cut = Decimal(str(figures["budget_gpu_hours"])) - budget
    portal.ledger_cli("grant", "vision-lab", str(-cut), "--reason", "pages banner test")
    try:
        for width in WIDTHS:
            page = log_in("alice", width)
            page.goto(_project_url(portal, "vision-lab"))
            banner = page.locator(".hpchub-budget-banner").first
            assert banner.get_attribute("data-level") == "95"
            assert "vision-lab: the GPU-hour budget is 95 % used" in banner.inner_text()
            assert _page_figures(page) == _usage_figures(portal.usage("vision-lab"))
            _fits(page, width)
            _shot(page, f"project-alice-95-percent-{width}")
    finally:
        portal.ledger_cli("grant", "vision-lab", str(cut), "--reason", "pages banner test done")


def test_a_session_stopped_at_exhaustion_shows_as_banner_and_reason_on_the_project_page(portal, log_in) -> None:
    options = {
        "project": "cs101",
        "partition": "gpu",
        "gpu_type": "a100",
        "gpus": 1,
        "hours": 0.25,
        "environment": "default",
    }
    response = portal.session().post(portal.spawn_path("carol", "exhaust"), json={"user_options": options}, timeout=120)
    assert response.status_code in (201, 202), response.text
    portal.wait_ready("carol", "exhaust")
    budget = portal.usage("cs101")["budget_gpu_hours"]
    portal.ledger_cli("grant", "cs101", str(-budget), "--reason", "pages exhaustion test")  # used >= 100 %
    try:
        portal.wait_stopped("carol", "exhaust", timeout=60)  # reconcile every 3 s, grace 3 s (test settings)
        for width in WIDTHS:
            page = log_in("carol", width)
            page.goto(_project_url(portal, "cs101"))
            banners = page.locator(".hpchub-budget-banner").all_inner_texts()
            assert any(
                "Your server exhaust in cs101 was stopped: cs101's GPU-hour budget is used up" in text
                for text in banners
            ), banners
            row = page.locator("#hpchub-recent-sessions tbody tr").first
            assert "ended: stopped: cs101's GPU-hour budget is used up" in row.inner_text()
            _fits(page, width)
            _shot(page, f"project-carol-stopped-{width}")
    finally:
        portal.ledger_cli("grant", "cs101", str(budget), "--reason", "pages exhaustion test done")
        if portal.server("carol", "exhaust") is not None:
            portal.session().delete(portal.spawn_path("carol", "exhaust"), timeout=60)
