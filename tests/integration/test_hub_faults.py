"""Fault suite, the hub's side: kill -9 of the hub during a spawn and during a stop, orphaned
and forged jobs (the orphan rule), and a locked ledger database. Real cluster, real hub.

What must hold after each fault: no tagged Slurm job runs that the hub does not track (an
interrupted start is cancelled at restart; a job no session records is cancelled by the
reconciler after the grace, 20 s in the test portal); no hold is lost (every ledger session is
either holding for a running server or ended with its charge); no charge is lost or doubled
(after the reconciler's sacct import, a job has one final charge equal to sacct's figure).
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CLUSTER = "hpchubtest"  # the test portal's ClusterName
ORPHAN_GRACE = 20  # conftest: --orphan-grace 20
RECONCILE_EVERY = 3  # conftest: --reconcile-every 3
A100 = {"project": "vision-lab", "partition": "gpu", "gpu_type": "a100", "gpus": 1, "hours": 0.25}
A100_WEIGHT = 0.5


def _spawn(portal, user, name, options=A100, timeout=120):
    return portal.session().post(portal.spawn_path(user, name), json={"user_options": options}, timeout=timeout)


def _stop(portal, user, name=""):
    if portal.server(user, name) is None:
        return
    response = portal.session().delete(portal.spawn_path(user, name), timeout=60)
    assert response.status_code in (202, 204), response.text
    portal.wait_stopped(user, name)


def _tagged(portal, user, name):
    comment = f"hpchub:user={user},server={name}"
    return {job_id: job for job_id, job in portal.jobs().items() if job["comment"] == comment}


def _wait(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")


def _ledger(portal):
    from hub.ledger import Ledger

    return Ledger(portal.ledger_url, cluster=CLUSTER)


def _record(portal, job_id):
    with _ledger(portal) as ledger:
        return ledger.portal_records(CLUSTER, [job_id]).get(job_id)


def _saved_job_id(portal, user, name):
    """The job id in the server's state as the hub committed it to its own database."""
    database = sqlite3.connect(f"file:{portal.state_dir / 'hub' / 'jupyterhub.sqlite'}?mode=ro", uri=True, timeout=5)
    try:
        row = database.execute(
            "SELECT spawners.state FROM spawners JOIN users ON users.id = spawners.user_id "
            "WHERE users.name = ? AND spawners.name = ?",
            (user, name),
        ).fetchone()
    finally:
        database.close()
    return json.loads(row[0] or "{}").get("job_id") if row else None


def _held(portal):
    return portal.usage("vision-lab")["held_gpu_hours"]


