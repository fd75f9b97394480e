"""``hpchub doctor``'s checks (pure): each reads facts gathered from the site and says
PASS, WARN or FAIL with the detail and, for anything but a pass, the fix.

The facts come from ``gather.py`` (Slurm's own answers, the hub's configuration, the
files); every check here is a function of them, so the tests can break any of them.
"""

from __future__ import annotations

import enum
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hub.ledger.arithmetic import ChargeRates
from spawners.slurm.types import ClusterInfo

MIN_SLURM = (22, 5)
REQUIRED_ENFORCE = ("associations", "limits", "safe")


class Status(enum.Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    status: Status
    name: str
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        lines = [f"{self.status.value} {self.name}: {self.detail}"]
        if self.fix and self.status is not Status.PASS:
            lines.append(f"     fix: {self.fix}")
        return lines

    def to_json(self) -> dict:
        return {"status": self.status.value, "name": self.name, "detail": self.detail, "fix": self.fix or None}


def passed(name: str, detail: str) -> Finding:
    return Finding(Status.PASS, name, detail)


def failed(name: str, detail: str, fix: str) -> Finding:
    return Finding(Status.FAIL, name, detail, fix)


def warned(name: str, detail: str, fix: str) -> Finding:
    return Finding(Status.WARN, name, detail, fix)


# --- Slurm ------------------------------------------------------------------------------------------


def check_slurm_version(version_text: str | None, error: str = "") -> Finding:
    """``sinfo --version`` (``slurm-wlm 22.05.8``, ``slurm 23.11.4``)."""
    if version_text is None:
        return failed("slurm", f"Slurm does not answer: {error or 'no output'}",
                      "start slurmctld, or point c.SlurmCluster.slurm_conf (SLURM_CONF) at the site's slurm.conf")  # fmt: skip
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", version_text)
    if not found:
        return failed("slurm", f"cannot read the version from {version_text.strip()[:80]!r}", "check `sinfo --version`")
    version = tuple(int(part) for part in found.groups())
    text = ".".join(found.groups())
    if version[:2] < MIN_SLURM:
        return failed("slurm", f"version {text} is older than {MIN_SLURM[0]}.{MIN_SLURM[1]:02d}",
                      "upgrade Slurm (hpchub is tested with 22.05)")  # fmt: skip
    return passed("slurm", f"version {text}, the controller answers")


def check_accounting(config: Mapping[str, str]) -> Finding:
    storage = config.get("AccountingStorageType", "")
    if storage != "accounting_storage/slurmdbd":
        return failed("accounting", f"AccountingStorageType is {storage or 'unset'!s}, not accounting_storage/slurmdbd",
                      "run slurmdbd and set AccountingStorageType=accounting_storage/slurmdbd in slurm.conf: "
                      "final charges come from sacct")  # fmt: skip
    return passed("accounting", "slurmdbd accounting is on")


def check_gpu_tres(config: Mapping[str, str], gpu_types: Sequence[str]) -> Finding:
    tres = {item.strip() for item in config.get("AccountingStorageTRES", "").split(",") if item.strip()}
    wanted = ["gres/gpu"] + [f"gres/gpu:{gpu_type}" for gpu_type in gpu_types]
    missing = [item for item in wanted if item not in tres]
    if missing:
        return failed("gpu-tres", f"AccountingStorageTRES lacks {', '.join(missing)}",
                      f"add them to AccountingStorageTRES in slurm.conf (e.g. {','.join(wanted)}) and restart "
                      "slurmctld: sacct reports GPUs per type only for listed TRES")  # fmt: skip
    return passed("gpu-tres", f"sacct counts {', '.join(wanted)}")


def check_enforce(config: Mapping[str, str]) -> Finding:
    enforce = {item.strip() for item in config.get("AccountingStorageEnforce", "").split(",")}
    missing = [item for item in REQUIRED_ENFORCE if item not in enforce]
    if missing:
        return failed("enforce", f"AccountingStorageEnforce lacks {', '.join(missing)}",
                      "set AccountingStorageEnforce=associations,limits,safe in slurm.conf: without them Slurm "
                      "lets jobs run past the budget mirror (safe: a job starts only if it can finish in budget)")  # fmt: skip
    return passed("enforce", "AccountingStorageEnforce has associations, limits and safe")


def check_billing_weights(
    billing: Mapping[str, Mapping[str, str]], cluster: ClusterInfo, rates: ChargeRates
) -> Finding:
    """Each GPU partition's TRESBillingWeights for each of its GPU types = weight x units."""
    problems = []
    for partition in cluster.partitions.values():
        weights = billing.get(partition.name, {})
        for gpu_type in sorted(partition.gpus_per_node):
            if gpu_type not in rates.weights:
                problems.append(
                    f"{partition.name} has {gpu_type} GPUs, which c.HPCHubLedger.gpu_weights does not price"
                )
                continue
            expected = rates.slurm_billing_weight(gpu_type)
            found = weights.get(f"gres/gpu:{gpu_type}")
            if found is None or found.strip() != str(expected):
                problems.append(f"{partition.name}: GRES/gpu:{gpu_type}={found or 'unset'}, expected {expected}")
    if problems:
        return failed("billing-weights", "; ".join(problems),
                      f"set TRESBillingWeights=\"{rates.tres_billing_weights()}\" on the GPU partitions (weights "
                      f"x {rates.billing_units_per_weighted_gpu_minute} billing units per weighted GPU-minute), or "
                      "change c.HPCHubLedger.gpu_weights to match")  # fmt: skip
    return passed("billing-weights", f"GPU partitions bill {rates.tres_billing_weights()}")


def check_munge(ok: bool, detail: str) -> Finding:
    if ok:
        return passed("munge", detail)
    return failed("munge", detail, "start munged with the cluster's key (the same /etc/munge/munge.key on every node)")


# --- the hub's side ---------------------------------------------------------------------------------------


def check_world_readable(path: str, modes: Sequence[tuple[str, int]]) -> Finding:
    """``modes``: (path, st_mode) of every directory from / down to the environment's
    python, then the python itself; the jobs run as the users, so others need x on each
    directory and r+x on the interpreter."""
    for where, mode in modes[:-1]:
        if not mode & stat.S_IXOTH:
            return failed("environment", f"{where} is not searchable by other users (mode {stat.filemode(mode)}), "
                          f"so jobs cannot start {path}", f"chmod o+x {where}")  # fmt: skip
    where, mode = modes[-1]
    if not (mode & stat.S_IROTH and mode & stat.S_IXOTH):
        return failed("environment", f"{where} is not readable and executable by other users "
                      f"(mode {stat.filemode(mode)})", f"chmod o+rx {where}")  # fmt: skip
    return passed("environment", f"{path} is readable by every user")


def check_schema(revision: str | None, head: str, db: str) -> Finding:
    if revision == head:
        return passed("database", f"the ledger {db} is at schema {head}")
    if revision is None:
        return failed(
            "database", f"the ledger {db} has no hpchub tables", "run `hpchub db upgrade` (or start the hub once)"
        )
    return failed("database", f"the ledger {db} is at schema {revision}, the code needs {head}",
                  "back it up (`hpchub charges` / pg_dump), then run `hpchub db upgrade`")  # fmt: skip


def check_tls(bind_url: str, cert: str, key: str, facts: Mapping[str, object]) -> Finding:
    """``facts``: for cert and key, whether they exist, the key's mode, the cert's end date."""
    loopback = re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:|/|$)", bind_url or "") is not None
    if not cert and not key:
        if loopback:
            return warned("tls", f"the hub serves plain http on {bind_url} (loopback)",
                          "put a TLS reverse proxy in front, or set c.JupyterHub.ssl_cert and ssl_key")  # fmt: skip
        return failed("tls", f"the hub serves plain http on {bind_url or 'all addresses'}",
                      "set c.JupyterHub.ssl_cert and c.JupyterHub.ssl_key, or bind to 127.0.0.1 behind a TLS "
                      "reverse proxy (docs/operations.md)")  # fmt: skip
    if not facts.get("cert_exists") or not facts.get("key_exists"):
        return failed("tls", f"certificate {cert or '(unset)'} or key {key or '(unset)'} is missing",
                      "set both c.JupyterHub.ssl_cert and c.JupyterHub.ssl_key to readable files")  # fmt: skip
    key_mode = int(facts.get("key_mode", 0))
    if key_mode & 0o037:  # group may read (0640: a tls group), nothing else
        return failed("tls", f"the key {key} is readable by others (mode {oct(key_mode & 0o777)})", f"chmod 600 {key}")
    days = facts.get("cert_days_left")
    if isinstance(days, int) and days < 0:
        return failed("tls", f"the certificate {cert} has expired", "renew it")
    if isinstance(days, int) and days < 21:
        return warned("tls", f"the certificate {cert} expires in {days} days", "renew it")
    return passed("tls", f"https with {cert}" + (f", {days} days left" if isinstance(days, int) else ""))


