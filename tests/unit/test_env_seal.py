"""Root's side of a project space (hub/envs/seal.py, audit.py) and what sessions get from it
(JUPYTER_PATH, the job log), on temporary spaces made as the old code left them. Needs root (chown)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub.doctor import checks
from hub.envs import audit, seal
from hub.envs import space as sp
from hub.envs.config import HPCHubEnvironments
from spawners.slurm import project_envs

pytestmark = [pytest.mark.unit, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")]

MEMBER = 65534  # a member's uid (nobody): owns what the member swapped in
BUILDER = 65533


def _owner_mode(path: Path) -> tuple[int, int, int]:
    info = os.lstat(path)
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    directory = tmp_path / "root-only"
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    return directory


@pytest.fixture
def old_space(tmp_path: Path) -> sp.ProjectSpace:
    """vision-lab as the old code made it: P/ and shared/ 2770, a builder's ready version and kernel."""
    space = sp.ProjectSpace(tmp_path / "projects", "vision-lab")
    version = space.version_dir("tiny", 1)
    (version / "bin").mkdir(parents=True)
    (version / "bin" / "python").symlink_to("/usr/bin/python3.11")
    (version / "status").write_text("ready\n")
    (version / "build.log").write_text("hpchub: vision-lab/tiny version 1 is ready\n")
    (version / "build.json").write_text(json.dumps({"job_id": "41", "requested_by": "alice"}))
    space.shared.mkdir()
    space.kernel_dir("tiny").mkdir(parents=True)
    (space.kernel_dir("tiny") / "kernel.json").write_text("{}\n")
    os.chmod(space.root, 0o755)
    for path, mode in ((space.path, 0o2770), (space.shared, 0o2770), (space.envs, 0o2750), (space.kernels, 0o2750)):
        os.chmod(path, mode)
    for path in (version, *version.iterdir(), space.kernel_dir("tiny"), space.kernel_dir("tiny") / "kernel.json"):
        os.lchown(path, BUILDER, 0)
    return space


def _swap(space: sp.ProjectSpace, entry: str, target: Path) -> None:
    os.rename(space.path / entry, space.path / f"{entry}.orig")
    (space.path / entry).symlink_to(target)
    os.lchown(space.path / entry, MEMBER, MEMBER)


@pytest.mark.parametrize("entry", ["shared", "envs", "kernels"])
def test_repair_moves_a_swapped_entry_aside_without_following_it(old_space, canary, entry) -> None:
    _swap(old_space, entry, canary)
    before = _owner_mode(canary)
    report = seal.repair_layout(old_space, 0)
    assert _owner_mode(canary) == before
    assert report.moved_aside[0].startswith(
        f"moved aside {old_space.path / entry} (a symbolic link where root's directory belongs)"
    )  # then the original the member renamed, if open
    [aside] = [p for p in old_space.path.iterdir() if p.name.startswith(f"{entry}{sp.MOVED_ASIDE}")]
    assert aside.is_symlink() and os.readlink(aside) == str(canary)
    assert _owner_mode(old_space.path) == (0, 0, 0o2750)
    assert _owner_mode(old_space.path / entry)[::2] == (0, sp.SPACE_ENTRIES[entry])
    assert f"{old_space.path}: mode drwxrws--- -> drwxr-s---" in report.fixed


def test_repair_moves_planted_entries_out_of_p_and_kernels(old_space) -> None:
    (old_space.path / "labextensions" / "evil").mkdir(parents=True)
    os.lchown(old_space.path / "labextensions", MEMBER, MEMBER)
    report = seal.repair_layout(old_space, 0)
    moved = "\n".join(report.moved_aside)
    assert f"moved aside {old_space.path / 'labextensions'}" in moved
    assert f"moved aside {old_space.kernel_dir('tiny')}" in moved  # the builder's kernel directory (old layout)
    assert not (old_space.path / "labextensions").exists() and not old_space.kernel_dir("tiny").exists()
    assert sp.jupyter_problem(old_space) == ""  # what was moved aside is not read by Jupyter


def test_seal_hands_a_finished_version_to_root_and_writes_its_kernel(old_space) -> None:
    seal.repair_layout(old_space, 0)
    assert sp.read_environment(old_space, "tiny").default_version is None  # ready but not sealed: not offered
    assert sp.read_environment(old_space, "tiny").versions[0].detail == sp.NOT_SEALED
    assert seal.seal_finished(old_space, {"41": True}, 0).sealed == []  # its job still runs: not yet
    report = seal.seal_finished(old_space, {"41": False}, 0)
    assert report.sealed == [f"sealed {old_space.version_dir('tiny', 1)} (now root's; built by uid {BUILDER})"]
    info = sp.read_environment(old_space, "tiny")
    assert info.default_version == 1 and info.versions[0].sealed
    for path in [old_space.version_dir("tiny", 1), *old_space.version_dir("tiny", 1).rglob("*"),
                 old_space.kernel_dir("tiny"), old_space.kernel_dir("tiny") / "kernel.json"]:  # fmt: skip
        info = os.lstat(path)
        assert info.st_uid == 0 and (stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o022), path
    kernel = json.loads((old_space.kernel_dir("tiny") / "kernel.json").read_text())
    assert kernel["argv"][0] == str(old_space.version_dir("tiny", 1) / "bin" / "python")
    assert sorted(os.listdir(old_space.env_dir("tiny"))) == ["1"]  # the builder's tree is gone
    assert sp.log_tail(old_space, "tiny", 1) == "hpchub: vision-lab/tiny version 1 is ready"


