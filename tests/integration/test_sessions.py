"""A notebook server's session and "extend", through the real hub, ledger and Slurm cluster.

bob's server is started through the tests' service token; bob reads and extends it with his
login (cookie + X-XSRFToken), the job reads it with its own token ($JUPYTERHUB_API_TOKEN).
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest
import requests
from conftest import logged_in_session

pytestmark = pytest.mark.integration

V1 = "/hub/api/hpchub/v1"


def _logged_in(portal, name: str) -> requests.Session:
    return logged_in_session(portal, name)


@pytest.fixture(scope="module")
def bob(portal, bob_job) -> requests.Session:
    return _logged_in(portal, "bob")


@pytest.fixture(scope="module")
def server_token(portal, bob_job) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"token {portal.server_token('bob')}"
    return session


def _session_url(portal, path: str = "servers//session") -> str:
    return f"{portal.url}{V1}/users/bob/{path}"


def _bob_held(portal) -> float:
    return next(m for m in portal.usage("vision-lab")["members"] if m["user"] == "bob")["held_gpu_hours"]


@pytest.mark.parametrize(
    "path", ["servers//session", "server/session", "session"], ids=["servers-empty-name", "server", "short"]
)
def test_bob_reads_his_session(portal, bob_job, bob, path) -> None:
    response = bob.get(_session_url(portal, path), timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    job = portal.jobs()[bob_job]
    assert (answer["project"], answer["job_id"], answer["state"], answer["partition"]) == (
        "vision-lab",
        bob_job,
        "running",
        "gpu",
    )
    assert answer["node"] == job["node"] and answer["node"].startswith("gpu0")
    assert (answer["gpu_type"], answer["gpus"], answer["hours_reserved"]) == ("h200", 1, 1.0)
    start, end = datetime.fromisoformat(answer["start"]), datetime.fromisoformat(answer["end"])
    assert end - start == timedelta(hours=1)
    assert 0 <= answer["cost_so_far_gpu_hours"] <= 0.1
    assert answer["cost_so_far_gpu_hours"] + answer["held_gpu_hours"] == pytest.approx(1.0, abs=1e-4)
    assert answer["extend_cost_gpu_hours"] == 1.0


def test_the_servers_own_token_reads_its_session_and_nothing_else(portal, bob_job, server_token) -> None:
    response = server_token.get(_session_url(portal, "server/session"), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["job_id"] == bob_job
    # another server of bob's: the token's scope is filtered to its own server
    assert server_token.get(_session_url(portal, "servers/other/session"), timeout=30).status_code == 404
    # it may not extend, nor read the ledger's projects
    assert server_token.post(_session_url(portal, "server/extend"), json={"hours": 1}, timeout=30).status_code == 403
    assert server_token.get(f"{portal.url}{V1}/projects", timeout=30).status_code == 403


def test_another_user_gets_404_and_a_service_without_the_scope_403(portal, bob_job) -> None:
    carol = _logged_in(portal, "carol")
    before = portal.jobs()[bob_job]["time_limit"]
    for path in ("server/session", "session"):
        response = carol.get(_session_url(portal, path), timeout=30)
        assert response.status_code == 404, response.text
    response = carol.post(_session_url(portal, "server/extend"), json={"hours": 1}, timeout=30)
    assert response.status_code == 404, response.text
    assert portal.session().get(_session_url(portal, "server/session"), timeout=30).status_code == 403
    assert portal.jobs()[bob_job]["time_limit"] == before


def test_no_session_for_a_server_that_is_not_running(portal, bob_job, bob) -> None:
    response = bob.get(_session_url(portal, "servers/nothere/session"), timeout=30)
    assert response.status_code == 404, response.text
    assert "no running or pending session" in response.json()["message"]


def test_extend_by_one_hour_raises_the_time_limit_and_the_hold(portal, bob_job, bob) -> None:
    assert portal.jobs()[bob_job]["time_limit"] == "1:00:00"
    held_before = portal.usage("vision-lab")["held_gpu_hours"]
    response = bob.post(_session_url(portal, "server/extend"), json={"hours": 1}, timeout=60)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["hours_reserved"] == 2.0 and answer["time_limit_minutes"] == 120
    assert datetime.fromisoformat(answer["end"]) - datetime.fromisoformat(answer["start"]) == timedelta(hours=2)
    assert portal.slurm("squeue", "--noheader", "-o", "%l", "-j", bob_job).strip() == "2:00:00"
    held_after = portal.usage("vision-lab")["held_gpu_hours"]
    assert held_after - held_before == pytest.approx(1.0, abs=0.02)  # 1 x h200 x 1 h (less what ran meanwhile)


@pytest.mark.parametrize("hours", [7, 8, 6.25], ids=["9h-in-all", "10h-in-all", "8.25h-in-all"])
def test_extend_beyond_maxtime_is_400_naming_hours_and_the_limit_and_changes_nothing(
    portal, bob_job, bob, hours
) -> None:
    limit, held = portal.jobs()[bob_job]["time_limit"], _bob_held(portal)
    response = bob.post(_session_url(portal, "servers//extend"), json={"hours": hours}, timeout=60)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith("hours: partition gpu allows jobs of at most 8 h (MaxTime)"), message
    assert portal.jobs()[bob_job]["time_limit"] == limit
    assert _bob_held(portal) == pytest.approx(held, abs=0.01)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"hours": 0.3}, "hours"), ({"hours": 0}, "hours"), ({"minutes": 60}, "minutes")],
    ids=["not-a-quarter", "zero", "unknown-key"],
)
def test_extend_with_bad_input_is_400_naming_the_field(portal, bob_job, bob, body, field) -> None:
    response = bob.post(_session_url(portal, "server/extend"), json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}: ")


def test_unaffordable_extension_is_403_with_the_ledgers_message_and_changes_nothing(portal, bob_job, bob) -> None:
    bob_figures = next(m for m in portal.usage("vision-lab")["members"] if m["user"] == "bob")
    cap = bob_figures["cap_gpu_hours"]
    # room for less than a quarter hour of one h200 under bob's cap
    tight = round(bob_figures["used_gpu_hours"] + bob_figures["held_gpu_hours"] + 0.1, 4)
    portal.ledger_cli("member", "cap", "vision-lab", "bob", str(tight), "--reason", "extend test: tight cap")
    try:
        limit, held = portal.jobs()[bob_job]["time_limit"], _bob_held(portal)
        response = bob.post(_session_url(portal, "server/extend"), json={"hours": 1}, timeout=60)
        assert response.status_code == 403, response.text
        message = response.json()["message"]
        assert (
            message.startswith("bob's cap in vision-lab has ")
            and "this extension needs 1.0 (1 x h200 x 1 h)" in message
        ), message
        assert portal.jobs()[bob_job]["time_limit"] == limit
        assert _bob_held(portal) == pytest.approx(held, abs=0.01)
    finally:
        portal.ledger_cli("member", "cap", "vision-lab", "bob", str(cap), "--reason", "extend test done")


def test_home_page_shows_the_session_with_its_extend_button(portal, bob_job, bob) -> None:
    home = bob.get(f"{portal.url}/hub/home", timeout=30)
    assert home.status_code == 200
    assert "Your sessions" in home.text
    row = re.search(r'<tr class="hpchub-session-row"[^>]*data-job-id="(\d+)"[^>]*>(.*?)</tr>', home.text, re.S)
    assert row and row.group(1) == bob_job, home.text[:2000]
    cells = {
        label: html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
        for label, text in re.findall(r'data-label="([^"]+)"[^>]*>(.*?)</t[hd]>', row.group(2), re.S)
    }
    assert cells["Server"] == "(default)" and cells["Project"] == "vision-lab" and cells["GPUs"] == "1 x h200"
    assert cells["Node"] == portal.jobs()[bob_job]["node"]
    assert cells["Cost so far"].endswith("GPU-h") and cells["Held"].endswith("GPU-h")
    assert re.match(r"\d+ h \d\d min|\d+ min", cells["Time left"]), cells["Time left"]
    assert "Extend by 1 h (costs 1.0 GPU-h)" in cells["Extend"]
    assert 'data-url="/hub/api/hpchub/v1/users/bob/server/extend"' in row.group(2)
    # JupyterHub's own server list is still there, below
    assert home.text.index("Your sessions") < home.text.index('id="start"')
