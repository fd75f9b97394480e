"""TLS with the hub's own certificate files (docs/operations.md, "TLS"): the proxy unit that
``hpchub deploy units --tls-cert --tls-key`` renders, run as written (hub/demo/units.py), serves https
with those files, and ``hpchub doctor``'s ``tls`` check passes on the configuration naming them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from traitlets.config import Config

from hub.demo.cluster.manager import free_port
from hub.demo.cluster.procs import Daemon, stop_daemon, wait_for
from hub.demo.units import parse_unit, start_unit
from hub.deploy import Deployment, render_units
from hub.doctor.checks import Status
from hub.doctor.run import Site

pytestmark = pytest.mark.integration


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (30 days) and its key, mode 0600."""
    cert, key = tmp_path / "hub.crt", tmp_path / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    key.chmod(0o600)
    return cert, key


def test_the_proxy_unit_serves_https_with_the_sites_files_and_doctor_agrees(tmp_path, certificate):
    cert, key = certificate
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir()
    port, api_port = free_port(), free_port()
    d = Deployment(service_user="root", prefix=str(Path(sys.prefix).parent), config_dir=str(etc),
                   state_dir=str(state), proxy_ip="127.0.0.1", proxy_port=port, proxy_api_port=api_port,
                   hub_port=free_port(), tls_cert=str(cert), tls_key=str(key))  # fmt: skip
    (etc / "proxy.env").write_text("CONFIGPROXY_AUTH_TOKEN=test-only\n")
    unit = parse_unit("hpchub-proxy.service", render_units(d)["hpchub-proxy.service"])
    proxy = Daemon("proxy", "configurable-http-proxy", state / "proxy.pid")
    start_unit(unit, pid_file=proxy.pid_file, log_file=state / "proxy.log")
    try:

        def answers():
            try:
                return [requests.get(f"https://127.0.0.1:{port}/hub/", verify=str(cert), timeout=5)]
            except requests.ConnectionError:
                return None  # (a Response is falsy for an error status: wrapped in a list above)

        [response] = wait_for(answers, timeout=60, what="the proxy over https")
        assert response.status_code >= 400  # TLS done; nothing behind the proxy (no hub in this test)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/hub/", timeout=5)  # plain http is not served
    finally:
        stop_daemon(proxy)
    finding = Site(Config({"JupyterHub": {"bind_url": f"https://127.0.0.1:{port}", "ssl_cert": str(cert),
                                          "ssl_key": str(key)}})).tls_finding()  # fmt: skip
    assert finding.status is Status.PASS, finding.lines()
    assert "days left" in finding.detail
