"""The scale benchmark's private world (``benchmarks/scale.py``): a bench-profile cluster,
bench users, and two hubs on the same cluster, ours and stock batchspawner's.

Everything lives in one state directory (default ``/var/lib/hpchub-bench-scale``) and runs
on free ports; every daemon is stopped by its pid file (:func:`teardown`), also after a
failure. Layout of the state directory:

* the cluster (``hub.demo.cluster``, profile ``bench``: four nodes of 64 h200 GPUs) at its root;
* ours: ``hub/``, ``run/``, ``log/`` (the demo's layout, :class:`hub.demo.portal.Demo`), configured
  by ``hub.demo.config.configure_demo`` plus the bench overrides below;
* stock: ``stock/`` with its own proxy and ``batchspawner.SlurmSpawner`` configuration;
* ``wrap-ours/`` and ``wrap-stock/``: one script per Slurm command that logs one line per
  call (start, end, exit code, command) to ``calls.log`` and runs the real binary. Each hub
  calls its own wrappers by absolute path (ours through ``SlurmGPUSpawner.slurm_bin_dir``,
  stock through its ``batch_*_cmd`` templates), so a call made through ``sudo -u USER`` is
  counted too (sudo's ``secure_path`` would skip a wrapper that is only first on PATH);
* ``standin/``: the single-user stand-in (``benchmarks/standin.py``) and its two launcher
  scripts, world-readable for the job users.

Both hubs use JupyterHub's DummyAuthenticator (the benchmark compares spawners, not logins;
no identity provider runs) and a service ``hpchub-bench`` whose token has ``admin:users``,
``admin:servers``, ``access:servers`` and ``read:metrics``: they are demo-mode hubs on
loopback, started and stopped by the benchmark.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub.demo.cluster import config as cfg
from hub.demo.cluster.manager import Cluster, free_port, free_ports, load_settings
from hub.demo.cluster.procs import Daemon, stop_daemon
from hub.demo.portal import Demo, DemoPorts, DemoSettings, _secret_file, default_proxy_cmd
from hub.ledger import Ledger, upgrade

HERE = Path(__file__).resolve().parent
CLUSTER_NAME = "hpchub-bench"
ACCOUNT = "bench"  # the Slurm account and the ledger project of every bench user
USER_PREFIX = "bu"  # bench-only Unix users: bu0001, bu0002, ...
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "sacct", "scontrol", "sinfo", "sacctmgr")
SERVICE = "hpchub-bench"
BENCH_SCOPES = ["admin:users", "admin:servers", "access:servers", "read:metrics"]
STANDIN_ENVIRONMENT = "bench-standin"
GPU_TYPE = "h200"
HOURS = 1  # each session reserves 1 GPU-hour (ours: a ledger hold; both: --time=60)
PAGE_LIMIT = 5000  # JupyterHub's api_page_max_limit in both hubs: one GET lists every user


def user_name(index: int) -> str:
    """The bench user number ``index`` (1-based): ``bu0001``."""
    return f"{USER_PREFIX}{index:04d}"


# --- users and accounts ----------------------------------------------------------------------------


def ensure_unix_users(count: int, say: Callable[[str], None]) -> list[str]:
    """Unix users bu0001..buNNNN with home directories (idempotent); the jobs run as them."""
    names = [user_name(i) for i in range(1, count + 1)]
    created = 0
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment",
                            "hpchub scale benchmark user", name], check=True, capture_output=True)  # fmt: skip
            created += 1
    say(f"unix users: {count} bench users ({created} created)")
    return names


def ensure_slurm_associations(cluster: Cluster, users: list[str], say: Callable[[str], None]) -> None:
    """The account ``bench`` and one association per bench user (idempotent, few sacctmgr calls)."""
    existing = cluster.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations",
                             f"cluster={CLUSTER_NAME}", "format=Account,User").stdout  # fmt: skip
    pairs = {tuple(line.split("|")[:2]) for line in existing.splitlines() if "|" in line}
    if not any(account == ACCOUNT for account, _ in pairs):
        cluster.slurm("sacctmgr", "-i", "add", "account", ACCOUNT, f"cluster={CLUSTER_NAME}",
                      "description=scale benchmark", "organization=hpchub-bench")  # fmt: skip
    missing = [u for u in users if (ACCOUNT, u) not in pairs]
    for start in range(0, len(missing), 100):
        chunk = missing[start : start + 100]
        cluster.slurm("sacctmgr", "-i", "add", "user", ",".join(chunk), f"account={ACCOUNT}",
                      f"cluster={CLUSTER_NAME}", timeout=120)  # fmt: skip
    say(f"slurm: account {ACCOUNT} with {len(users)} user associations ({len(missing)} added)")


def seed_ledger(url: str, users: list[str]) -> None:
    """Ours only: the project ``bench`` with a budget no benchmark exhausts, every user a member."""
    upgrade(url)
    with Ledger(url, cluster=CLUSTER_NAME) as ledger:
        if ACCOUNT not in {p.name for p in ledger.projects()}:
            ledger.create_project(ACCOUNT, account=ACCOUNT, kind="research", gpu_hours="1000000", who="bench")
        members = {m.user for m in ledger.figures(ACCOUNT).members}
        for user in users:
            if user not in members:
                ledger.add_member(ACCOUNT, user, role="member", who="bench")


# --- wrappers and the stand-in ---------------------------------------------------------------------


WRAPPER = """#!/bin/bash
# Written by benchmarks/scale.py: count one {command} call, then run the real one.
start=$EPOCHREALTIME
{real} "$@"
rc=$?
printf '%s %s %s {command}\\n' "$start" "$EPOCHREALTIME" "$rc" >> {log}
exit $rc
"""


def write_wrappers(directory: Path) -> Path:
    """One counting wrapper per Slurm command in ``directory``; returns the calls log (mode 0666:
    the commands run through sudo as the job users append to it too)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    log = directory / "calls.log"
    log.write_text("")
    os.chmod(log, 0o666)
    for command in SLURM_COMMANDS:
        real = shutil.which(command)
        if real is None:
            raise FileNotFoundError(f"{command} is not installed (run `make deps`)")
        path = directory / command
        path.write_text(WRAPPER.format(command=command, real=real, log=log))
        os.chmod(path, 0o755)
    return log


