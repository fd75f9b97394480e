"""Attacks on a project space by its own members (vision-lab: bob, a member; alice, its PI and builder).

A space made with the old modes (``P/`` 2770) lets a member rename the root-owned ``shared/``,
``envs/`` or ``kernels/`` and put a symlink or a directory of their own in its place; each test
here starts from such a space (as root: the state a site is in before the upgrade), performs
the attack as the member, triggers what root does next (a spawn, ``hpchub env sync``, the
environments list, page and API) and asserts that nothing outside the space changed, that no
root-only file is shown, and that the swapped entry was moved aside and reported.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import logged_in_session

PROJECT = "vision-lab"
ROOT_ENTRIES = ("shared", "envs", "kernels")
CPU = {"partition": "cpu", "gpus": 0, "hours": 0.25, "environment": "default"}
JUPYTER_DATA = ("kernels", "labextensions", "nbextensions", "lab", "nbconvert", "voila")


def _as(user: str, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sudo", "-n", "-u", user, "sh", "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def _owner_mode(path: Path) -> tuple[int, int, int]:
    info = os.lstat(path)
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@pytest.fixture(scope="module")
def space(portal) -> Path:
    return portal.state_dir / "projects" / PROJECT


@pytest.fixture(scope="module")
def env_cli(portal):
    config = str(portal.state_dir / "hub" / "jupyterhub_config.py")
    return lambda *args: portal.ledger_cli("--config", config, "env", *args, check=False)


@pytest.fixture(scope="module")
def canary(space, env_cli):
    """Root-only things outside the space: three directories (root:root 0700) a swapped entry points
    at, and a file (root 0600) a log symlink points at. Restores the space afterwards."""
    top = Path(tempfile.mkdtemp(prefix="hpchub-canary-", dir="/var/tmp"))
    os.chmod(top, 0o755)
    dirs = {}
    for entry in ROOT_ENTRIES:
        dirs[entry] = top / f"dir-for-{entry}"
        dirs[entry].mkdir(mode=0o700)
        os.chmod(dirs[entry], 0o700)
    secret_dir = top / "secret"
    secret_dir.mkdir(mode=0o700)
    secret = secret_dir / "secret.txt"
    text = f"CANARY-{uuid.uuid4().hex}"
    secret.write_text(text + "\n")
    os.chmod(secret, 0o600)
    before = {entry: _owner_mode(path) for entry, path in dirs.items()}
    yield {"top": top, "dirs": dirs, "before": before, "file": secret, "text": text}
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(autouse=True)
def restored(space, env_cli):
    """Each test leaves vision-lab's space as it found it (and repaired by the code under test)."""
    yield
    _restore(space)
    env_cli("sync", PROJECT)


def _restore(space: Path) -> None:
    """Put the originals bob renamed back and drop what was moved aside (the tests' own clean-up, as root)."""
    for entry in ROOT_ENTRIES:
        original = space / f"{entry}.orig-by-bob"
        if original.exists():
            current = space / entry
            if current.is_symlink() or current.is_file():
                current.unlink()
            elif current.exists():
                shutil.rmtree(current)
            os.rename(original, current)
    for leftover in [*space.glob("*moved-aside*"), space / "labextensions", space / ".moved-aside"]:
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink()
        elif leftover.exists():
            shutil.rmtree(leftover)
    for leftover in (space / "envs").glob("atk*"):
        shutil.rmtree(leftover)


def _old_modes(space: Path) -> None:
    """The space as the old code left it: P/ and shared/ group-writable (2770)."""
    os.chmod(space, 0o2770)
    if (space / "shared").is_dir() and not (space / "shared").is_symlink():
        os.chmod(space / "shared", 0o2770)


def _swap_for_symlinks(space: Path, targets: dict[str, Path]) -> None:
    """bob renames each root-owned entry and puts a symlink to ``targets[entry]`` in its place."""
    script = " && ".join(f"mv {space / entry} {space / entry}.orig-by-bob && ln -s {target} {space / entry}"
                         for entry, target in targets.items())  # fmt: skip
    done = _as("bob", script)
    assert done.returncode == 0, f"the member could not swap (the space is not in the old modes?): {done.stderr}"


def _moved_aside(space: Path) -> list[Path]:
    found = list(space.glob("*moved-aside*"))
    quarantine = space / ".moved-aside"
    if quarantine.is_dir():
        found += list(quarantine.iterdir())
    return found


def _assert_canary_dirs_unchanged(canary) -> None:
    for entry, path in canary["dirs"].items():
        assert _owner_mode(path) == canary["before"][entry], (
            f"root changed {path} (the target of a member's symlink {entry}): "
            f"{_owner_mode(path)} instead of {canary['before'][entry]}"
        )


