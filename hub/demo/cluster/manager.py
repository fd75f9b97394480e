"""Bring the demo cluster up, report on it, and take it down: by pid files.

``up`` is idempotent: what already runs is left alone and reported. All state
lives under one directory (``ClusterSettings.state_dir``), never in the checkout.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hub.demo.cluster import config as cfg
from hub.demo.cluster import demo_data
from hub.demo.cluster.procs import Daemon, spawn_foreground, stop_daemon, wait_for

REQUIRED_PROGRAMS = {
    "munged": "munge",
    "mungekey": "munge",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "mariadb": "mariadb-client",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "slurmdbd": "slurmdbd",
    "sbatch": "slurm-client",
    "sudo": "sudo",
}
SBIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


class ClusterError(RuntimeError):
    """The demo cluster could not be brought up; the message says what to do."""


def which(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / program
        if candidate.exists():
            return str(candidate)
    return None


def missing_packages() -> list[str]:
    return sorted({pkg for prog, pkg in REQUIRED_PROGRAMS.items() if which(prog) is None})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports() -> cfg.Ports:
    """Ports for a private instance (tests): slurmd ports need a free run of 8."""
    for _ in range(50):
        base = free_port()
        if base + 8 < 65000 and all(_port_free(base + i) for i in range(8)):
            return cfg.Ports(slurmctld=free_port(), slurmdbd=free_port(), slurmd_base=base, mariadb=free_port())
    raise ClusterError("could not find free ports for the cluster")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Cluster:
    settings: cfg.ClusterSettings
    say: Callable[[str], None] = print

    # ----- daemons -----
    @property
    def munged(self) -> Daemon:
        return Daemon("munged", "munged", self.settings.run / "munged.pid")

    @property
    def mariadbd(self) -> Daemon:
        return Daemon("mariadbd", "mariadbd", self.settings.run / "mariadbd.pid")

    @property
    def slurmdbd(self) -> Daemon:
        return Daemon("slurmdbd", "slurmdbd", self.settings.run / "slurmdbd.pid")

    @property
    def slurmctld(self) -> Daemon:
        return Daemon("slurmctld", "slurmctld", self.settings.run / "slurmctld.pid")

    def slurmd(self, node: str) -> Daemon:
        return Daemon(f"slurmd-{node}", "slurmd", self.settings.run / f"slurmd-{node}.pid")

    def daemons(self) -> list[Daemon]:
        nodes = [self.slurmd(n.name) for n in self.settings.profile_spec.nodes]
        return [self.munged, self.mariadbd, self.slurmdbd, self.slurmctld, *nodes]

    # ----- environment for Slurm commands -----
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.settings.slurm_conf)
        return env

    def slurm(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env(), capture_output=True, text=True, timeout=timeout, check=check)

    # ----- up -----
    def up(self) -> None:
        missing = missing_packages()
        if missing:
            raise ClusterError(
                "missing system packages: " + " ".join(missing) + " (run `make deps` or "
                "`apt-get install " + " ".join(missing) + "`)"
            )
        s = self.settings
        for directory in (s.root, s.etc, s.run, s.log, s.root / "slurm" / "spool"):
            directory.mkdir(parents=True, exist_ok=True)
        os.chmod(s.root, 0o755)
        s.settings_file.write_text(s.to_json() + "\n")
        changed = self._write_configs()
        if s.etc / "slurmdbd.conf" in changed and stop_daemon(self.slurmdbd):
            self.say("slurmdbd: stopped (its configuration changed)")  # e.g. the database password
        self._make_gpu_devices()
        self._start_munge()
        self._start_mariadb()
        self._start_slurmdbd()
        self._ensure_cluster_registered()
        demo_data.ensure_unix_users(self.say)
        demo_data.ensure_slurm_accounts(self.slurm, self.settings.cluster_name)
        self._start_slurmctld()
        self._start_slurmds()
        self._wait_nodes_idle()

    def db_password(self) -> str:
        """The accounting database's password: generated once per install, kept in a file only root
        reads (slurmdbd and MariaDB's setup run as root)."""
        path = self.settings.db_password_file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            os.chmod(path, 0o600)
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    def _write_configs(self) -> set[Path]:
        """Write the configuration files that differ; the set of those written."""
        s = self.settings
        host = socket.gethostname().split(".")[0]
        files = {
            s.slurm_conf: (cfg.render_slurm_conf(s, controller_host=host), 0o644),
            s.etc / "gres.conf": (cfg.render_gres_conf(s), 0o644),
            s.etc / "slurmdbd.conf": (cfg.render_slurmdbd_conf(s, db_password=self.db_password()), 0o600),
        }
        changed = set()
        for path, (text, mode) in files.items():
            if not path.exists() or path.read_text() != text:
                # created with its mode: slurmdbd.conf is never readable by others, not even for a moment
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
                changed.add(path)
            os.chown(path, 0, 0)  # SlurmUser=root: slurmdbd wants its file owned by it, 0600
            os.chmod(path, mode)
        for parent in (s.etc, s.etc.parent):
            os.chmod(parent, 0o755)
        return changed

    def _make_gpu_devices(self) -> None:
        for node in self.settings.profile_spec.nodes:
            if not node.gpu_type:
                continue
            directory = self.settings.dev_dir / node.name
            directory.mkdir(parents=True, exist_ok=True)
            for index in range(node.gpus):
                path = directory / f"nvidia{index}"
                if path.exists() and stat.S_ISCHR(path.stat().st_mode):
                    continue
                path.unlink(missing_ok=True)
                # Character devices: with plain files jobs get no CUDA_VISIBLE_DEVICES.
                os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(195, index % 256))

    def _start_munge(self) -> None:
        s = self.settings
        if self.munged.running():
            self.say("munged: already running")
            return
        s.munge_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(s.munge_dir, 0o755)  # clients (sbatch as any user) reach the socket
        key = s.root / "munge.key"
        if not key.exists():
            subprocess.run([which("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        os.chmod(key, 0o600)
        subprocess.run(
            [
                which("munged"),
                "--force",
                f"--socket={s.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.munged.pid_file}",
                f"--log-file={s.log / 'munged.log'}",
                f"--seed-file={s.root / 'munge.seed'}",
            ],
            check=True,
            capture_output=True,
        )
        wait_for(lambda: s.munge_socket.exists() and self.munged.running(), timeout=15, what="munged")
        self.say(f"munged: started (socket {s.munge_socket})")

    def _mariadb(self, sql: str) -> None:
        """Run ``sql`` as MariaDB's root (socket authentication), on stdin: a password in it would be
        visible to every local user in the command line (/proc/PID/cmdline)."""
        subprocess.run(
            [which("mariadb"), f"--socket={self.settings.mariadb_socket}", "-uroot"],
            input=sql,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def _ensure_db_account(self) -> None:
        """slurmdbd's database and account, with this install's password (also after an upgrade from
        the constant password of earlier versions: ALTER USER sets it again)."""
        s, pw = self.settings, self.db_password()
        statements = [f"CREATE DATABASE IF NOT EXISTS `{s.db_name}`;"]
        for host in ("127.0.0.1", "localhost"):
            statements += [f"CREATE USER IF NOT EXISTS 'slurm'@'{host}' IDENTIFIED BY '{pw}';",
                           f"ALTER USER 'slurm'@'{host}' IDENTIFIED BY '{pw}';",
                           f"GRANT ALL ON `{s.db_name}`.* TO 'slurm'@'{host}';"]  # fmt: skip
        self._mariadb("\n".join([*statements, "FLUSH PRIVILEGES;"]) + "\n")

    def _start_mariadb(self) -> None:
        s = self.settings
        if self.mariadbd.running():
            self._ensure_db_account()
            self.say("mariadbd: already running")
            return
        if not (s.mariadb_dir / "mysql").exists():
            s.mariadb_dir.mkdir(parents=True, exist_ok=True)
            shutil.chown(s.mariadb_dir, "mysql", "mysql")
            subprocess.run(
                [
                    which("mariadb-install-db"),
                    "--user=mysql",
                    f"--datadir={s.mariadb_dir}",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ],
                check=True,
                capture_output=True,
            )
        shutil.chown(s.run, "root", "mysql")
        os.chmod(s.run, 0o775)
        spawn_foreground(
            [
                which("mariadbd"),
                "--no-defaults",
                "--user=mysql",
                f"--datadir={s.mariadb_dir}",
                f"--socket={s.mariadb_socket}",
                f"--port={s.ports.mariadb}",
                "--bind-address=127.0.0.1",
                f"--pid-file={s.run / 'mariadbd.real.pid'}",
                "--innodb-buffer-pool-size=64M",
                "--innodb-lock-wait-timeout=900",
                "--skip-name-resolve",
            ],
            pid_file=self.mariadbd.pid_file,
            log_file=s.log / "mariadbd.log",
        )
        wait_for(lambda: s.mariadb_socket.exists(), timeout=60, what="MariaDB socket")
        self._ensure_db_account()
        self.say(f"mariadbd: started (port {s.ports.mariadb})")

    def _start_slurmdbd(self) -> None:
        if self.slurmdbd.running():
            self.say("slurmdbd: already running")
            return
        # slurmdbd 22.05 has no -f: it reads slurmdbd.conf beside $SLURM_CONF.
        subprocess.run([which("slurmdbd")], env=self.env(), check=True, capture_output=True)
        wait_for(self.slurmdbd.running, timeout=30, what="slurmdbd pid file")
        wait_for(
            lambda: self.slurm("sacctmgr", "--noheader", "show", "cluster", check=False).returncode == 0,
            timeout=60,
            what="slurmdbd to answer",
        )
        self.say(f"slurmdbd: started (port {self.settings.ports.slurmdbd})")

    def _ensure_cluster_registered(self) -> None:
        name = self.settings.cluster_name
        out = self.slurm("sacctmgr", "--noheader", "--parsable2", "show", "cluster", "format=Cluster").stdout
        if name not in out.split():
            self.slurm("sacctmgr", "-i", "add", "cluster", name)

    def _start_slurmctld(self) -> None:
        if self.slurmctld.running():
            self.say("slurmctld: already running")
            return
        subprocess.run(
            [which("slurmctld"), "-f", str(self.settings.slurm_conf)],
            env=self.env(),
            check=True,
            capture_output=True,
        )
        wait_for(
            lambda: self.slurm("scontrol", "ping", check=False).stdout.count("UP") > 0,
            timeout=60,
            what="slurmctld to answer `scontrol ping`",
        )
        self.say(f"slurmctld: started (port {self.settings.ports.slurmctld})")

    def _start_slurmds(self) -> None:
        for node in self.settings.profile_spec.nodes:
            daemon = self.slurmd(node.name)
            if daemon.running():
                self.say(f"slurmd {node.name}: already running")
                continue
            subprocess.run(
                [which("slurmd"), "-f", str(self.settings.slurm_conf), "-N", node.name],
                env=self.env(),
                check=True,
                capture_output=True,
            )
            wait_for(daemon.running, timeout=30, what=f"slurmd {node.name}")
            self.say(f"slurmd {node.name}: started")

    def node_states(self) -> dict[str, str]:
        out = self.slurm("sinfo", "--noheader", "--Node", "--format=%N|%T", check=False).stdout
        states: dict[str, str] = {}
        for line in out.splitlines():
            if "|" in line:
                name, state = line.split("|", 1)
                states[name.strip()] = state.strip()
        return states

    def _wait_nodes_idle(self) -> None:
        names = {n.name for n in self.settings.profile_spec.nodes}

        def ready() -> bool:
            states = self.node_states()
            return names <= set(states) and all(
                not any(bad in states[n] for bad in ("down", "drain", "unk", "fail", "not_responding")) for n in names
            )

        try:
            wait_for(ready, timeout=90, interval=0.5, what="all nodes to register")
        except TimeoutError:
            for node, state in self.node_states().items():
                if "down" in state or "drain" in state:
                    self.slurm("scontrol", "update", f"NodeName={node}", "State=RESUME", check=False)
            wait_for(ready, timeout=30, interval=0.5, what="all nodes to register")

    # ----- down / status -----
    def cancel_all_jobs(self, timeout: float = 20.0) -> None:
        """Cancel every job of this cluster and wait for them to end, so that stopping the
        daemons leaves no job step (slurmstepd and the user's processes) behind."""
        if not self.slurmctld.running():
            return
        listed = self.slurm("squeue", "--noheader", "--format=%i", check=False)
        job_ids = listed.stdout.split() if listed.returncode == 0 else []
        if not job_ids:
            return
        self.slurm("scancel", *job_ids, check=False)
        self.say(f"jobs: cancelled {len(job_ids)}")
        try:
            wait_for(
                lambda: not self.slurm("squeue", "--noheader", "--format=%i", check=False).stdout.split(),
                timeout=timeout,
                interval=0.5,
                what="the cancelled jobs to end",
            )
        except TimeoutError as exc:
            self.say(f"jobs: {exc}")

    def down(self) -> None:
        self.cancel_all_jobs()
        order = [self.slurmd(n.name) for n in self.settings.profile_spec.nodes]
        order += [self.slurmctld, self.slurmdbd, self.mariadbd, self.munged]
        for daemon in order:
            if stop_daemon(daemon):
                self.say(f"{daemon.name}: stopped")
            else:
                self.say(f"{daemon.name}: not running")

    def status(self) -> dict:
        daemons = {d.name: d.pid() for d in self.daemons()}
        return {
            "state_dir": str(self.settings.root),
            "cluster_name": self.settings.cluster_name,
            "profile": self.settings.profile,
            "slurm_conf": str(self.settings.slurm_conf),
            "daemons": {name: {"running": pid is not None, "pid": pid} for name, pid in daemons.items()},
            "nodes": self.node_states() if self.slurmctld.running() else {},
            "up": all(pid is not None for pid in daemons.values()),
        }


def load_settings(state_dir: str) -> cfg.ClusterSettings | None:
    path = Path(state_dir) / "cluster.json"
    if path.exists():
        return cfg.ClusterSettings.from_json(path.read_text())
    return None


def status_lines(status: dict) -> list[str]:
    lines = [f"cluster {status['cluster_name']} (profile {status['profile']}) in {status['state_dir']}"]
    for name, info in status["daemons"].items():
        lines.append(f"  {name:16} {'running, pid ' + str(info['pid']) if info['running'] else 'stopped'}")
    for node, state in status["nodes"].items():
        lines.append(f"  node {node:11} {state}")
    return lines


def dump_status(status: dict) -> str:
    return json.dumps(status, indent=2, sort_keys=True)
