"""The ``hpchub`` command line (an admin tool: it acts with the site admin's rights).

Exit codes: 0 ok, 2 bad input (one line on stderr), 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from hub import deploy
from hub.cli_support import SUBCOMMANDS, UsageError, one_line_errors
from hub.commands import envs as envs_cli
from hub.commands import ledger as ledger_cli
from hub.demo import portal as demo_module
from hub.demo.cluster import config as cfg
from hub.demo.cluster.manager import (
    Cluster,
    ClusterError,
    dump_status,
    free_ports,
    load_settings,
    status_lines,
)
from hub.doctor import run as doctor

DEFAULT_STATE_DIR = "/var/lib/hpchub-demo"
DEFAULT_CONFIG = "/etc/hpchub/hpchub_config.py"


def state_dir_default() -> str:
    return os.environ.get("HPCHUB_DEMO_DIR", DEFAULT_STATE_DIR)


def _settings_for(args) -> cfg.ClusterSettings:
    existing = load_settings(args.state_dir)
    if existing is not None and args.command_name == "up":
        if args.profile and args.profile != existing.profile:
            raise UsageError(
                f"--profile: the cluster in {args.state_dir} was made with profile "
                f"{existing.profile!r}; run `hpchub cluster down` and remove the directory to change it"
            )
        return existing
    if existing is not None:
        return existing
    if args.command_name != "up":
        raise UsageError(f"--state-dir: no cluster in {args.state_dir} (run `hpchub cluster up` first)")
    profile = args.profile or "demo"
    ports = free_ports() if args.ports == "auto" else cfg.Ports()
    name = args.cluster_name
    if not name.replace("-", "").isalnum() or not name.islower() or len(name) > 40:
        raise UsageError("--cluster-name: lower-case letters, digits and '-', at most 40 characters")
    return cfg.ClusterSettings(state_dir=args.state_dir, profile=profile, ports=ports, cluster_name=name)


def cmd_cluster(args) -> int:
    settings = _settings_for(args)
    quiet = getattr(args, "json", False)
    cluster = Cluster(settings, say=(lambda _msg: None) if quiet else print)
    if args.command_name == "up":
        cluster.up()
        print(
            f'cluster {settings.cluster_name} is up; for Slurm\'s own commands: eval "$(hpchub cluster env --state-dir {shlex.quote(args.state_dir)})"'
        )
        return 0
    if args.command_name == "down":
        cluster.down()
        return 0
    if args.command_name == "status":
        status = cluster.status()
        print(dump_status(status) if args.json else "\n".join(status_lines(status)))
        return 0 if status["up"] else 1
    if args.command_name == "env":
        print(f"export SLURM_CONF={shlex.quote(str(settings.slurm_conf))}")
        return 0
    raise UsageError(f"unknown cluster command {args.command_name!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpchub",
        description="hpchub: a research compute portal on JupyterHub and Slurm (admin command line).",
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("HPCHUB_CONFIG", DEFAULT_CONFIG),
        help=f"hpchub configuration file (default {DEFAULT_CONFIG}, or $HPCHUB_CONFIG)",
    )
    sub = parser.add_subparsers(dest="group", required=True)

    cluster = sub.add_parser(
        "cluster",
        help="the demo cluster in a box (Slurm, slurmdbd, MariaDB, munge on this host)",
        description="Run a whole Slurm GPU cluster on this host for the demo and the tests.",
    )
    csub = cluster.add_subparsers(dest="command_name", required=True)

    def add_state_dir(p):
        p.add_argument(
            "--state-dir",
            default=state_dir_default(),
            help=f"where all state lives (default {DEFAULT_STATE_DIR}, or $HPCHUB_DEMO_DIR)",
        )

    up = csub.add_parser("up", help="install nothing, start everything that is not running (idempotent)")
    add_state_dir(up)
    up.add_argument(
        "--profile",
        choices=sorted(cfg.PROFILES),
        default=None,
        help="demo: gpu01-02 4 x h200, gpu03 4 x a100, cpu01; bench: 4 nodes x 64 h200 (default demo)",
    )
    up.add_argument(
        "--ports",
        choices=("default", "auto"),
        default="default",
        help="default: slurmctld 16817, slurmdbd 16819, slurmd 16830+, MariaDB 13306; auto: free ports",
    )
    up.add_argument("--cluster-name", default="hpchub", help="Slurm ClusterName (default hpchub)")
    down = csub.add_parser("down", help="stop every daemon of the cluster by its pid file")
    add_state_dir(down)
    status = csub.add_parser("status", help="which daemons run and the nodes' states; exit 1 unless all run")
    add_state_dir(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    env = csub.add_parser("env", help='print `export SLURM_CONF=...`: eval "$(hpchub cluster env)"')
    add_state_dir(env)
    cluster.set_defaults(func=cmd_cluster)

    demo_module.add_parser(sub, add_state_dir)

    ledger_cli.add_parsers(sub)

    envs_cli.add_parsers(sub, one_line_errors, SUBCOMMANDS)

    doctor.add_parser(sub)

    deploy.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad input, 0 on --help
        return int(exc.code or 0)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"hpchub: {exc}", file=sys.stderr)
        return 2
    except (ClusterError, TimeoutError) as exc:
        print(f"hpchub: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