def _assert_layout(space: Path) -> None:
    for entry, mode in (("shared", 0o3770), ("envs", 0o2750), ("kernels", 0o2750)):
        info = os.lstat(space / entry)
        assert stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and stat.S_IMODE(info.st_mode) == mode, (entry, info)
    assert stat.S_IMODE(os.lstat(space).st_mode) == 0o2750


def test_env_sync_does_not_follow_a_members_symlinks_and_moves_them_aside(space, canary, env_cli) -> None:
    _old_modes(space)
    _swap_for_symlinks(space, canary["dirs"])
    synced = env_cli("sync", PROJECT)
    _assert_canary_dirs_unchanged(canary)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    _assert_layout(space)
    moved = [path for path in _moved_aside(space) if path.is_symlink()]
    assert sorted(os.readlink(path) for path in moved) == sorted(str(path) for path in canary["dirs"].values())
    for entry in ROOT_ENTRIES:
        assert f"moved aside {space / entry}" in synced.stdout, synced.stdout
    # Members can no longer restructure the repaired space.
    refused = _as("bob", f"mv {space / 'envs'} {space / 'envs.again'}")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_only_shared_is_group_writable_after_sync_of_an_old_space(space, canary, env_cli) -> None:
    _old_modes(space)
    assert _as("bob", f"touch {space / 'shared' / 'bobs-notes.txt'} && chmod g+w {space / 'shared' / 'bobs-notes.txt'}"
               ).returncode == 0  # fmt: skip
    assert env_cli("sync").returncode == 0  # every project's space
    writable = subprocess.run(["find", str(space.parent), "-perm", "-g+w"], capture_output=True, text=True,
                              check=True, timeout=60).stdout.split()  # fmt: skip
    for path in writable:
        relative = Path(path).relative_to(space.parent).parts
        assert len(relative) >= 2 and relative[1] == "shared", f"group-writable outside shared/: {path}"
    assert str(space / "shared") in writable


def _space_entries_safe(directory: Path) -> list[str]:
    """What Jupyter would read from one JUPYTER_PATH directory and a member could write (or owns)."""
    problems = []
    if not os.path.lexists(directory):
        return problems  # (PUBLISHED_ROOT before anything was published)
    for name in JUPYTER_DATA:
        top = directory / name
        if not os.path.lexists(top):
            continue
        for path in [top, *top.rglob("*")]:
            info = os.lstat(path)
            if info.st_uid != 0 or info.st_mode & 0o022 or stat.S_ISLNK(info.st_mode):
                problems.append(f"{path} (uid {info.st_uid}, mode {stat.filemode(info.st_mode)})")
    info = os.lstat(directory)
    if info.st_uid != 0 or info.st_mode & 0o022:
        problems.append(f"{directory} itself (uid {info.st_uid}, mode {stat.filemode(info.st_mode)})")
    return problems


def _session_jupyter_path(portal, user: str) -> list[str]:
    return [part for part in portal.session_environ(user).get("JUPYTER_PATH", "").split(":") if part]


def test_a_members_planted_kernel_and_labextension_do_not_reach_another_members_session(
    portal, space, canary, env_cli,
) -> None:  # fmt: skip
    """bob swaps shared/ and envs/ for symlinks to root's directories and kernels/ for his own
    directory with a python3 kernel, and adds labextensions/; then alice (the PI) starts a session."""
    _old_modes(space)
    _swap_for_symlinks(space, {"shared": canary["dirs"]["shared"], "envs": canary["dirs"]["envs"]})
    planted = _as(
        "bob",
        f"""mv {space / "kernels"} {space / "kernels"}.orig-by-bob &&
        mkdir -p {space / "kernels" / "python3"} {space / "labextensions" / "evil-ext"} &&
        printf '%s' '{{"argv": ["/bin/sh", "-c", "touch /tmp/pwned-by-bob"], "display_name": "planted by bob",
        "language": "python"}}' > {space / "kernels" / "python3" / "kernel.json"} &&
        echo '{{"name": "evil-ext"}}' > {space / "labextensions" / "evil-ext" / "package.json"}""",
    )
    assert planted.returncode == 0, planted.stderr
    hub_log = portal.state_dir / "log" / "jupyterhub.log"
    seen = hub_log.stat().st_size
    response = portal.session().post(portal.spawn_path("alice"), json={"user_options": {"project": PROJECT, **CPU}},
                                     timeout=120)  # fmt: skip
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready("alice")
        specs = portal.session().get(f"{portal.server_url('alice')}api/kernelspecs", timeout=60).json()["kernelspecs"]
        assert all(spec["spec"]["display_name"] != "planted by bob" for spec in specs.values()), specs
        assert specs["python3"]["spec"]["argv"][0] != "/bin/sh"
        paths = _session_jupyter_path(portal, "alice")
        problems = [problem for path in paths for problem in _space_entries_safe(Path(path))]
        assert not problems, f"alice's JUPYTER_PATH {paths} has what a member can write: {problems}"
        _assert_canary_dirs_unchanged(canary)
        log = hub_log.read_bytes()[seen:].decode(errors="replace")
        assert f"moved aside {space / 'kernels'}" in log and f"moved aside {space / 'labextensions'}" in log, log[
            -3000:
        ]
    finally:
        portal.session().delete(portal.spawn_path("alice"), timeout=60)
        portal.wait_stopped("alice")


