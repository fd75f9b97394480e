"""``hpchub deploy``'s files on this machine: the units pass ``systemd-analyze verify``, the
sudoers file passes ``visudo -c``, and installed for a real service account it lets that
account run exactly sbatch/scancel/squeue as a member of the users group, with only the
variables the jobs need."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.deploy import Deployment, render_sudoers, render_units

pytestmark = pytest.mark.integration

SERVICE_USER, USERS_GROUP = "hpchubsvc", "hpchubt-users"
SUDOERS = Path("/etc/sudoers.d/zz-hpchub-test")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


def test_units_verify_with_systemd(tmp_path):
    prefix = str(Path(sys.prefix).parent)  # the venv the tests run from, as make install laid it out
    for name, text in render_units(Deployment(prefix=prefix)).items():
        (tmp_path / name).write_text(text)
    done = _run("systemd-analyze", "verify", *map(str, sorted(tmp_path.glob("*.service"))), check=False)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


@pytest.fixture
def service_account(portal):
    """A system account for the hub and a users group with bob in it; removed after."""
    if not _user_exists(SERVICE_USER):
        _run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER)
    if not _group_exists(USERS_GROUP):
        _run("groupadd", USERS_GROUP)
    _run("gpasswd", "-a", "bob", USERS_GROUP)
    deployment = Deployment(service_user=SERVICE_USER, users_group=USERS_GROUP,
                            slurm_bin=os.path.dirname(shutil.which("squeue")))  # fmt: skip
    candidate = Path("/etc/sudoers.d/.zz-hpchub-test.new")
    candidate.write_text(render_sudoers(deployment))
    candidate.chmod(0o440)
    assert _run("visudo", "-cf", str(candidate)).returncode == 0
    candidate.rename(SUDOERS)
    try:
        yield portal
    finally:
        SUDOERS.unlink(missing_ok=True)
        _run("gpasswd", "-d", "bob", USERS_GROUP, check=False)
        _run("groupdel", USERS_GROUP, check=False)
        _run("userdel", SERVICE_USER, check=False)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _as_service(portal, *argv: str) -> subprocess.CompletedProcess:
    env = ["env", f"SLURM_CONF={portal.slurm_conf}", "LANG=C.UTF-8", "JUPYTERHUB_API_TOKEN=x", "PYTHONPATH=/tmp"]
    return _run("runuser", "-u", SERVICE_USER, "--", *env, *argv, check=False)


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        pytest.param(("-u", "bob", "--preserve-env=SLURM_CONF,LANG,JUPYTERHUB_API_TOKEN", "squeue", "--noheader"),
                     True, id="squeue-as-bob-with-the-job-variables"),
        pytest.param(("-u", "bob", "id"), False, id="anything-else-as-bob"),
        pytest.param(("-u", "root", "squeue"), False, id="root"),
        pytest.param(("-u", "alice", "squeue"), False, id="not-in-the-users-group"),
        pytest.param(("-u", "bob", "--preserve-env=PYTHONPATH", "squeue"), False, id="other-variables"),
        pytest.param(("-u", "bob", "sacctmgr", "show", "user"), False, id="sacctmgr-as-a-user"),
    ],
)  # fmt: skip
def test_the_sudo_rules_allow_exactly_the_slurm_commands_as_users(service_account, argv, allowed):
    resolved = [shutil.which(word) or word if word in ("squeue", "id", "sacctmgr") else word for word in argv]
    done = _as_service(service_account, "sudo", "-n", *resolved)
    assert (done.returncode == 0) is allowed, done.stderr
