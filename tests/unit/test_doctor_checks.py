"""``hpchub doctor``'s checks (pure) over real Slurm output of the demo cluster (golden files,
captured from ``scontrol show config``, ``scontrol show partition --oneliner`` and sinfo),
broken on purpose one setting at a time."""

from __future__ import annotations

import stat
from decimal import Decimal
from pathlib import Path

import pytest

from hub.doctor import checks
from hub.doctor.checks import Status
from hub.ledger.arithmetic import ChargeRates
from spawners.slurm.cluster_parsers import (
    parse_partition_billing,
    parse_show_config,
    parse_sinfo,
)

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden" / "doctor"
CONFIG = parse_show_config((GOLDEN / "show-config.txt").read_text())
BILLING = parse_partition_billing((GOLDEN / "show-partition.txt").read_text())
CLUSTER = parse_sinfo((GOLDEN / "sinfo.txt").read_text())
RATES = ChargeRates()


def test_the_demo_cluster_passes_every_slurm_check() -> None:
    findings = [
        checks.check_slurm_version("slurm-wlm 22.05.8\n"), checks.check_accounting(CONFIG),
        checks.check_gpu_tres(CONFIG, RATES.gpu_types), checks.check_enforce(CONFIG),
        checks.check_billing_weights(BILLING, CLUSTER, RATES),
    ]  # fmt: skip
    assert [(f.status, f.name) for f in findings] == [
        (Status.PASS, "slurm"), (Status.PASS, "accounting"), (Status.PASS, "gpu-tres"), (Status.PASS, "enforce"),
        (Status.PASS, "billing-weights"),
    ]  # fmt: skip
    assert checks.exit_code(findings) == 0


def _config(**changes: str) -> dict[str, str]:
    return {**CONFIG, **changes}


@pytest.mark.parametrize(
    ("finding", "name", "says"),
    [
        pytest.param(checks.check_slurm_version("slurm 21.08.8"), "slurm", "older than 22.05", id="old-slurm"),
        pytest.param(checks.check_slurm_version(None, "Unable to contact slurm controller"), "slurm",
                     "does not answer: Unable to contact", id="no-controller"),
        pytest.param(checks.check_accounting(_config(AccountingStorageType="accounting_storage/none")), "accounting",
                     "accounting_storage/none", id="no-accounting"),
        pytest.param(checks.check_gpu_tres(_config(AccountingStorageTRES="cpu,mem,gres/gpu"), RATES.gpu_types),
                     "gpu-tres", "lacks gres/gpu:a100, gres/gpu:h200", id="missing-tres"),
        pytest.param(checks.check_enforce(_config(AccountingStorageEnforce="associations,limits")), "enforce",
                     "lacks safe", id="no-safe"),
        pytest.param(checks.check_billing_weights(
            BILLING, CLUSTER, ChargeRates(weights={"h200": Decimal(1), "a100": Decimal(1)})), "billing-weights",
            "gpu: GRES/gpu:a100=1, expected 2; debug: GRES/gpu:a100=1, expected 2", id="wrong-weights"),
        pytest.param(checks.check_billing_weights(BILLING, CLUSTER, ChargeRates(weights={"h200": Decimal(1)})),
                     "billing-weights", "gpu has a100 GPUs, which c.HPCHubLedger.gpu_weights does not price",
                     id="unpriced-type"),
        pytest.param(checks.check_billing_weights({**BILLING, "gpu": {}}, CLUSTER, RATES), "billing-weights",
                     "gpu: GRES/gpu:a100=unset, expected 1", id="no-billing-weights"),
        pytest.param(checks.check_munge(False, "unmunge: Invalid credential"), "munge", "Invalid credential",
                     id="munge"),
    ],
)  # fmt: skip
def test_each_broken_setting_fails_by_name_with_a_fix(finding, name: str, says: str) -> None:
    assert finding.status is Status.FAIL and finding.name == name
    assert says in finding.detail
    assert (
        finding.fix and finding.lines()[0].startswith(f"FAIL {name}: ") and finding.lines()[1].startswith("     fix: ")
    )


DIR, EXE = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755


