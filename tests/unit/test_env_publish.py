"""Publishing a project environment into the images catalogue (hub/envs/publish.py) on a temporary
project space: the world-readable copy, its kernel, the catalogue entry the spawner adds, the script it
renders (the default server with the published kernel), and every refusal changing nothing."""

from __future__ import annotations

import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from tornado import web

from hub.api.environments import parse_publish_body
from hub.envs import publish
from hub.envs.config import HPCHubEnvironments
from hub.envs.service import EnvError
from hub.envs.space import ProjectSpace
from spawners.catalog import load_catalogue
from spawners.slurm import project_envs
from spawners.slurm.launch import launch_for
from spawners.slurm.types import JobRequest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
RESERVED = ("default", "pytorch", "pytorch-apptainer")


def _version(space: ProjectSpace, name: str, number: int, status: str | None) -> Path:
    directory = space.version_dir(name, number)
    (directory / "bin").mkdir(parents=True)
    (directory / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (directory / "lib" / "python3.11" / "site-packages" / "hello.py").write_text("X = 1\n")
    os.symlink("/usr/bin/python3.11", directory / "bin" / "python")
    (directory / "bin" / "tool").write_text("#!/old/path/bin/python\n")
    os.chmod(directory / "bin" / "tool", 0o750)
    os.chmod(directory / "lib", 0o750)
    (directory / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (directory / "build.json").write_text(json.dumps({"job_id": str(number), "requested_by": "alice"}))
    if status:
        (directory / "status").write_text(status)
        (directory / ".sealed").write_text("{}\n")  # handed to root (as root; a user's run is its own owner)
    return directory


@pytest.fixture
def settings(tmp_path, monkeypatch) -> HPCHubEnvironments:
    if os.geteuid() != 0:  # publishing makes the copy root's (the hub runs as root): a user's run skips the chown
        monkeypatch.setattr(os, "chown", lambda *args, **kwargs: None)
        monkeypatch.setattr(os, "lchown", lambda *args, **kwargs: None)
    settings = HPCHubEnvironments(project_root=str(tmp_path / "projects"),
                                  published_root=str(tmp_path / "published"))  # fmt: skip
    space = ProjectSpace(tmp_path / "projects", "vision-lab")
    _version(space, "tiny", 1, "ready\n")
    _version(space, "tiny", 2, "ready\n")
    _version(space, "tiny", 3, "failed\n")
    return settings


def _publish(settings, **changes) -> publish.Published:
    arguments = {"project": "vision-lab", "name": "tiny", "version": None, "catalogue_id": "vision-tiny",
                 "description": "hpchub-hello for everyone", "title": None, "gpu": False,
                 "reserved_ids": RESERVED, "who": "admin"}  # fmt: skip
    return publish.publish(settings, **{**arguments, **changes})


def test_publish_copies_the_default_version_for_everyone(settings) -> None:
    entry = _publish(settings)
    root = Path(settings.published_root)
    assert (entry.version, entry.name, entry.kernel) == (2, "vision-lab: tiny (v2)", "published-vision-tiny")
    copy = root / "envs" / "vision-tiny"
    assert (copy / "lib" / "python3.11" / "site-packages" / "hello.py").read_text() == "X = 1\n"
    assert os.readlink(copy / "bin" / "python") == "/usr/bin/python3.11"  # the venv's symlink kept
    for path, mode in ((copy, 0o755), (copy / "lib", 0o755), (copy / "bin" / "tool", 0o755),
                       (copy / "pyvenv.cfg", 0o644)):  # fmt: skip
        info = path.stat()
        owner = (0, 0) if os.geteuid() == 0 else (os.geteuid(), os.getegid())  # (see the settings fixture)
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (mode, *owner), path
    kernel = json.loads((root / "kernels" / "published-vision-tiny" / "kernel.json").read_text())
    assert kernel["argv"][0] == str(copy / "bin" / "python") and kernel["display_name"] == "vision-lab: tiny (v2)"
    assert stat.S_IMODE((root / "kernels" / "published-vision-tiny" / "kernel.json").stat().st_mode) == 0o644
    [listed] = publish.read_published(root)
    assert listed == entry and listed.published_by == "admin"


def test_the_spawner_offers_it_and_starts_the_default_server_with_its_kernel(settings) -> None:
    _publish(settings, version=1, title="Hello (lab)", gpu=True)
    catalogue = project_envs.with_published(
        settings,
        load_catalogue(
            REPO_ROOT / "images" / "catalog.toml",
            {"demo_venv": "/opt/hpchub/venv", "pytorch_venv": "", "pytorch_image": ""},
        ),
    )
    entry = catalogue.get("vision-tiny")
    assert catalogue.ids()[-1] == "vision-tiny" and entry.available and entry.gpu and entry.name == "Hello (lab)"
    environment, kernel = project_envs.resolve(
        catalogue, JobRequest("tiny-lab", "cpu", None, 0, Decimal(1), "vision-tiny")
    )
    assert environment is catalogue.default and kernel == "published-vision-tiny"
    launch = launch_for(environment, (), gpus=0, job_path="/usr/bin", default_kernel=kernel)
    assert launch.command[0] == "/opt/hpchub/venv/bin/batchspawner-singleuser"
    assert launch.command[-1] == "--MappingKernelManager.default_kernel_name=published-vision-tiny"
    # everyone's JUPYTER_PATH ends with PUBLISHED_ROOT (its kernels/), members' starts with their spaces
    assert project_envs.job_variables(settings, []) == {"JUPYTER_PATH": settings.published_root}
    assert project_envs.job_variables(settings, ["vision-lab"])["JUPYTER_PATH"] == (
        f"{settings.project_root}/vision-lab:{settings.published_root}"
    )
    assert project_envs.binds(settings, [])[-1] == settings.published_root


def test_a_catalogue_id_wins_over_a_published_one(settings) -> None:
    catalogue = load_catalogue(
        REPO_ROOT / "images" / "catalog.toml", {"demo_venv": "/v", "pytorch_venv": "", "pytorch_image": ""}
    )
    entries = publish.catalogue_entries("/p", [publish.Published("default", "x", "y", False, "p", "e", 1, "a", "t")])
    merged, skipped = publish.with_published(catalogue, entries)
    assert merged is catalogue and skipped == ["default"]


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        pytest.param({"catalogue_id": "Bad_Id"}, 400, "--as: must be 1-40 characters", id="bad-id"),
        pytest.param({"catalogue_id": "pytorch"}, 409, "already an entry of the images catalogue", id="reserved"),
        pytest.param({"description": " "}, 400, "--description: must not be empty", id="no-description"),
        pytest.param({"description": "a\nb"}, 400, "--description: one line of at most 200", id="newline"),
        pytest.param({"title": "x" * 201}, 400, "--title: one line of at most 200", id="long-title"),
        pytest.param({"version": 3}, 409, "version 3 is not ready; ready versions: v1, v2", id="failed-version"),
        pytest.param({"version": 9}, 409, "version 9 is not ready", id="no-version"),
        pytest.param({"name": "nope"}, 404, "vision-lab has no environment nope", id="unknown-env"),
        pytest.param({"name": "../x"}, 400, "NAME: must be", id="unsafe-name"),
    ],
)
def test_refusals_change_nothing(settings, changes, status, message) -> None:
    with pytest.raises(EnvError, match=message) as refused:
        _publish(settings, **changes)
    assert refused.value.status == status
    assert not Path(settings.published_root, "envs").exists()
    assert publish.read_published(settings.published_root) == []


