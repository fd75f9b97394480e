"""The spawn form and the progress page in a real browser: real login, real ledger, real Slurm.

Playwright drives Debian's chromium (headless, no browser download). Screenshots of every
page go to test-artifacts/ (form-*.png, progress-*.png). Every server a test starts is
stopped in its ``finally`` (the portal is shared with the other test modules).
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Keeps the progress page's event log across its reload into JupyterLab (same origin, same tab).
RECORD_PROGRESS = """
(() => {
  if (!location.pathname.includes("/spawn-pending/")) { return; }
  const save = () => {
    const log = document.getElementById("progress-log");
    if (log) { sessionStorage.setItem("hpchub-progress", log.textContent); }
  };
  document.addEventListener("DOMContentLoaded", () => {
    const log = document.getElementById("progress-log");
    if (log) { new MutationObserver(save).observe(log, {childList: true, subtree: true}); }
  });
})();
"""


def _page(browser, portal, user: str, width: int = 1280, javascript: bool = True):
    """A new browser context logged in as ``user`` through the identity provider."""
    context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=javascript)
    context.add_init_script(RECORD_PROGRESS)
    page = context.new_page()
    page.goto(f"{portal.url}/hub/oauth_login")
    page.fill("input[name=username]", f"{user}@uni.example")
    page.fill("input[name=password]", f"{user}-demo")
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{portal.url}/hub/home", timeout=30000)
    return page


def _choose(page, **choices) -> None:
    for name, value in choices.items():
        page.select_option(f"#hpchub-{name}", str(value))


def _wait_preview(page, state: str, text: str) -> None:
    """Until the preview answered ``state`` (allowed|refused) with ``text`` in it."""
    page.wait_for_function(
        """([state, text]) => {
             const form = document.getElementById("hpchub-spawn-form");
             return form.dataset.previewState === state
               && document.getElementById("hpchub-preview").textContent.includes(text);
           }""",
        arg=[state, text], timeout=30000,
    )  # fmt: skip


def _recorded_progress(page, text: str, timeout: float = 30) -> str:
    """The progress page's event log as recorded in sessionStorage, once it holds ``text``
    (the page may reload meanwhile)."""
    deadline = time.monotonic() + timeout
    log = ""
    while time.monotonic() < deadline:
        try:
            log = page.evaluate("sessionStorage.getItem('hpchub-progress')") or ""
        except Exception:  # noqa: BLE001  (a reload under way)
            log = ""
        if text in log:
            return log
        time.sleep(0.2)
    return log


def _stop(portal, user: str, name: str = "") -> None:
    portal.session().delete(portal.spawn_path(user, name), timeout=60)
    portal.wait_stopped(user, name)


def _job_of(portal, user: str, name: str = "") -> tuple[str, dict] | None:
    comment = f"hpchub:user={user},server={name}"
    matches = [(job_id, job) for job_id, job in portal.jobs().items() if job["comment"] == comment]
    return matches[0] if matches else None


def _member(portal, project: str, user: str) -> dict:
    return next(m for m in portal.usage(project)["members"] if m["user"] == user)


def _bob(usage: dict) -> dict:
    return next(m for m in usage["members"] if m["user"] == "bob")


def _gpu_hours(text: str) -> float:
    """``0.0797 GPU-h`` -> 0.0797."""
    match = re.fullmatch(r"([0-9]+\.[0-9]+) GPU-h", text.strip())
    assert match, text
    return float(match.group(1))


def _check_home(page, portal, reserved: float) -> None:
    """bob's home page against ``hpchub usage vision-lab --json`` read just before and just after:
    his session's held lies between his two helds (it shrinks as the session runs), cost so far +
    held is the reservation, and vision-lab's remaining (constant while a session runs) is the
    ledger's."""
    before = portal.usage("vision-lab")
    page.goto(f"{portal.url}/hub/home")
    row = page.locator('tr.hpchub-session-row[data-server-name=""]')
    cost, held = (_gpu_hours(row.locator(f'[data-label="{label}"]').inner_text()) for label in ("Cost so far", "Held"))
    remaining = page.get_attribute('#hpchub-projects li[data-project="vision-lab"] .hpchub-project-remaining',
                                   "data-value")  # fmt: skip
    after = portal.usage("vision-lab")
    assert _bob(after)["held_gpu_hours"] - 1e-4 <= held <= _bob(before)["held_gpu_hours"] + 1e-4, (held, before, after)
    assert cost + held == pytest.approx(reserved, abs=2e-4)
    assert float(remaining) == before["remaining_gpu_hours"] == after["remaining_gpu_hours"]
    assert page.inner_text('#hpchub-projects li[data-project="vision-lab"] .hpchub-project-remaining') == str(
        after["remaining_gpu_hours"]
    )