# --- reading logs through links -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_in(portal) -> dict:
    return {name: logged_in_session(portal, name) for name in ("alice", "bob")}


def _everything_the_hub_shows(portal, logged_in, env_cli, environment: str) -> str:
    """The env list (CLI, API), the environments page, the build page and the log API for every version."""
    base = f"{portal.url}/hub/api/hpchub/v1/projects/{PROJECT}/environments"
    shown = [env_cli("list", PROJECT, "--json").stdout, env_cli("list", PROJECT).stdout,
             env_cli("log", PROJECT, environment).stdout]  # fmt: skip
    for user in ("alice", "bob"):
        listed = logged_in[user].get(base, timeout=60)
        shown.append(listed.text)
        shown.append(logged_in[user].get(f"{portal.url}/hub/hpchub/projects/{PROJECT}/environments", timeout=60).text)
        for version in (1, 2):
            shown.append(logged_in[user].get(f"{base}/{environment}/log?version={version}", timeout=60).text)
            shown.append(logged_in[user].get(f"{portal.url}/hub/hpchub/projects/{PROJECT}/environments/"
                                             f"{environment}/{version}", timeout=60).text)  # fmt: skip
    return "\n".join(shown)


def test_a_swapped_envs_does_not_show_a_root_file_as_a_build_log(portal, space, canary, env_cli, logged_in) -> None:
    _old_modes(space)
    own = Path(tempfile.mkdtemp(prefix="bob-envs-", dir="/var/tmp"))
    shutil.chown(own, "bob", "bob")
    made = _as(
        "bob",
        f"""mkdir -p {own / "atk" / "1"} && ln -s {canary["file"]} {own / "atk" / "1" / "build.log"} &&
        echo failed > {own / "atk" / "1" / "status"} &&
        mv {space / "envs"} {space / "envs"}.orig-by-bob && ln -s {own} {space / "envs"}""",
    )
    assert made.returncode == 0, made.stderr
    try:
        shown = _everything_the_hub_shows(portal, logged_in, env_cli, "atk")
        assert canary["text"] not in shown, "the hub showed a root-only file through a member's symlink"
    finally:
        shutil.rmtree(own, ignore_errors=True)


def test_a_builders_own_version_directory_does_not_show_a_root_file_as_its_log(
    portal, space, canary, env_cli, logged_in,
) -> None:  # fmt: skip
    """A version directory as a build leaves it (the builder's, a failed build), whose builder
    (alice) replaces build.log with a symlink to a root-only file; and a second version whose
    build.log is a hard link attempt (refused by the kernel) left as the builder's regular file."""
    assert env_cli("sync", PROJECT).returncode == 0
    gid = os.lstat(space).st_gid
    for number in (1, 2):
        version = space / "envs" / "atk" / str(number)
        version.mkdir(parents=True, exist_ok=True)
        os.chown(version.parent, 0, gid)
        os.chmod(version.parent, 0o2750)
        os.chown(version, _uid("alice"), gid)
        os.chmod(version, 0o2750)
        (version / "build.json").write_text(
            json.dumps({"job_id": "999999", "requested_by": "alice", "submitted_at": "2026-12-07T00:00:00+00:00"})
        )
    swapped = _as(
        "alice",
        f"""echo failed > {space / "envs" / "atk" / "1" / "status"} &&
        ln -s {canary["file"]} {space / "envs" / "atk" / "1" / "build.log"} &&
        echo 'hpchub: a log of its own' > {space / "envs" / "atk" / "2" / "build.log"}""",
    )
    assert swapped.returncode == 0, swapped.stderr
    try:
        shown = _everything_the_hub_shows(portal, logged_in, env_cli, "atk")
        assert canary["text"] not in shown, "the hub showed a root-only file through the builder's symlink"
        assert "hpchub: a log of its own" in shown  # the builder's own regular log is still shown
    finally:
        shutil.rmtree(space / "envs" / "atk", ignore_errors=True)