def test_publishing_twice_and_publishing_off_are_refused(settings) -> None:
    _publish(settings)
    with pytest.raises(EnvError, match="'vision-tiny' is already published; unpublish it first"):
        _publish(settings, version=1)
    assert [e.version for e in publish.read_published(settings.published_root)] == [2]
    settings.published_root = ""
    with pytest.raises(EnvError, match="published_root is not set: publishing is off"):
        _publish(settings, catalogue_id="other")


def test_unpublish_removes_the_entry_its_copy_and_kernel(settings) -> None:
    _publish(settings)
    _publish(settings, catalogue_id="second", version=1)
    message = publish.unpublish(settings, "vision-tiny")
    assert message.startswith("unpublished vision-tiny (vision-lab/tiny v2)")
    root = Path(settings.published_root)
    assert [e.id for e in publish.read_published(root)] == ["second"]
    assert not (root / "envs" / "vision-tiny").exists() and not (root / "kernels" / "published-vision-tiny").exists()
    with pytest.raises(EnvError, match="'vision-tiny' is not published; published: second") as unknown:
        publish.unpublish(settings, "vision-tiny")
    assert unknown.value.status == 404


def test_a_broken_published_list_is_left_out_of_the_catalogue(settings, caplog) -> None:
    Path(settings.published_root).mkdir()
    Path(settings.published_root, "catalog.json").write_text("{not json")
    catalogue = load_catalogue(
        REPO_ROOT / "images" / "catalog.toml", {"demo_venv": "/v", "pytorch_venv": "", "pytorch_image": ""}
    )
    assert project_envs.with_published(settings, catalogue) is catalogue
    assert "published environments left out" in caplog.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param([], "body: must be an object", id="not-object"),
        pytest.param({"project": "p", "environment": "e"}, "description: required", id="missing"),
        pytest.param({"project": "p", "environment": "e", "description": "d", "x": 1}, "x: unknown key", id="unknown"),
        pytest.param(
            {"project": "p", "environment": "e", "description": "d", "version": True},
            "version: must be a whole number",
            id="bool-version",
        ),
        pytest.param(
            {"project": "p", "environment": "e", "description": "d", "gpu": "yes"}, "gpu: must be bool", id="gpu-type"
        ),
    ],
)
def test_publish_body_is_checked(body, message) -> None:
    with pytest.raises(web.HTTPError) as refused:
        parse_publish_body(body)
    assert refused.value.status_code == 400 and message in refused.value.log_message


def test_the_spawn_form_offers_a_published_entry_to_everyone(settings) -> None:
    import re

    from spawners.slurm.cluster_parsers import parse_sinfo
    from spawners.slurm.form import render_options_form

    _publish(settings, description="hpchub-hello for all")
    catalogue = project_envs.with_published(
        settings,
        load_catalogue(
            REPO_ROOT / "images" / "catalog.toml", {"demo_venv": "/v", "pytorch_venv": "", "pytorch_image": ""}
        ),
    )
    cluster = parse_sinfo("gpu*|8:00:00|gpu:h200:4|gpu[01-02]\ncpu|4:00:00|(null)|cpu01\n")
    html = render_options_form(cluster, ["tiny-lab"], catalogue, {})  # erin: not in vision-lab
    found = re.search(r'<option value="vision-tiny"([^>]*)>([^<]*)</option>', html)
    assert found and "disabled" not in found.group(1)
    assert found.group(2) == "vision-lab: tiny (v2): hpchub-hello for all"