def _check_project_page(page, portal) -> None:
    """vision-lab's page against usage read just before and after: remaining and budget equal,
    used and held between; the chart's caption states the page's own figures."""
    for _attempt in range(3):  # equal remaining unless a final charge was imported in between
        before = portal.usage("vision-lab")
        assert page.goto(f"{portal.url}/hub/hpchub/projects/vision-lab").status == 200
        after = portal.usage("vision-lab")
        if before["remaining_gpu_hours"] == after["remaining_gpu_hours"]:
            break
    shown = {key: float(page.get_attribute(f'#hpchub-figures dd[data-figure="{key}"]', "data-value"))
             for key in ("budget", "used", "held", "remaining")}  # fmt: skip
    assert (shown["budget"], shown["remaining"]) == (after["budget_gpu_hours"], after["remaining_gpu_hours"])
    assert before["used_gpu_hours"] <= shown["used"] <= after["used_gpu_hours"], (shown, before, after)
    assert after["held_gpu_hours"] <= shown["held"] <= before["held_gpu_hours"], (shown, before, after)
    caption = page.inner_text("#hpchub-chart figcaption")
    words = re.search(r"budget ([0-9.]+), ([0-9.]+) remaining on \S+ \(([0-9.]+) used, ([0-9.]+) held", caption)
    assert words, caption
    assert tuple(map(float, words.groups())) == (shown["budget"], shown["remaining"], shown["used"], shown["held"])
    assert page.locator("#hpchub-chart svg #hpchub-budget-line path").count() >= 1
    assert page.locator("#hpchub-chart svg #hpchub-remaining-line").count() == 1
    bob_held = float(page.get_attribute('#hpchub-members tr[data-user="bob"] td:nth-of-type(3)', "data-value"))
    assert _bob(after)["held_gpu_hours"] <= bob_held <= _bob(before)["held_gpu_hours"]


