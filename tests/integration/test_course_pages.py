"""The course dashboard in a real browser (Playwright driving Debian's chromium), through the
real OpenID Connect login, against the real cluster and ledger: as instructor (dave), as TA (tom),
as a student who must not see others (carol), and as an outsider; lab hours switched from the
page put carol's next session into the course's Slurm reservation.

Pages are checked at 390 px wide too and kept as screenshots test-artifacts/course-*.png. Every
test puts back what it changed (carol's cap, the reservation, carol's server) in ``finally``:
other tests share the portal.
"""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CAROL_A100 = {
    "project": "cs101",
    "partition": "gpu",
    "gpu_type": "a100",
    "gpus": 1,
    "hours": 0.25,
    "environment": "default",
}


def _course_url(portal, project: str = "cs101") -> str:
    return f"{portal.url}/hub/hpchub/courses/{project}"


def _fits(page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width} px wide at {width} px"


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _rows(page) -> list[str]:
    return page.locator("#hpchub-students tbody tr").evaluate_all("rows => rows.map(r => r.dataset.user)")


def _member(portal, user: str, project: str = "cs101") -> dict:
    return next(m for m in portal.usage(project)["members"] if m["user"] == user)


def _lab_off(portal) -> None:
    """The lab hours off, whatever state they are in (``hpchub course lab-hours --off``)."""
    portal.ledger_cli("course", "lab-hours", "cs101", "--off", "--slurm-conf", portal.slurm_conf, check=False)


def _stop(portal, user: str) -> None:
    portal.session().delete(portal.spawn_path(user), timeout=60)
    portal.wait_stopped(user)
    deadline = time.monotonic() + 60
    while any(f"user={user}," in job["comment"] for job in portal.jobs().values()):
        assert time.monotonic() < deadline, f"{user}'s job still in squeue"
        time.sleep(0.5)


@pytest.mark.parametrize("width", (1280, 390), ids=["1280px", "390px"])
def test_dave_sees_carols_use_and_the_30_pending_principals_and_extends_her_cap(portal, log_in, width) -> None:
    page = log_in("dave", width)
    # linked from the home page and the project page
    assert page.locator('#hpchub-projects li[data-project="cs101"] a.hpchub-course-link').count() == 1
    page.goto(f"{portal.url}/hub/hpchub/projects/cs101")
    page.click("#hpchub-course-link")
    page.wait_for_url(_course_url(portal))
    carol = _member(portal, "carol")
    assert {"carol", "tom", "dave"} <= set(_rows(page))
    row = page.locator('#hpchub-students tr[data-user="carol"]')
    assert float(row.get_attribute("data-used")) == carol["used_gpu_hours"]
    assert float(row.get_attribute("data-cap")) == carol["cap_gpu_hours"]
    meter = row.locator("meter")
    assert float(meter.get_attribute("max")) == carol["cap_gpu_hours"]
    assert f"of {carol['cap_gpu_hours']} GPU-h" in row.locator(".hpchub-bar-text").inner_text()  # in words too
    assert "cs101-lab" in page.locator("#hpchub-rules").inner_text()
    assert "at most 1 GPU per session" in page.locator("#hpchub-rules").inner_text()
    # the roster's 30 principals who never logged in: a count and the list
    assert page.get_attribute("#hpchub-pending-count", "data-count") == "30"
    assert page.locator("#hpchub-pending li").count() == 30
    _fits(page, width)
    _shot(page, f"course-dave-{width}")
    if width != 1280:
        return
    # extend carol's cap by 2 GPU-h with a reason: the page and `hpchub usage cs101 --json` agree
    before = Decimal(str(carol["cap_gpu_hours"]))
    extensions = int(row.get_attribute("data-extensions"))
    try:
        row.locator("summary").click()
        row.locator('input[name="hours"]').fill("2")
        row.locator('input[name="reason"]').fill("project week (browser test)")
        row.locator('button[type="submit"]').click()
        page.wait_for_selector("#hpchub-course-status.alert-success", timeout=30000)
        assert "carol's cap is now" in page.locator("#hpchub-course-status").inner_text()
        after = _member(portal, "carol")
        assert Decimal(str(after["cap_gpu_hours"])) == before + 2
        # the live part is fetched again after the answer is shown: wait for the new row
        page.wait_for_function(
            "n => { const r = document.querySelector('#hpchub-students tr[data-user=\"carol\"]');"
            " return r !== null && Number(r.dataset.extensions) === n; }",
            arg=extensions + 1,
            timeout=30000,
        )
        row = page.locator('#hpchub-students tr[data-user="carol"]')
        assert Decimal(row.get_attribute("data-cap")) == before + 2
        assert int(row.get_attribute("data-extensions")) == extensions + 1
        assert float(row.locator("meter").get_attribute("max")) == after["cap_gpu_hours"]
        _shot(page, "course-dave-extended")
        # a bad extension is refused next to the control, nothing changed
        row.locator("summary").click()
        row.locator('input[name="hours"]').fill("2")
        row.locator('button[type="submit"]').click()
        assert "Reason: required" in row.locator(".hpchub-action-answer").inner_text()
        assert Decimal(str(_member(portal, "carol")["cap_gpu_hours"])) == before + 2
    finally:
        portal.ledger_cli("member", "cap", "cs101", "carol", str(before), "--reason", "browser test: back")