def write_standin(directory: Path) -> Path:
    """The stand-in server and its launchers (``bin/batchspawner-singleuser``,
    ``bin/jupyterhub-singleuser``), readable and runnable by every job user."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for path in (directory, bin_dir):
        os.chmod(path, 0o755)
    shutil.copyfile(HERE / "standin.py", directory / "standin.py")
    os.chmod(directory / "standin.py", 0o644)
    launcher = f'#!/bin/sh\nexec /usr/bin/python3 -I {directory / "standin.py"} "$@"\n'
    for name in ("batchspawner-singleuser", "jupyterhub-singleuser"):
        (bin_dir / name).write_text(launcher)
        os.chmod(bin_dir / name, 0o755)
    return directory


# --- the hubs --------------------------------------------------------------------------------------


@dataclass
class BenchHub:
    """One hub of the benchmark: its daemons (a :class:`Demo`), token and calls log."""

    label: str  # "ours" or "stock"
    demo: Demo
    token: str
    calls_log: Path
    options: dict  # the spawn request's user_options

    @property
    def url(self) -> str:
        return self.demo.settings.url

    @property
    def api(self) -> str:
        return f"{self.url}/hub/api"

    def rss_kb(self) -> int:
        """Resident memory of the hub process (VmRSS from /proc), in KiB."""
        pid = self.demo.hub.pid()
        if pid is None:
            raise RuntimeError(f"the {self.label} hub is not running")
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {pid}")

    def cpu_seconds(self) -> float:
        """CPU time the hub process has used so far, all threads, user and system (/proc/PID/stat)."""
        pid = self.demo.hub.pid()
        if pid is None:
            raise RuntimeError(f"the {self.label} hub is not running")
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def log_tail(self, chars: int = 3000) -> str:
        path = self.demo.settings.root / "log" / "jupyterhub.log"
        if not path.exists():
            return ""
        lines = [line for line in path.read_text(errors="replace").splitlines() if "log:192] 200 " not in line]
        return "\n".join(lines)[-chars:]  # without the benchmark's own successful requests


def _common_config(label: str, token: str) -> str:
    """Lines both hubs share: the same authenticator, the bench service, page size."""
    return f"""