def check_discovery(issuer: str, error: str = "") -> Finding:
    if not issuer:
        return failed("identity-provider", "c.HPCHubOIDCAuthenticator.issuer is not set",
                      "set it to the institution's OpenID Connect issuer URL")  # fmt: skip
    if error:
        return failed("identity-provider", f"{issuer}: {error}",
                      "check the issuer URL and that this host reaches it (its /.well-known/openid-configuration)")  # fmt: skip
    return passed("identity-provider", f"{issuer} publishes a valid discovery document")


def check_identity_deny(denied: Sequence[str] | set[str], minimum_uid: int, *, usual_minimum: int = 1000) -> Finding:
    """The identity deny rules (hub/auth/account_rules.py) must each refuse root on their own: root on
    the deny-list and a minimum UID above 0. A minimum below the usual 1000 lets system accounts in: WARN."""
    setting, minimum_setting = "c.HPCHubAccountRules.denied_accounts", "c.HPCHubAccountRules.minimum_uid"
    if "root" not in denied:
        listed = ", ".join(sorted(denied)) or "empty"
        return failed("identity-deny", f"root is not on {setting} ({listed}): a principal mapped to root (a user "
                      "who edits preferred_username at the identity provider) logs in as root if the UID rule fails",
                      f"add root back, e.g. {setting} = {{'root', 'hpchub', 'nobody'}}, or remove the setting for that "
                      "default (docs/login.md)")  # fmt: skip
    if minimum_uid <= 0:
        return failed("identity-deny", f"minimum UID {minimum_uid} ({minimum_setting}) lets root (UID 0) and every "
                      "system account through the UID rule", f"set {minimum_setting} = {usual_minimum} (the default) "
                      "or the lowest UID of the site's users")  # fmt: skip
    if minimum_uid < usual_minimum:
        return warned("identity-deny", f"minimum UID {minimum_uid} ({minimum_setting}) lets system accounts from UID "
                      f"{minimum_uid} up log in", f"set {minimum_setting} = {usual_minimum} unless the site's users "
                      "have lower UIDs")  # fmt: skip
    return passed("identity-deny", f"logins and spawns refuse {', '.join(sorted(denied))} and UIDs below {minimum_uid}")


