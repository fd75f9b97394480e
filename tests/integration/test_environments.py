"""Project environments on the real cluster: the project space and its group, a build
as a Slurm job from the demo's wheelhouse, the kernel in a member's session (a real kernel
imports the package), a non-member who neither sees nor can use it, and a failing rebuild
that leaves the previous version the default.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import logged_in_session
from test_budget_meter import (
    _execute,  # the kernel websocket helper (runs code in bob's kernel)
)

pytestmark = pytest.mark.integration

ENV = "tiny"
KERNEL = "vision-lab-tiny"


def _as(user: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sudo", "-n", "-u", user, *argv], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def env_cli(portal):
    config = str(portal.state_dir / "hub" / "jupyterhub_config.py")

    def run(*args: str, check: bool = False) -> subprocess.CompletedProcess:
        return portal.ledger_cli("--config", config, "env", *args, check=check)

    return run


@pytest.fixture(scope="module")
def space(portal) -> Path:
    return portal.state_dir / "projects" / "vision-lab"


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("envs") / "requirements.txt"
    path.write_text("# the demo's tiny package\nhpchub-hello==1.0\n")
    return path


@pytest.fixture(scope="module")
def built(portal, env_cli, spec_file, space) -> dict:
    """vision-lab/tiny version 1, built as a Slurm job (as alice, the PI) and ready."""
    result = env_cli("create", "vision-lab", ENV, "--from", str(spec_file), "--wait", "--timeout", "300")
    assert result.returncode == 0, result.stdout + result.stderr
    [environment] = json.loads(env_cli("list", "vision-lab", "--json", check=True).stdout)
    return environment


def test_project_space_is_the_groups_and_shared_is_closed_to_others(space) -> None:
    for path, mode in ((space, 0o2750), (space / "shared", 0o3770), (space / "envs", 0o2750),
                       (space / "kernels", 0o2750)):  # fmt: skip
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (mode, 0), path
        assert info.st_gid == space.stat().st_gid
    assert _as("bob", "touch", str(space / "shared" / "from-bob")).returncode == 0
    assert (space / "shared" / "from-bob").stat().st_gid == space.stat().st_gid  # setgid: the group's file
    assert _as("bob", "touch", str(space / "from-bob")).returncode != 0  # only shared/ is the members'
    assert _as("alice", "rm", "-f", str(space / "shared" / "from-bob")).returncode != 0  # sticky: bob's own
    refused = _as("carol", "ls", str(space / "shared"))
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert _as("carol", "touch", str(space / "shared" / "from-carol")).returncode != 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("numpy>=1.0\n", "spec line 1 ('numpy>=1.0'): every package must be pinned", id="unpinned"),
        pytest.param("hpchub-hello==1.0\n-e /tmp/x\n", "spec line 2 ('-e /tmp/x'): pip options", id="option"),
        pytest.param("--index-url=http://evil/simple\n", "pip options such as --index-url", id="index-url"),
        pytest.param("https://evil.example/x.whl\n", "URLs and paths are not allowed", id="url"),
        pytest.param("hpchub-hello==1.0 && id\n", "shell metacharacters are not allowed: &", id="shell"),
        pytest.param("no-such-package==1.0\n", "unknown package 'no-such-package'", id="unknown-package"),
        pytest.param("hpchub-hello==9.9\n", "hpchub-hello==9.9 is not in the site's wheelhouse", id="unknown-version"),
    ],
)
def test_bad_spec_is_refused_before_any_job(portal, env_cli, space, tmp_path, spec: str, message: str) -> None:
    jobs_before = set(portal.jobs())
    path = tmp_path / "requirements.txt"
    path.write_text(spec)
    result = env_cli("create", "vision-lab", "refused", "--from", str(path))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert set(portal.jobs()) == jobs_before
    assert not (space / "envs" / "refused").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("vision-lab", "Bad;Name"), "NAME: must be 1-32 characters", id="unsafe-name"),
        pytest.param(("vision-lab", "ok", "--as", "bob"), "--as: bob is member of vision-lab; only a pi", id="member"),
        pytest.param(("vision-lab", "ok", "--as", "carol"), "--as: carol is not an active member", id="outsider"),
        pytest.param(("nope", "ok"), "PROJECT:", id="unknown-project"),
    ],
)
def test_bad_name_or_builder_is_refused(env_cli, spec_file, args, message) -> None:
    result = env_cli("create", *args, "--from", str(spec_file))
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_build_runs_as_a_cpu_job_on_the_projects_account(portal, built, space) -> None:
    [version] = built["versions"]
    assert (built["default_version"], version["state"], version["requested_by"]) == (1, "ready", "alice")
    accounting = portal.slurm(
        "sacct", "-n", "-P", "-X", "-j", version["job_id"], "-o", "Partition,Account,User,AllocTRES"
    )
    partition, account, user, tres = accounting.strip().splitlines()[0].split("|")
    assert (partition, account, user) == ("cpu", "vision-lab", "alice") and "gres/gpu" not in tres
    kernel = json.loads((space / "kernels" / KERNEL / "kernel.json").read_text())
    assert kernel["argv"][0] == str(space / "envs" / ENV / "1" / "bin" / "python")
    # Sealed: the builder (alice) owns nothing of the version or the kernel any more.
    for path in (space / "envs" / ENV / "1", space / "envs" / ENV / "1" / "lib", space / "kernels" / KERNEL,
                 space / "kernels" / KERNEL / "kernel.json"):  # fmt: skip
        assert path.lstat().st_uid == 0 and not path.lstat().st_mode & 0o022, path
    # Members read the log and use the environment; nobody but the build writes it.
    assert "is ready" in _as("bob", "cat", version["log_file"]).stdout
    assert _as("bob", "touch", str(space / "envs" / ENV / "1" / "x")).returncode != 0
    assert _as("bob", "touch", str(space / "kernels" / KERNEL / "x")).returncode != 0


def _spawn(portal, user: str, options: dict) -> None:
    response = portal.session().post(portal.spawn_path(user), json={"user_options": options}, timeout=120)
    assert response.status_code in (201, 202), response.text
    portal.wait_ready(user)


def _stop(portal, user: str) -> None:
    portal.session().delete(portal.spawn_path(user), timeout=60)
    portal.wait_stopped(user)


CPU_QUARTER_HOUR = {"partition": "cpu", "gpus": 0, "hours": 0.25}


def test_members_session_lists_the_kernel_and_runs_it(portal, built) -> None:
    _spawn(portal, "bob", {"project": "vision-lab", **CPU_QUARTER_HOUR, "environment": f"project:{ENV}"})
    try:
        specs = portal.session().get(f"{portal.server_url('bob')}api/kernelspecs", timeout=60)
        assert specs.status_code == 200, specs.text
        body = specs.json()
        assert KERNEL in body["kernelspecs"], sorted(body["kernelspecs"])
        assert body["default"] == KERNEL  # environment project:tiny makes it the default kernel
        assert body["kernelspecs"][KERNEL]["spec"]["display_name"] == "vision-lab: tiny (v1)"
        api = f"{portal.server_url('bob')}api/kernels"
        started = portal.session().post(api, json={"name": KERNEL}, timeout=60)
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        try:
            out = _execute(
                portal, kernel_id, "import sys, hpchub_hello\nprint(sys.prefix)\nprint(hpchub_hello.greet('bob'))"
            )
        finally:
            portal.session().delete(f"{api}/{kernel_id}", timeout=60)
        prefix, greeting = out.strip().splitlines()
        assert prefix.endswith("/projects/vision-lab/envs/tiny/1")
        assert greeting == "hello, bob, from a project environment"
    finally:
        _stop(portal, "bob")


PREVIEW = "/hub/api/hpchub/v1/preview"


def test_preview_of_a_ready_project_environment_is_what_the_spawn_holds(portal, built) -> None:
    """The preview checks the options against the project's ready environments exactly as the
    spawn does: 200 with the figures the spawn's hold then has; an unknown one is 400 for both."""
    bob = logged_in_session(portal, "bob")
    options = {
        "project": "vision-lab",
        "partition": "gpu",
        "gpu_type": "a100",
        "gpus": 2,
        "hours": 0.5,
        "environment": f"project:{ENV}",
    }
    preview = bob.post(f"{portal.url}{PREVIEW}", json={"user_options": options}, timeout=60)
    assert preview.status_code == 200, preview.text
    answer = preview.json()
    assert answer["allowed"] is True and answer["request"]["environment"] == f"project:{ENV}"
    assert answer["cost_gpu_hours"] == 0.5  # 2 x a100 (weight 0.5) x 0.5 h
    unknown = bob.post(f"{portal.url}{PREVIEW}", json={**options, "environment": "project:no-such-env"}, timeout=60)
    assert unknown.status_code == 400, unknown.text
    assert "is not a ready environment of project vision-lab" in unknown.json()["message"]
    _spawn(portal, "bob", options)
    try:
        held = bob.get(f"{portal.url}/hub/api/hpchub/v1/users/bob/servers//session", timeout=30)
        assert held.status_code == 200, held.text
        session = held.json()
        request = answer["request"]
        assert (session["gpu_type"], session["gpus"], session["hours_reserved"]) == (
            request["gpu_type"],
            request["gpus"],
            request["hours"],
        )
        assert session["cost_so_far_gpu_hours"] + session["held_gpu_hours"] == pytest.approx(
            answer["cost_gpu_hours"], abs=1e-3
        )
    finally:
        _stop(portal, "bob")


