"""What every ``hpchub`` subcommand shares: the one-line usage error, the argument parsers
that print it, reading the hub's configuration file and the Slurm cluster it names.

A leaf: the command modules (the ledger's, the courses', the environments', the doctor, the
deploy tool, the demo) import it, and it imports none of them, so none has to import the
top-level ``hub.cli`` that imports them all.

Exit codes of every subcommand: 0 ok, 2 bad input (one line on stderr naming the argument),
1 anything else.
"""

from __future__ import annotations

import argparse
import os

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from spawners.slurm.cluster import SlurmCluster

DEFAULT_CONFIG_FILE = "/etc/hpchub/hpchub_config.py"
DEMO_CONFIG_FILE = "/var/lib/hpchub-demo/hub/jupyterhub_config.py"


class UsageError(Exception):
    """Bad input: exit 2 with one line."""


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """argparse prints the usage before an error; hpchub's errors are one line on stderr."""

    def error(message: str):
        parser.exit(2, f"{parser.prog}: {message}\n")

    parser.error = error  # type: ignore[method-assign]
    return parser


class OneLineParser(argparse.ArgumentParser):
    """A subcommand's parser whose errors are one line (``add_subparsers(parser_class=...)``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\n")


SUBCOMMANDS = {"dest": "command_name", "metavar": "COMMAND", "required": True, "parser_class": OneLineParser}


def read_config_file(path: str) -> Config:
    """The hub's configuration file (Python: it is run, as the hub runs it)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return PyFileConfigLoader(os.path.basename(path), os.path.dirname(os.path.abspath(path))).load_config()


def load_hub_config(config_file: str | None) -> Config | None:
    """The traitlets configuration of the hub's configuration file (``--config``: the site's,
    or the demo's when the site's default file is absent); None if there is none."""
    if config_file and config_file != DEFAULT_CONFIG_FILE and not os.path.isfile(config_file):
        raise UsageError(f"--config: no such file: {config_file}")
    candidates = [config_file] if config_file else []
    if not config_file or config_file == DEFAULT_CONFIG_FILE:
        candidates.append(DEMO_CONFIG_FILE)
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return read_config_file(candidate)
    return None


def slurm_cluster(args) -> SlurmCluster:
    """The hub's Slurm cluster (``c.SlurmCluster`` of the --config file if it exists), with
    ``--slurm-conf``, else ``$SLURM_CONF``, winning for its slurm.conf."""
    config_file = getattr(args, "config", None)
    config = load_hub_config(config_file) if config_file and os.path.isfile(config_file) else None
    slurm_conf = getattr(args, "slurm_conf", None) or os.environ.get("SLURM_CONF")
    return SlurmCluster.from_config(config, slurm_conf=slurm_conf)