@pytest.mark.browser
def test_must_show_bob_previews_starts_extends_reads_his_project_and_stops(portal, browser) -> None:
    """End to end in one browser as bob: the form's preview, the progress page
    (job id, node), JupyterLab, the home page (cost so far, held, extend cost), Extend by 1 h,
    the project page with its chart, Stop; every figure against ``hpchub usage vision-lab --json``."""
    assert portal.server("bob") is None
    portal.wait_final_charges("vision-lab")  # no late import moves remaining while this test reads it
    page = _page(browser, portal, "bob")
    try:
        page.goto(f"{portal.url}/hub/spawn")
        usage = portal.usage("vision-lab")
        label = page.inner_text("#hpchub-project option[value='vision-lab']")
        shown = re.match(r"vision-lab: ([0-9.]+) GPU-h left; your cap: ([0-9.]+) left", label)
        assert shown, label
        # the form floors to 4 decimals, usage rounds half-even: they agree to the last digit
        assert float(shown.group(1)) == pytest.approx(usage["remaining_gpu_hours"], abs=1.5e-4)
        _choose(page, project="vision-lab", partition="gpu", gpu_type="h200", gpus=1, hours=1)
        _wait_preview(page, "allowed", "This reserves up to 1.0 GPU-h (1 x h200 x 1 h). vision-lab has ")
        summary = page.inner_text("#hpchub-preview-summary")
        left_after = float(re.search(r"vision-lab has ([0-9.]+) left", summary).group(1))
        # between the two reads of usage (running sessions keep spending), floored vs rounded
        later = portal.usage("vision-lab")["remaining_gpu_hours"]
        assert later - 1.0 - 1.5e-4 <= left_after <= usage["remaining_gpu_hours"] - 1.0 + 1.5e-4
        page.screenshot(path=str(ARTIFACTS / "form-bob.png"), full_page=True)

        page.click("button:has-text('Start')")
        page.wait_for_url("**/spawn-pending/bob**", timeout=30000)
        try:  # the job starts within seconds: the page may already be on its way to JupyterLab
            page.wait_for_function("document.getElementById('progress-log').textContent.includes('Slurm job')",
                                   timeout=10000)  # fmt: skip
            page.screenshot(path=str(ARTIFACTS / "progress-bob.png"), full_page=True)
        except Exception:  # noqa: BLE001  (only the screenshot is missed; the log is recorded anyway)
            pass
        page.wait_for_url("**/user/bob/lab**", timeout=90000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=90000)
        try:  # the launcher appears once JupyterLab has loaded its extensions
            page.wait_for_selector(".jp-LauncherCard", timeout=30000)
        except Exception:  # noqa: BLE001  (the screenshot is then of the loading lab)
            pass
        page.screenshot(path=str(ARTIFACTS / "progress-bob-jupyterlab.png"))
        log = _recorded_progress(page, "Starting Jupyter")
        job_id, job = _job_of(portal, "bob")
        assert f"Submitted as Slurm job {job_id}" in log, log
        assert f"Running on {job['node']} (Slurm job {job_id})" in log, log
        assert f"Starting Jupyter on {job['node']} (Slurm job {job_id})" in log, log
        assert (job["gres"], job["time_limit"], job["account"]) == ("gres:gpu:h200:1", "1:00:00", "vision-lab")
        # the hold is the unspent part of the 1.0 reserved: it shrinks while the session runs
        # (1 GPU-minute is 0.0167; a slow JupyterLab start on a loaded machine takes a minute)
        assert 0.9 < _member(portal, "vision-lab", "bob")["held_gpu_hours"] <= 1.0

        # home: the session with its cost so far, held, node and what an hour more costs
        _check_home(page, portal, reserved=1.0)
        row = page.locator('tr.hpchub-session-row[data-server-name=""]')
        assert row.locator('[data-label="Node"]').inner_text() == job["node"]
        assert row.locator(".hpchub-extend").inner_text().strip() == "Extend by 1 h (costs 1.0 GPU-h)"
        # Extend by 1 h: Slurm's time limit, the row and "Your projects" follow without a reload
        remaining_before = portal.usage("vision-lab")["remaining_gpu_hours"]
        row.locator(".hpchub-extend").click()
        page.wait_for_function("() => document.querySelector('.hpchub-extend-answer').textContent.startsWith('Extended')",
                               timeout=60000)  # fmt: skip
        assert portal.jobs()[job_id]["time_limit"] == "2:00:00"
        usage = portal.usage("vision-lab")
        assert usage["remaining_gpu_hours"] == pytest.approx(remaining_before - 1.0, abs=1e-9)
        assert float(page.get_attribute('#hpchub-projects li[data-project="vision-lab"] .hpchub-project-remaining',
                                        "data-value")) == usage["remaining_gpu_hours"]  # fmt: skip
        assert "(ends " in row.locator('[data-label="Time left"]').inner_text()
        assert _gpu_hours(row.locator('[data-label="Held"]').inner_text()) >= _bob(usage)["held_gpu_hours"] - 1e-4
        page.screenshot(path=str(ARTIFACTS / "home-bob-extended.png"), full_page=True)
        _check_home(page, portal, reserved=2.0)

        # the project page and its chart, twice: the second view's chart may be the kept drawing
        _check_project_page(page, portal)
        time.sleep(1.5)  # bob's session spends 0.0004 GPU-h meanwhile: used and held move
        _check_project_page(page, portal)
        page.screenshot(path=str(ARTIFACTS / "project-bob-running.png"), full_page=True)

        # Stop from the home page: no job left, no hold, the figures still the ledger's
        page.goto(f"{portal.url}/hub/home")
        page.locator('tr.hpchub-session-row[data-server-name=""] .hpchub-stop').click()
        portal.wait_stopped("bob")
        page.wait_for_function("() => !document.querySelector('tr.hpchub-session-row')", timeout=60000)
        assert _job_of(portal, "bob") is None
        assert _bob(portal.usage("vision-lab"))["held_gpu_hours"] == 0
        _check_project_page(page, portal)
    finally:
        page.context.close()
        if portal.server("bob") is not None:
            _stop(portal, "bob")


