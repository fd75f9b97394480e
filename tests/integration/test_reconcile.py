"""``hpchub reconcile`` against the real cluster and the instance's ledger (no mocks): jobs
submitted with sbatch outside the portal are charged as sacct measured them, and the
project's budget is mirrored into Slurm, so outside sbatch is bounded too."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest

from hub.ledger import Ledger

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("hub_reconciler_paused")]

LIMIT_LINE = re.compile(
    r"^(?P<where>[a-z0-9/-]+): GrpTRESMins billing limit \S+ -> (?P<new>\S+) \(Slurm used\+running (?P<s>\d+)\)$"
)
H200_WEIGHT_MILLI = 1000
MGS_PER_GPU_HOUR = 3_600_000


def sbatch_as(portal, user: str, *args: str) -> str:
    """sbatch as ``user`` (outside the portal); returns the job id."""
    out = portal.slurm(
        "sudo", "-n", "-u", user, "--preserve-env=SLURM_CONF", "sbatch", "--parsable",
        "--chdir=/tmp", "--output=/dev/null", *args,
    )  # fmt: skip
    return out.strip().split(";")[0]


def sacct_row(portal, job_id: str) -> dict[str, str] | None:
    """The job's accounting record (None until slurmdbd has it)."""
    fields = ("JobID", "State", "ElapsedRaw", "AllocTRES")
    out = portal.slurm("sacct", "--noheader", "--parsable2", "-X", "-j", job_id, f"--format={','.join(fields)}")
    return dict(zip(fields, out.strip().split("|"), strict=True)) if out.strip() else None


def wait_for_state(portal, job_id: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = sacct_row(portal, job_id)
        if row is not None and row["State"].split(" ")[0] in states:
            return row
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not {states} after {timeout} s: {sacct_row(portal, job_id)}")


def reconcile(portal, hpchub, *args: str) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """One pass; returns its lines and {association: (new limit, S)} from the limit lines."""
    result = hpchub("reconcile", "--db-url", portal.ledger_url, "--slurm-conf", portal.slurm_conf, *args, check=False)
    assert (result.returncode, result.stderr) == (0, ""), result
    lines = result.stdout.splitlines()
    limits = {}
    for line in lines:
        match = LIMIT_LINE.match(line)
        if match and match["new"] != "none":
            limits[match["where"]] = (int(match["new"]), int(match["s"]))
    return lines, limits


def slurm_limit(portal, account: str, user: str = "") -> str:
    """The GrpTRESMins that slurmdbd holds for an association ("" without a limit)."""
    out = portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations", f"account={account}",
                       "format=Account,User,GrpTRESMins")  # fmt: skip
    for line in out.splitlines():
        acc, usr, limit = line.split("|")
        if (acc, usr) == (account, user):
            return limit
    raise AssertionError(f"no association {account}/{user}: {out}")


