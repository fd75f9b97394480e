"""``hpchub demo up --run-as ACCOUNT``: the demo's proxy and hub as a site runs them.

What a centre installs (docs/operations.md), done on the demo machine:

- the service account ``ACCOUNT`` (a system user with its own group, no login shell) and the
  Unix group ``hpc-users`` holding the demo's users;
- the sudoers file ``hpchub deploy sudoers`` renders, checked with ``visudo -cf`` before it is
  installed in ``/etc/sudoers.d`` (mode 0440), removed again by ``--run-as root`` and ``demo down``;
- a configuration directory ``STATE/service`` in the place of ``/etc/hpchub``: the hub's
  ``hpchub_config.py`` (root:ACCOUNT 0640), the ``EnvironmentFile``s (root 0600) and the units
  ``hpchub deploy units`` renders (``STATE/service/units``);
- the hub's state (``STATE/hub``: its database, the ledger, the secrets it reads) owned by ACCOUNT;
- ACCOUNT a member of every project group ``hpc-P`` (``c.HPCHubEnvironments.hub_account``; made by
  ``demo up`` as root before the hub starts, since a process's groups are fixed at its start),
  so the hub lists the projects' environments; taken out again by ``--run-as root``;
- ACCOUNT a Slurm operator (``AdminLevel=Operator``, what Extend's ``scontrol update``, the
  lab-hours reservations and the reconciler's mirror need; docs/api.md), with an association to
  the ``root`` account that sacctmgr requires of a user; removed again with the sudoers file.

The proxy, the hub and the reconciler are then started from those unit files (hub/demo/units.py:
``ExecStart``, ``User``, ``Group``, ``WorkingDirectory``, ``EnvironmentFile``, ``Environment``),
with pid files. The reconciler needs no right beyond the operator level: it reads every job
with ``sacct``, sets the mirror's limits and the members' associations with ``sacctmgr`` and
cancels orphans with ``scancel`` as an operator may (docs/operations.md). Only the identity
provider (demo only) stays a root daemon.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from hub.demo.cluster.demo_data import DEMO_USERS
from hub.demo.units import parse_unit
from hub.deploy import NAME_RE, Deployment, render_sudoers, render_units
from hub.envs.space import GROUP_PREFIX

USERS_GROUP = "hpc-users"
SUDOERS_DIR = Path("/etc/sudoers.d")
ROOT = "root"


def validate_account(name: str) -> str:
    """``root`` (the plain demo) or a service account name; ValueError naming the option otherwise."""
    if name == ROOT:
        return name
    if not NAME_RE.fullmatch(name) or name in DEMO_USERS:
        raise ValueError(f"--run-as: root or a service account name ({NAME_RE.pattern}, not a demo user), got {name!r}")
    return name


def config_dir(state_dir: str) -> Path:
    return Path(state_dir) / "service"


def units_dir(state_dir: str) -> Path:
    return config_dir(state_dir) / "units"


def sudoers_path(state_dir: str, account: str) -> Path:
    """One file per demo (sudo skips names with a '.', so the state dir is a hash)."""
    digest = hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]
    return SUDOERS_DIR / f"hpchub-demo-{account}-{digest}"


def deployment(*, state_dir: str, venv: str, account: str, ports, reconcile_every: float = 60,
               exhaustion_grace: float = 300) -> Deployment:  # fmt: skip
    """The demo's values for ``hpchub deploy``: its venv and ports, ``STATE/service`` as /etc/hpchub."""
    if Path(venv).name != "venv":
        raise ValueError(f"--run-as: the units expect the venv at PREFIX/venv (make install), not {venv}")
    sbatch = shutil.which("sbatch") or "/usr/bin/sbatch"
    return Deployment(
        service_user=account, users_group=USERS_GROUP, prefix=str(Path(venv).parent),
        config_dir=str(config_dir(state_dir)), state_dir=str(Path(state_dir) / "hub"),
        slurm_bin=os.path.dirname(sbatch), proxy_ip="127.0.0.1", proxy_port=ports.hub_public,
        proxy_api_port=ports.proxy_api, hub_port=ports.hub_api, reconcile_every=reconcile_every,
        exhaustion_grace=exhaustion_grace,
    )  # fmt: skip


