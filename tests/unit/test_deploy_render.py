"""``hpchub deploy units|sudoers`` (pure rendering): golden files, and bad values refused
before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.deploy import Deployment, render_sudoers, render_units

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden" / "deploy"


def test_units_and_sudoers_match_the_golden_files() -> None:
    units = render_units(Deployment())
    assert sorted(units) == ["hpchub-proxy.service", "hpchub-reconcile.service", "hpchub.service"]
    for name, text in units.items():
        assert text == (GOLDEN / name).read_text(), name
    assert render_sudoers(Deployment()) == (GOLDEN / "sudoers").read_text()


def test_every_unit_runs_as_the_service_user_and_restarts_on_failure() -> None:
    for text in render_units(Deployment(service_user="portal")).values():
        assert "\nUser=portal\n" in text and "\nRestart=on-failure\n" in text
        assert "NoNewPrivileges" not in text  # sudo must work


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"service_user": "root; rm"}, "service_user", id="user"),
        pytest.param({"users_group": "ALL"}, "users_group", id="group-ALL"),
        pytest.param({"prefix": "opt/hpchub"}, "prefix", id="relative"),
        pytest.param({"config_dir": "/etc/hpchub/../shadow"}, "config_dir", id="dot-dot"),
        pytest.param({"state_dir": "/var/lib/hpchub\nExecStartPre=/bin/sh"}, "state_dir", id="newline"),
        pytest.param({"slurm_bin": "/usr/bin /bin/sh"}, "slurm_bin", id="space"),
        pytest.param({"proxy_port": 0}, "proxy_port", id="port"),
    ],
)
def test_bad_values_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError) as caught:
        Deployment(**kwargs)
    assert str(caught.value).startswith(f"{field}: ")


def test_the_proxy_terminates_tls_with_the_given_files_only_when_both_are_given() -> None:
    d = Deployment(proxy_port=8443, tls_cert="/etc/hpchub/tls/hub.crt", tls_key="/etc/hpchub/tls/hub.key")
    proxy = render_units(d)["hpchub-proxy.service"]
    assert "--port 8443 " in proxy
    assert proxy.count("--ssl-cert /etc/hpchub/tls/hub.crt --ssl-key /etc/hpchub/tls/hub.key\n") == 1
    assert "--ssl-" not in render_units(Deployment())["hpchub-proxy.service"]
    with pytest.raises(ValueError, match="^tls_cert: give both"):
        Deployment(tls_cert="/etc/hpchub/tls/hub.crt")
    with pytest.raises(ValueError, match="^tls_key: "):
        Deployment(tls_cert="/etc/hpchub/hub.crt", tls_key="hub.key")
