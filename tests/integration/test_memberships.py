"""Slurm associations follow the ledger's memberships (``hpchub reconcile``, step 6), against the
real cluster: a member added with ``hpchub member add`` can sbatch after the next pass; a removed
member's next sbatch is refused at once, and the association goes once she has no jobs left."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("hub_reconciler_paused")]


def reconcile(portal, hpchub) -> list[str]:
    result = hpchub("reconcile", "--db-url", portal.ledger_url, "--slurm-conf", portal.slurm_conf, check=False)
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout.splitlines()


def sbatch_as(portal, user: str, *args: str) -> subprocess.CompletedProcess:
    """sbatch as ``user`` outside the portal (the returncode is the caller's to check)."""
    return subprocess.run(
        ["sudo", "-n", "-u", user, "--preserve-env=SLURM_CONF", "sbatch", "--parsable", "--chdir=/tmp",
         "--output=/dev/null", *args],
        env={"SLURM_CONF": portal.slurm_conf, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def association(portal, account: str, user: str) -> str | None:
    """slurmdbd's MaxSubmitJobs of the association ("" without a limit), None without one."""
    out = portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations", f"account={account}",
                       f"user={user}", "format=Account,User,MaxSubmitJobs")  # fmt: skip
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return next((limit for acc, usr, limit in rows if (acc, usr) == (account, user)), None)


def wait_for_slurmctld(portal, account: str, user: str, max_submit: str, timeout: float = 30) -> None:
    """Until slurmctld (not only slurmdbd) has the association's MaxSubmitJobs: ``0`` is shown
    as ``MaxSubmitJobs=0(USED)``, no limit (``""``) as ``MaxSubmitJobs=`` (22.05)."""
    wanted = re.compile(rf"MaxSubmitJobs={max_submit}\(" if max_submit else r"MaxSubmitJobs=(\s|$)")
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = portal.slurm("scontrol", "show", "assoc_mgr", f"accounts={account}", f"users={user}", "flags=assoc",
                           check=False)  # fmt: skip
        records = [record for record in out.split("ClusterName=") if f"UserName={user}(" in record]
        if records and all(wanted.search(record) for record in records):
            return
        time.sleep(0.5)
    raise AssertionError(f"slurmctld has no MaxSubmitJobs={max_submit} for {account}/{user}: {out}")


def job_state(portal, job_id: str) -> str:
    return portal.slurm("squeue", "--noheader", "-j", job_id, "--format=%T", check=False).strip()


def test_associations_follow_member_add_and_remove(portal, hpchub):
    assert association(portal, "vision-lab", "erin") is None  # the demo: erin is only in tiny-lab
    refused = sbatch_as(portal, "erin", "--account=vision-lab", "--partition=cpu", "--time=1", "--wrap", "true")
    assert refused.returncode != 0 and "Invalid account" in refused.stderr, refused

    portal.ledger_cli("member", "add", "vision-lab", "erin", "--role", "member")
    try:
        assert "vision-lab/erin: association added" in reconcile(portal, hpchub)
        assert association(portal, "vision-lab", "erin") == ""
        assert "vision-lab/erin" not in "\n".join(reconcile(portal, hpchub))  # nothing more to do

        # she can submit at once: a short job, and one that still runs when she is removed
        short = sbatch_as(portal, "erin", "--account=vision-lab", "--partition=cpu", "--time=1", "--wrap", "true")
        assert short.returncode == 0, short
        running = sbatch_as(portal, "erin", "--account=vision-lab", "--partition=cpu", "--time=5",
                            "--wrap", "sleep 300")  # fmt: skip
        assert running.returncode == 0, running
        running_id = running.stdout.strip().split(";")[0]
    finally:
        portal.ledger_cli("member", "remove", "vision-lab", "erin", check=False)

    try:
        lines = reconcile(portal, hpchub)
        assert "vision-lab/erin: new jobs blocked (membership ended)" in lines
        assert "vision-lab/erin: association removed" not in lines  # blocked first, removed in a later pass
        assert association(portal, "vision-lab", "erin") == "0"
        wait_for_slurmctld(portal, "vision-lab", "erin", "0")
        # Slurm 22.05 refuses the submission itself (MaxSubmitJobs is checked at submit time)
        blocked = sbatch_as(portal, "erin", "--account=vision-lab", "--partition=cpu", "--time=1", "--wrap", "true")
        assert blocked.returncode != 0, blocked
        assert "Job violates accounting/QOS policy" in blocked.stderr, blocked.stderr

        # her job still runs (or pends): the association stays
        assert job_state(portal, running_id) in ("RUNNING", "PENDING", "CONFIGURING")
        lines = reconcile(portal, hpchub)
        assert not [line for line in lines if line.startswith("vision-lab/erin")], lines
        assert association(portal, "vision-lab", "erin") == "0"
    finally:
        portal.slurm("scancel", running_id, check=False)

    deadline = time.monotonic() + 60
    while job_state(portal, running_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not job_state(portal, running_id)
    assert "vision-lab/erin: association removed" in reconcile(portal, hpchub)
    assert association(portal, "vision-lab", "erin") is None
    assert "vision-lab/erin" not in "\n".join(reconcile(portal, hpchub))


def test_a_re_added_member_is_unblocked(portal, hpchub):
    """bob leaves vision-lab and comes back before his association was removed: MaxSubmitJobs cleared."""
    portal.ledger_cli("member", "remove", "vision-lab", "bob")
    try:
        assert "vision-lab/bob: new jobs blocked (membership ended)" in reconcile(portal, hpchub)
        assert association(portal, "vision-lab", "bob") == "0"
    finally:
        portal.ledger_cli("member", "add", "vision-lab", "bob", "--role", "member", "--cap", "20")
    assert "vision-lab/bob: new jobs allowed again (member again)" in reconcile(portal, hpchub)
    assert association(portal, "vision-lab", "bob") == ""
    wait_for_slurmctld(portal, "vision-lab", "bob", "")
    job = sbatch_as(portal, "bob", "--account=vision-lab", "--partition=cpu", "--time=1", "--wrap", "true")
    assert job.returncode == 0, job