# --- benchmarks/scale.py: the same in both bench hubs ({label}) ---
c.JupyterHub.authenticator_class = "dummy"  # the benchmark compares spawners; no identity provider
c.JupyterHub.services.append({{"name": {SERVICE!r}, "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{"name": {SERVICE!r}, "description": "scale benchmark driver (demo mode only)",
                                "scopes": {BENCH_SCOPES!r}, "services": [{SERVICE!r}]}})
c.JupyterHub.api_page_max_limit = {PAGE_LIMIT}
c.JupyterHub.cleanup_servers = False  # the benchmark stops its servers itself
"""


def _demo_settings(root: Path, interval: float) -> DemoSettings:
    ports = DemoPorts(hub_public=free_port(), hub_api=free_port(), proxy_api=free_port(), idp=free_port())
    return DemoSettings(state_dir=str(root), venv=sys.prefix, proxy_cmd=default_proxy_cmd(), ports=ports,
                        status_interval=interval)  # fmt: skip


def start_ours(state: Path, cluster: Cluster, users: list[str], standin: Path, interval: float, say) -> BenchHub:
    """Our hub: the demo's configuration (SlurmGPUSpawner, the ledger, our API), bench overrides."""
    demo = Demo(_demo_settings(state, interval), say=say)
    demo.settings.root.mkdir(parents=True, exist_ok=True)
    token = _secret_file(demo.settings.hub_dir / "bench_token")
    for name in ("service_token", "reconcile_token", "oidc_client_secret"):  # read by configure_demo
        _secret_file(demo.settings.hub_dir / name)
    config_path = demo.write_hub_config()
    with open(demo.settings.hub_dir / "catalog.toml", "a") as catalogue:
        catalogue.write(f"""
[[environment]]
id = "{STANDIN_ENVIRONMENT}"
name = "Scale benchmark stand-in"
description = "a minimal single-user server (benchmarks/standin.py)"
kind = "venv"
path = "{standin}"
gpu = true
default = false
""")
    seed_ledger(demo.ledger_url, users)
    calls_log = write_wrappers(state / "wrap-ours")
    with open(config_path, "a") as config:
        config.write(_common_config("ours", token))
        config.write(f"c.SlurmGPUSpawner.slurm_bin_dir = {str(calls_log.parent)!r}\n")
    demo.start_proxy(demo.base_env())
    demo.start_hub(demo.base_env(), config_path)
    options = {"project": ACCOUNT, "partition": "gpu", "gpu_type": GPU_TYPE, "gpus": 1, "hours": HOURS,
               "environment": STANDIN_ENVIRONMENT}  # fmt: skip
    return BenchHub("ours", demo, token, calls_log, options)