@pytest.mark.browser
def test_erins_form_says_tiny_lab_cannot_afford_an_hour_and_offers_what_fits(portal, browser) -> None:
    portal.set_remaining("tiny-lab", 0.25, "form test: the seeded 0.25 GPU-h")
    page = _page(browser, portal, "erin", width=390)
    try:
        page.goto(f"{portal.url}/hub/spawn")
        assert page.inner_text("#hpchub-project option[value='tiny-lab']") == "tiny-lab: 0.25 GPU-h left"
        _choose(page, partition="gpu", gpu_type="h200", gpus=1, hours=1)
        _wait_preview(page, "refused", "1 x h200 x 1 h")
        assert page.inner_text("#hpchub-preview-refusal") == (
            "tiny-lab has 0.25 GPU-h left; this request needs 1.0 (1 x h200 x 1 h). Ask for fewer GPUs or hours."
        )
        assert page.inner_text("#hpchub-preview-offers") == "You can afford 1 x h200 for 0.25 h or 1 x a100 for 0.5 h."
        page.screenshot(path=str(ARTIFACTS / "form-erin-refused-390.png"), full_page=True)
        page.click("button:has-text('Use 1 x a100 for 0.5 h')")
        _wait_preview(page, "allowed", "1 x a100 x 0.5 h")
        assert page.inner_text("#hpchub-preview-summary") == (
            "This reserves up to 0.25 GPU-h (1 x a100 x 0.5 h). tiny-lab has 0.0 left."
        )
        assert (page.input_value("#hpchub-gpu_type"), page.input_value("#hpchub-gpus"),
                page.input_value("#hpchub-hours")) == ("a100", "1", "0.5")  # fmt: skip
        page.screenshot(path=str(ARTIFACTS / "form-erin-offer-390.png"), full_page=True)
        # nothing was started or held by looking
        assert portal.server("erin") is None and portal.usage("tiny-lab")["held_gpu_hours"] == 0
    finally:
        page.context.close()


@pytest.mark.browser
def test_impossible_choices_are_disabled_with_the_reason(portal, browser) -> None:
    page = _page(browser, portal, "bob")
    try:
        page.goto(f"{portal.url}/hub/spawn")
        _choose(page, partition="gpu", gpu_type="h200", hours=1)
        _choose(page, partition="debug")
        assert page.is_disabled("#hpchub-gpu_type option[value='h200']")
        assert page.inner_text("#hpchub-gpu_type option[value='h200']") == "h200 (not in partition debug)"
        assert page.input_value("#hpchub-gpu_type") == "a100"
        assert page.inner_text("#hpchub-hours option[value='1']") == "1 h (over the 0.5 h MaxTime of debug)"
        assert page.input_value("#hpchub-hours") == "0.5"  # moved to the longest allowed
        _choose(page, partition="cpu")
        assert (page.input_value("#hpchub-gpu_type"), page.input_value("#hpchub-gpus")) == ("", "0")
        assert page.inner_text("#hpchub-gpus option[value='1']") == "1 (partition cpu has no GPUs)"
        page.screenshot(path=str(ARTIFACTS / "form-disabled-choices.png"), full_page=True)
        # keyboard: every control in the top bar shows where the focus is (JupyterHub's dark-mode
        # toggle had no ring), then the fields are reachable with Tab, in order
        page.goto(f"{portal.url}/hub/spawn")
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "dark-theme-toggle":
                break
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
        page.focus("#hpchub-project")
        order = []
        for _ in range(6):
            order.append(page.evaluate("document.activeElement.id"))
            page.keyboard.press("Tab")
        assert order == ["hpchub-project", "hpchub-partition", "hpchub-gpu_type", "hpchub-gpus", "hpchub-hours",
                         "hpchub-environment"]  # fmt: skip
    finally:
        page.context.close()