def test_non_member_neither_sees_nor_can_use_it(portal, built, space) -> None:
    refused = portal.session().post(
        portal.spawn_path("erin"),
        json={"user_options": {"project": "tiny-lab", **CPU_QUARTER_HOUR, "environment": f"project:{ENV}"}},
        timeout=60,
    )
    assert refused.status_code == 400 and "is not a ready environment of project tiny-lab" in refused.text
    assert _as("erin", "cat", str(space / "kernels" / KERNEL / "kernel.json")).returncode != 0
    assert _as("erin", str(space / "envs" / ENV / "1" / "bin" / "python"), "-c", "1").returncode != 0
    _spawn(portal, "erin", {"project": "tiny-lab", **CPU_QUARTER_HOUR, "environment": "default"})
    try:
        specs = portal.session().get(f"{portal.server_url('erin')}api/kernelspecs", timeout=60).json()
        assert KERNEL not in specs["kernelspecs"] and not any(k.startswith("vision-lab") for k in specs["kernelspecs"])
    finally:
        _stop(portal, "erin")


def test_failing_rebuild_leaves_the_previous_version_default(portal, env_cli, built, space, tmp_path) -> None:
    wheelhouse = portal.state_dir / "wheelhouse"
    broken = wheelhouse / "hpchub_broken-1.0-py3-none-any.whl"
    broken.write_text("not a zip file\n")  # in the wheelhouse, so refused only by pip inside the job
    os.chmod(broken, 0o644)
    spec = tmp_path / "requirements.txt"
    spec.write_text("hpchub-hello==1.0\nhpchub-broken==1.0\n")
    kernel_before = (space / "kernels" / KERNEL / "kernel.json").read_text()
    try:
        result = env_cli("create", "vision-lab", ENV, "--from", str(spec), "--wait", "--timeout", "300")
    finally:
        broken.unlink()
    assert result.returncode == 1 and "version 2: failed" in result.stdout, result.stdout + result.stderr
    [environment] = json.loads(env_cli("list", "vision-lab", "--json", check=True).stdout)
    first, second = environment["versions"]
    assert environment["default_version"] == 1 and first["default"] and first["state"] == "ready"
    assert second["state"] == "failed" and "is invalid" in second["log_tail"]
    assert (space / "kernels" / KERNEL / "kernel.json").read_text() == kernel_before
    listing = env_cli("list", "vision-lab", check=True).stdout
    assert "v2   failed" in listing and "hpchub: build failed" in listing
    # The only ready version (the default) cannot be removed on its own; the failed one can.
    only = env_cli("remove", "vision-lab", ENV, "--version", "1")
    assert only.returncode == 2 and "the only ready version" in only.stderr
    assert env_cli("remove", "vision-lab", ENV, "--version", "2").returncode == 0
    assert not (space / "envs" / ENV / "2").exists() and (space / "envs" / ENV / "1" / "bin" / "python").exists()


