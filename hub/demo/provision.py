"""The demo's provisioning hook (``c.HPCHubAllocations.provision_command``): make the Unix account
a new project member's login maps to, so their first session can run as them.

``python -m hub.demo.provision PRINCIPAL ACCOUNT``: creates ``ACCOUNT`` (useradd, a home, the
demo's ``hpc-users`` group the sudoers rule names) if it does not exist. DEMO ONLY: a site's
identity management creates accounts; the hub runs as root only in the demo.
"""

from __future__ import annotations

import argparse
import pwd
import re
import subprocess
import sys

from spawners.names import UNIX_ACCOUNT, anchored

ACCOUNT_RE = anchored(UNIX_ACCOUNT)
PRINCIPAL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}")
USERS_GROUP = "hpc-users"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.demo.provision", description=__doc__.split("\n\n")[0])
    parser.add_argument("principal", help="the login, e.g. kim@nova-ai.example")
    parser.add_argument("account", help="the Unix account it maps to, e.g. c-kim-nova-ai")
    args = parser.parse_args(argv)
    if not PRINCIPAL_RE.fullmatch(args.principal) or not ACCOUNT_RE.fullmatch(args.account):
        print(f"provision: not a principal and a Unix account name: {args.principal!r} {args.account!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        pwd.getpwnam(args.account)
        print(f"unix user {args.account}: exists")
        return 0
    except KeyError:
        pass
    comment = f"hpchub demo user for {args.principal}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", comment, args.account],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    subprocess.run(["usermod", "--append", "--groups", USERS_GROUP, args.account], check=False, capture_output=True,
                   timeout=30)  # fmt: skip
    print(f"unix user {args.account}: created for {args.principal}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
