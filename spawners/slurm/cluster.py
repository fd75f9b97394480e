"""The Slurm cluster the portal runs on: where its commands and configuration are, and the one
place a :class:`~spawners.slurm.client.SlurmClient` is made.

Rules kept here:

* Every part of the portal that talks to Slurm (the spawner and its watcher, the login's
  account check, environment builds, lab hours, the reconciler, the command line, the
  doctor) gets its client from :meth:`SlurmCluster.client`, so they all see the same
  ``slurm.conf``, binaries and timeout.
* A process builds its cluster with :meth:`SlurmCluster.from_config` from the hub's
  configuration (``c.SlurmCluster``), whoever it is: the hub, ``hpchub reconcile`` with
  ``--config``, ``hpchub doctor``.
* The older settings still set it where ``c.SlurmCluster`` does not
  (:data:`LEGACY_SETTINGS`): ``c.SlurmGPUSpawner.slurm_conf``, ``slurm_bin_dir`` and
  ``slurm_command_timeout``. A consumer's own older setting (``c.HPCHubOIDCAuthenticator.slurm_conf``,
  ``c.HPCHubEnvironments.slurm_conf``, ``--slurm-conf``) is passed by that consumer as an
  override, so it still wins for that consumer alone.
* This is the seam that several clusters will multiply: keep it to naming a cluster and
  making clients for it; what to ask Slurm lives in the client and the parsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets import Float, TraitError, Unicode, validate
from traitlets.config import Config, LoggingConfigurable

from spawners.slurm.client import SlurmClient, validate_cluster_name

# SlurmCluster trait -> the (section, name) settings that set it where c.SlurmCluster does not, first wins.
LEGACY_SETTINGS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "slurm_conf": (("SlurmGPUSpawner", "slurm_conf"),),
    "bin_dir": (("SlurmGPUSpawner", "slurm_bin_dir"),),
    "command_timeout": (("SlurmGPUSpawner", "slurm_command_timeout"),),
}


class SlurmCluster(LoggingConfigurable):
    """One Slurm cluster: its name, its configuration file, its commands; see the module docstring."""

    name = Unicode(
        "",
        help="The cluster's name as Slurm knows it (ClusterName in slurm.conf). Default '' (the one "
        "slurm_conf names). Example: 'hpchub'.",
    ).tag(config=True)
    slurm_conf = Unicode(
        "",
        help="Path of slurm.conf for every Slurm command (sets SLURM_CONF). Default '' (Slurm's own; the "
        "command line and environment builds also read $SLURM_CONF). Example: '/etc/slurm/slurm.conf'.",
    ).tag(config=True)
    bin_dir = Unicode(
        "",
        help="Directory holding sbatch, squeue, scancel, sacct, sinfo, sacctmgr, scontrol. Default '' "
        "(found on PATH). Example: '/opt/slurm/bin'.",
    ).tag(config=True)
    command_timeout = Float(
        30.0,
        help="Seconds a Slurm command may run before it is stopped and reported. Default 30. Example: 60.",
    ).tag(config=True)
    job_name_prefix = Unicode(
        "hpchub",
        help="Start of the Slurm job name of the portal's jobs (the notebook servers are "
        "'<prefix>-jupyter' unless c.SlurmGPUSpawner.job_name says otherwise). Default 'hpchub'. "
        "Example: 'portal'.",
    ).tag(config=True)

    @validate("name")
    def _valid_name(self, proposal):
        value = proposal["value"]
        if value:
            try:
                validate_cluster_name(value)
            except ValueError as exc:
                raise TraitError(f"SlurmCluster.name: {exc}") from None
        return value

    @validate("command_timeout")
    def _valid_timeout(self, proposal):
        value = proposal["value"]
        if not value > 0:
            raise TraitError(f"SlurmCluster.command_timeout: must be more than 0 seconds, got {value:g}")
        return value

    @classmethod
    def from_config(cls, config: Config | None, **overrides: Any) -> SlurmCluster:
        """The cluster of ``config`` (``c.SlurmCluster``, else :data:`LEGACY_SETTINGS`), with
        ``overrides`` (trait -> value, where ``None`` and ``''`` leave the configured value; or
        ``parent``, the configurable it belongs to)."""
        config = config if config is not None else Config()
        own = config["SlurmCluster"] if "SlurmCluster" in config else {}
        settings: dict[str, Any] = {}
        for trait, sources in LEGACY_SETTINGS.items():
            if trait in own:
                continue
            for section, name in sources:
                value = config[section].get(name) if section in config else None
                if value not in (None, ""):
                    settings[trait] = value
                    break
        settings.update({trait: value for trait, value in overrides.items() if value not in (None, "")})
        return cls(config=config, **settings)

    def client(self, **overrides: Any) -> SlurmClient:
        """A client for this cluster; ``overrides`` are :class:`SlurmClient` arguments (e.g. ``runner``,
        ``log``, or a longer ``timeout`` for a slow caller)."""
        arguments: dict[str, Any] = {
            "slurm_conf": self.slurm_conf or None,
            "bin_dir": self.bin_dir,
            "timeout": self.command_timeout,
        }
        arguments.update(overrides)
        return SlurmClient(**arguments)

    @property
    def default_job_name(self) -> str:
        """The job name of the portal's notebook servers: ``<job_name_prefix>-jupyter``."""
        return f"{self.job_name_prefix}-jupyter"