@pytest.mark.parametrize(
    ("modes", "status", "fix"),
    [
        pytest.param([("/", DIR), ("/opt", DIR), ("/opt/v/bin/python", EXE)], Status.PASS, "", id="readable"),
        pytest.param([("/", DIR), ("/opt", stat.S_IFDIR | 0o750), ("/opt/v/bin/python", EXE)], Status.FAIL,
                     "chmod o+x /opt", id="closed-directory"),
        pytest.param([("/", DIR), ("/opt/v/bin/python", stat.S_IFREG | 0o750)], Status.FAIL,
                     "chmod o+rx /opt/v/bin/python", id="closed-python"),
    ],
)  # fmt: skip
def test_the_environment_must_be_readable_by_the_users(modes, status: Status, fix: str) -> None:
    finding = checks.check_world_readable("/opt/v/bin/python", modes)
    assert (finding.status, finding.fix) == (status, fix)


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        pytest.param(("http://127.0.0.1:8000", "", "", {}), Status.WARN, "plain http", id="loopback-http"),
        pytest.param(("http://0.0.0.0:8000", "", "", {}), Status.FAIL, "plain http", id="public-http"),
        pytest.param(("https://:443", "/c.pem", "/k.pem", {"cert_exists": True, "key_exists": False}), Status.FAIL,
                     "missing", id="no-key"),
        pytest.param(("https://:443", "/c.pem", "/k.pem", {"cert_exists": True, "key_exists": True, "key_mode": 0o644}),
                     Status.FAIL, "readable by others", id="key-readable"),
        pytest.param(("https://:443", "/c.pem", "/k.pem",
                      {"cert_exists": True, "key_exists": True, "key_mode": 0o640, "cert_days_left": -1}),
                     Status.FAIL, "expired", id="expired"),
        pytest.param(("https://:443", "/c.pem", "/k.pem",
                      {"cert_exists": True, "key_exists": True, "key_mode": 0o600, "cert_days_left": 10}),
                     Status.WARN, "expires in 10 days", id="expiring"),
        pytest.param(("https://:443", "/c.pem", "/k.pem",
                      {"cert_exists": True, "key_exists": True, "key_mode": 0o600, "cert_days_left": 200}),
                     Status.PASS, "200 days left", id="good"),
    ],
)  # fmt: skip
def test_tls(args, status: Status, says: str) -> None:
    finding = checks.check_tls(*args)
    assert finding.status is status and says in finding.detail


# `sudo -n -l -U hpchub` as sudo 1.9 prints it (it wraps long env_keep lines), before and after the
# activity report's variable joined ENV_KEPT.
SUDO_LIST_NOW = """Runas and Command-specific defaults for hpchub:
    Defaults!/usr/bin/sbatch, /usr/bin/scancel, /usr/bin/squeue
    env_keep+="SLURM_CONF LANG JUPYTERHUB_* JPY_API_TOKEN JUPYTER_PATH
    HPCHUB_ACTIVITY_REPORT_SECONDS"

User hpchub may run the following commands on vm:
    (%hpc-users) NOPASSWD: /usr/bin/sbatch, /usr/bin/scancel, /usr/bin/squeue
"""
SUDO_LIST_OLD = SUDO_LIST_NOW.replace("\n    HPCHUB_ACTIVITY_REPORT_SECONDS", "")
KEPT = ("SLURM_CONF", "LANG", "JUPYTERHUB_*", "JPY_API_TOKEN", "JUPYTER_PATH", "HPCHUB_ACTIVITY_REPORT_SECONDS")


@pytest.mark.parametrize(
    ("finding", "status"),
    [
        pytest.param(checks.check_schema("0003", "0003", "sqlite://"), Status.PASS, id="schema-head"),
        pytest.param(checks.check_schema("0002", "0003", "sqlite://"), Status.FAIL, id="schema-behind"),
        pytest.param(checks.check_schema(None, "0003", "sqlite://"), Status.FAIL, id="schema-none"),
        pytest.param(checks.check_sudo(True, None), Status.PASS, id="sudo-root"),
        pytest.param(checks.check_sudo(False, None), Status.FAIL, id="sudo-none"),
        pytest.param(checks.check_sudo(False, "(ALL) NOPASSWD: /usr/bin/sbatch, /usr/bin/squeue"), Status.FAIL,
                     id="sudo-no-scancel"),
        pytest.param(checks.check_sudo(False, "(ALL) NOPASSWD: /usr/bin/sbatch, /usr/bin/squeue, /usr/bin/scancel"),
                     Status.PASS, id="sudo-all"),
        pytest.param(checks.check_sudo(False, SUDO_LIST_OLD, kept=KEPT), Status.FAIL, id="sudo-older-env-keep"),
        pytest.param(checks.check_sudo(False, SUDO_LIST_NOW, kept=KEPT), Status.PASS, id="sudo-env-keep"),
        pytest.param(checks.check_discovery(""), Status.FAIL, id="no-issuer"),
        pytest.param(checks.check_hub_from_node(None, "not tested"), Status.WARN, id="node-untested"),
        pytest.param(checks.check_hub_from_node(False, "refused"), Status.FAIL, id="node-unreachable"),
    ],
)  # fmt: skip
def test_the_other_checks(finding, status: Status) -> None:
    assert finding.status is status


