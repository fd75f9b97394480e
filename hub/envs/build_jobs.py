"""The build jobs in Slurm: the client builds are submitted with and which of them still run.

Builds use the hub's cluster (``c.SlurmCluster``), but their own ``c.HPCHubEnvironments.slurm_conf``
(else ``$SLURM_CONF``) wins, and a command may take 60 s: ``hpchub env`` runs outside the hub.
"""

from __future__ import annotations

import asyncio
import os

from hub.envs.config import HPCHubEnvironments
from spawners.slurm.client import SlurmClient, SlurmCommandError
from spawners.slurm.cluster import SlurmCluster
from spawners.slurm.parsers import parse_squeue

BUILD_COMMAND_TIMEOUT = 60  # seconds per Slurm command of a build


def build_client(settings: HPCHubEnvironments) -> SlurmClient:
    """The cluster's client for builds: their own slurm_conf (else $SLURM_CONF) wins."""
    slurm_conf = settings.slurm_conf or os.environ.get("SLURM_CONF")
    return SlurmCluster.from_config(settings.config, slurm_conf=slurm_conf).client(timeout=BUILD_COMMAND_TIMEOUT)


def active_jobs(settings: HPCHubEnvironments, job_ids: list[str]) -> dict[str, bool] | None:
    """job id -> still pending/running, from one squeue; None if Slurm did not answer."""
    if not job_ids:
        return {}
    try:
        statuses = parse_squeue(asyncio.run(build_client(settings).squeue(job_ids=job_ids)))
    except (SlurmCommandError, ValueError):
        return None
    return {job_id: job_id in statuses and statuses[job_id].state.is_active for job_id in job_ids}
