"""The site's hook that makes a Unix account for a new project member.

An invited member whose login maps to an account the host does not know is handed to
``c.HPCHubAllocations.provision_command`` (an argv, no shell) with the principal and the account
appended: ``/usr/local/sbin/hpc-provision kim@nova-ai.example c-kim-nova-ai``. The hook runs with
a small environment of its own (``PATH`` and ``LANG``: nothing of the hub's, which holds its
secrets) and at most ``provision_timeout`` seconds; a failure is a :class:`ProvisionFailed`
carrying the argv, the exit code and the end of its standard error (never the environment).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

HOOK_ENVIRONMENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STDERR_KEPT = 2000  # characters of the hook's standard error kept in the error


class ProvisionFailed(Exception):
    """The hook failed, timed out or could not start; ``returncode`` is None when it did not exit."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv, self.returncode, self.stderr = tuple(argv), returncode, stderr
        how = "failed" if returncode is None else f"exited with {returncode}"
        super().__init__(f"{' '.join(self.argv)} {how}: {stderr.strip() or '(no output)'}")


def provision_argv(command: Sequence[str], principal: str, account: str) -> list[str]:
    """The hook's argv: the configured command, then the principal and the account."""
    if not command:
        raise ValueError("no provision_command is configured")
    return [*command, principal, account]


def hook_environment() -> dict[str, str]:
    return {"PATH": HOOK_ENVIRONMENT_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")}


async def provision(command: Sequence[str], principal: str, account: str, *, timeout: float) -> str:
    """Run the hook; its standard output on success, else :class:`ProvisionFailed`."""
    argv = provision_argv(command, principal, account)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=hook_environment(),
        )  # fmt: skip
    except OSError as exc:
        raise ProvisionFailed(argv, None, f"could not start: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ProvisionFailed(argv, None, f"did not finish within {timeout:g} s and was stopped") from None
    if process.returncode != 0:
        raise ProvisionFailed(argv, process.returncode, err.decode(errors="replace")[-STDERR_KEPT:])
    return out.decode(errors="replace")
