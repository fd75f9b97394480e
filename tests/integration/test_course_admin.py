"""A course's settings through the real hub: the instructor's TA extension limit
binds a TA's extension (refused above it with the rule named); a lab-hours-only course
refuses its students outside the lab hours (spawn, form and preview); a course that stops
a dropped student's sessions stops them with the reason on the student's page; hpchub course sync
reads the groups recorded at the last login."""

from __future__ import annotations

import pytest
import requests
from conftest import logged_in_session

pytestmark = pytest.mark.integration
V1 = "/hub/api/hpchub/v1"


def _logged_in(portal, name: str) -> requests.Session:
    return logged_in_session(portal, name)


@pytest.fixture(scope="module")
def staff(portal) -> dict[str, requests.Session]:
    return {name: _logged_in(portal, name) for name in ("dave", "tom", "carol")}


def _carol_cap(portal) -> float:
    return next(m for m in portal.usage("cs101")["members"] if m["user"] == "carol")["cap_gpu_hours"]


def test_a_ta_extends_within_the_instructors_limit_and_is_refused_above_it(portal, staff):
    settings_url = f"{portal.url}{V1}/projects/cs101/course-settings"
    cap_url = f"{portal.url}{V1}/projects/cs101/members/carol/cap"
    before = _carol_cap(portal)
    over_base = before - 5.0  # the demo's per-student cap is 5 GPU-h
    refused = staff["tom"].post(settings_url, json={"ta_extension_limit_gpu_hours": 1}, timeout=30)
    assert refused.status_code == 403 and "only an instructor of cs101" in refused.json()["message"]
    bad = staff["dave"].post(settings_url, json={"ta_extension_limit_gpu_hours": -1}, timeout=30)
    assert bad.status_code == 400 and bad.json()["message"].startswith("ta_extension_limit_gpu_hours:")
    answer = staff["dave"].post(settings_url, json={"ta_extension_limit_gpu_hours": over_base + 1,
                                                    "reason": "integration test"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] == ["ta-extension-limit"]
    try:
        within = staff["tom"].post(cap_url, json={"cap_gpu_hours": before + 1, "reason": "lab week"}, timeout=30)
        assert within.status_code == 200, within.text
        above = staff["tom"].post(cap_url, json={"cap_gpu_hours": before + 1.5, "reason": "more"}, timeout=30)
        assert above.status_code == 403
        assert "(course rule ta-extension-limit)" in above.json()["message"]
        assert _carol_cap(portal) == before + 1
        unlimited = staff["dave"].post(cap_url, json={"cap_gpu_hours": before + 3, "reason": "instructor"}, timeout=30)
        assert unlimited.status_code == 200, unlimited.text
        shown = staff["carol"].get(settings_url, timeout=30)
        assert shown.status_code == 200 and shown.json()["ta_extension_limit_gpu_hours"] == over_base + 1
    finally:
        staff["dave"].post(cap_url, json={"cap_gpu_hours": before, "reason": "test restores the cap"}, timeout=30)
        staff["dave"].post(settings_url, json={"ta_extension_limit_gpu_hours": None, "reason": "test"}, timeout=30)


def test_outside_the_lab_hours_a_lab_hours_only_course_refuses_its_students(portal, staff, hpchub):
    settings_url = f"{portal.url}{V1}/projects/cs101/course-settings"
    on = staff["dave"].post(settings_url, json={"lab_hours_only": True, "reason": "integration test"}, timeout=30)
    assert on.status_code == 200 and on.json()["lab_hours_only"] is True, on.text
    before = set(portal.jobs())
    env_args = ("--slurm-conf", portal.slurm_conf, "--db-url", portal.ledger_url)
    try:
        options = {"project": "cs101", "gpu_type": "a100", "gpus": 1, "hours": 0.25}
        refused = portal.session().post(portal.spawn_path("carol"), json={"user_options": options}, timeout=120)
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == (
            "cs101 lets students start sessions only during its lab hours (course rule lab-hours-only); they are off now."
        )
        assert set(portal.jobs()) == before
        form = staff["carol"].get(f"{portal.url}/hub/spawn", timeout=60).text
        assert "course rule lab-hours-only: its lab hours are off now" in form
        preview = staff["carol"].post(f"{portal.url}{V1}/preview", json=options, timeout=60).json()
        assert not preview["allowed"] and "(course rule lab-hours-only)" in preview["message"]
        switched = hpchub("course", "lab-hours", "cs101", "--on", "--nodes", "gpu03", "--minutes", "30", *env_args,
                          check=False)  # fmt: skip
        assert switched.returncode == 0, switched.stderr
        started = portal.session().post(portal.spawn_path("carol"), json={"user_options": options}, timeout=120)
        assert started.status_code in (201, 202), started.text
        portal.wait_ready("carol")
    finally:
        portal.session().delete(portal.spawn_path("carol"), timeout=60)
        portal.wait_stopped("carol")
        hpchub("course", "lab-hours", "cs101", "--off", *env_args, check=False)
        staff["dave"].post(settings_url, json={"lab_hours_only": False, "reason": "test"}, timeout=30)


def test_a_dropped_students_running_session_stops_when_the_course_says_so(portal, staff):
    """A course of its own (dropping carol from cs101 would change it for the other tests):
    carol runs a session, she is removed, the budget watch stops it (grace 3 s in the tests)
    and her home page says why."""
    course = "cs198"
    portal.course_with_student(course, "on-drop test", "--on-drop", "stop")
    response = portal.session().post(
        portal.spawn_path("carol", "drop"),
        json={"user_options": {"project": course, "gpu_type": "a100", "gpus": 1, "hours": 0.25}},
        timeout=120,
    )
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready("carol", "drop")
        portal.ledger_cli("member", "remove", course, "carol")
        portal.wait_stopped("carol", "drop", timeout=60)
        home = staff["carol"].get(f"{portal.url}/hub/home", timeout=30).text
        assert f"Your server drop in {course} was stopped: carol was dropped from {course}" in home
        assert "(course setting on-drop)" in home
    finally:
        if portal.server("carol", "drop") is not None:
            portal.session().delete(portal.spawn_path("carol", "drop"), timeout=60)
            portal.wait_stopped("carol", "drop", timeout=60)


def test_course_sync_reads_the_groups_recorded_at_the_last_login(portal):
    original = ["hpc-users", "hpc-admins"]
    try:
        portal.set_idp_groups("admin@uni.example", [*original, "cs101-tas"])
        _session, response = portal.login("admin@uni.example", "admin-demo")
        assert response.status_code == 200, response.url
        assert "admin" in {m["user"] for m in portal.usage("cs101")["members"]}
        portal.ledger_cli("member", "remove", "cs101", "admin")
        synced = portal.ledger_cli("course", "sync", "cs101").stdout
        assert "admin joined cs101 as ta (IdP group cs101-tas)" in synced.splitlines()
        # the IdP drops the group: the sync sees it only after the next login (which applies it itself)
        portal.set_idp_groups("admin@uni.example", original)
        assert "admin left" not in portal.ledger_cli("course", "sync", "cs101").stdout
        _session, response = portal.login("admin@uni.example", "admin-demo")
        assert "admin" not in {m["user"] for m in portal.usage("cs101")["members"]}
        assert "0 change(s)" in portal.ledger_cli("course", "sync", "cs101").stdout
    finally:
        portal.set_idp_groups("admin@uni.example", original)
        if "admin" in {m["user"] for m in portal.usage("cs101")["members"]}:
            portal.ledger_cli("member", "remove", "cs101", "admin")
