"""Fault suite: real faults on the real test cluster (slurmctld restarted or stopped, jobs ended from outside).

The test portal's job watcher polls every 5 s (``--status-interval 5`` in conftest); the hub
polls each spawner as often (``poll_interval`` follows ``status_interval``).
"""

from __future__ import annotations

import concurrent.futures
import csv
import html
import io
import re
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.faults]

INTERVAL = 5.0  # the test portal's status interval
OPTIONS = {"project": "vision-lab", "partition": "gpu", "gpu_type": "a100", "gpus": 1, "hours": 0.25}


def _spawn(portal, user, name="", options=OPTIONS, timeout=120):
    return portal.session().post(portal.spawn_path(user, name), json={"user_options": options}, timeout=timeout)


def _stop(portal, user, name=""):
    if portal.server(user, name) is None:
        return
    response = portal.session().delete(portal.spawn_path(user, name), timeout=60)
    assert response.status_code in (202, 204), response.text
    portal.wait_stopped(user, name)


def _job_of(portal, user, name=""):
    comment = f"hpchub:user={user},server={name}"
    matches = [
        job_id
        for job_id, job in portal.jobs().items()
        if job["comment"] == comment and job["state"] in ("RUNNING", "PENDING", "CONFIGURING")
    ]
    assert len(matches) == 1, portal.jobs()
    return matches[0]


def _answers(portal, user, name=""):
    return portal.session().get(portal.server_url(user, name) + "api/status", timeout=30).status_code == 200


def _cluster(portal):
    from hub.demo.cluster.manager import Cluster, load_settings

    return Cluster(load_settings(str(portal.state_dir)))


def _stop_slurmctld(portal):
    from hub.demo.cluster.procs import stop_daemon

    cluster = _cluster(portal)
    assert stop_daemon(cluster.slurmctld), "slurmctld was not running"
    assert not cluster.slurmctld.running()


def _start_slurmctld(portal, hpchub):
    hpchub("cluster", "up", "--state-dir", str(portal.state_dir))
    assert _cluster(portal).slurmctld.running()


def _charges(portal, project):
    return list(csv.DictReader(io.StringIO(portal.ledger_cli("charges", project, "--csv").stdout)))


def _stopped_banners(portal, user):
    _session, home = portal.login(f"{user}@uni.example", f"{user}-demo")
    return [html.unescape(text) for _level, text in re.findall(r'data-level="(\d+)">([^<]*)<', home.text)]


def _metric(text, name, **labels):
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" + wanted if wanted else "")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _squeue_errors(admin):
    text = admin.get_metrics()
    return _metric(text, "hpchub_scheduler_calls_total", command="squeue", outcome="error")


@pytest.fixture(autouse=True)
def _slurmctld_back_and_servers_stopped(portal, hpchub):
    """Whatever a test did, slurmctld runs again and bob's servers are gone afterwards."""
    yield
    if not _cluster(portal).slurmctld.running():
        _start_slurmctld(portal, hpchub)
    model = portal.session().get(f"{portal.api}/users/bob", timeout=30).json()
    for name in list(model.get("servers", {})):
        _stop(portal, "bob", name)


def test_running_session_survives_a_slurmctld_restart(portal, hpchub):
    assert _spawn(portal, "bob").status_code in (201, 202)
    portal.wait_ready("bob")
    job_id = _job_of(portal, "bob")
    held = portal.usage("vision-lab")["held_gpu_hours"]

    _stop_slurmctld(portal)
    time.sleep(INTERVAL)  # at least one watcher query fails meanwhile
    _start_slurmctld(portal, hpchub)
    time.sleep(2 * INTERVAL)  # the watcher's back-off ends and the hub polls again

    server = portal.server("bob")
    assert server is not None and server["ready"], server
    assert _job_of(portal, "bob") == job_id
    assert portal.jobs()[job_id]["state"] == "RUNNING"
    assert _answers(portal, "bob")
    assert 0 < portal.usage("vision-lab")["held_gpu_hours"] <= held  # still held (it shrinks as the job runs)