def test_tom_sees_the_dashboard_and_his_extension_is_limited_as_the_api_limits_it(portal, log_in) -> None:
    page = log_in("tom")
    assert page.goto(_course_url(portal)).status == 200
    assert {"carol", "tom", "dave"} <= set(_rows(page))
    assert page.get_attribute("#hpchub-pending-count", "data-count") == "30"
    assert page.locator("#hpchub-lab-form").count() == 0  # instructors and admins switch the lab hours
    before = _member(portal, "carol")["cap_gpu_hours"]
    row = page.locator('#hpchub-students tr[data-user="carol"]')
    row.locator("summary").click()
    row.locator('input[name="hours"]').fill("1")
    row.locator('input[name="reason"]').fill("ta extension (browser test)")
    row.locator('button[type="submit"]').click()
    answer = row.locator(".hpchub-action-answer.alert-danger")
    answer.wait_for(timeout=30000)
    try:
        assert _member(portal, "carol")["cap_gpu_hours"] == before
        # the same request to the API answers the same refusal (the page shows the API's own message)
        session, response = portal.login("tom@uni.example", "tom-demo")
        assert response.status_code == 200
        api = session.post(
            f"{portal.url}/hub/api/hpchub/v1/projects/cs101/members/carol/cap",
            headers={"X-XSRFToken": session.cookies.get("_xsrf", "")},
            json={"cap_gpu_hours": before + 1, "reason": "ta extension (API)"},
            timeout=30,
        )
        assert api.status_code == 403
        assert answer.inner_text() == api.json()["message"]
        _shot(page, "course-tom-refused")
    finally:
        if _member(portal, "carol")["cap_gpu_hours"] != before:
            portal.ledger_cli("member", "cap", "cs101", "carol", str(before), "--reason", "browser test: back")


@pytest.mark.parametrize("width", (1280, 390), ids=["1280px", "390px"])
def test_carol_sees_only_herself(portal, log_in, width) -> None:
    page = log_in("carol", width)
    assert page.goto(_course_url(portal)).status == 200
    assert _rows(page) == ["carol"]
    text = page.locator("#hpchub-course").inner_text()
    for other in ("tom", "dave", "@uni.example"):
        assert other not in text, other
    assert page.locator("#hpchub-pending-count").count() == 0 and page.locator("#hpchub-figures").count() == 0
    assert page.locator(".hpchub-extend-cap").count() == 0 and page.locator("#hpchub-lab-form").count() == 0
    carol = _member(portal, "carol")
    assert float(page.get_attribute('#hpchub-students tr[data-user="carol"]', "data-used")) == carol["used_gpu_hours"]
    # her report: her own row only, the columns of `hpchub course report --csv`
    if width == 1280:
        with page.expect_download() as download:
            page.click("#hpchub-report-csv")
        lines = list(csv.reader(io.StringIO(open(download.value.path()).read())))
        header = portal.ledger_cli("course", "report", "cs101", "--csv").stdout.splitlines()[0]
        assert ",".join(lines[0]) == header and [line[0] for line in lines[1:]] == ["carol"]
    _fits(page, width)
    _shot(page, f"course-carol-{width}")


