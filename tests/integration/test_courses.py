"""Courses through the real hub: the course's rules bind a student's spawn, and a
principal on the roster becomes a member at the first login."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_students_spawn_breaking_a_course_rule_is_403_naming_the_rule_and_submits_nothing(portal):
    before = set(portal.jobs())
    for options, rule in (
        ({"project": "cs101", "gpu_type": "a100", "gpus": 2, "hours": 1}, "max-gpus"),
        ({"project": "cs101", "gpu_type": "h200", "gpus": 1, "hours": 1}, "gpu-types"),
        ({"project": "cs101", "gpu_type": "a100", "gpus": 1, "hours": 3}, "max-hours"),
    ):
        response = portal.session().post(portal.spawn_path("carol"), json={"user_options": options}, timeout=120)
        assert response.status_code == 403, response.text
        assert f"(course rule {rule})" in response.json()["message"]
    assert set(portal.jobs()) == before
    assert portal.usage("cs101")["held_gpu_hours"] == 0


def test_a_principal_on_the_roster_becomes_a_member_at_the_first_login(portal, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("principal,role\nadmin@uni.example,ta\n")  # admin: a Unix user in no course yet
    portal.ledger_cli("course", "roster", "cs101", "--csv", str(roster))
    try:
        assert "admin" not in {m["user"] for m in portal.usage("cs101")["members"]}
        _session, response = portal.login("admin@uni.example", "admin-demo")
        assert response.status_code == 200, response.url
        members = {m["user"]: m for m in portal.usage("cs101")["members"]}
        assert members["admin"]["role"] == "ta"
        report = portal.ledger_cli("course", "report", "cs101").stdout
        assert "30 on the roster never logged in" in report  # the demo's 30 pending principals
    finally:
        portal.ledger_cli("member", "remove", "cs101", "admin")


def test_an_idp_group_makes_a_student_at_login_and_its_removal_ends_it_at_the_next_spawn(portal):
    original = ["hpc-users", "hpc-admins"]
    try:
        portal.set_idp_groups("admin@uni.example", [*original, "cs101-students"])
        _session, response = portal.login("admin@uni.example", "admin-demo")
        assert response.status_code == 200, response.url
        admin = next(m for m in portal.usage("cs101")["members"] if m["user"] == "admin")
        assert (admin["role"], admin["cap_gpu_hours"]) == ("student", 5.0)
        portal.set_idp_groups("admin@uni.example", original)
        spawn = portal.session().post(
            portal.spawn_path("admin"),
            json={"user_options": {"project": "cs101", "gpu_type": "a100", "gpus": 1, "hours": 0.25}},
            timeout=60,
        )
        assert spawn.status_code in (400, 403), spawn.text  # the refresh before the spawn ended the membership
        assert "admin" not in {m["user"] for m in portal.usage("cs101")["members"]}
    finally:
        portal.set_idp_groups("admin@uni.example", original)
        if "admin" in {m["user"] for m in portal.usage("cs101")["members"]}:
            portal.ledger_cli("member", "remove", "cs101", "admin")


def test_lab_hours_put_a_students_session_into_the_courses_reservation(portal, hpchub):
    env_args = ("--slurm-conf", portal.slurm_conf)
    on = hpchub("course", "lab-hours", "cs101", "--on", "--nodes", "gpu03", "--minutes", "30", *env_args,
                "--db-url", portal.ledger_url, check=False)  # fmt: skip
    assert on.returncode == 0, on.stderr
    assert on.stdout.startswith("cs101: lab hours on: reservation cs101-lab on gpu03")
    try:
        response = portal.session().post(
            portal.spawn_path("carol"),
            json={"user_options": {"project": "cs101", "gpu_type": "a100", "gpus": 1, "hours": 0.25}},
            timeout=120,
        )
        assert response.status_code in (201, 202), response.text
        portal.wait_ready("carol")
        (job_id,) = [j for j, job in portal.jobs().items() if "user=carol," in job["comment"]]
        assert portal.slurm("squeue", "--noheader", "--format=%v|%N", "--jobs", job_id).strip() == "cs101-lab|gpu03"
    finally:
        portal.session().delete(portal.spawn_path("carol"), timeout=60)
        portal.wait_stopped("carol")
        off = hpchub("course", "lab-hours", "cs101", "--off", *env_args, "--db-url", portal.ledger_url, check=False)
        assert off.returncode == 0, off.stderr
    # lab hours off: the next session queues normally, outside any reservation
    status = hpchub("course", "lab-hours", "cs101", *env_args, "--db-url", portal.ledger_url, check=False)
    assert "lab hours off" in status.stdout


def test_two_concurrent_spawns_of_one_student_on_two_named_servers_start_exactly_one(portal):
    """cs101 allows one session at once: the rule is checked in the atomic admission."""
    import concurrent.futures

    options = {"project": "cs101", "gpu_type": "a100", "gpus": 1, "hours": 0.25}

    def spawn(name: str):
        return portal.session().post(portal.spawn_path("carol", name), json={"user_options": options}, timeout=120)

    names = ["lab-a", "lab-b"]
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            responses = dict(zip(names, pool.map(spawn, names)))
        started = [name for name, r in responses.items() if r.status_code in (201, 202)]
        refused = [r for r in responses.values() if r.status_code == 403]
        assert len(started) == 1 and len(refused) == 1, {n: (r.status_code, r.text[:200]) for n, r in responses.items()}
        assert "(course rule max-sessions)" in refused[0].json()["message"]
        portal.wait_ready("carol", started[0])
    finally:
        for name in names:
            if portal.server("carol", name) is not None:
                portal.session().delete(portal.spawn_path("carol", name), timeout=60)
        for name in names:
            portal.wait_stopped("carol", name, timeout=90)
    assert portal.usage("cs101")["held_gpu_hours"] == 0


def test_at_term_end_a_running_session_stops_after_the_grace_with_the_reason(portal, hpchub):
    """A course of its own (closing cs101 would change it for the other tests): carol runs a
    session, the course is closed, the budget watch stops it (grace 3 s in the tests)."""
    course = "cs199"
    portal.course_with_student(course, "term end test")
    response = portal.session().post(
        portal.spawn_path("carol", "term"),
        json={"user_options": {"project": course, "gpu_type": "a100", "gpus": 1, "hours": 0.25}},
        timeout=120,
    )
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready("carol", "term")
        portal.ledger_cli("course", "close", course, "--reason", "the term has ended")
        portal.wait_stopped("carol", "term", timeout=60)
        assert all("server=term" not in job["comment"] for job in portal.jobs().values())
        refused = portal.session().post(
            portal.spawn_path("carol", "term"),
            json={"user_options": {"project": course, "gpu_type": "a100", "gpus": 1, "hours": 0.25}},
            timeout=120,
        )
        assert refused.status_code == 403 and "cs199 is closed: the term has ended" in refused.json()["message"]
        report = portal.ledger_cli("course", "report", course, "--csv").stdout.splitlines()
        assert report[0] == "user,role,sessions,gpu_hours,cap_gpu_hours,extensions"
        assert report[1].startswith("carol,student,1,")
    finally:
        if portal.server("carol", "term") is not None:
            portal.session().delete(portal.spawn_path("carol", "term"), timeout=60)
            portal.wait_stopped("carol", "term", timeout=60)
        portal.ledger_cli("member", "remove", course, "carol", check=False)