# --- the REST API (/hub/api/hpchub/v1/projects/{p}/environments) -----------------------------------

V1 = "/hub/api/hpchub/v1"


@pytest.fixture(scope="module")
def logged_in(portal) -> dict:
    return {name: logged_in_session(portal, name) for name in ("alice", "bob", "carol")}


def test_api_pi_builds_members_follow_the_log_outsiders_get_404(portal, built, logged_in) -> None:
    environments = f"{portal.url}{V1}/projects/vision-lab/environments"
    # bob (member) reads the list but may not change it; carol (outsider) gets the uniform 404.
    listed = logged_in["bob"].get(environments, timeout=60)
    assert listed.status_code == 200 and [env["name"] for env in listed.json()] == [ENV]
    refused = logged_in["bob"].post(f"{environments}/api-env", json={"spec": "hpchub-hello==1.0\n"}, timeout=60)
    assert refused.status_code == 403 and "may not change its environments" in refused.json()["message"]
    assert logged_in["carol"].get(environments, timeout=60).status_code == 404
    bad = logged_in["alice"].post(f"{environments}/api-env", json={"spec": "hpchub-hello>=1\n"}, timeout=60)
    assert bad.status_code == 400 and "spec line 1" in bad.json()["message"]
    bad_name = logged_in["alice"].post(f"{environments}/API", json={"spec": "hpchub-hello==1.0\n"}, timeout=60)
    assert bad_name.status_code == 400 and "NAME: must be" in bad_name.json()["message"]
    # alice (pi) builds; bob follows the log until the build ends.
    created = logged_in["alice"].post(f"{environments}/api-env", json={"spec": "hpchub-hello==1.0\n"}, timeout=60)
    assert created.status_code == 202, created.text
    answer = created.json()
    assert (answer["version"], answer["builder"], answer["state"]) == (1, "alice", "building")
    log, offset, state = "", 0, "building"
    for _ in range(300):
        chunk = logged_in["bob"].get(f"{portal.url}{answer['log_url']}&offset={offset}", timeout=60).json()
        log, offset, state = log + chunk["log"], chunk["next_offset"], chunk["state"]
        if state != "building":
            break
        time.sleep(1)  # polling the build's log (no timed assertion)
    assert state == "ready" and "hpchub: vision-lab/api-env version 1 is ready" in log
    removed = logged_in["alice"].delete(f"{environments}/api-env", timeout=60)
    assert removed.status_code == 200 and "removed vision-lab/api-env" in removed.json()["message"]