@pytest.mark.browser
def test_carols_form_is_limited_to_the_course_rules(portal, browser) -> None:
    """cs101 (the demo's course): a100 only, 1 GPU and 2 h per session, for its students."""
    page = _page(browser, portal, "carol")
    try:
        page.goto(f"{portal.url}/hub/spawn")
        assert page.input_value("#hpchub-project") == "cs101"
        assert page.inner_text("#hpchub-gpu_type option[value='h200']") == "h200 (course rule: a100 only)"
        assert page.input_value("#hpchub-gpu_type") == "a100"
        assert page.inner_text("#hpchub-gpus option[value='2']") == "2 (course rule: at most 1)"
        assert page.inner_text("#hpchub-hours option[value='2.25']") == "2.25 h (course rule: at most 2 h)"
        _choose(page, hours=2)
        _wait_preview(page, "allowed", "This reserves up to 1.0 GPU-h (1 x a100 x 2 h)")
        page.screenshot(path=str(ARTIFACTS / "form-carol-course.png"), full_page=True)
    finally:
        page.context.close()


def test_a_pending_spawn_says_why_and_when_and_cancel_leaves_no_job_and_no_hold(portal, browser) -> None:
    fill = {"project": "vision-lab", "partition": "gpu", "gpu_type": "a100", "gpus": 4, "hours": 1,
            "environment": "default"}  # fmt: skip
    response = portal.session().post(portal.spawn_path("alice", "fill-a100"), json={"user_options": fill}, timeout=60)
    assert response.status_code in (201, 202), response.text
    page = None
    try:
        portal.wait_ready("alice", "fill-a100")  # all 4 a100 of gpu03 are busy now
        assert portal.server("bob") is None
        held_before = _member(portal, "vision-lab", "bob")["held_gpu_hours"]
        page = _page(browser, portal, "bob")
        page.goto(f"{portal.url}/hub/spawn")
        _choose(page, partition="gpu", gpu_type="a100", gpus=1, hours=1)
        _wait_preview(page, "allowed", "1 x a100 x 1 h")
        page.click("button:has-text('Start')")
        page.wait_for_url("**/spawn-pending/bob**", timeout=30000)
        page.wait_for_function(
            """() => { const m = document.getElementById("progress-message").textContent;
                       return m.includes("pending: waiting for 1 free a100 GPU.") && m.includes("Slurm estimates a start at"); }""",
            timeout=60000,
        )  # fmt: skip
        message = page.inner_text("#progress-message")
        assert re.fullmatch(r"Job \d+ pending: waiting for 1 free a100 GPU\. Slurm estimates a start at "
                            r"(\w{3} \d\d \w{3} )?\d\d:\d\d UTC \(in (about \d+ (min|h \d\d min)|under a minute)\)\.",
                            message), message  # fmt: skip
        job_id = re.match(r"Job (\d+)", message).group(1)
        assert portal.jobs()[job_id]["state"] == "PENDING"
        assert _member(portal, "vision-lab", "bob")["held_gpu_hours"] == pytest.approx(held_before + 0.5, abs=1e-4)
        page.screenshot(path=str(ARTIFACTS / "progress-pending.png"), full_page=True)
        page.click("#stop-server-btn")
        portal.wait_stopped("bob")
        log = _recorded_progress(page, "ancelled")
        assert f"Start cancelled: Slurm job {job_id} is cancelled" in log or "Spawn cancelled" in log, log
        page.screenshot(path=str(ARTIFACTS / "progress-cancelled.png"), full_page=True)
        assert job_id not in portal.jobs(), portal.jobs()
        assert _member(portal, "vision-lab", "bob")["held_gpu_hours"] == pytest.approx(held_before, abs=1e-4)
        state = portal.slurm("sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State").strip()
        assert state.startswith("CANCELLED"), state
    finally:
        if page is not None:
            page.context.close()
        if portal.server("bob") is not None:
            _stop(portal, "bob")
        _stop(portal, "alice", "fill-a100")


