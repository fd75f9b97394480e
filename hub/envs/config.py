"""Where project spaces live and how environments are built: one configurable class.

Read by the spawner (JUPYTER_PATH, ``project:NAME``), the ``hpchub env`` commands and the
API, from the hub's configuration file (``c.HPCHubEnvironments.project_root = ...``).
"""

from __future__ import annotations

from traitlets import Bool, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from spawners.names import UNIX_ACCOUNT


class HPCHubEnvironments(Configurable):
    project_root = Unicode(
        "",
        help="PROJECT_ROOT: the directory holding each project's space (PROJECT_ROOT/P). Default '' "
        "(no project spaces: no project environments, nothing added to JUPYTER_PATH). "
        "Example: '/shared/projects'; the demo: '/var/lib/hpchub-demo/projects'.",
    ).tag(config=True)
    published_root = Unicode(
        "",
        help="PUBLISHED_ROOT: where admins' published environments are copied (world-readable) and listed "
        "(catalog.json); it is on every session's JUPYTER_PATH. Default '' (publishing off). "
        "Example: '/shared/published'; the demo: '/var/lib/hpchub-demo/published'.",
    ).tag(config=True)
    wheelhouse = Unicode(
        "",
        help="A directory of wheels that build jobs install from (pip --no-index --find-links): "
        "the only package source of a build. Default '' (env create refused). Example: '/shared/wheelhouse'.",
    ).tag(config=True)
    base_python = Unicode(
        "/usr/bin/python3.11",
        help="The Python that build jobs make venvs with (must exist on the build nodes). "
        "Default '/usr/bin/python3.11'.",
    ).tag(config=True)
    ipykernel_requirement = Unicode(
        "ipykernel==7.4.0",
        help="What every environment gets besides its spec so it can be a kernel (must be in the "
        "wheelhouse with its dependencies). Default 'ipykernel==7.4.0'.",
    ).tag(config=True)
    build_partition = Unicode("cpu", help="Slurm partition of build jobs (no GPUs). Default 'cpu'.").tag(config=True)
    build_time_minutes = Integer(
        30, help="Time limit of a build job in minutes, a multiple of 15. Default 30. Example: 60."
    ).tag(config=True)
    build_job_name = Unicode("hpchub-env-build", help="Slurm job name of build jobs. Default 'hpchub-env-build'.").tag(
        config=True
    )
    slurm_conf = Unicode(
        "",
        help="Deprecated: set c.SlurmCluster.slurm_conf. Still honoured: set, it wins for builds. slurm.conf for "
        "the build's sbatch/squeue (SLURM_CONF). Default '' ($SLURM_CONF, else the cluster's). "
        "Example: '/etc/slurm/slurm.conf'.",
    ).tag(config=True)
    manage_unix_groups = Bool(
        False,
        help="Create each project's Unix group hpc-P and set its members from the ledger (needs root; "
        "the demo). Default False: the site's identity management provides the groups.",
    ).tag(config=True)
    hub_account = Unicode(
        "",
        help="The hub's service account (User= of hpchub.service): with manage_unix_groups it is made a member "
        "of every project's group hpc-P, so the hub reads the spaces' envs/ and kernels/ (the spawn form's and "
        "the environments page's project environments). A site whose identity management makes the groups adds "
        "the account there instead. A process's groups are fixed when it starts: restart the hub after its account "
        "joins a new project's group. Default '' (none: the hub runs as root, the plain demo). Example: 'hpchub'.",
    ).tag(config=True)

    @validate("hub_account")
    def _valid_hub_account(self, proposal):
        value = proposal["value"]
        if value and (value == "root" or not UNIX_ACCOUNT.fullmatch(value)):
            raise TraitError(
                f"c.HPCHubEnvironments.hub_account: '' or a service account name "
                f"({UNIX_ACCOUNT.pattern}, not root), got {value!r}"
            )
        return value
