"""``hpchub doctor`` against the real demo cluster and hub of the tests, and against broken
copies of its configuration (contract: ``PASS|WARN|FAIL name: detail``, a fix for each
non-pass, ``--json``, exit 1 on any FAIL)."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def doctor(hpchub):
    return lambda *args: hpchub("doctor", *args, check=False, timeout=300)


def _broken_copy(portal, tmp_path, lines: str):
    """The demo's configuration, then ``lines`` (traitlets assignments) on top."""
    original = (portal.state_dir / "hub" / "jupyterhub_config.py").read_text()
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(original + "\n# broken on purpose by test_doctor\n" + lines + "\n")
    return path


def test_the_demo_passes_with_a_test_job_from_a_node(portal, doctor):
    done = doctor("--config", str(portal.state_dir / "hub" / "jupyterhub_config.py"), "--test-job", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    findings = {f["name"]: f for f in json.loads(done.stdout)["findings"]}
    assert {name for name, f in findings.items() if f["status"] == "FAIL"} == set()
    for name in (
        "slurm",
        "accounting",
        "gpu-tres",
        "enforce",
        "billing-weights",
        "munge",
        "environment",
        "database",
        "identity-provider",
        "identity-deny",
        "sudo",
        "hub-from-node",
        "reconciler-role",
        "mail",
    ):
        assert findings[name]["status"] == "PASS", findings[name]
    assert findings["tls"]["status"] == "WARN" and findings["tls"]["fix"]  # plain http on loopback: the demo


@pytest.mark.parametrize(
    ("lines", "name", "says"),
    [
        pytest.param("c.HPCHubLedger.gpu_weights = {'h200': '1.0', 'a100': '1.0'}", "billing-weights",
                     "GRES/gpu:a100=1, expected 2", id="wrong-weights"),
        pytest.param("c.HPCHubLedger.gpu_weights = {'h200': '1.0', 'a100': '0.5', 'l40s': '0.5'}", "gpu-tres",
                     "lacks gres/gpu:l40s", id="missing-tres"),
        pytest.param("c.HPCHubOIDCAuthenticator.issuer = 'http://127.0.0.1:9/nothing'", "identity-provider",
                     "cannot read", id="issuer-down"),
        pytest.param("c.JupyterHub.hub_connect_url = 'http://127.0.0.1:9'", "hub-from-node",
                     "could not fetch", id="hub-unreachable-from-node"),
        pytest.param("c.JupyterHub.load_roles = [dict(r, scopes=[*r['scopes'], 'access:servers']) "
                     "if r['name'] == 'hpchub-reconcile' else r for r in c.JupyterHub.load_roles]",
                     "reconciler-role", "holds access:servers", id="reconciler-may-open-servers"),
    ],
)  # fmt: skip
def test_a_broken_setting_fails_by_name_with_the_fix(portal, doctor, tmp_path, lines, name, says):
    done = doctor("--config", str(_broken_copy(portal, tmp_path, lines)), "--test-job")
    assert done.returncode == 1, done.stdout
    failing = [line for line in done.stdout.splitlines() if line.startswith(f"FAIL {name}: ")]
    assert failing and says in failing[0], done.stdout
    fix = done.stdout.splitlines()[done.stdout.splitlines().index(failing[0]) + 1]
    assert fix.startswith("     fix: ")


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        pytest.param("c.HPCHubMail.smtp_host = ''", "WARN mail: not configured: no mail is sent", id="no-relay"),
        pytest.param("c.HPCHubMail.smtp_port = 9", "WARN mail: the relay 127.0.0.1:9 does not answer", id="relay-down"),
    ],
)  # fmt: skip
def test_mail_that_cannot_be_sent_warns_with_the_fix(portal, doctor, tmp_path, lines, says):
    done = doctor("--config", str(_broken_copy(portal, tmp_path, lines)))
    assert says in done.stdout, done.stdout
    warning = next(line for line in done.stdout.splitlines() if line.startswith("WARN mail: "))
    assert done.stdout.splitlines()[done.stdout.splitlines().index(warning) + 1].startswith("     fix: ")


def test_an_environment_other_users_cannot_read_fails(portal, doctor, tmp_path):
    closed = portal.state_dir / "doctor-closed"  # the state dir is open to the users; this is not
    shutil.rmtree(closed, ignore_errors=True)
    (closed / "venv" / "bin").mkdir(parents=True)
    shutil.copy2(os.path.realpath(shutil.which("python3")), closed / "venv" / "bin" / "python")
    closed.chmod(stat.S_IRWXU)  # 0700: only root gets in
    lines = f"c.SlurmGPUSpawner.catalogue_variables = {{'demo_venv': {str(closed / 'venv')!r}}}"
    done = doctor("--config", str(_broken_copy(portal, tmp_path, lines)))
    assert done.returncode == 1
    assert f"FAIL environment: {closed} is not searchable by other users" in done.stdout
    assert f"     fix: chmod o+x {closed}" in done.stdout


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        pytest.param("c.HPCHubAccountRules.denied_accounts = set()", "root is not on", id="deny-list-emptied"),
        pytest.param("c.HPCHubAccountRules.denied_accounts = {'hpchub', 'nobody'}", "root is not on",
                     id="deny-list-without-root"),
        pytest.param("c.HPCHubAccountRules.minimum_uid = 0", "minimum UID 0", id="minimum-uid-0"),
    ],
)  # fmt: skip
def test_a_mapping_that_would_let_root_in_fails_with_the_fix(portal, doctor, tmp_path, lines, says):
    done = doctor("--config", str(_broken_copy(portal, tmp_path, lines)))
    assert done.returncode == 1, done.stdout
    out = done.stdout.splitlines()
    failing = [line for line in out if line.startswith("FAIL identity-deny: ")]
    assert failing and says in failing[0], done.stdout
    assert out[out.index(failing[0]) + 1].startswith("     fix: ")
