"""The spawner validates options through JupyterHub's public ``apply_user_options`` hook: a refused
option is HTTP 400 naming the field, logged in one line without JupyterHub's traceback; a site's own
hook (which would skip the validation and the budget hold) is refused when the spawner is built."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import Spawner
from tornado import web
from traitlets.config import Config

from spawners.slurm.options import OptionsError
from spawners.slurm.refused_traits import RefusedSettingError
from spawners.slurm.spawner import SlurmGPUSpawner

pytestmark = pytest.mark.unit


def _spawner(config: Config | None = None) -> SlurmGPUSpawner:
    user = SimpleNamespace(name="bob", url="/user/bob/", groups=[])
    return SlurmGPUSpawner(user=user, config=config or Config())


def test_the_public_hook_is_used_and_the_private_runner_is_jupyterhubs() -> None:
    assert SlurmGPUSpawner._run_apply_user_options is Spawner._run_apply_user_options
    assert callable(_spawner().apply_user_options)


def test_a_refused_option_is_400_naming_the_field_without_a_traceback(caplog) -> None:
    spawner = _spawner()
    spawner.check_account_rules = lambda: None

    async def refuse(_options):
        raise OptionsError("gpus", "gpus: must be a whole number from 1 to 4; got 9")

    spawner.validate_options = refuse
    with caplog.at_level(logging.INFO), pytest.raises(web.HTTPError) as excinfo:
        asyncio.run(spawner._run_apply_user_options({"gpus": 9}))
    assert excinfo.value.status_code == 400 and excinfo.value.log_message.startswith("gpus: ")
    assert not any(record.exc_info for record in caplog.records)
    assert any("refused options for" in record.getMessage() for record in caplog.records)


def test_a_fault_is_500_with_jupyterhubs_traceback(caplog) -> None:
    spawner = _spawner()
    spawner.check_account_rules = lambda: None

    async def broken(_options):
        raise KeyError("x")

    spawner.validate_options = broken
    with pytest.raises(web.HTTPError) as excinfo:
        asyncio.run(spawner._run_apply_user_options({}))
    assert excinfo.value.status_code == 500
    assert any(record.exc_info for record in caplog.records)


def test_a_sites_own_apply_user_options_is_refused() -> None:
    config = Config()
    config.Spawner.apply_user_options = {"image": "image"}
    with pytest.raises(RefusedSettingError, match="apply_user_options"):
        _spawner(config)


def test_the_hubs_start_check_names_a_sites_apply_user_options() -> None:
    from spawners.slurm.refused_traits import refused_settings  # noqa: PLC0415

    config = Config()
    config.SlurmGPUSpawner.apply_user_options = {"image": "image"}
    [line] = refused_settings(config, SlurmGPUSpawner)
    assert line.startswith("c.SlurmGPUSpawner.apply_user_options is set") and "pre_spawn_hook" in line
