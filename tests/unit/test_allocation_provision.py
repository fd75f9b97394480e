"""The site's provisioning hook for new members' Unix accounts (hub/allocations/provision.py):
its argv, its small environment, its failures and its timeout, with real processes."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from hub.allocations.provision import ProvisionFailed, provision, provision_argv

pytestmark = pytest.mark.unit
PRINCIPAL, ACCOUNT = "kim@nova-ai.example", "c-kim-nova-ai"


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        pytest.param(["/usr/local/sbin/hpc-provision"], ["/usr/local/sbin/hpc-provision", PRINCIPAL, ACCOUNT],
                     id="principal-and-account-appended"),
        pytest.param(["/opt/hook", "--site", "demo"], ["/opt/hook", "--site", "demo", PRINCIPAL, ACCOUNT],
                     id="configured-arguments-kept"),
    ],
)  # fmt: skip
def test_argv(command, argv) -> None:
    assert provision_argv(command, PRINCIPAL, ACCOUNT) == argv


def test_no_command_is_refused() -> None:
    with pytest.raises(ValueError, match="no provision_command"):
        provision_argv([], PRINCIPAL, ACCOUNT)


def test_the_hook_gets_the_arguments_and_none_of_the_hubs_environment(monkeypatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "secret-of-the-hub")
    code = "import os, sys; print(repr(sys.argv[1:]), 'JUPYTERHUB_CRYPT_KEY' in os.environ, sorted(os.environ))"
    out = asyncio.run(provision(_python(code), PRINCIPAL, ACCOUNT, timeout=30))
    assert out.split(" False ")[0] == repr([PRINCIPAL, ACCOUNT])
    assert "secret-of-the-hub" not in out and "False" in out


def test_a_failing_hook_is_a_typed_error_with_argv_code_and_stderr() -> None:
    command = _python("import sys; sys.stderr.write('useradd: group hpc-users missing\\n'); sys.exit(9)")
    with pytest.raises(ProvisionFailed) as caught:
        asyncio.run(provision(command, PRINCIPAL, ACCOUNT, timeout=30))
    assert caught.value.argv == (*command, PRINCIPAL, ACCOUNT)
    assert caught.value.returncode == 9
    assert "group hpc-users missing" in caught.value.stderr and "exited with 9" in str(caught.value)


def test_a_hook_over_its_timeout_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(ProvisionFailed) as caught:
        asyncio.run(provision(_python("import time; time.sleep(30)"), PRINCIPAL, ACCOUNT, timeout=0.5))
    assert time.monotonic() - started < 10
    assert caught.value.returncode is None and "within 0.5 s" in caught.value.stderr


def test_a_hook_that_cannot_start() -> None:
    with pytest.raises(ProvisionFailed, match="could not start"):
        asyncio.run(provision(["/nonexistent/hpc-provision"], PRINCIPAL, ACCOUNT, timeout=5))