def test_a_version_that_cannot_be_sealed_is_marked_failed(old_space, tmp_path) -> None:
    (old_space.version_dir("tiny", 1) / "bin" / "evil.pth").symlink_to(tmp_path / "builders-own")
    os.chmod(tmp_path, 0o777)
    try:
        seal.repair_layout(old_space, 0)
        [line] = seal.seal_finished(old_space, {"41": False}, 0).sealed
    finally:
        os.chmod(tmp_path, 0o700)
    assert line.startswith(f"not sealed {old_space.version_dir('tiny', 1)}") and "a user may change" in line
    version = sp.read_environment(old_space, "tiny").versions[0]
    assert version.state is sp.VersionState.FAILED and not version.sealed
    assert seal.seal_finished(old_space, {"41": False}, 0).sealed == []  # once


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(
            lambda space, canary: (
                (space.version_dir("tiny", 1) / "build.log").unlink()
                or (space.version_dir("tiny", 1) / "build.log").symlink_to(canary / "secret")
            ),
            "symbolic link",
            id="log-symlink",
        ),
        pytest.param(
            lambda space, canary: os.lchown(space.version_dir("tiny", 1) / "build.log", MEMBER, 0),
            "owned by uid 65534",
            id="someone-elses-log",
        ),
        pytest.param(lambda space, canary: _swap(space, "envs", canary), "not a real directory", id="envs-swapped"),
    ],
)
def test_a_log_that_is_not_the_builders_own_file_is_never_shown(old_space, canary, make, problem) -> None:
    (canary / "secret").write_text("SECRET\n")
    (canary / "tiny" / "1").mkdir(parents=True)
    (canary / "tiny" / "1" / "build.log").write_text("SECRET\n")
    make(old_space, canary)
    text = sp.log_tail(old_space, "tiny", 1)
    assert "SECRET" not in text and problem in text and text.startswith("hpchub: the log is not shown:")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(lambda space: None, "is a directory owned by uid 0 (drwxrws---)", id="old-modes"),
        pytest.param(
            lambda space: (
                os.chmod(space.path, 0o2750),
                (space.path / "labextensions").mkdir(),
                os.lchown(space.path / "labextensions", MEMBER, MEMBER),
            ),
            "labextensions is a directory owned by uid 65534",
            id="planted-labextension",
        ),
    ],
)
def test_an_unsafe_space_is_left_off_jupyter_path(old_space, tmp_path, make, says) -> None:
    make(old_space)
    assert says in sp.jupyter_problem(old_space)
    environments = HPCHubEnvironments(project_root=str(old_space.root), published_root=str(tmp_path / "pub"))
    assert project_envs.job_variables(environments, ["vision-lab"]) == {"JUPYTER_PATH": str(tmp_path / "pub")}
    seal.repair_layout(old_space, 0)
    assert project_envs.job_variables(environments, ["vision-lab"]) == {
        "JUPYTER_PATH": f"{old_space.path}:{tmp_path / 'pub'}"
    }


def test_audit_and_doctor_fail_until_the_space_is_repaired(old_space, canary) -> None:
    _swap(old_space, "kernels", canary)
    found = audit.audit_space(old_space)
    assert any("is a directory owned by uid 0 (drwxrws---)" in p for p in found.problems)
    assert any("kernels is a symbolic link" in p for p in found.problems)
    finding = checks.check_project_spaces(str(old_space.root), {"vision-lab": found.problems})
    assert finding.lines()[0].startswith("FAIL project-spaces: ") and "hpchub env sync" in finding.lines()[1]
    seal.repair_layout(old_space, 0)
    repaired = audit.audit_space(old_space)
    assert repaired.problems == ()
    assert any("was moved aside" in note for note in repaired.notes)
    assert any("not sealed yet" in note for note in repaired.notes)
    status = checks.check_project_spaces(str(old_space.root), {"vision-lab": ()}, {"vision-lab": repaired.notes})
    assert status.status is checks.Status.WARN
    assert checks.check_project_spaces(str(old_space.root), {"vision-lab": ()}).status is checks.Status.PASS


def _spawner(home: Path, uid: int) -> SimpleNamespace:
    from spawners.slurm.spawner import SlurmGPUSpawner

    fake = SimpleNamespace(
        user=SimpleNamespace(name="bob"),
        job_id="77",
        job_output="{home}/.hpchub-jupyter-%j.log",
        log_tail_lines=2,
        _log_name="bob",
        log=SimpleNamespace(warning=lambda *a, **k: None),
    )
    entry = SimpleNamespace(pw_dir=str(home), pw_uid=uid)
    return fake, entry, SlurmGPUSpawner.job_log_tail


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        pytest.param(
            lambda log, secret: (log.write_text("a\nb\nc\n"), os.chown(log, MEMBER, MEMBER)),
            "b\nc",
            id="the-users-own-log",
        ),
        pytest.param(
            lambda log, secret: log.symlink_to(secret),
            "(the job's log is not shown: it is a symbolic link)",
            id="symlink-to-a-root-file",
        ),
        pytest.param(
            lambda log, secret: os.link(secret, log),
            "(the job's log is not shown: it is owned by uid 0",
            id="hard-link-to-a-root-file",
        ),
    ],
)
def test_the_spawn_error_shows_only_the_users_own_job_log(tmp_path, monkeypatch, canary, make, shown) -> None:
    import pwd

    secret = canary / "secret"
    secret.write_text("SECRET\n")
    home = tmp_path / "home"
    home.mkdir()
    fake, entry, job_log_tail = _spawner(home, MEMBER)
    monkeypatch.setattr(pwd, "getpwnam", lambda name: entry)
    make(home / ".hpchub-jupyter-77.log", secret)
    text = job_log_tail(fake)
    assert "SECRET" not in text and text.startswith(shown)