@pytest.mark.parametrize(
    ("scopes", "admin", "status", "says"),
    [
        pytest.param(["delete:servers"], False, Status.PASS, "may stop servers and nothing more", id="only-stops"),
        pytest.param(["servers"], False, Status.PASS, "may stop servers", id="servers-includes-delete"),
        pytest.param(["servers", "read:users:name", "access:servers"], False, Status.FAIL, "holds access:servers",
                     id="the-old-role-access-servers"),
        pytest.param(["delete:servers", "access:servers!user=bob"], False, Status.FAIL, "holds access:servers!user=bob",
                     id="filtered-access-servers"),
        pytest.param(["delete:servers", "tokens"], False, Status.FAIL, "holds read:tokens, tokens", id="tokens"),
        pytest.param(["admin:users"], False, Status.FAIL, "admin:users", id="admin-users-reads-login-tokens"),
        pytest.param(["delete:servers"], True, Status.FAIL, "is an admin", id="admin-service"),
        pytest.param(["read:users:name"], False, Status.FAIL, "cannot stop servers", id="cannot-stop"),
        pytest.param(None, False, Status.WARN, "no hpchub-reconcile service", id="no-reconcile-service"),
    ],
)  # fmt: skip
def test_the_reconcilers_role_may_stop_servers_and_never_reach_into_them(scopes, admin, status, says) -> None:
    from jupyterhub.scopes import expand_scopes  # noqa: PLC0415  (as the doctor expands them)

    expanded = None if scopes is None else sorted(expand_scopes(scopes))
    finding = checks.check_reconciler_role(30, expanded, admin=admin)
    assert finding.status is status and says in finding.detail, finding
    assert (finding.fix != "") is (status is not Status.PASS)


@pytest.mark.parametrize(
    ("account", "root", "outside", "status", "says"),
    [
        pytest.param("hpchub", "", [], Status.PASS, "no project spaces", id="no-spaces"),
        pytest.param("root", "/p", [], Status.PASS, "runs as root", id="root"),
        pytest.param("hpchub", "/p", [], Status.PASS, "every project space", id="in-every-group"),
        pytest.param("hpchub", "/p", ["hpc-vision-lab", "hpc-cs101"], Status.WARN,
                     "hpchub is not in hpc-cs101, hpc-vision-lab", id="outside-two"),
    ],
)  # fmt: skip
def test_project_groups(account, root, outside, status, says) -> None:
    finding = checks.check_project_groups(account, root, outside)
    assert finding.status is status and says in finding.detail
    if status is Status.WARN:
        assert "restart the hub" in finding.fix and "hub_account" in finding.fix


@pytest.mark.parametrize(
    ("denied", "minimum_uid", "status", "says"),
    [
        pytest.param({"root", "hpchub", "nobody"}, 1000, Status.PASS, "refuse hpchub, nobody, root and UIDs below 1000",
                     id="default"),
        pytest.param(set(), 1000, Status.FAIL, "root is not on c.HPCHubAccountRules.denied_accounts (empty)",
                     id="deny-list-emptied"),
        pytest.param({"hpchub"}, 1000, Status.FAIL, "root is not on", id="deny-list-without-root"),
        pytest.param({"root"}, 0, Status.FAIL, "minimum UID 0", id="minimum-uid-0"),
        pytest.param({"root"}, -1, Status.FAIL, "minimum UID -1", id="minimum-uid-negative"),
        pytest.param({"root"}, 500, Status.WARN, "system accounts from UID 500", id="minimum-uid-500"),
    ],
)  # fmt: skip
def test_identity_deny(denied, minimum_uid, status, says) -> None:
    finding = checks.check_identity_deny(denied, minimum_uid)
    assert finding.status is status and finding.name == "identity-deny"
    assert says in finding.detail
    assert (status is Status.PASS) or finding.fix


# --- the Slurm reads, through the hub's cluster -----------------------------------------------------------


def _site_answering(answers: dict[tuple[str, ...], object], monkeypatch, **settings):
    """A doctor Site whose cluster's client answers ``answers`` (argv -> stdout, or a CommandResult)."""
    from traitlets.config import Config

    from hub.doctor.run import Site
    from spawners.slurm.client import CommandResult

    monkeypatch.delenv("SLURM_CONF", raising=False)
    config = Config()
    for name, value in settings.items():
        config.SlurmCluster[name] = value
    site = Site(config)
    calls: list[tuple[list[str], str | None, float]] = []

    async def runner(argv, *, input, env, timeout):
        calls.append((list(argv), env.get("SLURM_CONF"), timeout))
        answer = answers[tuple(argv)]
        return answer if isinstance(answer, CommandResult) else CommandResult(0, answer, "")

    make_client = site.cluster.client
    site.cluster.client = lambda **overrides: make_client(runner=runner, **overrides)
    monkeypatch.setattr(site, "munge_finding", lambda auth_info: checks.passed("munge", auth_info))
    return site, calls


