"""SlurmCluster: its settings, the clients it makes, and the older settings that still reach it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from spawners.slurm.cluster import SlurmCluster

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_slurms_own() -> None:
    cluster = SlurmCluster.from_config(Config())
    assert (cluster.name, cluster.slurm_conf, cluster.bin_dir, cluster.command_timeout, cluster.job_name_prefix) == (
        "",
        "",
        "",
        30.0,
        "hpchub",
    )
    client = cluster.client()
    assert (client.slurm_conf, client.bin_dir, client.timeout) == (None, "", 30.0)
    assert cluster.default_job_name == "hpchub-jupyter"
    assert SlurmCluster.from_config(None).slurm_conf == ""


def test_every_setting_has_help_with_a_default_and_an_example() -> None:
    for name, trait in SlurmCluster.class_traits(config=True).items():
        assert "Default" in trait.help and "Example" in trait.help, name


def test_the_client_honours_the_cluster() -> None:
    c = Config()
    c.SlurmCluster.slurm_conf = "/etc/slurm/site.conf"
    c.SlurmCluster.bin_dir = "/opt/slurm/bin"
    c.SlurmCluster.command_timeout = 12.5
    client = SlurmCluster.from_config(c).client()
    assert (client.slurm_conf, client.bin_dir, client.timeout) == ("/etc/slurm/site.conf", "/opt/slurm/bin", 12.5)
    assert client.build_env()["SLURM_CONF"] == "/etc/slurm/site.conf"
    assert client.build_argv(["squeue"], {}, None) == ["/opt/slurm/bin/squeue"]
    assert SlurmCluster.from_config(c).client(timeout=60).timeout == 60


@pytest.mark.parametrize(
    ("section", "name", "trait", "value"),
    [
        ("SlurmGPUSpawner", "slurm_conf", "slurm_conf", "/etc/slurm/old.conf"),
        ("SlurmGPUSpawner", "slurm_bin_dir", "bin_dir", "/usr/local/bin"),
        ("SlurmGPUSpawner", "slurm_command_timeout", "command_timeout", 12.0),
    ],
    ids=["slurm_conf", "slurm_bin_dir", "slurm_command_timeout"],
)
def test_the_spawners_older_settings_still_set_the_cluster(section, name, trait, value) -> None:
    c = Config()
    c[section][name] = value
    assert getattr(SlurmCluster.from_config(c), trait) == value
    c.SlurmCluster[trait] = type(value)("/x") if isinstance(value, str) else 99.0
    assert getattr(SlurmCluster.from_config(c), trait) == c.SlurmCluster[trait]  # the new setting wins


def test_overrides_win_and_empty_ones_leave_the_configured_value() -> None:
    c = Config()
    c.SlurmCluster.slurm_conf = "/etc/slurm/site.conf"
    assert SlurmCluster.from_config(c, slurm_conf="/tmp/cli.conf").slurm_conf == "/tmp/cli.conf"
    assert SlurmCluster.from_config(c, slurm_conf=None).slurm_conf == "/etc/slurm/site.conf"
    assert SlurmCluster.from_config(c, slurm_conf="").slurm_conf == "/etc/slurm/site.conf"


@pytest.mark.parametrize(
    ("trait", "value"), [("name", "Bad Name"), ("name", "-x"), ("command_timeout", 0.0)], ids=["space", "dash", "zero"]
)
def test_bad_settings_are_refused(trait, value) -> None:
    c = Config()
    c.SlurmCluster[trait] = value
    with pytest.raises(TraitError, match=f"SlurmCluster.{trait}"):
        SlurmCluster.from_config(c)


def test_the_authenticators_and_the_builds_own_slurm_conf_win_for_them(monkeypatch) -> None:
    from hub.auth.oidc import HPCHubOIDCAuthenticator
    from hub.envs.build_jobs import build_client as _client
    from hub.envs.config import HPCHubEnvironments

    monkeypatch.delenv("SLURM_CONF", raising=False)
    c = Config()
    c.SlurmCluster.slurm_conf = "/etc/slurm/site.conf"
    c.SlurmCluster.bin_dir = "/opt/slurm/bin"
    assert _client(HPCHubEnvironments(config=c)).slurm_conf == "/etc/slurm/site.conf"
    c.HPCHubEnvironments.slurm_conf = "/etc/slurm/builds.conf"
    client = _client(HPCHubEnvironments(config=c))
    assert (client.slurm_conf, client.bin_dir, client.timeout) == ("/etc/slurm/builds.conf", "/opt/slurm/bin", 60)
    monkeypatch.setenv("SLURM_CONF", "/run/env.conf")
    assert _client(HPCHubEnvironments(config=Config())).slurm_conf == "/run/env.conf"
    assert HPCHubOIDCAuthenticator.class_traits()["slurm_conf"].help.startswith("Deprecated: set c.SlurmCluster")


def test_the_spawner_gets_its_client_and_job_name_from_the_cluster() -> None:
    from spawners.slurm.spawner import SlurmGPUSpawner

    c = Config()
    c.SlurmCluster.slurm_conf = "/etc/slurm/site.conf"
    c.SlurmCluster.command_timeout = 45.0
    c.SlurmCluster.job_name_prefix = "portal"
    spawner = SlurmGPUSpawner(config=c)
    assert (spawner.client.slurm_conf, spawner.client.timeout) == ("/etc/slurm/site.conf", 45.0)
    assert spawner.job_name == "portal-jupyter"
    c = Config()
    c.SlurmGPUSpawner.slurm_conf = "/etc/slurm/old.conf"
    c.SlurmGPUSpawner.slurm_bin_dir = "/usr/bin"
    c.SlurmGPUSpawner.slurm_command_timeout = 9.0
    c.SlurmGPUSpawner.job_name = "site-jobs"
    spawner = SlurmGPUSpawner(config=c)
    assert (spawner.client.slurm_conf, spawner.client.bin_dir, spawner.client.timeout) == (
        "/etc/slurm/old.conf",
        "/usr/bin",
        9.0,
    )
    assert spawner.job_name == "site-jobs"
    assert SlurmGPUSpawner(config=Config()).job_name == "hpchub-jupyter"


def test_the_cli_reads_slurm_conf_from_the_flag_else_the_environment_else_the_config(monkeypatch, tmp_path) -> None:
    import argparse

    from hub.cli_support import slurm_cluster

    config = tmp_path / "hpchub_config.py"
    config.write_text("c.SlurmCluster.slurm_conf = '/etc/slurm/site.conf'\nc.SlurmCluster.name = 'sc6'\n")
    monkeypatch.delenv("SLURM_CONF", raising=False)
    args = argparse.Namespace(config=str(config), slurm_conf=None)
    assert (slurm_cluster(args).slurm_conf, slurm_cluster(args).name) == ("/etc/slurm/site.conf", "sc6")
    monkeypatch.setenv("SLURM_CONF", "/run/env.conf")
    assert slurm_cluster(args).slurm_conf == "/run/env.conf"
    args.slurm_conf = "/tmp/flag.conf"
    assert slurm_cluster(args).slurm_conf == "/tmp/flag.conf"


def test_a_slurm_client_is_made_only_by_the_cluster() -> None:
    listed = subprocess.run(
        ["grep", "-rn", "--include=*.py", "SlurmClient(", "hub", "spawners"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    places = sorted({line.split(":", 1)[0] for line in listed.splitlines()})
    assert [place for place in places if place != "spawners/slurm/client.py"] == ["spawners/slurm/cluster.py"], listed
    class_lines = [line for line in listed.splitlines() if line.startswith("spawners/slurm/client.py")]
    assert all(re.search(r"class SlurmClient\b", line) for line in class_lines), class_lines
