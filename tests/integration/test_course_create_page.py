"""Creating a course from its page in a real browser (Playwright, Debian's chromium),
through the real login: dave (an instructor; the demo lets instructors give up to 500 GPU-h)
sees a refused field's message under that field, then creates the course and becomes its
instructor; a student gets 403 from the page and the API; the dashboard's Course settings form
shows a refused value under its field (the TA extension limit, the course's idle stop). Screenshots test-artifacts/course-new.png, course-settings.png."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_an_instructor_creates_a_course_from_the_page_with_errors_next_to_fields(portal, log_in):
    name = f"new-{secrets.token_hex(3)}"  # the portal's ledger may outlive one run
    page = log_in("dave")
    page.goto(f"{portal.url}/hub/hpchub/new-course")
    assert page.locator("#hpchub-new-instructor").count() == 0  # dave becomes the instructor himself
    for field, value in (("name", name), ("account", name), ("start", "2026-09-01"), ("end", "2027-01-31"),
                         ("gpu_hours", "600"), ("per_student", "0"), ("max_gpus", "1")):  # fmt: skip
        page.fill(f"#hpchub-new-{field}", value)
    page.click("#hpchub-new-submit")
    error = page.locator("#hpchub-new-gpu_hours-error")
    error.wait_for(state="visible")
    assert (
        error.inner_text()
        == "gpu_hours: an instructor may give a new course at most 500.0 GPU-h; ask the portal's admins for more"
    )
    assert page.get_attribute("#hpchub-new-gpu_hours", "aria-invalid") == "true"
    page.fill("#hpchub-new-gpu_hours", "200")
    page.click("#hpchub-new-submit")
    error = page.locator("#hpchub-new-account-error")
    error.wait_for(state="visible")
    assert error.inner_text() == (
        f"account: Slurm has no account '{name}'; an administrator creates it first "
        f"(sacctmgr add account {name}), then the course"
    )
    portal.slurm("sacctmgr", "-i", "add", "account", name, "cluster=hpchubtest", "description=course page test",
                 "organization=hpchub-test")  # fmt: skip
    page.click("#hpchub-new-submit")
    error = page.locator("#hpchub-new-per_student-error")
    error.wait_for(state="visible")
    assert error.inner_text() == "per_student: must be more than 0 GPU-hours"
    assert page.locator("#hpchub-new-gpu_hours-error").inner_text() == ""
    assert portal.ledger_cli("usage", name, check=False).returncode == 2  # nothing was created
    page.fill("#hpchub-new-per_student", "5")
    page.click("#hpchub-new-submit")
    page.locator("#hpchub-new-dashboard").wait_for(state="visible")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "course-new.png"), full_page=True)
    page.click("#hpchub-new-dashboard")
    page.wait_for_url(f"{portal.url}/hub/hpchub/courses/{name}")
    assert page.locator("#hpchub-role").inner_text() == "instructor"
    assert "at most 1 GPU per session" in page.locator("#hpchub-rules").inner_text()


def test_a_student_may_not_create_a_course(portal, log_in):
    page = log_in("carol")
    response = page.goto(f"{portal.url}/hub/hpchub/new-course")
    assert response.status == 403
    answer = page.evaluate(
        """async (url) => {
        const r = await fetch(url, {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-XSRFToken": window.jhdata.xsrf_token},
            body: JSON.stringify({name: "cs999", account: "cs999", start: "2026-09-01", end: "2027-01-31",
                                  gpu_hours: 1, per_student: 1})});
        return [r.status, (await r.json()).message];
    }""",
        f"{portal.url}/hub/api/hpchub/v1/courses",
    )
    assert answer == [403, "only the portal's admins and the instructors of a course may create courses"]


def test_the_instructor_changes_the_course_settings_on_the_dashboard(portal, log_in):
    page = log_in("dave")
    page.goto(f"{portal.url}/hub/hpchub/courses/cs101")
    try:
        page.fill("#hpchub-ta-limit", "-1")
        page.click("#hpchub-settings-save")
        error = page.locator("#hpchub-ta-limit-error")
        error.wait_for(state="visible")
        assert error.inner_text() == "ta_extension_limit_gpu_hours: must be >= 0 GPU-h, got -1"
        page.fill("#hpchub-ta-limit", "2")
        page.fill("#hpchub-settings-reason", "lab week")
        page.click("#hpchub-settings-save")
        page.locator("#hpchub-settings-answer.alert-success").wait_for(state="visible")
        assert page.locator("#hpchub-settings-answer").inner_text() == "Saved: ta-extension-limit."
        assert page.locator("#hpchub-ta-limit-error").inner_text() == ""
        assert (
            "a TA may extend a student's cap by at most 2.0 GPU-h in all" in page.locator("#hpchub-rules").inner_text()
        )
        page.screenshot(path=str(ARTIFACTS / "course-settings.png"), full_page=True)
    finally:
        page.evaluate("""async (url) => fetch(url, {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-XSRFToken": window.jhdata.xsrf_token},
            body: JSON.stringify({ta_extension_limit_gpu_hours: null, reason: "test puts it back"})})""",
                      f"{portal.url}/hub/api/hpchub/v1/projects/cs101/course-settings")  # fmt: skip


def test_the_instructor_sets_the_courses_idle_stop_on_the_dashboard(portal, log_in):
    page = log_in("dave")
    page.goto(f"{portal.url}/hub/hpchub/courses/cs101")
    try:
        page.fill("#hpchub-idle-stop", "0")  # a course cannot switch the site's idle stop off
        page.click("#hpchub-settings-save")
        error = page.locator("#hpchub-idle-stop-error")
        error.wait_for(state="visible")
        assert error.inner_text() == (
            "idle_stop_after_minutes: must be a whole number of minutes from 1 to 10080, "
            "or none (the site's idle stop), got '0'"
        )
        page.fill("#hpchub-idle-stop", "15")
        page.click("#hpchub-settings-save")
        page.locator("#hpchub-settings-answer.alert-success").wait_for(state="visible")
        assert page.locator("#hpchub-settings-answer").inner_text() == "Saved: idle-stop-after."
        assert "sessions idle for 15 min are stopped" in page.locator("#hpchub-rules").inner_text()
    finally:
        page.evaluate("""async (url) => fetch(url, {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-XSRFToken": window.jhdata.xsrf_token},
            body: JSON.stringify({idle_stop_after_minutes: null, reason: "test puts it back"})})""",
                      f"{portal.url}/hub/api/hpchub/v1/projects/cs101/course-settings")  # fmt: skip
