"""The project group's member list with the hub's service account (hub/envs/unix.py) and the setting
that names the account (c.HPCHubEnvironments.hub_account)."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from hub.envs.config import HPCHubEnvironments
from hub.envs.unix import group_members

pytestmark = pytest.mark.unit

ACCOUNTS = {"alice", "bob", "hpchub"}


@pytest.mark.parametrize(
    ("members", "hub_account", "expected"),
    [
        pytest.param(["bob", "alice"], "", ["alice", "bob"], id="members-only"),
        pytest.param(["bob", "alice"], "hpchub", ["alice", "bob", "hpchub"], id="with-the-hub"),
        pytest.param([], "hpchub", ["hpchub"], id="no-members-yet"),
        pytest.param(["bob", "ghost"], "nohub", ["bob"], id="without-unix-accounts-left-out"),
        pytest.param(["hpchub", "bob"], "hpchub", ["bob", "hpchub"], id="once"),
    ],
)
def test_group_members(members, hub_account, expected) -> None:
    assert group_members(members, hub_account, exists=ACCOUNTS.__contains__) == expected


@pytest.mark.parametrize("value", ["", "hpchub", "svc_hub-2"])
def test_hub_account_accepts_a_service_account_name(value: str) -> None:
    assert HPCHubEnvironments(hub_account=value).hub_account == value


@pytest.mark.parametrize("value", ["root", "Hpchub", "hub,bob", "-hub", "a" * 33, "hub bob"])
def test_hub_account_refuses_root_and_bad_names(value: str) -> None:
    with pytest.raises(TraitError, match=r"c\.HPCHubEnvironments\.hub_account: .* got"):
        HPCHubEnvironments(hub_account=value)


def _refused(path):
    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    return refuse


def test_a_space_the_hub_may_not_read_is_a_503_not_an_empty_list(tmp_path, monkeypatch) -> None:
    from hub.envs import service, space

    (tmp_path / "vision-lab" / "envs").mkdir(parents=True)
    monkeypatch.setattr(space.os, "listdir", _refused(tmp_path / "vision-lab" / "envs"))
    with pytest.raises(service.EnvError) as refused:
        service.describe(HPCHubEnvironments(project_root=str(tmp_path)), "vision-lab")
    assert refused.value.status == 503 and "not in the group hpc-vision-lab" in refused.value.message


def test_a_space_the_hub_may_not_write_is_a_503_naming_root(tmp_path, monkeypatch) -> None:
    from hub.envs import service

    (tmp_path / "vision-lab" / "envs" / "tiny").mkdir(parents=True)
    monkeypatch.setattr(service, "env_lock", _refused(tmp_path / "vision-lab" / "envs" / "tiny" / ".lock"))
    with pytest.raises(service.EnvError) as refused:
        service.remove(HPCHubEnvironments(project_root=str(tmp_path)), "vision-lab", "tiny", None)
    assert refused.value.status == 503 and "needs root" in refused.value.message and ".lock" in refused.value.message