def _run(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def ensure_account(account: str, say: Callable[[str], None]) -> None:
    """A system account with a group of its own name (the units' ``User=``/``Group=``), no login."""
    try:
        pwd.getpwnam(account)
        return
    except KeyError:
        pass
    _run("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--comment", "hpchub service account", account)  # fmt: skip
    say(f"service account {account}: created")


def ensure_users_group(say: Callable[[str], None]) -> None:
    """The group the sudoers rule names (``%hpc-users``), with every demo user in it."""
    try:
        members = set(grp.getgrnam(USERS_GROUP).gr_mem)
    except KeyError:
        _run("groupadd", USERS_GROUP)
        members = set()
        say(f"group {USERS_GROUP}: created")
    for user in DEMO_USERS:
        if user not in members:
            _run("usermod", "--append", "--groups", USERS_GROUP, user)


def _sacctmgr(slurm_conf: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["sacctmgr", *args], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "SLURM_CONF": slurm_conf})  # fmt: skip
    if check and done.returncode != 0:
        raise RuntimeError(f"sacctmgr {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def ensure_slurm_operator(account: str, *, slurm_conf: str, cluster: str) -> None:
    listed = _sacctmgr(slurm_conf, "--noheader", "--parsable2", "show", "user", account, "format=User,AdminLevel")
    levels = {line.split("|")[1] for line in listed.stdout.splitlines() if line.startswith(f"{account}|")}
    if levels & {"Operator", "Administrator"}:
        return
    if levels:
        _sacctmgr(slurm_conf, "-i", "modify", "user", "where", f"name={account}", "set", "AdminLevel=Operator")
    else:
        _sacctmgr(slurm_conf, "-i", "add", "user", account, "account=root", f"cluster={cluster}", "AdminLevel=Operator")


def install_sudoers(text: str, path: Path) -> None:
    """Check with ``visudo -cf`` first, then move into place (mode 0440): never a broken sudo."""
    candidate = path.with_name(f".{path.name}.new")  # a name with '.': sudo never reads it
    candidate.write_text(text)
    os.chmod(candidate, 0o440)
    try:
        _run("visudo", "-cf", str(candidate))
    except RuntimeError:
        candidate.unlink(missing_ok=True)
        raise
    candidate.rename(path)


def _write(path: Path, text: str, mode: int, gid: int = 0) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chown(path, 0, gid)
    os.chmod(path, mode)


def _env_file(values: dict[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())


def write_site_files(d: Deployment, *, hub_config: str, hub_env: dict[str, str], proxy_env: dict[str, str],
                     reconcile_env: dict[str, str]) -> None:  # fmt: skip
    """``STATE/service`` laid out like /etc/hpchub: the config, the environment files, the units."""
    gid = grp.getgrnam(d.service_user).gr_gid
    etc = Path(d.config_dir)
    etc.mkdir(mode=0o750, exist_ok=True)
    os.chown(etc, 0, gid)
    os.chmod(etc, 0o750)
    _write(etc / "hpchub_config.py", hub_config, 0o640, gid)
    _write(etc / "hub.env", _env_file(hub_env), 0o600)
    _write(etc / "proxy.env", _env_file(proxy_env), 0o600)
    _write(etc / "reconcile.env", _env_file(reconcile_env), 0o600)
    units = etc / "units"
    units.mkdir(mode=0o755, exist_ok=True)
    for name, text in render_units(d).items():
        _write(units / name, text, 0o644)


def own_tree(path: Path, account: str) -> None:
    """``path`` and everything in it owned by ``account`` and its group (root: root's)."""
    entry = pwd.getpwnam(account)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def prepare(d: Deployment, *, state_dir: str, hub_config: str, hub_env: dict[str, str], proxy_env: dict[str, str],
            reconcile_env: dict[str, str], slurm_conf: str, cluster: str, say: Callable[[str], None]) -> None:  # fmt: skip
    """Everything before the units start (idempotent)."""
    ensure_account(d.service_user, say)
    ensure_users_group(say)
    ensure_slurm_operator(d.service_user, slurm_conf=slurm_conf, cluster=cluster)
    install_sudoers(render_sudoers(d), sudoers_path(state_dir, d.service_user))
    write_site_files(d, hub_config=hub_config, hub_env=hub_env, proxy_env=proxy_env, reconcile_env=reconcile_env)
    own_tree(Path(d.state_dir), d.service_user)
    say(f"service account {d.service_user}: sudoers {sudoers_path(state_dir, d.service_user)}, "
        f"units in {units_dir(state_dir)}")  # fmt: skip


def leave_project_groups(account: str, say: Callable[[str], None]) -> None:
    """Take ``account`` out of every project group ``hpc-P`` (``demo up`` put it there: hub_account)."""
    for group in grp.getgrall():
        if group.gr_name.startswith(GROUP_PREFIX) and group.gr_name != USERS_GROUP and account in group.gr_mem:
            _run("gpasswd", "--delete", account, group.gr_name)
            say(f"group {group.gr_name}: {account} removed")


def retire(state_dir: str, account: str, say: Callable[[str], None], *, slurm_conf: str = "") -> None:
    """Back to the plain demo: the sudoers file, the Slurm operator and the account's project-group
    memberships removed, the hub's state root's again. The account and the group stay
    (``userdel ACCOUNT`` removes the account)."""
    leave_project_groups(account, say)
    if slurm_conf:
        _sacctmgr(slurm_conf, "-i", "delete", "user", account, check=False)
    path = sudoers_path(state_dir, account)
    if path.exists():
        path.unlink()
        say(f"sudoers {path}: removed")
    hub_dir = Path(state_dir) / "hub"
    if hub_dir.exists():
        own_tree(hub_dir, ROOT)


def unit(state_dir: str, name: str):
    """The unit file as written: what runs is read from it, never from a second copy of its command."""
    path = units_dir(state_dir) / name
    return parse_unit(name, path.read_text())