def _uid(user: str) -> int:
    import pwd  # noqa: PLC0415

    return pwd.getpwnam(user).pw_uid


def test_a_job_log_symlink_in_the_home_does_not_show_a_root_file_in_the_spawn_error(portal, canary) -> None:
    """bob pre-creates ~/.hpchub-jupyter-N.log for the next job ids as symlinks to a root-only file,
    then starts a session that fails before Jupyter answers: the error shows the log's tail."""
    last = max((int(line) for line in portal.slurm("sacct", "-a", "-X", "-n", "-P", "-o", "JobIDRaw", "-S",
                                                   "2020-01-01").split() if line.isdigit()), default=0)  # fmt: skip
    home = Path("/home/bob")
    links = [home / f".hpchub-jupyter-{job_id}.log" for job_id in range(last + 1, last + 40)]
    planted = _as("bob", " && ".join(f"ln -sf {canary['file']} {link}" for link in links))
    assert planted.returncode == 0, planted.stderr
    portal.ensure_broken_environment()
    try:
        options = {"project": PROJECT, **CPU, "environment": "broken"}
        response = portal.session().post(portal.spawn_path("bob"), json={"user_options": options}, timeout=120)
        message = response.text
        deadline = time.monotonic() + 60
        while response.status_code in (201, 202) and time.monotonic() < deadline:
            message = portal.session().get(f"{portal.api}/users/bob/server/progress", stream=True, timeout=60).text
            if "failed" in message:
                break
            time.sleep(1)
        assert "ended before Jupyter answered" in message, message
        assert canary["text"] not in message, "the spawn error showed a root-only file through bob's symlink"
    finally:
        for link in links:
            if link.is_symlink():
                link.unlink()
        if portal.server("bob"):
            portal.session().delete(portal.spawn_path("bob"), timeout=60)
            portal.wait_stopped("bob")


# --- what a build leaves behind ----------------------------------------------------------------------------


def test_a_builder_cannot_change_a_built_version_or_its_kernel_later(portal, space, env_cli, tmp_path) -> None:
    """alice (the PI) builds; afterwards her version and the kernelspec are root's: she can neither
    add a .pth file to the environment nor rewrite the kernel that every member's session starts."""
    spec = tmp_path / "requirements.txt"
    spec.write_text("hpchub-hello==1.0\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(spec, 0o644)
    built = env_cli("create", PROJECT, "atkseal", "--from", str(spec), "--as", "alice", "--wait", "--timeout", "300")
    try:
        assert built.returncode == 0, built.stdout + built.stderr
        version = space / "envs" / "atkseal" / "1"
        kernel = space / "kernels" / f"{PROJECT}-atkseal"
        for top in (version, kernel):
            for path in [top, *top.rglob("*")]:
                info = os.lstat(path)
                assert info.st_uid == 0, f"{path} is still owned by uid {info.st_uid} after the build"
                assert not info.st_mode & 0o022 or stat.S_ISLNK(info.st_mode), f"{path} is group/other-writable"
                assert not (stat.S_ISREG(info.st_mode) and info.st_mode & 0o6000), f"{path} is setuid/setgid"
        [site_packages] = version.glob("lib/python3*/site-packages")
        assert _as("alice", f"echo 'import os' > {site_packages / 'evil.pth'}").returncode != 0
        assert _as("alice", f"chmod u+w {kernel / 'kernel.json'}").returncode != 0
        assert _as("alice", f"chmod -R u+w {version / 'lib'}").returncode != 0
        assert json.loads((kernel / "kernel.json").read_text())["argv"][0] == str(version / "bin" / "python")
    finally:
        env_cli("remove", PROJECT, "atkseal")


def test_doctor_fails_while_a_space_is_group_writable_or_swapped(portal, space, canary, env_cli, hpchub) -> None:
    config = str(portal.state_dir / "hub" / "jupyterhub_config.py")
    _old_modes(space)
    _swap_for_symlinks(space, {"kernels": canary["dirs"]["kernels"]})
    done = hpchub("doctor", "--config", config, check=False, timeout=300)
    lines = [line for line in done.stdout.splitlines() if " project-spaces: " in line]
    assert lines and lines[0].startswith("FAIL project-spaces:"), done.stdout
    assert f"{space}" in lines[0] and "fix:" in done.stdout.split(lines[0], 1)[1].splitlines()[1]
    assert done.returncode == 1
    _assert_canary_dirs_unchanged(canary)  # doctor only looks
    _restore(space)
    assert env_cli("sync", PROJECT).returncode == 0
    done = hpchub("doctor", "--config", config, check=False, timeout=300)
    assert any(line.startswith("PASS project-spaces:") for line in done.stdout.splitlines()), done.stdout
