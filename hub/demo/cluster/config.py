"""Pure rendering of the demo cluster's configuration files.

A "cluster in a box": one slurmctld, one slurmdbd on MariaDB and several slurmd
on this host, each slurmd emulating one node (``slurmd -N NAME``) with typed,
emulated GPUs (character devices, so jobs get ``CUDA_VISIBLE_DEVICES``).

Nothing here touches the machine: :mod:`hub.demo.cluster.manager` writes what these
functions return and starts the daemons.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Per-GPU-minute Slurm billing units, by GPU type (whole numbers: Slurm keeps a
# job's billing as an integer and skips limits for a job billed 0).
DEFAULT_BILLING_WEIGHTS = {"h200": 2, "a100": 1}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    gpu_type: str | None
    gpus: int
    cpus: int = 16
    memory_mb: int = 64000


@dataclass(frozen=True)
class PartitionSpec:
    name: str
    nodes: tuple[str, ...]
    max_time: str  # Slurm time, e.g. "8:00:00"
    default: bool = False
    gpu_billing: bool = True  # False: CPU-only work is not charged


@dataclass(frozen=True)
class Profile:
    name: str
    nodes: tuple[NodeSpec, ...]
    partitions: tuple[PartitionSpec, ...]

    @property
    def gpu_types(self) -> list[str]:
        return sorted({n.gpu_type for n in self.nodes if n.gpu_type})


DEMO_PROFILE = Profile(
    name="demo",
    nodes=(
        NodeSpec("gpu01", "h200", 4),
        NodeSpec("gpu02", "h200", 4),
        NodeSpec("gpu03", "a100", 4),
        NodeSpec("cpu01", None, 0),
    ),
    partitions=(
        PartitionSpec("gpu", ("gpu01", "gpu02", "gpu03"), "8:00:00", default=True),
        PartitionSpec("debug", ("gpu03",), "30:00"),
        PartitionSpec("cpu", ("cpu01",), "4:00:00", gpu_billing=False),
    ),
)

BENCH_PROFILE = Profile(
    name="bench",
    nodes=tuple(NodeSpec(f"gpu{i:02d}", "h200", 64, cpus=256, memory_mb=1024000) for i in range(1, 5))
    + (NodeSpec("cpu01", None, 0),),
    partitions=(
        PartitionSpec("gpu", tuple(f"gpu{i:02d}" for i in range(1, 5)), "8:00:00", default=True),
        PartitionSpec("cpu", ("cpu01",), "4:00:00", gpu_billing=False),
    ),
)

PROFILES = {p.name: p for p in (DEMO_PROFILE, BENCH_PROFILE)}


@dataclass(frozen=True)
class Ports:
    slurmctld: int = 16817
    slurmdbd: int = 16819
    slurmd_base: int = 16830  # node i listens on slurmd_base + i
    mariadb: int = 13306

    def slurmd(self, index: int) -> int:
        return self.slurmd_base + index


@dataclass(frozen=True)
class ClusterSettings:
    """Everything that makes one cluster instance distinct from another."""

    state_dir: str
    cluster_name: str = "hpchub"
    profile: str = "demo"
    ports: Ports = field(default_factory=Ports)
    db_name: str = "slurm_acct_db"
    # The accounting database's password is not a setting: generated per install, it lives in
    # db_password_file (0600), never in the world-readable cluster.json (any local user could
    # otherwise rewrite the sacct records that charges come from).

    # --- paths (all under state_dir) ---
    @property
    def root(self) -> Path:
        return Path(self.state_dir)

    @property
    def etc(self) -> Path:
        return self.root / "slurm" / "etc"

    @property
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def munge_dir(self) -> Path:
        return self.root / "munge"

    @property
    def munge_socket(self) -> Path:
        return self.munge_dir / "munge.socket.2"

    @property
    def mariadb_dir(self) -> Path:
        return self.root / "mariadb"

    @property
    def mariadb_socket(self) -> Path:
        return self.run / "mariadb.sock"

    @property
    def dev_dir(self) -> Path:
        return self.root / "slurm" / "dev"

    @property
    def settings_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def db_password_file(self) -> Path:
        return self.root / "slurmdbd-storage.password"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ClusterSettings":
        data = json.loads(text)
        data.pop("db_password", None)  # written by earlier versions; the password now has its own file
        data["ports"] = Ports(**data["ports"])
        return cls(**data)

    @property
    def profile_spec(self) -> Profile:
        return PROFILES[self.profile]


def _billing_weights(weights: dict[str, int], gpu_types: list[str]) -> str:
    return ",".join(f"GRES/gpu:{t}={weights[t]}" for t in gpu_types if t in weights)


def render_slurm_conf(
    settings: ClusterSettings,
    *,
    controller_host: str,
    billing_weights: dict[str, int] | None = None,
) -> str:
    """slurm.conf for the whole cluster (all nodes on this host)."""
    profile = settings.profile_spec
    weights = billing_weights or DEFAULT_BILLING_WEIGHTS
    gpu_types = profile.gpu_types
    run, log, spool = settings.run, settings.log, settings.root / "slurm" / "spool"
    tres = ",".join(["gres/gpu"] + [f"gres/gpu:{t}" for t in gpu_types])
    lines = [
        "# Generated by `hpchub cluster up`: the hpchub demo cluster. Do not edit.",
        f"ClusterName={settings.cluster_name}",
        f"SlurmctldHost={controller_host}(127.0.0.1)",
        f"SlurmctldPort={settings.ports.slurmctld}",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"AuthInfo=socket={settings.munge_socket}",
        f"StateSaveLocation={spool}/ctld",
        f"SlurmdSpoolDir={spool}/%n",
        f"SlurmctldPidFile={run}/slurmctld.pid",
        f"SlurmdPidFile={run}/slurmd-%n.pid",
        f"SlurmctldLogFile={log}/slurmctld.log",
        f"SlurmdLogFile={log}/slurmd-%n.log",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "SlurmdParameters=config_overrides",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "SwitchType=switch/none",
        "JobAcctGatherType=jobacct_gather/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "GresTypes=gpu",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=bf_interval=1,bf_resolution=60",
        "MinJobAge=300",
        "KillWait=5",
        "InactiveLimit=0",
        "Waittime=0",
        # Accounting and limits (the portal mirrors budgets into GrpTRESMins).
        "AccountingStorageType=accounting_storage/slurmdbd",
        "AccountingStorageHost=127.0.0.1",
        f"AccountingStoragePort={settings.ports.slurmdbd}",
        # The connection to slurmdbd takes its munge socket from here, not AuthInfo.
        f"AccountingStoragePass={settings.munge_socket}",
        f"AccountingStorageTRES={tres}",
        "AccountingStorageEnforce=associations,limits,safe",
        "PriorityType=priority/multifactor",
        "PriorityDecayHalfLife=0",
        "PriorityUsageResetPeriod=NONE",
        "PriorityCalcPeriod=1",
        "PriorityWeightFairshare=1000",
        "PriorityWeightAge=100",
        "",
    ]
    for index, node in enumerate(profile.nodes):
        gres = f" Gres=gpu:{node.gpu_type}:{node.gpus}" if node.gpu_type else ""
        lines.append(
            f"NodeName={node.name} NodeHostname=localhost NodeAddr=127.0.0.1 "
            f"Port={settings.ports.slurmd(index)} CPUs={node.cpus} "
            f"RealMemory={node.memory_mb}{gres} State=UNKNOWN"
        )
    lines.append("")
    for partition in profile.partitions:
        nodes = [n for n in profile.nodes if n.name in partition.nodes]
        has_gpus = any(n.gpu_type for n in nodes)
        parts = [
            f"PartitionName={partition.name}",
            f"Nodes={','.join(partition.nodes)}",
            f"MaxTime={partition.max_time}",
            f"Default={'YES' if partition.default else 'NO'}",
            "State=UP",
        ]
        if has_gpus:
            node = nodes[0]
            per_gpu_cpus = max(1, node.cpus // max(node.gpus, 1))
            per_gpu_mem = node.memory_mb // max(node.gpus, 1)
            parts += [f"DefCpuPerGPU={per_gpu_cpus}", f"DefMemPerGPU={per_gpu_mem}"]
        else:
            parts.append("DefMemPerCPU=1000")
        if partition.gpu_billing and has_gpus:
            types = sorted({n.gpu_type for n in nodes if n.gpu_type})
            parts.append(f'TRESBillingWeights="{_billing_weights(weights, types)}"')
        else:
            parts.append('TRESBillingWeights="CPU=0"')
        lines.append(" ".join(parts))
    lines.append("")
    return "\n".join(lines)


def render_gres_conf(settings: ClusterSettings) -> str:
    """gres.conf: emulated GPUs as character devices under dev_dir."""
    lines = ["# Generated by `hpchub cluster up`.", "AutoDetect=off"]
    for node in settings.profile_spec.nodes:
        if node.gpu_type:
            last = node.gpus - 1
            files = (
                f"{settings.dev_dir}/{node.name}/nvidia[0-{last}]"
                if last
                else f"{settings.dev_dir}/{node.name}/nvidia0"
            )
            lines.append(f"NodeName={node.name} Name=gpu Type={node.gpu_type} File={files}")
    return "\n".join(lines) + "\n"


def render_slurmdbd_conf(settings: ClusterSettings, *, db_password: str) -> str:
    """slurmdbd.conf (mode 0600, owned by its SlurmUser root: it holds the database password)."""
    run, log = settings.run, settings.log
    return "\n".join(
        [
            "# Generated by `hpchub cluster up`.",
            f"AuthInfo=socket={settings.munge_socket}",
            "DbdHost=localhost",
            "DbdAddr=127.0.0.1",
            f"DbdPort={settings.ports.slurmdbd}",
            "SlurmUser=root",
            f"PidFile={run}/slurmdbd.pid",
            f"LogFile={log}/slurmdbd.log",
            "DebugLevel=info",
            "StorageType=accounting_storage/mysql",
            "StorageHost=127.0.0.1",
            f"StoragePort={settings.ports.mariadb}",
            "StorageUser=slurm",
            f"StoragePass={db_password}",
            f"StorageLoc={settings.db_name}",
            "",
        ]
    )


def render_cgroup_conf() -> str:
    # Not used by the plugins we select, but slurmd warns without it.
    return "CgroupPlugin=disabled\n"
