"""The idle stop through the real hub, proxy and cluster: the session's own extension reports
what it does to the hub (hpchub_notebook/activity.py), the reconciler's pass (``--stop-idle-after``) reads
the reports, warns
at half the timeout and stops at the timeout with the reason on the user's home page (while
an open tab's polls reach it: not use), and a session whose kernel runs a long silent cell
is never stopped.

The hub's reconcile service is paused; the test runs its own passes with the service's
token (``delete:servers`` only, as the demo grants it) and a timeout of seconds.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
import uuid
from datetime import datetime, timezone

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("hub_reconciler_paused")]

OPTIONS = {"project": "vision-lab", "partition": "gpu", "gpu_type": "h200", "gpus": 1, "hours": 1,
           "environment": "default"}  # fmt: skip
IDLE, BUSY = "idlecell", "longcell"
STOP_AFTER_SECONDS = 15


@pytest.fixture
def reconcile_env(portal, monkeypatch):
    """What the hub's reconcile service has in its environment (hub/demo/portal.py)."""
    demo = json.loads((portal.state_dir / "demo.json").read_text())
    monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{demo['ports']['hub_api']}/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", (portal.state_dir / "hub" / "reconcile_token").read_text().strip())


@pytest.fixture
def two_sessions(portal):
    """bob's servers IDLE and BUSY, running on vision-lab; stopped at the end."""
    try:
        for name in (IDLE, BUSY):
            response = portal.session().post(portal.spawn_path("bob", name), json={"user_options": OPTIONS},
                                             timeout=120)  # fmt: skip
            assert response.status_code in (201, 202), response.text
        for name in (IDLE, BUSY):
            portal.wait_ready("bob", name)
        yield
    finally:
        for name in (IDLE, BUSY):
            portal.session().delete(portal.spawn_path("bob", name), timeout=60)
        for name in (IDLE, BUSY):
            portal.wait_stopped("bob", name)


def activity(portal, name: str) -> dict:
    response = portal.session().get(portal.server_url("bob", name) + "api/hpchub/activity", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def open_tab_polls(portal, name: str) -> None:
    """What JupyterLab in an open tab asks every few seconds."""
    for path in ("api/kernels", "api/sessions", "api/terminals", "api/contents?content=1"):
        assert portal.session().get(portal.server_url("bob", name) + path, timeout=30).status_code == 200, path


def idle_seconds(answer: dict) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(answer["last_activity"])).total_seconds()


async def _run_long_cell(portal, name: str) -> None:
    """Start a kernel and a cell that sleeps without output; return once the kernel says busy."""
    base = portal.server_url("bob", name)
    headers = {"Authorization": f"token {portal.token}"}
    kernel = portal.session().post(base + "api/kernels", json={}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    url = base.replace("http://", "ws://") + f"api/kernels/{kernel.json()['id']}/channels"
    socket = await websocket_connect(HTTPRequest(url, headers=headers))
    msg_id = uuid.uuid4().hex
    await socket.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "bob", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3", "date": datetime.now(timezone.utc).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": "import time\ntime.sleep(900)", "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))  # fmt: skip
    try:
        while True:
            message = json.loads(await asyncio.wait_for(socket.read_message(), 60))
            if (
                message["msg_type"] == "status"
                and message["parent_header"].get("msg_id") == msg_id
                and message["content"]["execution_state"] == "busy"
            ):
                return
    finally:
        socket.close()


def idle_pass(portal, hpchub, minutes: float) -> list[str]:
    result = hpchub("reconcile", "--db-url", portal.ledger_url, "--slurm-conf", portal.slurm_conf,
                    "--stop-idle-after", f"{minutes:.4f}", check=False)  # fmt: skip
    assert result.returncode == 0 and "--stop-idle-after" not in result.stderr, result
    return [line for line in result.stdout.splitlines() if f"bob/{IDLE} " in line or f"bob/{BUSY} " in line]


def home_page(portal) -> str:
    _session, home = portal.login("bob@uni.example", "bob-demo")
    assert home.status_code == 200
    return html.unescape(home.text)


def test_an_idle_session_is_warned_then_stopped_and_a_long_silent_cell_is_not(
    portal, hpchub, reconcile_env, two_sessions
):
    asyncio.run(_run_long_cell(portal, BUSY))
    # the session pushed it to the hub itself (within seconds of the cell's start)
    portal.wait_activity_report("bob", BUSY, accept=lambda report: report.activity.kernels_busy == 1, timeout=30)
    busy = activity(portal, BUSY)
    assert (busy["kernels"], busy["kernels_busy"], busy["gpu_utilization_percent"]) == (1, 1, None)  # emulated GPU
    # both sit without user activity for longer than the stop's timeout (the busy one's cell runs on),
    # while an open JupyterLab tab polls the idle one: that is not use
    while min(idle_seconds(activity(portal, IDLE)), idle_seconds(activity(portal, BUSY))) <= STOP_AFTER_SECONDS:
        open_tab_polls(portal, IDLE)
        time.sleep(1)
    quiet = activity(portal, IDLE)
    assert (quiet["kernels"], quiet["kernels_busy"], quiet["terminals_busy"]) == (0, 0, 0)

    # a timeout of just under twice the idle time so far q: past half at once, and the end only if
    # the pass took another ~q (15 s) before it asked: a warning
    lines = idle_pass(portal, hpchub, minutes=1.98 * idle_seconds(quiet) / 60)
    assert len(lines) == 1 and f"bob/{IDLE}" in lines[0] and "idle: this session stops at" in lines[0], lines
    page = home_page(portal)
    assert "hpchub-idle-notice" in page and "unless used (idle since" in page

    # the site's stop off (0) and no course setting of vision-lab's: this pass asks, warns and stops no one
    assert idle_pass(portal, hpchub, minutes=0) == []

    lines = idle_pass(portal, hpchub, minutes=STOP_AFTER_SECONDS / 60)
    assert len(lines) == 1 and f"stopped bob/{IDLE}" in lines[0], lines
    portal.wait_stopped("bob", IDLE)
    assert portal.server("bob", BUSY)["ready"]
    assert activity(portal, BUSY)["kernels_busy"] == 1
    assert (
        "Your server idlecell in vision-lab was stopped: idle for 0.25 min (no cell, terminal or GPU use)."
        in home_page(portal)
    )