@pytest.mark.browser
def test_a_bad_value_is_shown_next_to_its_field_and_the_other_choices_are_kept(portal, browser) -> None:
    page = _page(browser, portal, "bob")
    try:
        page.goto(f"{portal.url}/hub/spawn")
        _choose(page, project="vision-lab", partition="gpu", gpu_type="h200", gpus=2, hours=1)
        # a value the form never offers (as a crafted post would send it)
        page.evaluate("document.querySelector('#hpchub-hours option:checked').value = '0.3'")
        page.click("button:has-text('Start')")
        page.wait_for_selector("#hpchub-hours-error")
        assert page.inner_text("#hpchub-hours-error") == (
            "hours: must be a multiple of 0.25 from 0.25 to 8 (MaxTime of partition gpu); got '0.3'"
        )
        assert page.get_attribute("#hpchub-hours", "aria-invalid") == "true"
        assert "hpchub-hours-error" in page.get_attribute("#hpchub-hours", "aria-describedby")
        assert (page.input_value("#hpchub-project"), page.input_value("#hpchub-partition"),
                page.input_value("#hpchub-gpu_type"), page.input_value("#hpchub-gpus")) == (
            "vision-lab", "gpu", "h200", "2")  # fmt: skip
        assert "Error: hours: must be a multiple of 0.25" in page.inner_text(".spawn-error-msg")
        page.screenshot(path=str(ARTIFACTS / "form-error.png"), full_page=True)
        assert _job_of(portal, "bob") is None
    finally:
        page.context.close()
        if portal.server("bob") is not None:
            _stop(portal, "bob")


@pytest.mark.parametrize(
    ("field", "posted", "message"),
    [
        pytest.param("gpus", {"gpus": "9"}, "gpus: must be a whole number from 1 to 4", id="gpus-above-node"),
        pytest.param(
            "hours", {"hours": "9"}, "hours: must be a multiple of 0.25 from 0.25 to 8", id="hours-over-maxtime"
        ),
        pytest.param(
            "gpu_type",
            {"partition": "debug"},
            "gpu_type: 'h200' is not offered in partition debug",
            id="type-not-in-partition",
        ),
        pytest.param("budget", {"gpus": "4", "hours": "8"}, "bob's cap in vision-lab has", id="over-the-cap"),
    ],
)
def test_without_javascript_a_refused_post_shows_the_error_and_keeps_the_choices(
    portal, field, posted, message
) -> None:
    session, _ = portal.login("bob@uni.example", "bob-demo")
    form = {"project": "vision-lab", "partition": "gpu", "gpu_type": "h200", "gpus": "2", "hours": "1",
            "environment": "default", **posted}  # fmt: skip
    response = session.post(f"{portal.url}/hub/spawn", data={**form, "_xsrf": session.cookies["_xsrf"]},
                            allow_redirects=False, timeout=60)  # fmt: skip
    try:
        assert response.status_code in (400, 403), (response.status_code, response.headers.get("Location"))
        error = re.search(rf'<div id="hpchub-{field}-error"[^>]*>([^<]*)</div>', response.text)
        assert error and html.unescape(error.group(1)).startswith(message), response.text[:3000]
        selected = dict(re.findall(r'<select id="hpchub-(\w+)"[^>]*>(?:(?!</select>).)*?<option value="([^"]*)"'
                                   r'[^>]*selected', response.text, re.S))  # fmt: skip
        assert selected["project"] == "vision-lab" and selected["partition"] == form["partition"]
        assert selected["environment"] == "default"
        if field != "gpus":
            assert selected["gpus"] == form["gpus"]
        assert _job_of(portal, "bob") is None
    finally:
        if portal.server("bob") is not None:
            _stop(portal, "bob")


