"""Issue 9's must-show: the hub started from the units ``hpchub deploy`` generates, as a service
account (not root), spawns for bob through the generated sudo rules.

``hpchub demo up --run-as ACCOUNT`` switches the test portal's proxy and hub to the account
(systemd is not PID 1 here: hub/units.py applies the unit files' ExecStart, User, Group,
WorkingDirectory and environment); ``--run-as root`` switches back, removing the sudoers file.
"""

from __future__ import annotations

import grp
import json
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import BOB_H200_ONE_HOUR, hpchub

pytestmark = pytest.mark.integration

ACCOUNT = "hpchubsvcdemo"
USERS_GROUP = "hpc-users"


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
        return True
    except KeyError:
        return False


def _status(portal) -> dict:
    return json.loads(hpchub("demo", "status", "--state-dir", str(portal.state_dir)).stdout)


def _slurm_users(portal) -> str:
    return portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "user", "format=User,AdminLevel")


def _sudoers_files() -> set[Path]:
    return set(Path("/etc/sudoers.d").glob(f"hpchub-demo-{ACCOUNT}-*"))


@pytest.fixture(scope="module")
def hub_as_service(portal):
    """The portal's proxy and hub as ACCOUNT for this module; root again (and the account gone) after."""
    account_existed, group_existed = _exists(pwd.getpwnam, ACCOUNT), _exists(grp.getgrnam, USERS_GROUP)
    up = hpchub("demo", "up", "--state-dir", str(portal.state_dir), "--run-as", ACCOUNT, check=False)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"jupyterhub: started from hpchub.service as {ACCOUNT}" in up.stdout, up.stdout
        yield portal
    finally:
        back = hpchub("demo", "up", "--state-dir", str(portal.state_dir), "--run-as", "root", check=False)
        if not account_existed:
            subprocess.run(["userdel", ACCOUNT], check=False, capture_output=True, timeout=60)
        if not group_existed:
            subprocess.run(["groupdel", USERS_GROUP], check=False, capture_output=True, timeout=60)
        assert back.returncode == 0, back.stdout + back.stderr
        assert _sudoers_files() == set()
        assert ACCOUNT not in _slurm_users(portal)
        status = _status(portal)
        assert (status["run_as"], status["hub_account"], status["answers"]) == ("root", "root", True)


def test_the_proxy_and_the_hub_run_as_the_account_with_the_units_own_command(hub_as_service):
    status = _status(hub_as_service)
    assert (status["run_as"], status["hub_account"], status["proxy_account"]) == (ACCOUNT, ACCOUNT, ACCOUNT)
    assert status["answers"] is True
    units = hub_as_service.state_dir / "service" / "units"
    exec_start = next(line for line in (units / "hpchub.service").read_text().splitlines()
                      if line.startswith("ExecStart="))  # fmt: skip
    cmdline = Path(f"/proc/{status['hub']}/cmdline").read_bytes().decode().split("\0")
    # The venv's jupyterhub script runs under its interpreter: argv[1:] is the unit's ExecStart.
    assert " ".join(cmdline[1:]).strip() == exec_start.removeprefix("ExecStart=")
    assert f"User={ACCOUNT}\n" in (units / "hpchub.service").read_text()
    environ = Path(f"/proc/{status['hub']}/environ").read_bytes().decode().split("\0")
    assert f"USER={ACCOUNT}" in environ and f"LOGNAME={ACCOUNT}" in environ


def test_the_sudoers_file_was_checked_and_installed_read_only(hub_as_service):
    [installed] = _sudoers_files()
    info = installed.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o440, 0)
    assert subprocess.run(["visudo", "-cf", str(installed)], capture_output=True, timeout=60).returncode == 0
    assert f"{ACCOUNT} ALL=(%{USERS_GROUP}) NOPASSWD: HPCHUB_SLURM" in installed.read_text()
    assert "bob" in grp.getgrnam(USERS_GROUP).gr_mem


def test_the_units_pass_systemd_analyze_verify(hub_as_service):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    units = sorted((hub_as_service.state_dir / "service" / "units").glob("*.service"))
    done = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_bob_spawns_through_the_sudo_rules_and_the_job_is_bobs(hub_as_service):
    portal = hub_as_service
    response = portal.session().post(portal.spawn_path("bob"), json={"user_options": BOB_H200_ONE_HOUR}, timeout=120)
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready("bob")
        [job] = [job for job in portal.jobs().values() if job["comment"] == "hpchub:user=bob,server="]
        assert (job["user"], job["account"], job["state"]) == ("bob", "vision-lab", "RUNNING")
        # The account itself cannot act as bob other than through the rule: sudo -l names the commands.
        rules = subprocess.run(["runuser", "-u", ACCOUNT, "--", "sudo", "-n", "-l"], capture_output=True, text=True,
                               timeout=60, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).stdout  # fmt: skip
        assert "sbatch" in rules and f"(%{USERS_GROUP})" in rules
        # Extend: the hub raises the time limit as itself, a Slurm operator (scontrol update, no sudo).
        bob, login = portal.login("bob@uni.example", "bob-demo")
        assert login.status_code == 200
        bob.headers["X-XSRFToken"] = bob.cookies.get("_xsrf", "")
        extended = bob.post(f"{portal.url}/hub/api/hpchub/v1/users/bob/server/extend", json={"hours": 1}, timeout=60)
        assert extended.status_code == 200, extended.text
        assert [job["time_limit"] for job in portal.jobs().values() if job["user"] == "bob"] == ["2:00:00"]
    finally:
        portal.session().delete(portal.spawn_path("bob"), timeout=60)
        portal.wait_stopped("bob")
    # scancel went through the rule too: bob's job is gone or on its way out.
    left = [job["state"] for job in portal.jobs().values() if job["comment"] == "hpchub:user=bob,server="]
    assert set(left) <= {"COMPLETING", "CANCELLED"}, left


@pytest.mark.parametrize(("account", "status"), [(ACCOUNT, "PASS"), ("nobody", "FAIL")])
def test_doctor_checks_the_accounts_sudo_rules(hub_as_service, account, status):
    config = hub_as_service.state_dir / "service" / "hpchub_config.py"
    done = hpchub("doctor", "--config", str(config), "--service-user", account, "--json", check=False)
    findings = {f["name"]: f for f in json.loads(done.stdout)["findings"]}
    assert findings["sudo"]["status"] == status and account in findings["sudo"]["detail"], findings["sudo"]
    assert done.returncode == (0 if status == "PASS" else 1), done.stdout
