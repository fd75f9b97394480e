"""Name rules: what a Unix account, a project, a Slurm account, a cluster, an environment, a GPU
type, a server and a job id may look like. The bottom layer: every other layer (the Slurm
client, the ledger, the environments, the deploy tool) checks names against these, and this
module imports nothing of hpchub.

Each pattern is meant for ``fullmatch``. Where two layers accept different sets, both rules
are here under names that say which is which (the ledger records the principal's mapped name,
which may hold a '.', while a Unix account that the hub runs commands as may not).
"""

from __future__ import annotations

import re

# A Unix account the hub runs commands as (sudo -u, sbatch as the user) or names in a unit file:
# POSIX-portable, lower case, at most 32 characters.
UNIX_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
UNIX_ACCOUNT_RULE = "a user name: a-z, 0-9, '_' and '-', starting with a letter or '_', at most 32"
# A user as the ledger records them (the mapped account name; '.' allowed).
LEDGER_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# A project of the ledger: also a Unix group (hpc-NAME) and a directory name.
PROJECT = re.compile(r"[a-z][a-z0-9-]{1,39}")
# A Slurm account as the ledger creates it (sacctmgr accepts more; see SLURM_ACCOUNT).
LEDGER_ACCOUNT = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# A Slurm account or cluster name in an argument list: no ',', '=', space or leading '-'.
SLURM_ACCOUNT = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,63}")
SLURM_CLUSTER = re.compile(r"[a-z0-9_][a-z0-9_-]{0,63}")
# A cluster as the ledger keys charges by it.
LEDGER_CLUSTER = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# A GPU type (Slurm's GRES type, e.g. h200, a100, h200-1g).
GPU_TYPE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# A JupyterHub server name as the ledger records it ("" is the default server).
SERVER_NAME = re.compile(r"[A-Za-z0-9._-]{0,255}")
# A Slurm job id as accounting lists it: 123, an array task 123_4, a heterogeneous part 123+1.
JOB_ID = re.compile(r"[0-9]{1,20}(?:_[0-9]{1,10}|\+[0-9]{1,5})?")
# A catalogue environment's id (images/catalog.toml).
CATALOGUE_ID = re.compile(r"[a-z][a-z0-9-]{0,39}")
# A project environment's name (envs/NAME/VERSION in the project space).
PROJECT_ENVIRONMENT = re.compile(r"[a-z][a-z0-9_-]{0,31}")
PROJECT_ENVIRONMENT_RULE = "1-32 characters: a-z, 0-9, '_' and '-', starting with a letter"
# A Slurm reservation (a course's lab hours).
RESERVATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def anchored(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The same rule for ``match``/``search`` callers: ``^...$``."""
    return re.compile(f"^{pattern.pattern}$")
