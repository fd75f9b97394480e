"""The demo's generated configuration carries what `hpchub demo up` was asked (hub/demo/config.py)."""

from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from hub.demo import portal
from hub.demo.config import configure_demo
from tests.conftest import REPO_ROOT

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


# --- `demo up` flags on a demo that exists (hub/demo/portal.py) ------------------------------------------


def _up_args(*argv: str):
    import argparse  # noqa: PLC0415

    from hub.demo.portal import add_parser  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"), lambda p: p.add_argument("--state-dir", required=True))
    return parser.parse_args(["demo", "up", *argv])


def test_a_new_demo_takes_the_flags_and_the_defaults(tmp_path):
    from hub.demo.portal import _demo_settings  # noqa: PLC0415

    settings = _demo_settings(_up_args("--state-dir", str(tmp_path), "--idle-timeout", "2"), creating=True)
    assert (settings.idle_timeout, settings.reconcile_interval, settings.named_server_limit) == (2, 60, 2)


def test_a_changed_flag_is_taken_when_the_demo_is_down_and_refused_while_it_runs(tmp_path, monkeypatch):
    """It was silently ignored: `demo up --idle-timeout 5` on a demo made with 2 kept 2."""
    from hub.demo.cluster.procs import Daemon  # noqa: PLC0415
    from hub.demo.portal import _demo_settings  # noqa: PLC0415

    _demo_settings(_up_args("--state-dir", str(tmp_path), "--idle-timeout", "2"), creating=True).save()
    again = _up_args("--state-dir", str(tmp_path))  # no flags: the saved values
    assert _demo_settings(again, creating=True).idle_timeout == 2
    changed = _up_args("--state-dir", str(tmp_path), "--idle-timeout", "5", "--reconcile-every", "60")
    assert _demo_settings(changed, creating=True).idle_timeout == 5  # nothing runs: taken (saved by Demo.up)
    monkeypatch.setattr(Daemon, "running", lambda self: True)
    with pytest.raises(SystemExit) as refused:
        _demo_settings(changed, creating=True)
    assert "--idle-timeout 5 (running: 2)" in str(refused.value) and "demo down" in str(refused.value)
    assert "--reconcile-every" not in str(refused.value)  # unchanged: not named


def test_a_flag_out_of_its_limits_names_the_flag(tmp_path):
    from hub.demo.portal import _demo_settings  # noqa: PLC0415

    with pytest.raises(SystemExit, match=r"--idle-timeout: from 0 \(off\) to 10080 minutes, got 20000"):
        _demo_settings(_up_args("--state-dir", str(tmp_path), "--idle-timeout", "20000"), creating=True)


def test_a_checkout_finds_its_templates_catalogue_and_identity_provider():
    assert portal.TEMPLATES_DIR == REPO_ROOT / "templates"
    assert portal.CATALOGUE_SOURCE_CANDIDATES[0] == REPO_ROOT / "images" / "catalog.toml"
    assert (portal.PACKAGE_ROOT / "idp" / "provider.mjs").is_file()
