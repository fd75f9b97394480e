"""hub/demo/units.py: a generated unit read back (what runs is the unit's own ExecStart, User, Group,
WorkingDirectory and environment), and what it refuses rather than guesses."""

from __future__ import annotations

import os
import pwd

import pytest

from hub.demo import service as demo_service
from hub.demo.units import (
    UnitError,
    parse_unit,
    process_groups,
    read_environment_file,
    service_environment,
)
from hub.deploy import Deployment, render_sudoers, render_units

pytestmark = pytest.mark.unit


def test_the_generated_hub_unit_reads_back_to_its_command_and_account() -> None:
    d = Deployment(service_user="portal", prefix="/opt/x", config_dir="/etc/x", state_dir="/var/lib/x")
    unit = parse_unit("hpchub.service", render_units(d)["hpchub.service"])
    assert unit.exec_start == ("/opt/x/venv/bin/jupyterhub", "-f", "/etc/x/hpchub_config.py")
    assert (unit.user, unit.group, unit.working_directory) == ("portal", "portal", "/var/lib/x")
    assert unit.environment_files == ("/etc/x/hub.env",)


def test_the_proxy_unit_targets_the_hub_port() -> None:
    unit = parse_unit("p", render_units(Deployment(hub_port=18081, proxy_port=18000))["hpchub-proxy.service"])
    assert "--default-target" in unit.exec_start
    assert unit.exec_start[unit.exec_start.index("--default-target") + 1] == "http://127.0.0.1:18081"
    assert unit.exec_start[unit.exec_start.index("--port") + 1] == "18000"


def test_environment_files_and_lines_layer_over_systemds_account_variables(tmp_path) -> None:
    env_file = tmp_path / "hub.env"
    env_file.write_text('# secrets\nJUPYTERHUB_CRYPT_KEY=abc\n; comment\nLANG="C.UTF-8"\n\nHOME=/srv/hub\n')
    text = ("[Service]\nUser=root\nGroup=root\nWorkingDirectory=/\n"
            f"EnvironmentFile={env_file}\nEnvironmentFile=-{tmp_path}/missing.env\n"
            "Environment=A=1 \"B=two words\"\nExecStart=/bin/true\n")  # fmt: skip
    env = service_environment(parse_unit("t", text))
    assert env["USER"] == env["LOGNAME"] == "root" and env["PATH"].startswith("/usr/local/sbin")
    assert (env["JUPYTERHUB_CRYPT_KEY"], env["LANG"], env["HOME"]) == ("abc", "C.UTF-8", "/srv/hub")
    assert (env["A"], env["B"]) == ("1", "two words")
    assert read_environment_file(env_file)["LANG"] == "C.UTF-8"


@pytest.mark.parametrize(
    ("service", "words"),
    [
        pytest.param("User=a\nGroup=a\nWorkingDirectory=/\n", "ExecStart: exactly one", id="no-exec"),
        pytest.param("User=a\nGroup=a\nWorkingDirectory=/\nExecStart=-/bin/true\n", "prefixes", id="prefix"),
        pytest.param("User=a\nGroup=a\nWorkingDirectory=/\nExecStart=true\n", "absolute", id="relative"),
        pytest.param("Group=a\nWorkingDirectory=/\nExecStart=/bin/true\n", "User: exactly one", id="no-user"),
        pytest.param("User=a\nGroup=a\nWorkingDirectory=/\nExecStart=/bin/true\nEnvironment=1A=x\n",
                     "Environment", id="bad-env-name"),
    ],
)  # fmt: skip
def test_what_the_reader_cannot_apply_faithfully_is_refused(service: str, words: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_unit("x.service", "[Unit]\nExecStart=/ignored\n[Service]\n" + service)
    assert str(caught.value).startswith("x.service: ") and words in str(caught.value)


def test_the_demo_deployment_uses_its_state_dir_as_etc_and_its_ports() -> None:
    from hub.demo.portal import DemoPorts  # noqa: PLC0415

    d = demo_service.deployment(state_dir="/var/lib/d", venv="/opt/h/venv", account="svc",
                                ports=DemoPorts(hub_public=1, hub_api=2, proxy_api=3, idp=4))  # fmt: skip
    assert (d.config_dir, d.state_dir, d.prefix) == ("/var/lib/d/service", "/var/lib/d/hub", "/opt/h")
    assert (d.proxy_port, d.hub_port, d.proxy_api_port, d.proxy_ip) == (1, 2, 3, "127.0.0.1")
    assert demo_service.sudoers_path("/var/lib/d", "svc").name.startswith("hpchub-demo-svc-")
    assert "." not in demo_service.sudoers_path("/var/lib/d", "svc").name  # sudo skips such names


@pytest.mark.parametrize("name", ["bob", "Root", "a b", ""])
def test_run_as_refuses_demo_users_and_bad_names(name: str) -> None:
    with pytest.raises(ValueError, match="^--run-as: "):
        demo_service.validate_account(name)


def test_run_as_root_is_the_plain_demo() -> None:
    assert demo_service.validate_account("root") == "root"
    assert pwd.getpwnam("root").pw_uid == 0


def test_a_sudoers_file_visudo_refuses_is_never_installed(tmp_path) -> None:
    import shutil  # noqa: PLC0415

    if shutil.which("visudo") is None:
        pytest.skip("visudo is not installed")
    target = tmp_path / "hpchub-demo-svc-0000"
    with pytest.raises(RuntimeError, match="visudo -cf"):
        demo_service.install_sudoers("svc ALL=(%hpc-users NOPASSWD: /usr/bin/sbatch\n", target)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its candidate
    demo_service.install_sudoers(render_sudoers(Deployment(service_user="svc")), target)
    assert oct(target.stat().st_mode & 0o777) == "0o440"


def test_a_processs_groups_are_read_from_proc() -> None:
    assert process_groups(os.getpid()) == set(os.getgroups()) | {os.getgid()}
    assert process_groups(2**22 + 12345) == set()  # above pid_max: no such process
