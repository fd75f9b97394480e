"""The notebook's budget meter in a real kernel of bob's server, checked against the ledger.

bob's server is started through the tests' service token (as in test_sessions.py); a kernel
is started through the single-user server's REST API with that token (``access:servers``)
and the code runs through the kernel's websocket (``websocket-client``, already installed
with jupyter_server). The meter in the kernel reads the session with the server's own token.
"""

from __future__ import annotations

import json
import uuid

import pytest
import websocket

pytestmark = pytest.mark.integration

CODE = """\
import json, time
from hpchub_notebook import BudgetMeter
m = BudgetMeter(refresh_seconds=1)
deadline = time.monotonic() + 30  # two refreshes from the thread: ~2 s, longer on a loaded machine
while m.figures["refreshes"] < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
print("FIGURES=" + json.dumps(m.figures))
m.stop()
print("RUNNING=" + json.dumps(m.running))
"""


def _execute(portal, kernel_id: str, code: str, timeout: float = 60, user: str = "bob") -> str:
    """Run ``code`` in ``user``'s kernel through its websocket channels; its stdout (error: AssertionError)."""
    url = portal.server_url(user).replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(url, header=[f"Authorization: token {portal.token}"], timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "tests",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))  # fmt: skip
        out, replied, idle = [], None, False
        while replied is None or not idle:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError("\n".join(content["traceback"]))
            elif kind == "execute_reply":
                replied = content
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        assert replied["status"] == "ok", replied
        return "".join(out)
    finally:
        ws.close()


def test_the_meter_in_a_real_kernel_shows_the_ledgers_figures(portal, bob_job) -> None:
    api = f"{portal.server_url('bob')}api/kernels"
    session = portal.session()
    response = session.post(api, json={"name": "python3"}, timeout=60)
    assert response.status_code == 201, response.text
    kernel_id = response.json()["id"]
    try:
        out = _execute(portal, kernel_id, CODE)
        remaining = portal.usage("vision-lab")["remaining_gpu_hours"]
    finally:
        session.delete(f"{api}/{kernel_id}", timeout=60)
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    figures = json.loads(lines["FIGURES"])
    assert figures["error"] is None and figures["refreshes"] >= 2, figures  # refreshed from the thread
    assert (figures["project"], figures["job_id"], figures["state"]) == ("vision-lab", bob_job, "running")
    assert figures["project_remaining_gpu_hours"] == pytest.approx(remaining, abs=0.01)
    assert figures["project_budget_gpu_hours"] == portal.usage("vision-lab")["budget_gpu_hours"]
    assert 0 <= figures["cost_so_far_gpu_hours"] <= 0.1
    assert 0 < figures["seconds_left"] <= 3600 and figures["time_left"].startswith("0:")
    assert figures["warning"] is (figures["project_remaining_gpu_hours"] < 0.05 * figures["project_budget_gpu_hours"])
    assert json.loads(lines["RUNNING"]) is False  # stop() ended the thread
