"""``hpchub doctor``: gather the facts of a site (Slurm's answers, the hub's configuration,
files) and run the checks of ``checks.py``. One line per check; ``--json``; exit 1 on FAIL.

Everything runs as argv lists with timeouts; nothing from the configuration reaches a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import json
import os
import pwd
import smtplib
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from traitlets.config import Config

from hub.auth.account_rules import HPCHubAccountRules
from hub.cli_support import (
    DEFAULT_CONFIG_FILE,
    DEMO_CONFIG_FILE,
    UsageError,
    read_config_file,
)
from hub.deploy import ENV_KEPT, NAME_RE
from hub.doctor import checks
from hub.doctor.checks import Finding
from hub.envs.audit import audit_space
from hub.envs.config import HPCHubEnvironments
from hub.envs.space import ProjectSpace
from hub.ledger.runtime import HPCHubLedger, ledger_for
from hub.ledger.store import alembic_config, schema_revision
from hub.ledger.types import PROJECT_NAME_RE
from hub.mail.settings import HPCHubMail
from spawners.catalog import CatalogueError, load_catalogue
from spawners.slurm.client import SlurmCommandError, SlurmTimeoutError
from spawners.slurm.cluster import SlurmCluster
from spawners.slurm.cluster_parsers import (
    parse_partition_billing,
    parse_show_config,
    parse_sinfo,
)

COMMAND_TIMEOUT = 30
TEST_JOB_TIMEOUT = 120
RECONCILE_SERVICE = "hpchub-reconcile"  # the reconciler's service name (hpchub deploy config, the demo)


def _setting(config: Config, section: str, name: str, default=None):
    value = config[section].get(name) if section in config else None
    if value is None:
        value = default
    return value


def _trait_default(cls, name: str):
    return cls.class_traits()[name].default_value


def _run(argv: list[str], *, input_text: str | None = None, env: dict | None = None, timeout: float = COMMAND_TIMEOUT):
    return subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=timeout, env=env, check=False)


class Site:
    """What the checks need, read once from the configuration and the site."""

    def __init__(self, config: Config, *, service_user: str = "") -> None:
        from spawners.slurm.spawner import SlurmGPUSpawner  # noqa: PLC0415 (imports JupyterHub: slow for --help)

        self.config = config
        self.service_user = service_user  # the hub's account (--service-user); '' : the account running doctor
        # The hub's cluster; doctor runs from a shell, so $SLURM_CONF counts where the configuration sets none.
        self.cluster = SlurmCluster.from_config(config)
        if not self.cluster.slurm_conf:
            self.cluster.slurm_conf = os.environ.get("SLURM_CONF", "")
        self.ledger_settings = HPCHubLedger(config=config)
        self.catalogue_file = _setting(config, "SlurmGPUSpawner", "catalogue_file",
                                       _trait_default(SlurmGPUSpawner, "catalogue_file"))  # fmt: skip
        self.catalogue_variables = _setting(config, "SlurmGPUSpawner", "catalogue_variables", {}) or {}

    def slurm(self, read: str, *args, timeout: float = COMMAND_TIMEOUT, **kwargs) -> str:
        """One of the Slurm client's commands (``version``, ``show_config``, ...) through the cluster's client."""
        return asyncio.run(getattr(self.cluster.client(timeout=timeout), read)(*args, **kwargs))

    # --- the checks, each catching what it gathers ------------------------------------------------------

    def slurm_findings(self) -> list[Finding]:
        try:
            version = self.slurm("version")
            ping = self.slurm("ping")
        except SlurmCommandError as exc:
            return [checks.check_slurm_version(None, exc.first_stderr_line or exc.summary)]
        except ValueError as exc:
            return [checks.check_slurm_version(None, str(exc))]
        if "UP" not in ping:
            detail = ping.strip().splitlines()
            return [checks.check_slurm_version(None, detail[0] if detail else "scontrol ping: no answer")]
        findings = [checks.check_slurm_version(version)]
        try:
            config = parse_show_config(self.slurm("show_config"))
            billing = parse_partition_billing(self.slurm("show_partitions"))
            cluster = parse_sinfo(self.slurm("sinfo"))
        except (SlurmCommandError, ValueError) as exc:
            return [*findings, checks.failed("accounting", f"Slurm's configuration is unreadable: {exc}",
                                             "check that slurmctld answers scontrol and sinfo")]  # fmt: skip
        rates = self.ledger_settings.rates()
        findings += [checks.check_accounting(config), checks.check_gpu_tres(config, rates.gpu_types),
                     checks.check_enforce(config)]  # fmt: skip
        findings.append(checks.check_billing_weights(billing, cluster, rates))
        findings.append(self.munge_finding(config.get("AuthInfo", "")))
        return findings

    def munge_finding(self, auth_info: str) -> Finding:
        socket = next((part.split("=", 1)[1] for part in auth_info.split(",") if part.startswith("socket=")), None)
        where = ["--socket", socket] if socket else []
        try:
            credential = _run(["munge", "--no-input", *where])
            if credential.returncode:
                return checks.check_munge(False, f"munge: {credential.stderr.strip() or 'failed'}")
            decoded = _run(["unmunge", *where], input_text=credential.stdout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return checks.check_munge(False, f"munge: {exc}")
        if decoded.returncode:
            return checks.check_munge(False, f"unmunge: {decoded.stderr.strip() or 'failed'}")
        return checks.check_munge(True, f"a credential made and read back{f' on {socket}' if socket else ''}")

    def environment_finding(self) -> Finding:

        try:
            default = load_catalogue(self.catalogue_file, self.catalogue_variables).default
        except (CatalogueError, OSError) as exc:
            return checks.failed("environment", f"the catalogue {self.catalogue_file}: {exc}",
                                 "fix images/catalog.toml or c.SlurmGPUSpawner.catalogue_file")  # fmt: skip
        if default.kind != "venv" or not default.path:
            return checks.passed("environment", f"the default environment {default.id} is an image ({default.kind})")
        python = Path(default.path) / "bin" / "python"
        chain = [*reversed(python.parents), python]
        try:
            modes = [(str(path), os.stat(path).st_mode) for path in chain]
        except OSError as exc:
            return checks.failed("environment", f"{python}: {exc.strerror}", "install the notebook environment there")
        return checks.check_world_readable(str(python), modes)

    def database_finding(self) -> Finding:
        from alembic.script import ScriptDirectory  # noqa: PLC0415 (slow: only this check needs it)

        url = self.ledger_settings.db_url
        if not url:
            return checks.warned("database", "no ledger configured (c.HPCHubLedger.db_url): no budgets",
                                 "set c.HPCHubLedger.db_url")  # fmt: skip
        shown = make_url(url).render_as_string(hide_password=True)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        try:
            return checks.check_schema(schema_revision(url), head, shown)
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            return checks.failed(
                "database", f"the ledger {shown}: {detail}", "check the URL, the server and the rights"
            )

    def tls_finding(self) -> Finding:
        bind_url = _setting(self.config, "JupyterHub", "bind_url", "") or ""
        cert = _setting(self.config, "JupyterHub", "ssl_cert", "") or ""
        key = _setting(self.config, "JupyterHub", "ssl_key", "") or ""
        facts: dict[str, object] = {"cert_exists": bool(cert) and os.path.isfile(cert),
                                    "key_exists": bool(key) and os.path.isfile(key)}  # fmt: skip
        if facts["key_exists"]:
            facts["key_mode"] = os.stat(key).st_mode
        if facts["cert_exists"]:
            end = _run(["openssl", "x509", "-enddate", "-noout", "-in", cert])
            if end.returncode == 0 and "=" in end.stdout:
                when = datetime.strptime(end.stdout.split("=", 1)[1].strip(), "%b %d %H:%M:%S %Y %Z")
                facts["cert_days_left"] = (when.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)).days
        return checks.check_tls(bind_url, cert, key, facts)

    def discovery_finding(self) -> Finding:
        from hub.auth.oidc import check_issuer_url, fetch_discovery, validate_discovery  # noqa: PLC0415 (imports JupyterHub)

        issuer = (_setting(self.config, "HPCHubOIDCAuthenticator", "issuer", "") or "").rstrip("/")
        if not issuer:
            return checks.check_discovery("")
        allow_http = bool(_setting(self.config, "HPCHubOIDCAuthenticator", "allow_insecure_issuer", False))
        try:
            check_issuer_url(issuer, allow_insecure=allow_http)
            validate_discovery(issuer, fetch_discovery(issuer))
        except Exception as exc:  # noqa: BLE001  (IssuerError and what urllib raises: all say what is wrong)
            return checks.check_discovery(issuer, str(exc))
        return checks.check_discovery(issuer)

    def identity_deny_finding(self) -> Finding:

        # The configured list, without the account running doctor (which the hub adds for its own account:
        # doctor may run as root for a hub that runs as its service account).
        configured = HPCHubAccountRules(config=self.config)
        return checks.check_identity_deny(set(configured.denied_accounts), configured.minimum_uid)

    def sudo_finding(self) -> Finding:
        """The rules of the hub's account: ``--service-user`` (listed with ``sudo -l -U``, as root), else
        of the account running doctor (root: the demo, which needs none)."""
        if self.service_user in ("", "root") and os.geteuid() == 0:
            return checks.check_sudo(True, None)
        argv = ["sudo", "-n", "-l", *(["-U", self.service_user] if self.service_user else [])]
        account = f"the hub's account {self.service_user}" if self.service_user else "the hub's account"
        try:
            listed = _run(argv)
        except (OSError, subprocess.TimeoutExpired):
            return checks.check_sudo(False, None, account=account)
        return checks.check_sudo(
            False, listed.stdout if listed.returncode == 0 else None, account=account, kept=ENV_KEPT
        )

    def project_groups_finding(self) -> Finding:
        """Each space's group (its directory's gid) among the hub account's groups: --service-user, else
        c.HPCHubEnvironments.hub_account, else the account running doctor."""

        environments = HPCHubEnvironments(config=self.config)
        account = self.service_user or environments.hub_account or pwd.getpwuid(os.geteuid()).pw_name
        root = environments.project_root
        if not root or account == "root":
            return checks.check_project_groups(account, root, [])
        try:
            entry = pwd.getpwnam(account)
            spaces = [item for item in os.scandir(root) if PROJECT_NAME_RE.fullmatch(item.name) and item.is_dir()]
        except KeyError:
            return checks.failed("project-groups", f"no account {account}", "create the hub's service account")
        except OSError as exc:
            return checks.failed("project-groups", f"{root}: {exc.strerror}", "fix c.HPCHubEnvironments.project_root")
        groups = set(os.getgrouplist(account, entry.pw_gid))
        outside = []
        for space in spaces:
            gid = space.stat().st_gid
            if gid not in groups:
                try:
                    outside.append(grp.getgrgid(gid).gr_name)
                except KeyError:
                    outside.append(str(gid))
        return checks.check_project_groups(account, root, outside)

    def project_spaces_finding(self) -> Finding:
        """Each space under PROJECT_ROOT audited without following a link (hub/envs/audit.py)."""

        root = HPCHubEnvironments(config=self.config).project_root
        if not root or not os.path.isdir(root):
            return checks.check_project_spaces("", {})
        try:
            names = sorted(name for name in os.listdir(root) if PROJECT_NAME_RE.fullmatch(name))
        except OSError as exc:
            return checks.failed("project-spaces", f"{root}: {exc.strerror}", "fix c.HPCHubEnvironments.project_root")
        audits = [audit_space(ProjectSpace(Path(root), name)) for name in names]
        return checks.check_project_spaces(root, {a.project: a.problems for a in audits},
                                           {a.project: a.notes for a in audits})  # fmt: skip

    def hub_from_node_finding(self, run_job: bool) -> Finding:
        url = (_setting(self.config, "JupyterHub", "hub_connect_url", "") or "").rstrip("/")
        if not url:
            return checks.warned("hub-from-node", "c.JupyterHub.hub_connect_url is not set",
                                 "set it to the hub's API address as the compute nodes see it")  # fmt: skip
        if not run_job:
            return checks.check_hub_from_node(None, f"not tested (a job would fetch {url}/hub/api/)")
        probe = "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15); print('ok')"
        try:
            answer = self.slurm(
                "srun_task",
                ["python3", "-c", probe, f"{url}/hub/api/"],
                time_minutes=2,
                job_name=f"{self.cluster.job_name_prefix}-doctor",
                timeout=TEST_JOB_TIMEOUT,
            )
        except SlurmTimeoutError:
            return checks.check_hub_from_node(False, f"the test job did not finish in {TEST_JOB_TIMEOUT} s")
        except SlurmCommandError as exc:
            lines = exc.stderr.strip().splitlines()
            return checks.check_hub_from_node(False, f"a job could not fetch {url}/hub/api/: "
                                                     f"{lines[-1] if lines else exc.returncode}")  # fmt: skip
        if answer.strip().endswith("ok"):
            return checks.check_hub_from_node(True, f"a job on a compute node fetched {url}/hub/api/")
        lines = answer.strip().splitlines()
        return checks.check_hub_from_node(False, f"a job could not fetch {url}/hub/api/: {lines[-1] if lines else 0}")

    def reconciler_role_finding(self) -> Finding:
        from jupyterhub.scopes import expand_scopes  # noqa: PLC0415 (slow: only this check needs it)

        services = _setting(self.config, "JupyterHub", "services", []) or []
        service = next((s for s in services if isinstance(s, dict) and s.get("name") == RECONCILE_SERVICE), None)
        if service is None:
            return checks.check_reconciler_role(self.ledger_settings.idle_timeout_minutes, None)
        roles = [role for role in _setting(self.config, "JupyterHub", "load_roles", []) or []
                 if isinstance(role, dict) and RECONCILE_SERVICE in (role.get("services") or [])]  # fmt: skip
        scopes = [scope for role in roles for scope in role.get("scopes") or []]
        admin = bool(service.get("admin")) or any(role.get("name") == "admin" for role in roles)
        return checks.check_reconciler_role(self.ledger_settings.idle_timeout_minutes,
                                            sorted(expand_scopes(scopes)), admin=admin)  # fmt: skip

    def mail_finding(self) -> Finding:
        settings = HPCHubMail(config=self.config)
        unsent = None
        if self.ledger_settings.db_url:
            try:
                unsent = ledger_for(self.ledger_settings).unsent_mail_count()
            except SQLAlchemyError:
                unsent = None  # the database check says why
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        answer = None
        if settings.configured:
            try:
                with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=min(settings.timeout, 10)) as smtp:
                    smtp.ehlo()
                    smtp.noop()
            except (OSError, smtplib.SMTPException) as exc:
                answer = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return checks.check_mail(configured=settings.configured, where=where, starttls=settings.starttls,
                                 login=bool(settings.smtp_user), unsent=unsent, answer=answer)  # fmt: skip

    def findings(self, *, run_job: bool) -> list[Finding]:
        return [
            *self.slurm_findings(), self.environment_finding(), self.database_finding(), self.discovery_finding(),
            self.identity_deny_finding(), self.tls_finding(), self.sudo_finding(), self.project_groups_finding(),
            self.project_spaces_finding(), self.hub_from_node_finding(run_job), self.reconciler_role_finding(),
            self.mail_finding(),
        ]  # fmt: skip


def cmd_doctor(args) -> int:
    if args.service_user and not NAME_RE.fullmatch(args.service_user):
        raise UsageError(f"--service-user: a user name ({NAME_RE.pattern}), got {args.service_user!r}")
    path = args.config
    if path == DEFAULT_CONFIG_FILE and not os.path.isfile(path) and os.path.isfile(DEMO_CONFIG_FILE):
        path = DEMO_CONFIG_FILE  # no site configuration: the demo's
    try:
        config = read_config_file(path)
    except FileNotFoundError:
        raise UsageError(f"--config: no such file: {path}") from None
    findings = Site(config, service_user=args.service_user).findings(run_job=args.test_job)
    if args.json:
        print(
            json.dumps({"findings": [f.to_json() for f in findings], "ok": checks.exit_code(findings) == 0}, indent=2)
        )
    else:
        for finding in findings:
            print("\n".join(finding.lines()))
    return checks.exit_code(findings)


def add_parser(subparsers) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check a site: Slurm, accounting, billing weights, munge, environment, database, login and its "
        "identity deny rules, TLS, sudo, project spaces, the reconciler's role, mail",
        description="One line per check: PASS|WARN|FAIL name: detail, with a fix for each non-pass. Exit 1 if "
        "any check fails. Reads the hub's configuration (--config).",
    )
    doctor.add_argument("--config", default=argparse.SUPPRESS,
                        help="the hub's configuration (also accepted before 'doctor'; default: the site's, else the demo's)")  # fmt: skip
    doctor.add_argument("--json", action="store_true", help="machine-readable findings")
    doctor.add_argument("--service-user", default="", metavar="ACCOUNT",
                        help="check the sudo rules of the hub's account ACCOUNT (sudo -l -U, run doctor as root); "
                        "default: of the account running doctor (root: the demo, no rules needed)")  # fmt: skip
    doctor.add_argument("--test-job", action="store_true",
                        help="submit a one-minute job (srun) that fetches the hub's API from a compute node")  # fmt: skip
    doctor.set_defaults(func=cmd_doctor)