def check_sudo(
    running_as_root: bool,
    rules: str | None,
    commands: Sequence[str] = ("sbatch", "scancel", "squeue"),
    account: str = "the hub's account",
    kept: Sequence[str] = (),
) -> Finding:
    """The hub acts as the users only through sudo for these commands, and sudo keeps the variables the
    spawner passes to sbatch (``kept``, hub/deploy.py's ENV_KEPT): a rule from an older release that
    lacks one refuses every spawn ("sudo: sorry, you are not allowed to set the following environment
    variables"). ``sudo -l`` lists the env_keep entries with the rules, so the names are looked up there."""
    if running_as_root:
        return passed("sudo", "the hub runs as root (the demo): sudo -u USER needs no rule")
    if rules is None:
        return failed("sudo", f"`sudo -n -l` gives no rules for {account}",
                      "allow the hub's account `sudo -u USER` for sbatch, scancel and squeue (docs/operations.md has the file)")  # fmt: skip
    missing = [command for command in commands if not re.search(rf"/{command}\b", rules)]
    if missing:
        return failed(
            "sudo",
            f"no sudo rule for {', '.join(missing)} ({account})",
            "add them to the hub's sudoers file: `hpchub deploy sudoers` (docs/operations.md)",
        )
    unkept = [name for name in kept if not re.search(rf"(?<![A-Za-z0-9_*]){re.escape(name)}(?![A-Za-z0-9_*])", rules)]
    if unkept:
        return failed("sudo", f"sudo does not keep {', '.join(unkept)} for {account}: every spawn is refused "
                      "('not allowed to set the following environment variables')",
                      "install the file `hpchub deploy sudoers` renders (its env_keep line lists them)")  # fmt: skip
    return passed("sudo", f"sudo rules allow {', '.join(commands)} as the users ({account})")


