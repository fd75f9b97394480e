"""The hub started from the units ``hpchub deploy`` generates, as a service
account (not root), spawns for bob through the generated sudo rules.

``hpchub demo up --run-as ACCOUNT`` switches the test portal's proxy, hub and reconciler to the
account (systemd is not PID 1 here: hub/demo/units.py applies the unit files' ExecStart, User, Group,
WorkingDirectory and environment), with the account in the project groups (it lists their
environments) and a Slurm operator (the reconciler's mirror); ``--run-as root`` switches back,
removing the sudoers file and the group memberships.
"""

from __future__ import annotations

import grp
import json
import pwd
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BOB_H200_ONE_HOUR, hpchub
from conftest import HPCHUB as HPCHUB_COMMAND

from hub.demo.units import process_groups

pytestmark = pytest.mark.integration

ACCOUNT = "hpchubsvcdemo"
USERS_GROUP = "hpc-users"
PROJECT_GROUP = "hpc-vision-lab"


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
def ready_environment(portal, tmp_path_factory) -> str:
    """A ready environment of vision-lab, built by root's `hpchub env create`: the one test_environments
    built if it is there, else ``tiny`` now (a build job of some seconds)."""
    config = str(portal.state_dir / "hub" / "jupyterhub_config.py")
    listed = json.loads(portal.ledger_cli("--config", config, "env", "list", "vision-lab", "--json").stdout)
    ready = sorted(environment["name"] for environment in listed if environment["default_version"])
    if ready:
        return ready[0]
    spec = tmp_path_factory.mktemp("envs") / "requirements.txt"
    spec.write_text("hpchub-hello==1.0\n")
    built = portal.ledger_cli("--config", config, "env", "create", "vision-lab", "tiny", "--from", str(spec), "--wait",
                              "--timeout", "300", check=False)  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return "tiny"


def _as_account(portal, *args: str) -> None:
    """An admin's ledger command as the account (root must not leave files of its own in the hub's state)."""
    done = subprocess.run(["runuser", "-u", ACCOUNT, "--", *HPCHUB_COMMAND, *args, "--db-url", portal.ledger_url],
                          capture_output=True, text=True, timeout=120, check=False, cwd="/")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _wait_association(portal, account: str, user: str, *, present: bool, timeout: float = 90) -> str:
    """Until the association's presence is ``present`` (the reconciler's passes are 3 s apart); its GrpTRESMins."""
    deadline = time.monotonic() + timeout
    while True:
        out = portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations", f"account={account}",
                           f"user={user}", "format=User,GrpTRESMins")  # fmt: skip
        rows = [line.split("|") for line in out.splitlines() if line.startswith(f"{user}|")]
        if bool(rows) == present:
            return rows[0][1] if rows else ""
        assert time.monotonic() < deadline, f"{account}/{user}: association {'missing' if present else 'still there'}"
        time.sleep(1)


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
        assert ACCOUNT not in grp.getgrnam(PROJECT_GROUP).gr_mem
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


def test_the_account_lists_the_project_environments_through_its_group(hub_as_service, ready_environment):
    portal = hub_as_service
    # The hub has the group since its start (/etc/group is the host's: another demo here may resync it since).
    assert grp.getgrnam(PROJECT_GROUP).gr_gid in process_groups(_status(portal)["hub"])
    alice, login = portal.login("alice@uni.example", "alice-demo")
    assert login.status_code == 200
    listed = alice.get(f"{portal.url}/hub/api/hpchub/v1/projects/vision-lab/environments", timeout=60)
    assert listed.status_code == 200, listed.text
    assert ready_environment in {env["name"] for env in listed.json() if env["default_version"]}, listed.json()
    bob, login = portal.login("bob@uni.example", "bob-demo")
    assert login.status_code == 200
    form = bob.get(f"{portal.url}/hub/spawn", timeout=60)
    assert form.status_code == 200 and f"project:{ready_environment}" in form.text


def test_the_reconciler_as_the_account_makes_and_removes_associations(hub_as_service):
    """A Slurm operator is enough for the mirror: erin's association on vision-lab follows her membership."""
    portal = hub_as_service
    assert _status(portal)["reconcile_account"] == ACCOUNT
    assert _wait_association(portal, "vision-lab", "erin", present=False, timeout=0) == ""  # the demo: tiny-lab only
    _as_account(portal, "member", "add", "vision-lab", "erin", "--role", "member", "--cap", "1")
    try:
        assert _wait_association(portal, "vision-lab", "erin", present=True).startswith("billing=")  # her cap's limit
    finally:
        _as_account(portal, "member", "remove", "vision-lab", "erin")
    _wait_association(portal, "vision-lab", "erin", present=False)


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
def test_doctor_checks_the_accounts_sudo_rules_and_groups(hub_as_service, account, status):
    config = hub_as_service.state_dir / "service" / "hpchub_config.py"
    done = hpchub("doctor", "--config", str(config), "--service-user", account, "--json", check=False)
    findings = {f["name"]: f for f in json.loads(done.stdout)["findings"]}
    assert findings["sudo"]["status"] == status and account in findings["sudo"]["detail"], findings["sudo"]
    if account == "nobody":  # in no project group (ACCOUNT's are the host's: another demo here may resync them)
        groups = findings["project-groups"]
        assert groups["status"] == "WARN" and "nobody is not in hpc-" in groups["detail"], groups
    assert done.returncode == (0 if status == "PASS" else 1), done.stdout