def test_the_doctor_reads_slurm_through_the_hubs_cluster(monkeypatch) -> None:
    from spawners.slurm.cluster_parsers import SINFO_FORMAT

    answers = {
        ("/opt/slurm/bin/sinfo", "--version"): "slurm-wlm 22.05.8\n",
        ("/opt/slurm/bin/scontrol", "ping"): "Slurmctld(primary) at head is UP\n",
        ("/opt/slurm/bin/scontrol", "show", "config"): (GOLDEN / "show-config.txt").read_text(),
        ("/opt/slurm/bin/scontrol", "show", "partition", "--oneliner"): (GOLDEN / "show-partition.txt").read_text(),
        ("/opt/slurm/bin/sinfo", "--noheader", f"--format={SINFO_FORMAT}"): (GOLDEN / "sinfo.txt").read_text(),
    }
    site, calls = _site_answering(answers, monkeypatch, slurm_conf="/etc/slurm/site.conf", bin_dir="/opt/slurm/bin")
    findings = {finding.name: finding for finding in site.slurm_findings()}
    assert [findings[name].status for name in ("slurm", "accounting", "gpu-tres", "enforce", "billing-weights")] == [
        Status.PASS
    ] * 5
    assert [tuple(argv) for argv, _conf, _timeout in calls] == list(answers)
    assert {(conf, timeout) for _argv, conf, timeout in calls} == {("/etc/slurm/site.conf", 30)}


def test_the_doctor_says_when_slurmctld_does_not_answer(monkeypatch) -> None:
    from spawners.slurm.client import CommandResult

    answers = {
        ("sinfo", "--version"): "slurm-wlm 22.05.8\n",
        ("scontrol", "ping"): CommandResult(1, "", "scontrol: error: Unable to contact slurm controller\n"),
    }
    site, _calls = _site_answering(answers, monkeypatch)
    (finding,) = site.slurm_findings()
    assert finding.status is Status.FAIL and "Unable to contact slurm controller" in finding.detail


def test_the_doctors_test_job_runs_with_srun_through_the_cluster(monkeypatch) -> None:
    from spawners.slurm.client import CommandResult

    def answers(stdout: str, code: int = 0, stderr: str = "") -> dict:
        probe = "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15); print('ok')"
        argv = ("srun", "--ntasks=1", "--time=2", "--job-name=portal-doctor", "python3", "-c", probe,
                "http://hub:8081/hub/api/")  # fmt: skip
        return {argv: CommandResult(code, stdout, stderr)}

    for answer, status, says in [
        (answers("ok\n"), Status.PASS, "fetched http://hub:8081/hub/api/"),
        (
            answers("", 1, "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>\n"),
            Status.FAIL,
            "could not fetch http://hub:8081/hub/api/: urllib.error.URLError",
        ),
    ]:
        site, calls = _site_answering(answer, monkeypatch, job_name_prefix="portal")
        site.config.JupyterHub.hub_connect_url = "http://hub:8081"
        finding = site.hub_from_node_finding(True)
        assert finding.status is status and says in finding.detail, finding
        assert calls[0][2] == 120  # the test job's own timeout


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        pytest.param({"configured": False, "unsent": 3}, checks.Status.WARN,
                     "not configured: no mail is sent; 3 message(s) wait in the ledger", id="unconfigured"),
        pytest.param({"login": True}, checks.Status.WARN, "a login without STARTTLS", id="login-without-tls"),
        pytest.param({"answer": "ConnectionRefusedError: refused"}, checks.Status.WARN,
                     "the relay smtp:25 does not answer: ConnectionRefusedError", id="relay-down"),
        pytest.param({}, checks.Status.PASS, "the relay smtp:25 answers", id="ok"),
    ],
)  # fmt: skip
def test_check_mail(kwargs, status, says) -> None:
    fields = {"configured": True, "where": "smtp:25", "starttls": False, "login": False, "unsent": 0, "answer": None,
              **kwargs}  # fmt: skip
    finding = checks.check_mail(**fields)
    assert finding.status is status and says in finding.detail
    assert finding.fix or status is checks.Status.PASS
