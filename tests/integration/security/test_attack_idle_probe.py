"""A student records every credential their own Jupyter server receives, while the reconciler
runs its passes with the idle stop on: no recorded token may be anything but the student's own.

The attack: any user controls their single-user server (``~/.jupyter/jupyter_server_config.py``
is Python run by it). A reconciler that *asked* each session what it does would send its own
token there, and that token may stop and open every user's server. The defence: the session
reports its activity to the hub with its own server token (push); the reconciler never sends a
request to a process a user controls.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.usefixtures("hub_reconciler_paused")

STUDENT = "carol"
OPTIONS = {"project": "cs101", "gpu_type": "a100", "gpus": 1, "hours": 0.25}
RECORD = ".hpchub-recorded-authorization"
# Run by the student's own server at its start: every request's Authorization header, to a file.
RECORDER = f"""
import os
import tornado.httputil

_record = os.path.expanduser("~/{RECORD}")
_init = tornado.httputil.HTTPServerRequest.__init__


def _recording_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    value = self.headers.get("Authorization") if self.headers is not None else None
    if value:
        with open(_record, "a") as handle:
            handle.write(value + "\\n")


tornado.httputil.HTTPServerRequest.__init__ = _recording_init
"""


def _as_student(*argv: str) -> None:
    subprocess.run(["runuser", "-u", STUDENT, "--", *argv], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def recording_session(portal):
    """carol's server, started with her recorder planted in her own Jupyter configuration."""
    home = Path(os.path.expanduser(f"~{STUDENT}"))
    config = home / ".jupyter" / "jupyter_server_config.py"
    record = home / RECORD
    assert not config.exists(), f"{config} exists already: not the tests' own"
    _as_student("mkdir", "-p", str(config.parent))
    subprocess.run(["runuser", "-u", STUDENT, "--", "tee", str(config)], input=RECORDER, text=True, check=True,
                   capture_output=True, timeout=30)  # fmt: skip
    _as_student("rm", "-f", str(record))
    try:
        response = portal.session().post(portal.spawn_path(STUDENT), json={"user_options": OPTIONS}, timeout=120)
        assert response.status_code in (201, 202), response.text
        portal.wait_ready(STUDENT)
        yield record
    finally:
        portal.session().delete(portal.spawn_path(STUDENT), timeout=60)
        portal.wait_stopped(STUDENT)
        config.unlink(missing_ok=True)
        record.unlink(missing_ok=True)


@pytest.fixture
def reconciler_env(portal, monkeypatch):
    """The reconciler's own token and environment, as the demo runs it (hub/demo/portal.py)."""
    demo = json.loads((portal.state_dir / "demo.json").read_text())
    monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{demo['ports']['hub_api']}/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", (portal.state_dir / "hub" / "reconcile_token").read_text().strip())
    monkeypatch.setenv("JUPYTERHUB_PUBLIC_URL", portal.url)


def reconcile_pass(portal, hpchub) -> None:
    """One pass of the reconciler with the idle stop on (30 min: nobody is stopped)."""
    result = hpchub("reconcile", "--db-url", portal.ledger_url, "--slurm-conf", portal.slurm_conf,
                    "--stop-idle-after", "30", check=False)  # fmt: skip
    assert result.returncode == 0, result


def token_owner(portal, authorization: str) -> dict:
    """Who a recorded credential is, and what it may do: the hub's own answer for it."""
    scheme, _, token = authorization.partition(" ")
    assert scheme.lower() in ("token", "bearer"), authorization[:20]
    answer = requests.get(f"{portal.api}/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_reconcilers_passes_hand_no_credential_to_a_students_server(
    portal, hpchub, reconciler_env, recording_session
):
    for _ in range(3):
        reconcile_pass(portal, hpchub)
    # the recorder works: the student's own server token, sent by the student, is recorded
    own = portal.server_token(STUDENT)
    assert requests.get(portal.server_url(STUDENT) + "api/status", headers={"Authorization": f"token {own}"},
                        timeout=30).status_code == 200  # fmt: skip
    recorded = [line for line in recording_session.read_text().splitlines() if line.strip()]
    assert recorded, "the recorder saw nothing"
    reconcile_token = (portal.state_dir / "hub" / "reconcile_token").read_text().strip()
    assert not any(reconcile_token in line for line in recorded), "the reconciler's token reached the student"
    for authorization in set(recorded):
        owner = token_owner(portal, authorization)
        assert (owner.get("kind"), owner.get("name")) == ("user", STUDENT), owner
        foreign = [scope for scope in owner.get("scopes", [])
                   if "!" not in scope or not (scope.endswith(f"!user={STUDENT}")
                                               or f"!server={STUDENT}/" in scope)]  # fmt: skip
        assert not [scope for scope in foreign if scope.startswith(("access:servers", "servers", "admin"))], owner


def test_a_session_reports_for_itself_only_and_nobody_reports_for_it(portal, recording_session):
    """The report endpoint: the student's own server token reports for her server (the extension
    already did, by itself); not for anyone else's, and no other token (the tests' service, the
    reconciler's) reports for hers; a malformed report is refused naming the field."""
    portal.wait_activity_report(STUDENT, timeout=30)  # the extension's first report comes ~1 s after the start
    own = {"Authorization": f"token {portal.server_token(STUDENT)}"}
    url = f"{portal.api}/hpchub/v1/users/{STUDENT}/server/activity"
    report = {"kernels": 0, "kernels_busy": 1, "terminals": 0, "terminals_busy": 0,
              "last_activity": datetime.now(timezone.utc).isoformat(), "gpu_utilization_percent": None}  # fmt: skip
    bad = requests.post(url, json={**report, "kernels_busy": -1}, headers=own, timeout=30)
    assert bad.status_code == 400 and "kernels_busy" in bad.json()["message"], bad.text
    assert requests.post(url, json=report, headers=own, timeout=30).status_code == 204
    assert portal.activity_report(STUDENT).activity.kernels_busy == 1
    # her token for someone else's server; other tokens for hers
    other = requests.post(f"{portal.api}/hpchub/v1/users/bob/server/activity", json=report, headers=own, timeout=30)
    assert other.status_code in (403, 404), other.text
    reconcile_token = (portal.state_dir / "hub" / "reconcile_token").read_text().strip()
    for token in (portal.token, reconcile_token):
        foreign = requests.post(url, json={**report, "kernels_busy": 3}, headers={"Authorization": f"token {token}"},
                                timeout=30)  # fmt: skip
        assert foreign.status_code in (403, 404), foreign.text
    assert portal.activity_report(STUDENT).activity.kernels_busy == 1