def _kill_hub(portal):
    """kill -9: no handler runs, nothing is cleaned up."""
    pid = int((portal.state_dir / "run" / "jupyterhub.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), 30, f"hub {pid} gone")


def _zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def _restart_hub(portal, hpchub):
    hpchub("demo", "up", "--state-dir", str(portal.state_dir))


def _partition(portal, name, state):
    portal.slurm("scontrol", "update", f"PartitionName={name}", f"State={state}")


def _sacct(portal, job_id):
    out = portal.slurm("sacct", "--noheader", "--parsable2", "-X", "-j", job_id, "--format=State,ElapsedRaw,AllocTRES")
    state, elapsed, tres = out.strip().splitlines()[-1].split("|")
    return state, int(elapsed), tres


def _charges(portal, job_id):
    rows = csv.DictReader(io.StringIO(portal.ledger_cli("charges", "vision-lab", "--csv").stdout))
    return [row for row in rows if row["job_id"] == job_id]


def _assert_final_charge_matches_sacct(portal, job_id, weight=A100_WEIGHT, gpus=1):
    """The reconciler imported sacct's final charge once; it is what the ledger counts."""
    rows = _wait(
        lambda: [r for r in _charges(portal, job_id) if r["kind"] == "final"] and _charges(portal, job_id),
        60,
        f"the final charge of job {job_id}",
        interval=1,
    )
    finals = [row for row in rows if row["kind"] == "final"]
    assert len(finals) == 1 and len(rows) <= 2, rows  # the provisional one, if any, is replaced, never added
    _state, elapsed, _tres = _sacct(portal, job_id)
    assert float(finals[0]["gpu_hours"]) == pytest.approx(elapsed * gpus * weight / 3600, abs=1e-4)


def _stopped_banners(portal, user):
    import html
    import re

    _session, home = portal.login(f"{user}@uni.example", f"{user}-demo")
    return [html.unescape(text) for _level, text in re.findall(r'data-level="(\d+)">([^<]*)<', home.text)]


@pytest.fixture(autouse=True)
def _clean(portal):
    yield
    _partition(portal, "gpu", "UP")
    model = portal.session().get(f"{portal.api}/users/bob", timeout=30).json()
    for name in list(model.get("servers", {})):
        _stop(portal, "bob", name)


def test_hub_killed_while_a_server_starts_cancels_the_job_at_restart_and_releases_its_hold(portal, hpchub):
    held = _held(portal)
    _partition(portal, "gpu", "DOWN")  # the job pends: deterministically after sbatch, before ready
    response = _spawn(portal, "bob", "crash")
    assert response.status_code in (201, 202), response.text
    [job_id] = _wait(lambda: list(_tagged(portal, "bob", "crash")), 30, "bob/crash's job submitted")
    record = _wait(lambda: _record(portal, job_id), 10, f"job {job_id} recorded by the ledger")
    assert (record.user, record.server_name, record.ended_at) == ("bob", "crash", None)

    _kill_hub(portal)
    assert portal.jobs()[job_id]["state"] == "PENDING"  # the job outlives the hub
    _restart_hub(portal, hpchub)

    portal.wait_stopped("bob", "crash", timeout=60)  # JupyterHub cannot resume a start: stopped
    job = portal.jobs().get(job_id)
    assert job is None or job["state"] not in ("PENDING", "RUNNING"), job  # cancelled, not left behind
    assert _record(portal, job_id).ended_at is not None  # the session ended ...
    assert _held(portal) <= held + 1e-4  # ... and its hold is released (nothing more held than before)
    assert any(
        f"the hub restarted while this server was starting; Slurm job {job_id} was cancelled" in banner
        for banner in _stopped_banners(portal, "bob")
    ), _stopped_banners(portal, "bob")
    with _ledger(portal) as ledger:  # it was recorded: not an orphan
        assert job_id not in {orphan.job_id for orphan in ledger.orphan_jobs()}
    # it never ran: no GPU-hour charged (a zero provisional charge at most)
    assert all(float(row["gpu_hours"]) == 0 for row in _charges(portal, job_id))
    _partition(portal, "gpu", "UP")
    assert _spawn(portal, "bob", "crash").status_code in (201, 202)  # the server starts again
    portal.wait_ready("bob", "crash", timeout=120)


def test_hub_killed_between_sbatch_and_the_ledgers_record_loses_nothing(portal, hpchub):
    """Deterministic: once admission has committed, we hold the ledger's write lock, so the hub's
    record of the job id waits (busy timeout 5 s) after sbatch returned; then kill -9."""
    held = _held(portal)
    path = portal.ledger_url.removeprefix("sqlite:///")

    def admitted():
        return [s for s in watching.active_sessions("bob") if s.server_name == "norecord"]

    # one ledger for the polls (not one engine per poll): the window between admission and the
    # record of the job id (sbatch) is a few hundred ms, and the lock must be taken within it
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(1) as pool, _ledger(portal) as watching:
        request = pool.submit(_spawn, portal, "bob", "norecord")
        try:
            [session] = _wait(admitted, 30, "bob/norecord admitted", interval=0.02)
            holder.execute("BEGIN IMMEDIATE")
            [job_id] = _wait(
                lambda: list(_tagged(portal, "bob", "norecord")), 30, "bob/norecord's job submitted", interval=0.05
            )
            # the hub saves the job id in the server's state right after sbatch, then records it in
            # the ledger (which waits for our lock): kill it only once the state has it, or this is
            # the unrecorded-job case (the orphan rule, tested below), not this one
            _wait(
                lambda: _saved_job_id(portal, "bob", "norecord") == job_id,
                30,
                "the job id in the hub's state",
                interval=0.05,
            )
            assert _record(portal, job_id) is None  # sbatch returned; the ledger has not recorded it
            _kill_hub(portal)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        try:
            request.result()
        except Exception:  # noqa: BLE001 (the hub died under the request)
            pass
    _restart_hub(portal, hpchub)

    portal.wait_stopped("bob", "norecord", timeout=60)
    # the server's saved state knew the job: at restart the hub completed the ledger's record,
    # cancelled the job and ended the session (its hold released, what it ran charged)
    _wait(lambda: portal.jobs().get(job_id, {}).get("state") not in ("PENDING", "RUNNING"), 30, "job cancelled")
    with _ledger(portal) as ledger:
        info = ledger.session(session.id)
    assert info.state.value == "ended" and info.job_id == job_id
    # if the reconciler met the job running while the hub was down (it runs a moment: Jupyter
    # in it exits without a hub), it recorded an outside job; the hub's record ended that
    # (tests/unit/test_ledger_outside_jobs.py), or the job held twice until the next pass
    with _ledger(portal) as ledger:
        [outside] = [job for job in ledger.outside_jobs("vision-lab", running_only=False) if job.job_id == job_id] or [
            None
        ]
    assert outside is None or outside.ended_at is not None, (outside, info)  # (the session's end is the job's)
    assert _held(portal) <= held + 1e-4
    if _sacct(portal, job_id)[1] > 0:  # it ran a moment: sacct's charge, once
        _assert_final_charge_matches_sacct(portal, job_id)
    else:
        assert all(float(row["gpu_hours"]) == 0 for row in _charges(portal, job_id))
    with _ledger(portal) as ledger:  # recorded after all: not an orphan
        assert job_id not in {orphan.job_id for orphan in ledger.orphan_jobs()}


def test_hub_killed_during_a_stop_loses_and_doubles_nothing(portal, hpchub):
    held = _held(portal)
    assert _spawn(portal, "bob", "stopping").status_code in (201, 202)
    portal.wait_ready("bob", "stopping")
    [job_id] = _tagged(portal, "bob", "stopping")
    time.sleep(3)  # it runs a little: a charge worth comparing

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        request = pool.submit(lambda: portal.session().delete(portal.spawn_path("bob", "stopping"), timeout=60))
        # kill -9 the moment Slurm has the cancel, while the hub waits for the end and the charge
        _wait(
            lambda: portal.jobs().get(job_id, {}).get("state") != "RUNNING",
            30,
            f"job {job_id} cancelled",
            interval=0.05,
        )
        _kill_hub(portal)
        try:
            request.result()
        except Exception:  # noqa: BLE001 (the hub died under the request: either answer is fine)
            pass
    _restart_hub(portal, hpchub)

    portal.wait_stopped("bob", "stopping", timeout=60)
    _wait(lambda: _record(portal, job_id).ended_at is not None, 30, "the session ended")
    assert _held(portal) <= held + 1e-4  # no hold left behind
    _assert_final_charge_matches_sacct(portal, job_id)  # one charge, sacct's


def _sbatch_as(portal, user, comment, gres="gpu:a100:1"):
    argv = [
        "sudo",
        "-n",
        "-u",
        user,
        "env",
        f"SLURM_CONF={portal.slurm_conf}",
        "sbatch",
        "--parsable",
        "--account=vision-lab",
        "--partition=gpu",
        f"--gres={gres}",
        "--time=10",
        "--job-name=hpchub-hpchubtest",
        f"--comment={comment}",
        "--chdir=/tmp",
        "--output=/dev/null",
        "--wrap=sleep 600",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, cwd="/tmp")
    return result.stdout.strip().split(";")[0]


def _metric(text, name, **labels):
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{" + wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_jobs_with_a_forged_or_unrecorded_tag_are_cancelled_reported_never_adopted_and_charged(portal):
    # bob forges alice's tag, and bob's own tag for a server he has not started (as if the hub
    # died between sbatch and its record): neither is in any portal session.
    forged = _sbatch_as(portal, "bob", "hpchub:user=alice,server=")
    unrecorded = _sbatch_as(portal, "bob", "hpchub:user=bob,server=ghost")
    submitted = time.monotonic()
    _wait(
        lambda: all(portal.jobs().get(j, {}).get("state") == "RUNNING" for j in (forged, unrecorded)),
        30,
        "both jobs running",
    )

    def gone(job_id):
        return portal.jobs().get(job_id, {}).get("state") not in ("RUNNING", "PENDING")

    _wait(
        lambda: gone(forged) and gone(unrecorded),
        ORPHAN_GRACE + 4 * RECONCILE_EVERY + 30,
        "orphans cancelled",
        interval=1,
    )
    assert time.monotonic() - submitted >= ORPHAN_GRACE - 2  # not before the grace
    # never adopted: no server appeared for alice or bob
    assert portal.server("alice") is None and portal.server("bob", "ghost") is None
    # reported: the reconciler's log, the ledger, the metric
    lines = [
        f"cancelled orphan job {job_id} on vision-lab (bob), tagged {tag!r}: no portal session records it"
        for job_id, tag in ((forged, "hpchub:user=alice,server="), (unrecorded, "hpchub:user=bob,server=ghost"))
    ]
    log = portal.state_dir / "log" / "reconcile.log"  # a pass prints its lines when it ends
    _wait(lambda: all(line in log.read_text() for line in lines), 60, "the reconciler's report", interval=1)
    with _ledger(portal) as ledger:
        noted = {orphan.job_id: orphan for orphan in ledger.orphan_jobs("vision-lab")}
    assert {forged, unrecorded} <= set(noted) and noted[forged].user == "bob"
    admin, _home = portal.login("admin@uni.example", "admin-demo")
    text = admin.get(f"{portal.url}/hub/metrics", timeout=30).text
    assert _metric(text, "hpchub_orphan_jobs_cancelled_total", project="vision-lab") >= 2
    # charged as outside jobs: sacct's final charge, no GPU-hour lost
    for job_id in (forged, unrecorded):
        _assert_final_charge_matches_sacct(portal, job_id)
        assert {row["source"] for row in _charges(portal, job_id)} == {"sacct"}


def test_a_locked_ledger_fails_a_spawn_clearly_writes_nothing_and_recovers(portal):
    """The hub waits 5 s for SQLite's lock (conftest: --ledger-busy-timeout 5); we hold it longer."""
    held = _held(portal)
    path = portal.ledger_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long writer would hold it
        response = _spawn(portal, "bob", "locked")
        assert response.status_code == 503, (response.status_code, response.text)
        message = response.json()["message"]
        assert message.startswith(
            "The GPU-hour ledger is not available right now (database is locked); "
            "nothing was submitted and nothing is held."
        ), message
        assert "Traceback" not in response.text
        assert _tagged(portal, "bob", "locked") == {}  # no Slurm job
        assert portal.server("bob", "locked") is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with _ledger(portal) as ledger:  # no session, no hold
        assert [s for s in ledger.active_sessions("bob") if s.server_name == "locked"] == []
    assert _held(portal) <= held + 1e-4  # (other modules' sessions may end meanwhile: never more)
    # and everything works again
    assert _spawn(portal, "bob", "locked").status_code in (201, 202)
    portal.wait_ready("bob", "locked", timeout=120)
    _stop(portal, "bob", "locked")