def test_slurmctld_down_for_two_intervals_fails_new_spawns_clearly_keeps_sessions_and_recovers(portal, hpchub):
    admin, _home = portal.login("admin@uni.example", "admin-demo")
    admin.get_metrics = lambda: admin.get(f"{portal.url}/hub/metrics", timeout=30).text
    assert _spawn(portal, "bob").status_code in (201, 202)
    portal.wait_ready("bob")
    job_id = _job_of(portal, "bob")
    held = portal.usage("vision-lab")["held_gpu_hours"]
    errors_before = _squeue_errors(admin)

    _stop_slurmctld(portal)
    down_since = time.monotonic()
    try:
        response = _spawn(portal, "bob", "down")
        message = response.text
        if response.status_code in (201, 202):  # slow spawn: the failure arrives on the progress stream
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                message = (
                    portal.session().get(f"{portal.api}/users/bob/servers/down/progress", stream=True, timeout=90).text
                )
                if "failed" in message:
                    break
                time.sleep(1)
        else:
            assert response.status_code == 503, (response.status_code, message)
        assert "Slurm" in message and "Traceback" not in message, message
        assert "Slurm is not answering" in message, message
        assert portal.server("bob", "down") is None
        # two poll intervals with slurmctld down
        time.sleep(max(0.0, down_since + 2 * INTERVAL + 1 - time.monotonic()))
        server = portal.server("bob")
        assert server is not None and server["ready"], server  # kept: UNKNOWN is not "gone"
        # the watcher did ask, and failed (a query to a dead slurmctld may take its own timeout to fail)
        deadline = time.monotonic() + 45
        while _squeue_errors(admin) <= errors_before and time.monotonic() < deadline:
            time.sleep(1)
        assert _squeue_errors(admin) > errors_before
        assert portal.server("bob") is not None  # still kept after the failed queries
        # the running session's hold is kept, the failed spawn's hold released
        assert 0 < portal.usage("vision-lab")["held_gpu_hours"] <= held  # still held (it shrinks as the job runs)
    finally:
        _start_slurmctld(portal, hpchub)

    assert _job_of(portal, "bob") == job_id
    assert _answers(portal, "bob")
    assert _spawn(portal, "bob", "back").status_code in (201, 202)
    portal.wait_ready("bob", "back", timeout=120)
    assert _answers(portal, "bob", "back")
    assert portal.server("bob")["ready"]


def _assert_charged_once(portal, job_id):
    """The ended session left a charge: the portal's provisional one, or sacct's final one if the
    reconciler (every 3 s here) imported it already; never two of a kind."""
    kinds = sorted(c["kind"] for c in _charges(portal, "vision-lab") if c["job_id"] == job_id)
    assert kinds in (["provisional"], ["final"], ["final", "provisional"]), kinds


def _wait_gone(portal, user, name, timeout):
    started = time.monotonic()
    portal.wait_stopped(user, name, timeout=timeout)
    return time.monotonic() - started


def test_jobs_ended_from_outside_are_noticed_charged_and_explained(portal):
    before = portal.usage("vision-lab")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda name: _spawn(portal, "bob", name), ["cancelled", "timeout"]))
    assert all(r.status_code in (201, 202) for r in responses), [r.text for r in responses]
    portal.wait_ready("bob", "cancelled")
    portal.wait_ready("bob", "timeout")
    cancelled_job = _job_of(portal, "bob", "cancelled")
    timeout_job = _job_of(portal, "bob", "timeout")
    # TIMEOUT: the job's end time set to now (Slurm recomputes its time limit; slurmctld's time-limit
    # check, every 30 s, ends it as TIMEOUT), not a one-minute limit the test would wait out
    portal.slurm("scontrol", "update", f"JobId={timeout_job}", "EndTime=now")

    portal.slurm("scancel", cancelled_job)  # as root, outside the portal
    # noticed after the watcher's refresh (<= 1 interval) and the hub's poll (<= 1 interval): about
    # 10 s; the wait's bound leaves room for a loaded machine (a timing is no test: benchmarks/)
    noticed = _wait_gone(portal, "bob", "cancelled", timeout=6 * INTERVAL)
    print(f"scancel noticed after {noticed:.1f} s")
    _assert_charged_once(portal, cancelled_job)
    assert any(
        f"was stopped: Slurm job {cancelled_job} was cancelled outside the portal" in b
        for b in _stopped_banners(portal, "bob")
    ), _stopped_banners(portal, "bob")

    noticed = _wait_gone(portal, "bob", "timeout", timeout=150)
    _assert_charged_once(portal, timeout_job)
    assert any(
        f"was stopped: Slurm job {timeout_job} reached its time limit (TIMEOUT)" in b
        for b in _stopped_banners(portal, "bob")
    ), _stopped_banners(portal, "bob")
    # both holds released
    assert portal.usage("vision-lab")["held_gpu_hours"] == pytest.approx(before["held_gpu_hours"], abs=1e-4)
