"""Versions and states of project environments (hub/envs/space.py), on a temporary project space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.envs.space import (
    ProjectSpace,
    VersionState,
    building_job_ids,
    decide_state,
    environment_names,
    group_name,
    jupyter_path,
    kernel_name,
    kernel_spec,
    next_version,
    read_environment,
    ready_environment_names,
    version_numbers,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("entries", "numbers", "following"),
    [
        pytest.param([], [], 1, id="none"),
        pytest.param(["1"], [1], 2, id="one"),
        pytest.param(["2", "10", "1"], [1, 2, 10], 11, id="numeric-order"),
        pytest.param(["1", ".lock", "x", "01", "3.tmp", "-1"], [1], 2, id="others-ignored"),
        pytest.param(["3"], [3], 4, id="after-removed-versions"),
    ],
)
def test_version_numbers_and_next(entries, numbers, following) -> None:
    assert version_numbers(entries) == numbers
    assert next_version(numbers) == following


@pytest.mark.parametrize(
    ("status", "job_active", "state"),
    [
        pytest.param("ready\n", None, VersionState.READY, id="ready"),
        pytest.param("ready\n", False, VersionState.READY, id="ready-job-gone"),
        pytest.param("failed\n", True, VersionState.FAILED, id="failed"),
        pytest.param(None, True, VersionState.BUILDING, id="job-running"),
        pytest.param(None, None, VersionState.BUILDING, id="slurm-not-asked"),
        pytest.param(None, False, VersionState.FAILED, id="job-ended-without-status"),
        pytest.param("garbage", False, VersionState.FAILED, id="unknown-status-job-gone"),
    ],
)
def test_decide_state(status, job_active, state) -> None:
    assert decide_state(status, job_active)[0] is state


def _version(space: ProjectSpace, name: str, number: int, status: str | None, job_id: str) -> None:
    directory = space.version_dir(name, number)
    directory.mkdir(parents=True)
    (directory / "build.json").write_text(
        json.dumps({"job_id": job_id, "requested_by": "alice", "submitted_at": "2026-11-29T05:00:00+00:00"})
    )
    if status is not None:
        (directory / "status").write_text(status + "\n")
        (directory / ".sealed").write_text("{}\n")  # finished and handed to root (the tests run as root)


@pytest.fixture
def space(tmp_path: Path) -> ProjectSpace:
    space = ProjectSpace(tmp_path / "projects", "vision-lab")
    _version(space, "tiny", 1, "ready", "11")
    _version(space, "tiny", 2, "failed", "12")
    _version(space, "tiny", 3, "ready", "13")
    _version(space, "tiny", 4, None, "14")  # building (or ended without a status)
    _version(space, "broken", 1, "failed", "21")
    (space.envs / "Not-An-Env").mkdir()
    return space


def test_newest_ready_version_is_the_default(space: ProjectSpace) -> None:
    info = read_environment(space, "tiny", {"14": True})
    assert [(v.version, v.state) for v in info.versions] == [
        (1, VersionState.READY), (2, VersionState.FAILED), (3, VersionState.READY), (4, VersionState.BUILDING),
    ]  # fmt: skip
    assert info.default_version == 3 and info.ready and info.kernel_name == "vision-lab-tiny"
    assert info.version(4).job_id == "14" and info.version(4).log_file.endswith("/tiny/4/build.log")


def test_a_build_whose_job_ended_without_status_failed(space: ProjectSpace) -> None:
    info = read_environment(space, "tiny", {"14": False})
    assert info.version(4).state is VersionState.FAILED and "ended without finishing" in info.version(4).detail
    assert info.default_version == 3


def test_names_ready_ones_and_building_jobs(space: ProjectSpace) -> None:
    assert environment_names(space) == ["broken", "tiny"]
    assert ready_environment_names(space.root, "vision-lab") == ["tiny"]
    assert ready_environment_names(space.root, "no-such-project") == []
    assert building_job_ids(space) == ["14"]
    assert read_environment(space, "broken").default_version is None


def test_names_paths_and_kernelspec() -> None:
    space = ProjectSpace(Path("/p"), "vision-lab")
    assert (group_name("vision-lab"), kernel_name("vision-lab", "tiny")) == ("hpc-vision-lab", "vision-lab-tiny")
    assert space.kernel_dir("tiny") == Path("/p/vision-lab/kernels/vision-lab-tiny")
    assert space.version_dir("tiny", 2) == Path("/p/vision-lab/envs/tiny/2")
    spec = kernel_spec("vision-lab", "tiny", 2, "/p/vision-lab/envs/tiny/2/bin/python")
    assert spec["argv"] == [
        "/p/vision-lab/envs/tiny/2/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec["display_name"] == "vision-lab: tiny (v2)" and spec["language"] == "python"
    assert jupyter_path("/p", ["vision-lab", "cs101", "vision-lab"]) == "/p/cs101:/p/vision-lab"


@pytest.mark.parametrize("project", ["..", "../etc", "a/b", "", "Vision", "x"])
def test_a_project_space_never_leaves_the_root(project: str) -> None:
    with pytest.raises(ValueError, match="not a project name"):
        ProjectSpace(Path("/p"), project)


def test_the_hub_reads_a_space_only_through_its_group(space: ProjectSpace, tmp_path: Path, monkeypatch) -> None:
    from hub.envs import space as sp

    assert sp.unreadable(ProjectSpace(tmp_path, "not-made-yet")) == ""
    assert sp.unreadable(space) == ""

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sp.os, "listdir", refused)
    problem = sp.unreadable(space)
    assert f"group {group_name(space.project)}" in problem and "restart the hub" in problem
