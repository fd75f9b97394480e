"""Spawning through the real hub onto the real Slurm cluster (no mocks)."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

pytestmark = pytest.mark.integration

BOB_H200 = {
    "project": "vision-lab",
    "partition": "gpu",
    "gpu_type": "h200",
    "gpus": 1,
    "hours": 1,
    "environment": "default",
}


def _spawn(portal, user, options, name=""):
    return portal.session().post(portal.spawn_path(user, name), json={"user_options": options}, timeout=60)


def _stop(portal, user, name=""):
    response = portal.session().delete(portal.spawn_path(user, name), timeout=60)
    assert response.status_code in (202, 204), response.text
    portal.wait_stopped(user, name)


def _job_of(portal, user, name=""):
    comment = f"hpchub:user={user},server={name}"
    matches = [(job_id, job) for job_id, job in portal.jobs().items() if job["comment"] == comment]
    assert len(matches) == 1, portal.jobs()
    return matches[0]


def test_spawn_h200_for_bob_runs_as_slurm_job_and_answers_through_proxy(portal):
    started = time.monotonic()
    response = _spawn(portal, "bob", BOB_H200)
    assert response.status_code in (201, 202), response.text
    portal.wait_ready("bob")
    elapsed = time.monotonic() - started
    job_id, job = _job_of(portal, "bob")
    assert job["account"] == "vision-lab"
    assert job["user"] == "bob"
    assert job["gres"] == "gres:gpu:h200:1"
    assert job["time_limit"] == "1:00:00"
    assert job["state"] == "RUNNING"
    status = portal.session().get(portal.server_url("bob") + "api/status", timeout=30)
    assert status.status_code == 200, status.text
    assert "kernels" in status.json()
    print(f"spawn to ready: {elapsed:.1f} s")  # a timing is no test (benchmarks/); wait_ready bounds it

    _stop(portal, "bob")
    remaining = portal.jobs()
    assert job_id not in remaining or remaining[job_id]["state"] not in ("RUNNING", "PENDING")


def test_two_users_at_once(portal):
    carol = {"project": "cs101", "partition": "gpu", "gpu_type": "a100", "gpus": 1, "hours": 0.5}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_spawn, portal, "bob", BOB_H200), pool.submit(_spawn, portal, "carol", carol)]
        for future in futures:
            assert future.result().status_code in (201, 202), future.result().text
    portal.wait_ready("bob")
    portal.wait_ready("carol")
    _, bob_job = _job_of(portal, "bob")
    _, carol_job = _job_of(portal, "carol")
    assert (bob_job["account"], bob_job["gres"]) == ("vision-lab", "gres:gpu:h200:1")
    assert (carol_job["account"], carol_job["gres"], carol_job["time_limit"]) == ("cs101", "gres:gpu:a100:1", "30:00")
    for user in ("bob", "carol"):
        assert portal.session().get(portal.server_url(user) + "api/status", timeout=30).status_code == 200
    _stop(portal, "bob")
    _stop(portal, "carol")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({**BOB_H200, "gpus": 9}, "gpus", id="too-many-gpus"),
        pytest.param({**BOB_H200, "partition": "gpu\n#SBATCH --comment=x"}, "partition", id="newline-injection"),
        pytest.param({**BOB_H200, "options": "--comment=x"}, "options", id="unknown-key"),
        pytest.param({**BOB_H200, "project": "cs101"}, "project", id="not-my-project"),
        pytest.param({**BOB_H200, "gpu_type": "v100"}, "gpu_type", id="unknown-gpu-type"),
        pytest.param({**BOB_H200, "hours": 9}, "hours", id="over-maxtime"),
        pytest.param({**BOB_H200, "partition": "debug", "gpu_type": "a100", "hours": 1}, "hours", id="debug-30-min"),
    ],
)
def test_bad_options_get_400_naming_the_field_and_submit_nothing(portal, options, field):
    before = set(portal.jobs())
    response = _spawn(portal, "bob", options)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    assert set(portal.jobs()) == before
    assert portal.server("bob") is None or not portal.server("bob").get("ready")


def test_spawn_without_options_reuses_the_last_validated_ones(portal):
    assert _spawn(portal, "alice", {**BOB_H200, "hours": 0.5}).status_code in (201, 202)
    portal.wait_ready("alice")
    first_id, first = _job_of(portal, "alice")
    _stop(portal, "alice")
    response = portal.session().post(portal.spawn_path("alice"), timeout=60)  # no body: re-use
    assert response.status_code in (201, 202), response.text
    portal.wait_ready("alice")
    second_id, second = _job_of(portal, "alice")
    assert second_id != first_id
    assert (second["gres"], second["time_limit"]) == (first["gres"], "30:00")
    _stop(portal, "alice")


def test_batchspawner_handler_refuses_everything_but_a_port(portal, tmp_path):
    marker = tmp_path / "pwned"
    assert _spawn(portal, "bob", BOB_H200).status_code in (201, 202)
    portal.wait_ready("bob")
    token = portal.server_token("bob")
    url = f"{portal.api}/batchspawner"
    headers = {"Authorization": f"token {token}"}
    attacks = [
        {"exec_prefix": f"touch {marker}; sudo -E -u {{username}}"},
        {"batch_cancel_cmd": f"touch {marker}"},
        {"port": 1, "exec_prefix": f"touch {marker}"},
        {"port": "8888"},
    ]
    for payload in attacks:
        response = requests_post(url, payload, headers)
        assert response.status_code in (400, 403, 409), (payload, response.status_code, response.text)
    # Even a well-formed port is refused once the server has started.
    assert requests_post(url, {"port": 8888}, headers).status_code == 409
    # Another principal's token (the service) is not a server token.
    assert requests_post(url, {"port": 8888}, {"Authorization": f"token {portal.token}"}).status_code in (403, 404)
    # The server still answers, and stopping it (where the stock hub ran exec_prefix) runs nothing injected.
    assert portal.session().get(portal.server_url("bob") + "api/status", timeout=30).status_code == 200
    _stop(portal, "bob")
    assert not marker.exists()


def requests_post(url, payload, headers):
    import requests

    return requests.post(url, json=payload, headers=headers, timeout=30)


def test_job_failing_before_jupyter_shows_slurm_state_and_log_tail(portal):
    portal.ensure_broken_environment()
    options = {"project": "tiny-lab", "partition": "cpu", "gpus": 0, "hours": 0.25, "environment": "broken"}
    response = _spawn(portal, "erin", options)
    # Either the spawn fails within the API call, or it is pending and fails soon after.
    deadline = time.monotonic() + 60
    message = response.text
    while response.status_code in (201, 202) and time.monotonic() < deadline:
        progress = portal.session().get(f"{portal.api}/users/erin/server/progress", stream=True, timeout=60)
        message = progress.text
        if "failed" in message:
            break
        time.sleep(1)
    assert "ended before Jupyter answered" in message, message
    assert "FAILED" in message, message
    assert "hpchub-test-missing-venv" in message, message  # from the job's own log


def test_running_server_survives_a_hub_restart(portal, hpchub):
    import os
    import signal

    assert _spawn(portal, "bob", BOB_H200).status_code in (201, 202)
    portal.wait_ready("bob")
    job_id, _ = _job_of(portal, "bob")
    hub_pid = int((portal.state_dir / "run" / "jupyterhub.pid").read_text())
    os.kill(hub_pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{hub_pid}"):
        time.sleep(0.2)
    # The proxy is its own process: it and the job outlive the hub.
    assert job_id in portal.jobs()
    hpchub("demo", "up", "--state-dir", str(portal.state_dir))
    server = portal.wait_ready("bob")
    assert server["ready"]
    assert _job_of(portal, "bob")[0] == job_id  # the same job, re-adopted by its owner
    assert portal.session().get(portal.server_url("bob") + "api/status", timeout=30).status_code == 200
    _stop(portal, "bob")
