"""The batchspawner settings ``SlurmGPUSpawner`` inherits but does not use, and what to set instead.

``SlurmGPUSpawner`` subclasses batchspawner's ``SlurmSpawner`` for its protocol (the job's
port report, ``batchspawner-singleuser``), but it writes its own sbatch script from one
validated request (``script.py``), runs Slurm through its own client and watches jobs with
one shared ``squeue`` (``watcher.py``). batchspawner's request templates, command strings
and state regexes are therefore never read. A site that sets one (``req_memory`` is the
first a newcomer reaches for) would be silently ignored; instead the hub refuses to start
and names the setting and its replacement. None of them maps exactly onto one of ours
(``req_runtime`` is a template, ``default_hours`` a number of hours; ``req_partition`` a
fixed partition, ours a user's choice among the cluster's), so none is honoured.

The check reads the configuration sections of the spawner class and of every class it
inherits from (``c.SlurmSpawner.req_memory`` reaches ``SlurmGPUSpawner`` too), so it sees
a value even when it equals batchspawner's default. It runs when the authenticator starts
with the hub (``hub.auth.oidc``) and whenever a spawner is built.
"""

from __future__ import annotations

from collections.abc import Iterable

from traitlets.config import Config

EXTRA = "c.SlurmGPUSpawner.extra_sbatch"
OPTIONS = "the spawn options (form and API): project, partition, gpu_type, gpus, hours, environment"

# trait -> what to set instead
REFUSED_TRAITS: dict[str, str] = {
    "req_memory": f"{EXTRA} = ['--mem-per-gpu=16G'] (or '--mem=8G')",
    "req_nprocs": f"{EXTRA} = ['--cpus-per-gpu=4']",
    "req_ngpus": f"the spawn option gpus ({OPTIONS})",
    "req_gres": f"the spawn options gpu_type and gpus ({OPTIONS}); GPU types come from the partitions' GRES",
    "req_runtime": "the spawn option hours, and c.SlurmGPUSpawner.default_hours for requests that name none",
    "req_partition": "the spawn option partition (default: the cluster's default partition)",
    "req_queue": "the spawn option partition (default: the cluster's default partition)",
    "req_account": "the project's Slurm account in the ledger (hpchub project create NAME --account ACC)",
    "req_qos": f"{EXTRA} = ['--qos=normal']",
    "req_reservation": "a course's reservation (hpchub course create ... --reservation RES)",
    "req_cluster": "c.SlurmCluster.name",
    "req_host": f"{EXTRA} = ['--nodelist=gpu01']",
    "req_options": f"{EXTRA} (one trusted #SBATCH option per item)",
    "req_srun": "nothing: the job runs the server directly, without srun",
    "req_prologue": "a catalogue environment (images/catalog.toml) or Slurm's own Prolog",
    "req_epilogue": "Slurm's own Epilog",
    "req_keepvars_extra": "c.Spawner.env_keep or c.Spawner.environment",
    "batch_script": f"nothing: the script is rendered by hpchub (spawners/slurm/script.py); {EXTRA} adds directives",
    "batch_submit_cmd": "c.SlurmCluster.bin_dir (where sbatch is); the hub runs sbatch as the user with sudo -u",
    "batch_query_cmd": "nothing: one shared squeue watches every job (c.SlurmGPUSpawner.status_interval)",
    "batch_cancel_cmd": "c.SlurmCluster.bin_dir (where scancel is)",
    "exec_prefix": "nothing: the hub runs sbatch, squeue and scancel as the user with sudo -u (docs/operations.md)",
    "batchspawner_singleuser_cmd": "nothing: the environment's own jupyterhub-singleuser is started",
    "startup_poll_interval": "c.SlurmGPUSpawner.pending_status_interval",
    "state_pending_re": "nothing: job states come from squeue's own fields",
    "state_running_re": "nothing: job states come from squeue's own fields",
    "state_exechost_re": "nothing: the node comes from squeue's own fields",
    "state_exechost_exp": "nothing: the node's address comes from scontrol show node",
    "state_unknown_re": "nothing: job states come from squeue's own fields",
}


class RefusedSettingError(ValueError):
    """A batchspawner setting that hpchub's spawner would ignore is set."""


def refused_settings(config: Config, spawner_class: type) -> list[str]:
    """``["c.SlurmSpawner.req_memory is ...: set ... instead"]``, one line per refused setting
    found in the sections of ``spawner_class`` and its bases (empty: nothing refused)."""
    lines = []
    for section in _sections(spawner_class):
        if section not in config:
            continue
        for name in sorted(set(config[section]) & set(REFUSED_TRAITS)):
            lines.append(f"c.{section}.{name} is a batchspawner setting that hpchub's Slurm spawner does not use: "
                         f"set {REFUSED_TRAITS[name]} instead")  # fmt: skip
        if "apply_user_options" in config[section]:
            lines.append(APPLY_USER_OPTIONS_REFUSED.replace("c.Spawner.", f"c.{section}.", 1))
    return lines


def check_spawner_config(config: Config, spawner_class: type) -> None:
    """Raise :class:`RefusedSettingError` naming every refused setting (nothing for other spawners)."""
    if not getattr(spawner_class, "refuses_batchspawner_settings", False):
        return
    lines = refused_settings(config, spawner_class)
    if lines:
        raise RefusedSettingError("; ".join(lines))


APPLY_USER_OPTIONS_REFUSED = (
    "c.Spawner.apply_user_options is set, but hpchub's Slurm spawner validates the spawn options itself "
    "(spawners/slurm/options.py) and holds the budget there: set c.Spawner.pre_spawn_hook for anything to run "
    "before a spawn instead"
)


def check_apply_user_options(hook: object, own: object) -> None:
    """Raise :class:`RefusedSettingError` when a site's ``apply_user_options`` replaces the spawner's own
    hook (it would skip the validation and the budget hold)."""
    if hook is not own:
        raise RefusedSettingError(APPLY_USER_OPTIONS_REFUSED)


def _sections(spawner_class: type) -> Iterable[str]:
    return [cls.__name__ for cls in spawner_class.__mro__ if cls is not object]
