"""A batchspawner setting the Slurm spawner would ignore is refused, naming it and its replacement."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from batchspawner import SlurmSpawner
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from spawners.slurm.refused_traits import (
    REFUSED_TRAITS,
    RefusedSettingError,
    check_spawner_config,
    refused_settings,
)
from spawners.slurm.spawner import SlurmGPUSpawner

pytestmark = pytest.mark.unit


def _load(tmp_path, text: str) -> Config:
    (tmp_path / "site_config.py").write_text(textwrap.dedent(text))
    return PyFileConfigLoader("site_config.py", str(tmp_path)).load_config()


@pytest.mark.parametrize(
    ("line", "named", "instead"),
    [
        ('c.SlurmGPUSpawner.req_memory = "8G"', "c.SlurmGPUSpawner.req_memory", "extra_sbatch = ['--mem-per-gpu=16G']"),
        ('c.SlurmSpawner.req_nprocs = "4"', "c.SlurmSpawner.req_nprocs", "--cpus-per-gpu"),
        ('c.BatchSpawnerBase.req_runtime = "60"', "c.BatchSpawnerBase.req_runtime", "default_hours"),
        ('c.SlurmGPUSpawner.batch_script = "#!/bin/sh"', "c.SlurmGPUSpawner.batch_script", "script.py"),
        ('c.SlurmGPUSpawner.exec_prefix = ""', "c.SlurmGPUSpawner.exec_prefix", "sudo -u"),
        ('c.SlurmGPUSpawner.req_gres = "gpu:h200:1"', "c.SlurmGPUSpawner.req_gres", "gpu_type and gpus"),
    ],
    ids=["req_memory", "req_nprocs-on-batchspawner-class", "req_runtime-on-base", "batch_script", "exec_prefix-even-empty",
         "req_gres"],
)  # fmt: skip
def test_a_site_setting_is_refused_naming_the_trait_and_what_to_set(tmp_path, line, named, instead):
    config = _load(tmp_path, f"c = get_config()\n{line}\n")
    with pytest.raises(RefusedSettingError) as refused:
        check_spawner_config(config, SlurmGPUSpawner)
    assert named in str(refused.value)
    assert instead in str(refused.value)


def test_every_setting_is_named_once_and_ours_are_not_refused(tmp_path):
    config = _load(tmp_path, """
        c = get_config()
        c.SlurmGPUSpawner.req_memory = "8G"
        c.SlurmGPUSpawner.req_partition = "gpu"
        c.SlurmGPUSpawner.extra_sbatch = ["--mem-per-gpu=16G"]
        c.SlurmGPUSpawner.default_hours = 2.0
        c.Spawner.env_keep = ["PATH"]
    """)  # fmt: skip
    lines = refused_settings(config, SlurmGPUSpawner)
    assert [line.split(" is ")[0] for line in lines] == [
        "c.SlurmGPUSpawner.req_memory",
        "c.SlurmGPUSpawner.req_partition",
    ]


def test_stock_batchspawner_keeps_its_settings(tmp_path):
    config = _load(tmp_path, 'c = get_config()\nc.SlurmSpawner.req_memory = "8G"\n')
    check_spawner_config(config, SlurmSpawner)  # the benchmark's stock hub: not ours to refuse


def test_every_refused_trait_is_a_real_batchspawner_setting_we_do_not_define():
    inherited = set(SlurmSpawner.class_traits(config=True))
    ours = {name for name in SlurmGPUSpawner.class_own_traits(config=True)}
    assert set(REFUSED_TRAITS) <= inherited
    assert not set(REFUSED_TRAITS) & ours


def test_building_the_spawner_refuses_too():
    config = Config()
    config.SlurmGPUSpawner.req_memory = "8G"
    user = SimpleNamespace(name="alice", url="/user/alice/", groups=[])
    with pytest.raises(RefusedSettingError, match="req_memory"):
        SlurmGPUSpawner(user=user, config=config)


def test_a_real_jupyterhub_refuses_to_start(tmp_path):
    """The hub's own start: the config loader, the authenticator's start-up checks, exit non-zero."""
    (tmp_path / "jupyterhub_config.py").write_text(textwrap.dedent(f"""
        c = get_config()
        c.JupyterHub.authenticator_class = "hpchub-oidc"
        c.JupyterHub.spawner_class = "slurm-gpu"
        c.JupyterHub.db_url = "sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
        c.JupyterHub.cookie_secret_file = "{tmp_path / 'cookie_secret'}"
        c.JupyterHub.pid_file = "{tmp_path / 'jupyterhub.pid'}"
        c.JupyterHub.bind_url = "http://127.0.0.1:1"
        c.HPCHubSite.demo_mode = True
        c.HPCHubOIDCAuthenticator.issuer = "http://127.0.0.1:1/"
        c.SlurmGPUSpawner.req_memory = "8G"
    """))  # fmt: skip
    hub = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(tmp_path / "jupyterhub_config.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert hub.returncode != 0
    assert "c.SlurmGPUSpawner.req_memory is a batchspawner setting" in hub.stderr + hub.stdout
    assert "extra_sbatch" in hub.stderr + hub.stdout
