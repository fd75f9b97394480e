"""The cluster in a box: idempotent, by pid files, and a real GPU cluster."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.integration


def test_status_reports_every_daemon_and_node(portal, hpchub):
    result = hpchub("cluster", "status", "--json", "--state-dir", str(portal.state_dir))
    status = json.loads(result.stdout)
    assert status["up"] is True
    assert set(status["daemons"]) >= {"munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd-gpu01", "slurmd-cpu01"}
    assert set(status["nodes"]) == {"gpu01", "gpu02", "gpu03", "cpu01"}


def test_second_up_changes_nothing_and_says_what_runs(portal, hpchub):
    before = json.loads(hpchub("cluster", "status", "--json", "--state-dir", str(portal.state_dir)).stdout)
    result = hpchub("cluster", "up", "--state-dir", str(portal.state_dir))
    assert result.stdout.count("already running") == 8, result.stdout
    after = json.loads(hpchub("cluster", "status", "--json", "--state-dir", str(portal.state_dir)).stdout)
    assert {k: v["pid"] for k, v in before["daemons"].items()} == {k: v["pid"] for k, v in after["daemons"].items()}


def test_env_lets_anyone_run_slurm_commands(portal, hpchub):
    line = hpchub("cluster", "env", "--state-dir", str(portal.state_dir)).stdout
    assert line.startswith("export SLURM_CONF=")
    out = subprocess.run(
        ["bash", "-c", f'{line}\nsinfo --noheader --format="%P %G"'], capture_output=True, text=True, check=True
    ).stdout
    assert "gpu* gpu:h200:4" in out and "gpu* gpu:a100:4" in out and "cpu (null)" in out


def test_partitions_bill_gpus_by_type(portal):
    gpu = portal.slurm("scontrol", "show", "partition", "gpu")
    assert "TRESBillingWeights=GRES/gpu:a100=1,GRES/gpu:h200=2" in gpu  # Slurm sorts them
    assert "MaxTime=08:00:00" in gpu
    assert "MaxTime=00:30:00" in portal.slurm("scontrol", "show", "partition", "debug")
    assert "TRESBillingWeights=CPU=0" in portal.slurm("scontrol", "show", "partition", "cpu")


def test_gpu_job_sees_its_emulated_gpus(portal, tmp_path):
    output = f"/tmp/hpchub-gres-test-{os.getpid()}.out"
    env = dict(os.environ, SLURM_CONF=portal.slurm_conf)
    job_id = subprocess.run(
        [
            "sudo",
            "-n",
            "-u",
            "alice",
            "--preserve-env=SLURM_CONF",
            "sbatch",
            "--parsable",
            "--account=vision-lab",
            "--gres=gpu:h200:2",
            "--time=5",
            f"--output={output}",
            "--wrap",
            "echo CUDA=$CUDA_VISIBLE_DEVICES ACCOUNT=$SLURM_JOB_ACCOUNT",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/tmp",
    ).stdout.strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(output) and "CUDA=" in open(output).read():
            break
        time.sleep(0.5)
    text = open(output).read()
    os.unlink(output)
    assert "CUDA=0,1 ACCOUNT=vision-lab" in text, (job_id, text)


def test_cancel_all_jobs_leaves_no_job_step_behind(portal):
    """`hpchub cluster down` cancels every job first, so no slurmstepd outlives the cluster."""
    from hub.demo.cluster.manager import Cluster, load_settings

    env = dict(os.environ, SLURM_CONF=portal.slurm_conf)
    job_id = subprocess.run(
        [
            "sudo",
            "-n",
            "-u",
            "alice",
            "--preserve-env=SLURM_CONF",
            "sbatch",
            "--parsable",
            "--account=vision-lab",
            "--partition=cpu",
            "--time=5",
            "--output=/dev/null",
            "--wrap",
            "sleep 300",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/tmp",
    ).stdout.strip()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and portal.jobs().get(job_id, {}).get("state") != "RUNNING":
        time.sleep(0.5)
    messages = []
    Cluster(load_settings(str(portal.state_dir)), say=messages.append).cancel_all_jobs()
    assert job_id not in portal.jobs()
    assert messages and messages[0].startswith("jobs: cancelled")
