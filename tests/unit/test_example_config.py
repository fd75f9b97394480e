"""The annotated example /etc/hpchub/hpchub_config.py (hub/examples/, `hpchub deploy config`):
loaded with traitlets as JupyterHub loads it, every name it sets is a real configurable trait,
and our own classes accept its values -- so the example cannot drift from the code."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.spawner import Spawner
from traitlets.config.loader import PyFileConfigLoader

from hub.allocations.settings import HPCHubAllocations
from hub.api.lab_hours_state import HPCHubCourses
from hub.api.settings import HPCHubAPI
from hub.auth.account_rules import HPCHubAccountRules
from hub.auth.oidc import HPCHubOIDCAuthenticator
from hub.deploy import example_config, write_example_config
from hub.envs.config import HPCHubEnvironments
from hub.ledger.runtime import HPCHubLedger
from hub.mail.settings import HPCHubMail
from hub.project_pages.settings import HPCHubPages
from hub.site_secrets import HPCHubSite, SiteConfigError, read_secret_file
from spawners.slurm.cluster import SlurmCluster
from spawners.slurm.spawner import SlurmGPUSpawner

pytestmark = pytest.mark.unit

CLASSES = {cls.__name__: cls for cls in (
    JupyterHub, ConfigurableHTTPProxy, Spawner, Authenticator, HPCHubOIDCAuthenticator, SlurmGPUSpawner,
    HPCHubLedger, HPCHubEnvironments, HPCHubCourses, HPCHubPages, HPCHubAPI, HPCHubSite, HPCHubAccountRules,
    SlurmCluster, HPCHubMail, HPCHubAllocations,
)}  # fmt: skip
# The list: what the example must cover (a name of each part).
COVERED = {
    "cluster": ("HPCHubLedger", "cluster"), "partitions": ("HPCHubEnvironments", "build_partition"),
    "gpu weights": ("HPCHubLedger", "gpu_weights"), "billing": ("HPCHubLedger", "billing_units_per_weighted_gpu_minute"),
    "identity provider": ("HPCHubOIDCAuthenticator", "issuer"),
    "mapping rules": ("HPCHubOIDCAuthenticator", "scoped_domains"),
    "account exceptions": ("HPCHubOIDCAuthenticator", "account_map_file"),
    "identity deny-list": ("HPCHubAccountRules", "denied_accounts"),
    "identity minimum uid": ("HPCHubAccountRules", "minimum_uid"),
    "projects database": ("HPCHubLedger", "db_url"), "environments root": ("HPCHubEnvironments", "project_root"),
    "catalogue": ("SlurmGPUSpawner", "catalogue_file"), "nodes reach the hub": ("JupyterHub", "hub_connect_url"),
}  # fmt: skip


@pytest.fixture
def loaded(tmp_path, monkeypatch):
    """The example as /etc/hpchub would hold it: the file and its secrets beside it. The metrics
    collector is recorded, not registered (registering reads the ledger: the example's PostgreSQL)."""
    registered = []
    monkeypatch.setattr("hub.metrics.register_ledger_metrics", registered.append)
    config = write_example_config(str(tmp_path / "hpchub_config.py"))
    for name in ("oidc_client_secret", "reconcile_token"):
        (tmp_path / name).write_text("x" * 64 + "\n")
        (tmp_path / name).chmod(0o600)
    loaded = PyFileConfigLoader(config.name, str(config.parent)).load_config()
    assert len(registered) == 1
    return loaded


def test_every_name_in_the_example_is_a_configurable_trait(loaded) -> None:
    unknown = []
    for section, values in loaded.items():
        cls = CLASSES.get(section)
        assert cls is not None, f"c.{section}: not a class the example is checked against"
        traits = cls.class_traits(config=True)
        unknown += [f"c.{section}.{name}" for name in values if name not in traits]
    assert unknown == []


def test_the_example_covers_what_a_centre_configures(loaded) -> None:
    missing = [part for part, (section, name) in COVERED.items() if name not in loaded.get(section, {})]
    assert missing == []
    assert loaded.HPCHubSite.demo_mode is False and loaded.JupyterHub.spawner_class == "slurm-gpu"


def test_our_classes_accept_the_examples_values(loaded) -> None:
    for name in ("HPCHubLedger", "HPCHubEnvironments", "HPCHubCourses", "HPCHubPages", "HPCHubAPI", "HPCHubSite"):
        instance = CLASSES[name](config=loaded)  # traitlets validates each value here
        for trait, value in loaded[name].items():
            assert getattr(instance, trait) == value, (name, trait)
    assert set(HPCHubLedger(config=loaded).gpu_weights) == {"h200", "a100"}


def test_the_gpu_weights_agree_with_the_billing_weights_the_comment_names(loaded) -> None:
    units = loaded.HPCHubLedger.billing_units_per_weighted_gpu_minute
    weights = {gpu: float(weight) * units for gpu, weight in loaded.HPCHubLedger.gpu_weights.items()}
    assert weights == {"h200": 2, "a100": 1}
    assert '"GRES/gpu:h200=2,GRES/gpu:a100=1"' in example_config()


def test_deploy_config_never_overwrites(tmp_path) -> None:
    target = tmp_path / "hpchub_config.py"
    write_example_config(str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 & ~_umask()
    target.write_text("site's own\n")
    with pytest.raises(FileExistsError):
        write_example_config(str(target))
    assert target.read_text() == "site's own\n"


@pytest.mark.parametrize(("mode", "words"), [(0o644, "mode 0644 lets others read it"), (0o640, "mode 0640")])
def test_secret_files_others_can_read_are_refused(tmp_path, mode: int, words: str) -> None:
    secret = tmp_path / "oidc_client_secret"
    secret.write_text("s3cret\n")
    secret.chmod(mode)
    with pytest.raises(SiteConfigError, match=words):
        read_secret_file(secret)
    secret.chmod(0o600)
    assert read_secret_file(secret) == "s3cret"


def test_missing_or_empty_secret_files_are_named(tmp_path) -> None:
    with pytest.raises(SiteConfigError, match=f"secret file {tmp_path}/absent: cannot be read"):
        read_secret_file(tmp_path / "absent")
    empty = Path(tmp_path / "empty")
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(SiteConfigError, match="empty"):
        read_secret_file(empty)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