def test_the_preview_api_offers_what_tiny_lab_can_afford(portal) -> None:
    portal.set_remaining("tiny-lab", 0.25, "preview test: the seeded 0.25 GPU-h")
    session, _ = portal.login("erin@uni.example", "erin-demo")
    session.headers["X-XSRFToken"] = session.cookies.get("_xsrf", "")
    options = {"project": "tiny-lab", "partition": "gpu", "gpu_type": "h200", "gpus": 1, "hours": 1}
    answer = session.post(f"{portal.url}/hub/api/hpchub/v1/preview", json={"user_options": options}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["allowed"], body["summary"]) == (False, "")
    assert body["offers"] == [
        {"gpu_type": "h200", "gpus": 1, "hours": 0.25, "cost_gpu_hours": 0.25, "text": "1 x h200 for 0.25 h"},
        {"gpu_type": "a100", "gpus": 1, "hours": 0.5, "cost_gpu_hours": 0.25, "text": "1 x a100 for 0.5 h"},
    ]
    # every offer is admitted by the same check
    for offer in body["offers"]:
        again = session.post(
            f"{portal.url}/hub/api/hpchub/v1/preview",
            json={**options, "gpu_type": offer["gpu_type"], "gpus": offer["gpus"], "hours": offer["hours"]},
            timeout=30,
        )
        assert again.json()["allowed"] is True, again.text


SITE_FORM = """<div id="site-spawn-form"><h2>Our own form</h2>
{%- for f in form.fields %}
<label for="site-{{ f.key }}">{{ f.label }}</label>
<select id="site-{{ f.key }}" name="{{ f.key }}">
{%- for o in f.options %}<option value="{{ o.value }}"{% if o.selected %} selected{% endif %}{% if o.reason %} disabled{% endif %}>{{ o.shown }}</option>{% endfor %}
</select>
{%- endfor %}
<p id="site-preview">{{ form.preview.summary }}</p>
</div>
"""


def _restart_hub(portal, hpchub) -> None:
    """Stop the hub (SIGTERM to the pid in its pid file) and start it again with ``demo up``."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    pid = int((portal.state_dir / "run" / "jupyterhub.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                break
        except OSError:
            break
        time.sleep(0.2)
    hpchub("demo", "up", "--state-dir", str(portal.state_dir))


def test_the_forms_script_is_served_by_the_hub_and_nothing_else_is(portal) -> None:
    import requests  # noqa: PLC0415

    script = requests.get(f"{portal.url}/hub/hpchub/static/spawn_form.js", timeout=30)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert "hpchub-form-data" in script.text
    for bad in ("..%2Fspawn_form.html", "spawn_form.html", ".hidden.js", "nope.js"):
        assert requests.get(f"{portal.url}/hub/hpchub/static/{bad}", timeout=30).status_code == 404, bad


def test_a_sites_own_spawn_form_html_on_the_template_path_replaces_the_form(portal, browser, hpchub) -> None:
    """A site's spawn_form.html first in c.JupyterHub.template_paths (the demo puts hub/site-templates
    there when it exists) is the form the user gets, with the same fields, and it starts a session."""
    site = portal.state_dir / "hub" / "site-templates"
    site.mkdir(exist_ok=True)
    (site / "spawn_form.html").write_text(SITE_FORM)
    _restart_hub(portal, hpchub)  # the hub reads template_paths at its start
    try:
        page = _page(browser, portal, "bob")
        page.goto(f"{portal.url}/hub/spawn")
        page.wait_for_selector("#site-spawn-form", timeout=30000)
        page.screenshot(path=str(ARTIFACTS / "form-site-template.png"), full_page=True)
        assert page.locator("#hpchub-spawn-form").count() == 0
        names = page.eval_on_selector_all("#site-spawn-form select", "els => els.map(e => e.name)")
        assert names == ["project", "partition", "gpu_type", "gpus", "hours", "environment"]
        page.select_option("#site-partition", "debug")
        page.select_option("#site-gpu_type", "a100")
        page.select_option("#site-gpus", "1")
        page.select_option("#site-hours", "0.25")
        page.click("button[type=submit], input[type=submit]")
        portal.wait_ready("bob")
        job = _job_of(portal, "bob")
        assert job is not None and "a100" in job[1]["gres"], job
        page.context.close()
    finally:
        if portal.server("bob") is not None:
            _stop(portal, "bob")
        (site / "spawn_form.html").unlink()
        site.rmdir()
        _restart_hub(portal, hpchub)
    page = _page(browser, portal, "bob")
    page.goto(f"{portal.url}/hub/spawn")
    page.wait_for_selector("#hpchub-spawn-form", timeout=30000)
    page.context.close()
