"""Prometheus metrics on the hub's /hub/metrics: scheduler calls, spawn outcomes, per-project GPU-hours."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration


def _metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" + wanted if wanted else "")):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_show_scheduler_calls_spawn_outcomes_and_project_hours(portal):
    refused = portal.session().post(
        portal.spawn_path("erin"),
        json={"user_options": {"project": "tiny-lab", "gpu_type": "h200", "gpus": 4, "hours": 8}},
        timeout=60,
    )
    assert refused.status_code == 403
    # /hub/metrics needs a token with read:metrics; the admin's login session has it.
    session, _home = portal.login("admin@uni.example", "admin-demo")
    text = session.get(f"{portal.url}/hub/metrics", timeout=30).text
    assert _metric(text, "hpchub_spawn_outcomes_total", outcome="budget") >= 1
    assert _metric(text, "hpchub_scheduler_calls_total", command="sinfo", outcome="ok") >= 1
    assert re.search(r"^hpchub_scheduler_call_seconds_count\{command=\"sinfo\"\} [1-9]", text, re.M)
    budget = _metric(text, "hpchub_project_gpu_hours_budget", project="vision-lab")
    usage = portal.usage("vision-lab")
    assert budget == pytest.approx(usage["budget_gpu_hours"])
    assert _metric(text, "hpchub_project_gpu_hours_remaining", project="tiny-lab") == pytest.approx(
        portal.usage("tiny-lab")["remaining_gpu_hours"], abs=1e-3
    )
    assert _metric(text, "hpchub_project_sessions", project="cs101", state="running") is not None


def test_metrics_count_a_started_session_its_slurm_calls_and_its_hold(portal, bob_job):
    """The metrics with a session running: spawn outcomes (started, validation), the watcher's
    squeue and the sbatch counted and timed, and vision-lab's running session and hold."""
    bad = portal.session().post(portal.spawn_path("carol"), json={"user_options": {"gpus": "many"}}, timeout=60)
    assert bad.status_code == 400
    session, _home = portal.login("admin@uni.example", "admin-demo")
    text = session.get(f"{portal.url}/hub/metrics", timeout=30).text
    usage = portal.usage("vision-lab")

    assert _metric(text, "hpchub_spawn_outcomes_total", outcome="started") >= 1
    assert _metric(text, "hpchub_spawn_outcomes_total", outcome="validation") >= 1
    for command in ("sbatch", "squeue"):
        assert _metric(text, "hpchub_scheduler_calls_total", command=command, outcome="ok") >= 1
        assert re.search(rf'^hpchub_scheduler_call_seconds_count\{{command="{command}"\}} [1-9]', text, re.M)
    assert _metric(text, "hpchub_project_sessions", project="vision-lab", state="running") >= 1
    assert _metric(text, "hpchub_project_sessions", project="vision-lab", state="pending") is not None
    held = _metric(text, "hpchub_project_gpu_hours_held", project="vision-lab")
    assert held > 0  # bob's 1 x h200 for 1 h, less what it has used so far
    assert held == pytest.approx(usage["held_gpu_hours"], abs=0.01)
    assert _metric(text, "hpchub_project_gpu_hours_used", project="vision-lab") == pytest.approx(
        usage["used_gpu_hours"], abs=0.01
    )
