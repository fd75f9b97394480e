"""The demo's generated configuration carries what `hpchub demo up` was asked (hub/demo_config.py)."""

from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from hub.demo_config import configure_demo

pytestmark = pytest.mark.unit


def _settings(tmp_path, **changes) -> str:
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    for name in ("proxy_token", "oidc_client_secret", "reconcile_token", "service_token"):
        (hub_dir / name).write_text("demo-only\n")
    settings = {
        "state_dir": str(tmp_path), "hub_public_port": 8000, "hub_api_port": 8081, "proxy_api_port": 8001,
        "issuer": "http://127.0.0.1:9000", "oidc_client_secret_file": str(hub_dir / "oidc_client_secret"),
        "slurm_conf": "/etc/slurm/slurm.conf", "job_name": "hpchub-hpchub", "catalogue_file": "catalog.toml",
        "venv": "/opt/hpchub/venv", "templates": "/opt/hpchub/templates", "ledger_url": "sqlite://",
        "cluster_name": "hpchub", **changes,
    }  # fmt: skip
    path = hub_dir / "demo-config.json"
    path.write_text(json.dumps(settings))
    return str(path)


@pytest.mark.parametrize(("changes", "minutes"), [({"idle_timeout": 2.0}, 2.0), ({"idle_timeout": 0}, 0.0), ({}, 30.0)])
def test_the_idle_timeout_is_in_the_configuration_the_reconciler_unit_and_doctor_read(tmp_path, changes, minutes):
    """`demo up --idle-timeout 2`: not only the root reconciler's --stop-idle-after; the --run-as
    reconciler (its unit runs `hpchub --config ... reconcile`) and doctor read the config."""
    c = Config()
    configure_demo(c, _settings(tmp_path, **changes))
    assert c.HPCHubLedger.idle_timeout_minutes == minutes
