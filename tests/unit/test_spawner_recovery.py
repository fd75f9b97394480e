"""What the spawner keeps in its JupyterHub state for a hub that dies, and what it does with it
at the restart (spawners/slurm/spawner.py; the real kill -9 is tests/integration/test_hub_faults.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from traitlets.config import Config

from hub.ledger import Ledger, upgrade
from hub.ledger.types import Booking, SessionState
from spawners.slurm.spawner import SlurmGPUSpawner

pytestmark = pytest.mark.unit

CLUSTER = "hpchub"


@pytest.fixture
def ledger(ledger_url: str):
    upgrade(ledger_url)
    with Ledger(ledger_url, cluster=CLUSTER) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "bob", role="member", who="admin")
        ledger.add_member("vision-lab", "alice", role="member", who="admin")
        yield ledger


def spawner(ledger_url: str, user: str = "bob", name: str = "") -> SlurmGPUSpawner:
    config = Config()
    config.HPCHubLedger.db_url = ledger_url
    config.HPCHubLedger.cluster = CLUSTER
    user = SimpleNamespace(name=user, url=f"/user/{user}/", groups=[])
    if not name:
        return SlurmGPUSpawner(user=user, config=config)
    orm_spawner = SimpleNamespace(name=name, state=None, server=None)  # a named server's name is its row's
    return SlurmGPUSpawner(user=user, config=config, orm_spawner=orm_spawner)


def test_the_state_says_a_start_is_under_way_until_the_server_answers(ledger_url: str) -> None:
    restored = spawner(ledger_url)
    restored.load_state({"job_id": "5", "ledger_session": 3, "starting": True, "version": 1})
    assert (restored.job_id, restored.ledger_session, restored._starting) == ("5", 3, True)
    assert restored.get_state() == {"job_id": "5", "ledger_session": 3, "starting": True, "version": 1, "node": ""}
    admitted_only = spawner(ledger_url)
    admitted_only.ledger_session, admitted_only._starting = 4, True  # a hold before sbatch returned
    assert admitted_only.get_state() == {"ledger_session": 4, "starting": True, "version": 1}
    restored.clear_state()
    assert restored.get_state() == {} and not restored._starting and restored.ledger_session is None


async def test_a_start_interrupted_before_sbatch_returned_releases_its_hold_at_restart(ledger, ledger_url) -> None:
    session = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1))
    held = ledger.figures("vision-lab").held_mgs
    assert held > 0
    restored = spawner(ledger_url)
    restored.load_state({"ledger_session": session, "starting": True, "version": 1})
    assert await restored.poll() == 1  # stopped: JupyterHub then cleans up the server
    info = ledger.session(session)
    assert info.state is SessionState.ENDED and info.job_id is None
    assert info.message == "stopped: the hub restarted while this server was starting; no job had been submitted"
    assert ledger.figures("vision-lab").held_mgs == 0 and ledger.charges("vision-lab") == []
    assert restored.get_state() == {} and await restored.poll() == 1


async def test_a_job_is_re_adopted_only_for_the_server_and_user_its_session_recorded(ledger, ledger_url) -> None:
    session = ledger.admit("vision-lab", "bob", "", Booking("h200", 1, 1))
    ledger.record_job_id(session, "5")
    for user, name, job_id, adopted in (("bob", "", "5", True), ("bob", "", "6", False), ("alice", "", "5", False),
                                        ("bob", "other", "5", False)):  # fmt: skip
        restored = spawner(ledger_url, user, name)
        restored.load_state({"job_id": job_id, "ledger_session": session, "version": 1})
        assert await restored._recorded_for_this_server() is adopted, (user, name, job_id)
    without_session = spawner(ledger_url)
    without_session.load_state({"job_id": "9", "version": 1})  # state from before the ledger: trusted
    assert await without_session._recorded_for_this_server()