def check_project_groups(account: str, project_root: str, outside: Sequence[str]) -> Finding:
    """The hub's account is in the group of every project space (else it lists none of its environments).

    ``outside``: the spaces' groups the account is not in (``hpc-P``). A WARN, not a FAIL: sessions
    still get the project kernels; only the spawn form's choices and the environments page lack them.
    """
    if not project_root:
        return passed("project-groups", "no project spaces (c.HPCHubEnvironments.project_root is unset)")
    if account == "root":
        return passed("project-groups", "the hub runs as root (the demo): it reads every project space")
    if outside:
        return warned("project-groups", f"{account} is not in {', '.join(sorted(outside))}: the hub does not list "
                      "those projects' environments",
                      f"add {account} to those groups (with manage_unix_groups: c.HPCHubEnvironments.hub_account = "
                      f"'{account}' and `hpchub env sync` as root), then restart the hub (docs/operations.md)")  # fmt: skip
    return passed("project-groups", f"{account} is in the group of every project space under {project_root}")


def check_project_spaces(
    project_root: str, problems: Mapping[str, Sequence[str]], notes: Mapping[str, Sequence[str]] | None = None
) -> Finding:
    """Every project space as docs/environments.md lays it out (``problems``: project -> what is unsafe, read without
    following a link): ``P/`` 2750, ``shared/`` 3770 the only group-writable place, ``envs/`` and
    ``kernels/`` root's, nothing a member swapped or planted. ``notes`` (moved aside, waiting to be
    sealed) only warn."""
    if not project_root:
        return passed("project-spaces", "no project spaces (c.HPCHubEnvironments.project_root is unset)")
    unsafe = {project: found for project, found in problems.items() if found}
    if unsafe:
        shown = "; ".join(f"{project}: {', '.join(found[:3])}{' ...' if len(found) > 3 else ''}"
                          for project, found in sorted(unsafe.items()))  # fmt: skip
        return failed("project-spaces", f"members can restructure or have planted entries in {len(unsafe)} "
                      f"project space(s) under {project_root}: {shown}",
                      "run `hpchub env sync` as root: it sets the modes (P/ 2750, shared/ 3770), moves what a member "
                      "swapped or planted aside without following it, and seals finished builds (docs/environments.md)")  # fmt: skip
    noted = {project: found for project, found in (notes or {}).items() if found}
    if noted:
        shown = "; ".join(f"{project}: {', '.join(found[:3])}" for project, found in sorted(noted.items()))
        return warned(
            "project-spaces",
            f"the project spaces under {project_root} are safe; {shown}",
            "delete what was moved aside once reviewed; `hpchub env sync` as root seals finished builds",
        )
    return passed(
        "project-spaces", f"every project space under {project_root} is root's with only shared/ group-writable"
    )