def test_anyone_else_gets_404_as_for_an_unknown_project(portal, log_in) -> None:
    page = log_in("alice")
    response = page.goto(_course_url(portal))
    assert response.status == 404 and "no project 'cs101'" in page.content()
    assert page.goto(_course_url(portal, "no-such-course")).status == 404
    assert page.request.get(f"{_course_url(portal)}/report.csv").status == 404
    assert page.request.get(f"{_course_url(portal)}/live").status == 404
    assert page.goto(_course_url(portal, "vision-lab")).status == 404  # her project, not a course


def test_dave_switches_lab_hours_on_and_carols_next_session_runs_in_the_reservation(portal, log_in) -> None:
    page = log_in("dave")
    page.goto(_course_url(portal))
    assert page.get_attribute("#hpchub-lab-state", "data-state") == "off"
    try:
        page.fill("#hpchub-lab-minutes", "30")
        page.click("#hpchub-lab-on")
        page.wait_for_selector('#hpchub-lab-state[data-state="on"]', timeout=60000)
        assert "cs101-lab" in page.locator("#hpchub-lab-state").inner_text()
        _shot(page, "course-lab-on")
        # switching on again: 409, shown next to the control
        page.click("#hpchub-lab-on")
        page.wait_for_selector("#hpchub-lab-answer.alert-danger", timeout=30000)
        assert "on already" in page.locator("#hpchub-lab-answer").inner_text()
        # carol's next session (spawned through the API) runs in the reservation
        spawn = portal.session().post(portal.spawn_path("carol"), json={"user_options": CAROL_A100}, timeout=120)
        assert spawn.status_code in (201, 202), spawn.text
        portal.wait_ready("carol")
        (job_id,) = [j for j, job in portal.jobs().items() if "user=carol," in job["comment"]]
        assert portal.slurm("squeue", "--noheader", "--format=%v|%N", "--jobs", job_id).strip() == "cs101-lab|gpu03"
        page.reload()
        assert "running" in page.get_attribute('#hpchub-students tr[data-user="carol"]', "data-flags")
        _stop(portal, "carol")
        # dave switches them off
        page.click("#hpchub-lab-off")
        page.wait_for_selector('#hpchub-lab-state[data-state="off"]', timeout=60000)
        status = portal.ledger_cli("course", "lab-hours", "cs101", "--slurm-conf", portal.slurm_conf).stdout
        assert "lab hours off" in status
        _shot(page, "course-lab-off")
    finally:
        if portal.server("carol") is not None:
            _stop(portal, "carol")
        _lab_off(portal)


def test_the_live_part_is_fetched_again_without_a_reload_and_not_while_a_field_has_focus(portal, log_in) -> None:
    assert requests.get(f"{_course_url(portal)}/live", allow_redirects=False, timeout=30).status_code in (302, 303, 403)
    page = log_in("dave")
    page.goto(_course_url(portal))
    page.evaluate("window.hpchubMarker = 1")  # gone if the page reloaded
    # the 30 s timer calls the same function: a refresh replaces the live part in place
    assert page.evaluate("window.hpchubCourseRefresh(false)") is True
    assert page.get_attribute("#hpchub-course", "data-refreshed") == "1"
    # not while a form field in it has focus (an extension being typed)
    row = page.locator('#hpchub-students tr[data-user="carol"]')
    row.locator("summary").click()
    row.locator('input[name="hours"]').focus()
    assert page.evaluate("window.hpchubCourseRefresh(false)") is False
    assert page.get_attribute("#hpchub-course", "data-refreshed") == "1"
    assert page.evaluate("window.hpchubMarker") == 1