def start_stock(state: Path, cluster: Cluster, standin: Path, interval: float, say) -> BenchHub:
    """Stock batchspawner.SlurmSpawner: its defaults, the same job shape, the same stand-in."""
    root = state / "stock"
    demo = Demo(_demo_settings(root, interval), say=say)
    s = demo.settings
    s.hub_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(s.hub_dir, 0o700)
    token = _secret_file(s.hub_dir / "bench_token")
    proxy_token = _secret_file(s.hub_dir / "proxy_token")
    calls_log = write_wrappers(state / "wrap-stock")
    wrap = calls_log.parent
    config_path = s.hub_dir / "jupyterhub_config.py"
    config_path.write_text(
        f"""# Written by benchmarks/scale.py: stock batchspawner.SlurmSpawner on the bench cluster.
from batchspawner import SlurmSpawner
from batchspawner.api import BatchSpawnerAPIHandler
from jupyterhub.apihandlers import default_handlers

# JupyterHub imports every registered spawner at start, and importing hpchub's replaces
# batchspawner's /hub/api/batchspawner handler with its safe one in any hub of this venv.
# Put batchspawner's own handler back: this hub is stock.
default_handlers[:] = [(route, BatchSpawnerAPIHandler if route == "/api/batchspawner" else handler)
                       for route, handler in default_handlers]

c.JupyterHub.bind_url = "http://127.0.0.1:{s.ports.hub_public}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{s.ports.hub_api}"
c.JupyterHub.hub_connect_url = "http://127.0.0.1:{s.ports.hub_api}"
c.JupyterHub.db_url = "sqlite:///{s.hub_dir / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = "{s.hub_dir / "jupyterhub_cookie_secret"}"
c.JupyterHub.pid_file = "{s.root / "run" / "jupyterhub.real.pid"}"
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{s.ports.proxy_api}"
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.JupyterHub.cleanup_proxy = False
c.JupyterHub.services = []
c.JupyterHub.load_roles = []

c.JupyterHub.spawner_class = SlurmSpawner
# Only the command paths change (to the counting wrappers); the commands are the defaults.
c.SlurmSpawner.batch_submit_cmd = SlurmSpawner.batch_submit_cmd.default_value.replace("sbatch", "{wrap}/sbatch", 1)
c.SlurmSpawner.batch_query_cmd = SlurmSpawner.batch_query_cmd.default_value.replace("squeue", "{wrap}/squeue", 1)
c.SlurmSpawner.batch_cancel_cmd = SlurmSpawner.batch_cancel_cmd.default_value.replace("scancel", "{wrap}/scancel", 1)
# The same job as ours: partition gpu, one h200, {HOURS} h, the bench account.
c.SlurmSpawner.req_partition = "gpu"
c.SlurmSpawner.req_gres = "gpu:{GPU_TYPE}:1"
c.SlurmSpawner.req_runtime = "{HOURS * 60}"
c.SlurmSpawner.req_account = "{ACCOUNT}"
c.SlurmSpawner.batchspawner_singleuser_cmd = "{standin / "bin" / "batchspawner-singleuser"}"
c.SlurmSpawner.cmd = ["{standin / "bin" / "jupyterhub-singleuser"}"]
# Slurm's node names (gpu01...) do not resolve on the cluster in a box: every node is 127.0.0.1.
c.SlurmSpawner.state_exechost_exp = "127.0.0.1"
# sbatch runs with the spawner's environment only: pass the cluster's slurm.conf on.
c.Spawner.env_keep = ["PATH", "LANG", "SLURM_CONF"]
c.Spawner.environment = {{"LANG": "C.UTF-8"}}
c.Spawner.poll_interval = {int(interval)}  # JupyterHub's default is 30
"""
        + _common_config("stock", token)
    )
    env = {**demo.base_env(), "SLURM_CONF": str(cluster.settings.slurm_conf)}
    demo.start_proxy(env)
    demo.start_hub(env, config_path)
    return BenchHub("stock", demo, token, calls_log, {})


# --- the cluster and teardown ----------------------------------------------------------------------


def start_cluster(state: Path, say) -> Cluster:
    """The bench-profile cluster at the state directory's root (its ports kept between runs)."""
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o755)  # the job users reach the stand-in and the wrappers through it
    settings = load_settings(str(state))
    if settings is not None and settings.profile != "bench":
        raise RuntimeError(f"{state} holds a cluster of profile {settings.profile!r}: choose another --state-dir")
    if settings is None:
        settings = cfg.ClusterSettings(state_dir=str(state), profile="bench", ports=free_ports(),
                                       cluster_name=CLUSTER_NAME)  # fmt: skip
    cluster = Cluster(settings, say=say)
    cluster.up()
    return cluster


def teardown(state: Path, say, *, cluster: bool = True) -> None:
    """Stop both hubs, both proxies and (``cluster``) the cluster by their pid files
    (nothing if not running)."""
    for root in (state / "stock", state):
        for name, program in (("jupyterhub", "jupyterhub"), ("proxy", "configurable-http-proxy")):
            daemon = Daemon(name, program, root / "run" / f"{name}.pid")
            if stop_daemon(daemon):
                say(f"{root.name}/{name}: stopped")
    settings = load_settings(str(state))
    if cluster and settings is not None:
        Cluster(settings, say=say).down()


def fresh_hub_state(state: Path) -> None:
    """Forget the previous run's hubs (their databases and configs); the cluster stays."""
    for path in (state / "hub", state / "stock", state / "wrap-ours", state / "wrap-stock"):
        if path.exists():
            shutil.rmtree(path)
    for path in (state / "run" / "jupyterhub.real.pid",):
        path.unlink(missing_ok=True)