def check_hub_from_node(ok: bool | None, detail: str) -> Finding:
    if ok is None:
        return warned("hub-from-node", detail, "run `hpchub doctor --test-job` where a job may be submitted")
    if ok:
        return passed("hub-from-node", detail)
    return failed("hub-from-node", detail,
                  "set c.JupyterHub.hub_connect_url to an address the compute nodes reach (not 127.0.0.1 unless the "
                  "nodes are this host) and open the firewall for it")  # fmt: skip


# Scopes that let their holder act as a user or read a user's credentials: the reconciler must
# hold none of them (it never talks to a session; the sessions report to the hub themselves).
RECONCILER_FORBIDDEN_SCOPES = ("access:servers", "tokens", "read:tokens", "admin:users")


def check_reconciler_role(idle_minutes: float, reconcile_scopes: Sequence[str] | None, *,
                          admin: bool = False) -> Finding:  # fmt: skip
    """The reconciler's role (the roles given to the ``hpchub-reconcile`` service): enough to stop
    servers (``delete:servers``), nothing that reaches into users' servers or tokens.
    ``reconcile_scopes``: the roles' scopes *expanded* (``jupyterhub.scopes.expand_scopes``; None:
    no such service); ``admin``: the service is an admin (``admin: True`` or the ``admin`` role)."""
    state = f"idle stop on after {idle_minutes:g} min" if idle_minutes > 0 else "idle stop off"
    if reconcile_scopes is None:
        return warned("reconciler-role", f"{state}; no hpchub-reconcile service: no budget or idle stops",
                      "add the hpchub-reconcile service and its role (hpchub deploy config has them)")  # fmt: skip
    forbidden = sorted({scope for scope in reconcile_scopes
                        if scope.split("!", 1)[0] in RECONCILER_FORBIDDEN_SCOPES})  # fmt: skip
    if admin or forbidden:
        what = "is an admin" if admin else f"holds {', '.join(forbidden)}"
        return failed("reconciler-role", f"the hpchub-reconcile service {what}: whoever reads its token (the "
                      "reconciler's host, its logs, its environment) can open or impersonate every user's server",
                      'give the hpchub-reconcile role only "delete:servers" (sessions report their own activity; '
                      "the reconciler never asks them)")  # fmt: skip
    if "delete:servers" not in reconcile_scopes:
        return failed("reconciler-role", f"{state}, but the hpchub-reconcile role cannot stop servers (no "
                      "delete:servers): used-up budgets, ended terms and idle sessions are never stopped",
                      'add "delete:servers" to the hpchub-reconcile role\'s scopes')  # fmt: skip
    return passed("reconciler-role", f"{state}; the reconciler may stop servers and nothing more (delete:servers); "
                  "sessions report their activity themselves")  # fmt: skip


def check_mail(
    *, configured: bool, where: str, starttls: bool, login: bool, unsent: int | None, answer: str | None
) -> Finding:
    """Mail: a relay and a From address set (else the portal's mail only waits in the ledger), no
    login without STARTTLS, and the relay answers (``answer``: None if it did, else the error)."""
    waiting = f"; {unsent} message(s) wait in the ledger" if unsent else ""
    if not configured:
        return warned("mail", f"not configured: no mail is sent{waiting}",
                      "set c.HPCHubMail.smtp_host and c.HPCHubMail.from_address (docs/mail.md)")  # fmt: skip
    if login and not starttls:
        return warned("mail", f"{where}: a login without STARTTLS shows the password to the network{waiting}",
                      "set c.HPCHubMail.starttls = True (and the relay's submission port, e.g. 587)")  # fmt: skip
    if answer is not None:
        return warned("mail", f"the relay {where} does not answer: {answer}{waiting}",
                      "check c.HPCHubMail.smtp_host and smtp_port; messages are sent once it answers")  # fmt: skip
    return passed("mail", f"the relay {where} answers{waiting}")


def exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(finding.status is Status.FAIL for finding in findings) else 0
