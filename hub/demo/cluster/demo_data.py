"""The demo's people and Slurm accounts (the demo identities of README.md).

Unix users are created on this host (the jobs run as them); Slurm accounts and
user associations are created with ``sacctmgr``. Idempotent.
"""

from __future__ import annotations

import pwd
import subprocess
from typing import Callable

# Unix user -> Slurm accounts (projects) it may charge.
DEMO_USERS: dict[str, tuple[str, ...]] = {
    "alice": ("vision-lab",),
    "bob": ("vision-lab",),
    "dave": ("cs101",),
    "tom": ("cs101",),
    "carol": ("cs101",),
    "erin": ("tiny-lab",),
    "admin": (),
    "fiona": (),  # an academic with no project yet: applies to a call
    "rev1": (),  # reviewers (rev2 shares fiona's institution)
    "rev2": (),
}
DEMO_ACCOUNTS: dict[str, str] = {
    "vision-lab": "Vision lab (research)",
    "cs101": "CS101 course",
    "tiny-lab": "Tiny lab (research)",
}


def ensure_unix_users(say: Callable[[str], None] = print) -> None:
    for user in DEMO_USERS:
        try:
            pwd.getpwnam(user)
            continue
        except KeyError:
            pass
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", "--comment", f"hpchub demo user {user}", user],
            check=True,
            capture_output=True,
        )
        say(f"unix user {user}: created")


def ensure_slurm_accounts(run: Callable[..., subprocess.CompletedProcess], cluster: str) -> None:
    """Create accounts and user associations that do not exist yet.

    ``run(*argv, check=...)`` runs a Slurm command with the cluster's SLURM_CONF.
    """
    existing = run(
        "sacctmgr",
        "--noheader",
        "--parsable2",
        "show",
        "associations",
        f"cluster={cluster}",
        "format=Account,User",
    ).stdout
    pairs = {tuple(line.split("|")[:2]) for line in existing.splitlines() if "|" in line}
    accounts = {account for account, _ in pairs}
    for account, description in DEMO_ACCOUNTS.items():
        if account not in accounts:
            run(
                "sacctmgr",
                "-i",
                "add",
                "account",
                account,
                f"cluster={cluster}",
                f"description={description}",
                "organization=hpchub-demo",
            )
    for user, user_accounts in DEMO_USERS.items():
        for account in user_accounts:
            if (account, user) not in pairs:
                run("sacctmgr", "-i", "add", "user", user, f"account={account}", f"cluster={cluster}")
