"""Unit tests for the environments pages' pure parts (hub/project_pages/environments.py): who sees and
who changes a project's environments, which form field a refusal belongs to, the version rows and
the build log's tail. The pages themselves run in tests/integration/test_environment_pages.py."""

from __future__ import annotations

import pytest

from hub.envs.service import EnvError
from hub.ledger import Ledger, NotFound, upgrade
from hub.ledger.types import Role
from hub.project_pages import environments as pages
from hub.project_pages.gather import Viewer

pytestmark = pytest.mark.unit


@pytest.fixture
def ledger(ledger_url: str):
    upgrade(ledger_url)
    with Ledger(ledger_url, cluster="c1") as ledger:
        ledger.create_project("vision-lab", account="vision-acc", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "alice", role="pi", who="admin")
        ledger.add_member("vision-lab", "bob", role="member", who="admin")
        ledger.add_member("vision-lab", "mia", role="manager", who="admin")
        ledger.create_project("tiny-lab", account="tiny-lab", kind="research", gpu_hours=1, who="admin")
        ledger.add_member("tiny-lab", "erin", role="pi", who="admin")
        yield ledger


@pytest.mark.parametrize(
    ("viewer", "role", "can_change"),
    [
        pytest.param(Viewer("alice", False), Role.PI, True, id="pi"),
        pytest.param(Viewer("mia", False), Role.MANAGER, True, id="manager"),
        pytest.param(Viewer("bob", False), Role.MEMBER, False, id="member"),
        pytest.param(Viewer("admin", True), None, True, id="admin"),
    ],
)
def test_members_see_managers_change(ledger, viewer, role, can_change) -> None:
    access = pages.environments_access(ledger, "vision-lab", viewer)
    assert (access.role, access.can_change, access.slurm_account) == (role, can_change, "vision-acc")
    assert access.members == {"alice": "pi", "bob": "member", "mia": "manager"}


@pytest.mark.parametrize("project", ["vision-lab", "no-such-lab"], ids=["outsider", "unknown"])
def test_outsiders_and_unknown_projects_are_the_same_404(ledger, project) -> None:
    with pytest.raises(NotFound, match=f"no project '{project}'"):
        pages.environments_access(ledger, project, Viewer("erin", False))


@pytest.mark.parametrize(
    ("error", "field", "shown"),
    [
        pytest.param(EnvError("", "NAME: must be 1-32 characters"), "name", "must be 1-32 characters", id="name"),
        pytest.param(
            EnvError("NAME", "version 2 of p/x is still building", 409),
            "name",
            "version 2 of p/x is still building",
            id="building",
        ),
        pytest.param(
            EnvError("spec", "spec line 1 ('x>=1'): every package must be pinned"),
            "spec",
            "spec line 1 ('x>=1'): every package must be pinned",
            id="spec-line",
        ),
        pytest.param(EnvError("spec", "spec: unknown package 'nope'"), "spec", "unknown package 'nope'", id="spec"),
        pytest.param(
            EnvError("caller", "p has no pi, manager or instructor to build as"),
            "",
            "caller: p has no pi, manager or instructor to build as",
            id="form",
        ),
    ],
)
def test_a_refusal_goes_next_to_its_field(error, field, shown) -> None:
    assert pages.field_of(error) == field
    assert pages.form_message(error) == shown


def test_version_rows_newest_first_with_the_default_marked() -> None:
    environment = {"project": "vision-lab", "name": "tiny", "versions": [
        {"version": 1, "state": "ready", "default": True, "submitted_at": "2026-03-02T09:00:00+00:00"},
        {"version": 2, "state": "building", "default": False, "submitted_at": None},
    ]}  # fmt: skip
    rows = pages.version_rows(environment)
    assert [(row["version"], row["label"]) for row in rows] == [(2, "v2"), (1, "v1 (default)")]
    assert rows[1]["submitted_label"] == "2026-03-02 09:00:00 UTC" and rows[0]["submitted_label"] == "-"
    assert rows[0]["page_path"] == "hpchub/projects/vision-lab/environments/tiny/2"


def test_log_tail_and_the_offset_the_script_follows_from(tmp_path) -> None:
    from hub.envs.space import ProjectSpace

    space = ProjectSpace(tmp_path, "vision-lab")
    space.version_dir("tiny", 1).mkdir(parents=True)
    log = space.version_dir("tiny", 1) / "build.log"
    assert pages.read_log_tail(space, "tiny", 1) == ("", 0, False)  # no log yet: follow from 0
    log.write_bytes(b"line 1\nline 2\n")
    assert pages.read_log_tail(space, "tiny", 1) == ("line 1\nline 2\n", 14, False)
    assert pages.read_log_tail(space, "tiny", 1, limit=7) == ("line 2\n", 14, True)
    log.unlink()
    log.symlink_to(tmp_path / "elsewhere")
    text, offset, cut = pages.read_log_tail(space, "tiny", 1)
    assert text.startswith("hpchub: the log is not shown:") and "symbolic link" in text and (offset, cut) == (0, False)