def expected_limit(portal, project: str, slurm_minutes: int, user: str | None = None) -> int:
    """The mirror's L from the ledger's exact figures: S + floor(120 x (limit - charges - running))."""
    with Ledger(portal.ledger_url) as ledger:
        figures = ledger.mirror_figures(project, user)
        outside = sum(job.reservation_mgs for job in ledger.outside_jobs(project) if user in (None, job.user))
    room = figures.limit_mgs - figures.charges_mgs - figures.running_reservations_mgs - outside
    return slurm_minutes + max(0, room * 2 // 60_000)


def charges_csv(portal, hpchub, project: str) -> list[dict[str, str]]:
    result = hpchub("charges", project, "--csv", "--db-url", portal.ledger_url)
    return list(csv.DictReader(io.StringIO(result.stdout)))


def usage(portal, hpchub, project: str) -> dict:
    return json.loads(hpchub("usage", project, "--json", "--db-url", portal.ledger_url).stdout)


def test_an_outside_sbatch_job_is_charged_as_sacct_measured_and_the_budget_mirrored(portal, hpchub):
    job_id = sbatch_as(portal, "alice", "--account=vision-lab", "--gres=gpu:h200:1", "--time=5", "--wrap", "sleep 3")
    row = wait_for_state(portal, job_id, ("COMPLETED",))
    assert "gres/gpu:h200=1" in row["AllocTRES"]
    time.sleep(6)  # past the mirror's margin for jobs that end while it reads Slurm
    assert not [j for j in portal.jobs().values() if j["account"] == "vision-lab" and j["state"] == "RUNNING"]
    # Let Slurm's limits drift (the hub's own reconciler may have set them already): our pass
    # must put them back, and its lines give the S it read.
    portal.slurm("sacctmgr", "-i", "modify", "account", "where", "name=vision-lab", "set", "GrpTRESMins=billing=1")
    portal.slurm(
        "sacctmgr", "-i", "modify", "user", "where", "name=bob", "account=vision-lab", "set", "GrpTRESMins=billing=1"
    )

    lines, limits = reconcile(portal, hpchub)
    elapsed = int(row["ElapsedRaw"])
    charge_mgs = elapsed * 1 * H200_WEIGHT_MILLI  # ElapsedRaw x GPUs x weight
    assert any(
        line.startswith(f"charged job {job_id} on vision-lab (alice): 1 x h200 x {elapsed} s") for line in lines
    ), lines

    [charge] = [c for c in charges_csv(portal, hpchub, "vision-lab") if c["job_id"] == job_id]
    assert (charge["user"], charge["gpu_type"], charge["gpus"], charge["source"], charge["kind"]) == (
        "alice", "h200", "1", "sacct", "final",
    )  # fmt: skip
    assert int(charge["elapsed_seconds"]) == elapsed
    assert charge["gpu_hours"] == f"{charge_mgs / MGS_PER_GPU_HOUR:.4f}"
    alice = next(m for m in usage(portal, hpchub, "vision-lab")["members"] if m["user"] == "alice")
    assert alice["used_gpu_hours"] >= round(charge_mgs / MGS_PER_GPU_HOUR, 4)
    with Ledger(portal.ledger_url) as ledger:
        assert next(c for c in ledger.charges("vision-lab") if c.job_id == job_id).weighted_mgs == charge_mgs

    # the account's GrpTRESMins billing limit is the formula's, in slurmdbd and slurmctld
    limit, slurm_minutes = limits["vision-lab"]
    assert limit == expected_limit(portal, "vision-lab", slurm_minutes)
    assert slurm_limit(portal, "vision-lab") == f"billing={limit}"
    bob_limit, bob_minutes = limits["vision-lab/bob"]  # bob's cap of 20 GPU-h
    assert bob_limit == expected_limit(portal, "vision-lab", bob_minutes, "bob")
    assert slurm_limit(portal, "vision-lab", "bob") == f"billing={bob_limit}"
    assert slurm_limit(portal, "vision-lab", "alice") == ""  # no cap, no limit

    # a re-run imports nothing twice
    before = charges_csv(portal, hpchub, "vision-lab")
    lines, _limits = reconcile(portal, hpchub)
    assert not [line for line in lines if line.startswith("charged")], lines
    assert charges_csv(portal, hpchub, "vision-lab") == before


def test_a_running_outside_job_holds_its_time_limit_until_it_ends(portal, hpchub):
    job_id = sbatch_as(portal, "alice", "--account=vision-lab", "--gres=gpu:h200:2", "--time=10", "--wrap", "sleep 300")
    wait_for_state(portal, job_id, ("RUNNING",))
    lines, limits = reconcile(portal, hpchub)
    assert f"outside job {job_id} on vision-lab (alice) running: holds 0.3333 GPU-h" in lines  # 2 x 10 min x 1.0
    alice = next(m for m in usage(portal, hpchub, "vision-lab")["members"] if m["user"] == "alice")
    assert 0.3 < alice["held_gpu_hours"] <= 0.3333
    # Slurm reserves 2 x 2 x 10 = 40 billing-minutes for it; the ledger subtracts its 1/3 GPU-h
    with Ledger(portal.ledger_url) as ledger:
        assert [job.job_id for job in ledger.outside_jobs("vision-lab")] == [job_id]
    if "vision-lab" in limits:  # S moved by the job's 40 run-minutes and the room by 40: often no change
        limit, slurm_minutes = limits["vision-lab"]
        assert limit == expected_limit(portal, "vision-lab", slurm_minutes)

    portal.slurm("scancel", job_id)
    row = wait_for_state(portal, job_id, ("CANCELLED",))
    time.sleep(6)
    lines, _limits = reconcile(portal, hpchub)
    assert any(
        line.startswith(f"charged job {job_id} on vision-lab (alice): 2 x h200 x {row['ElapsedRaw']} s")
        for line in lines
    )
    with Ledger(portal.ledger_url) as ledger:
        assert ledger.outside_jobs("vision-lab") == []
    alice = next(m for m in usage(portal, hpchub, "vision-lab")["members"] if m["user"] == "alice")
    assert alice["held_gpu_hours"] == 0.0


def test_the_mirror_bounds_sbatch_outside_the_portal(portal, hpchub):
    """tiny-lab has 0.25 GPU-h = 30 billing-minutes: erin's 1 x h200 x 20 min (40) is held by
    Slurm itself, 1 x h200 x 10 min (20) runs."""
    reconcile(portal, hpchub)
    assert slurm_limit(portal, "tiny-lab").startswith("billing=")
    too_big = sbatch_as(portal, "erin", "--account=tiny-lab", "--gres=gpu:h200:1", "--time=20", "--wrap", "sleep 30")
    fits = sbatch_as(portal, "erin", "--account=tiny-lab", "--gres=gpu:h200:1", "--time=10", "--wrap", "sleep 1")
    try:
        wait_for_state(portal, fits, ("COMPLETED",))
        deadline, reason = time.monotonic() + 30, ""
        while reason != "AssocGrpBillingMinutes" and time.monotonic() < deadline:
            time.sleep(0.5)
            reason = portal.slurm("squeue", "--noheader", "-j", too_big, "--format=%r").strip()
        assert (portal.jobs()[too_big]["state"], reason) == ("PENDING", "AssocGrpBillingMinutes")
    finally:
        portal.slurm("scancel", too_big, check=False)
