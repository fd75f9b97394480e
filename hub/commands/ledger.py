"""``hpchub project|grant|member|course|call|proposal|usage|charges|reconcile``: the ledger's part of the admin command line.

``add_parsers(subparsers)`` adds the groups to ``hpchub``'s parser (see hub/cli.py).
The ledger database comes from ``--db-url``, else ``$HPCHUB_LEDGER_URL``, else the demo's
SQLite file; its tables are created or migrated on first use. Exit 0 ok, 2 bad input (one
line on stderr, naming the argument), 1 anything else (one line).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import fcntl
import getpass
import json
import os
import sys
from datetime import timedelta

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from hub.cli_support import (
    SUBCOMMANDS,
    UsageError,
    load_hub_config,
    one_line_errors,
    slurm_cluster,
)
from hub.commands.allocations import ARGUMENT_NAMES as ALLOCATION_ARGUMENT_NAMES
from hub.commands.allocations import COMMANDS as ALLOCATION_COMMANDS
from hub.commands.allocations import add_allocation_parsers
from hub.commands.courses import ARGUMENT_NAMES as COURSE_ARGUMENT_NAMES
from hub.commands.courses import COMMANDS as COURSE_COMMANDS
from hub.commands.courses import add_course_parsers
from hub.commands.period import cmd_expire_check, reconcile_notices
from hub.ledger import arithmetic as arith
from hub.ledger.backup import export_ledger, import_ledger
from hub.ledger.enforce import ExhaustionTracker
from hub.ledger.errors import LedgerError, LedgerInputError
from hub.ledger.idle import (
    IDLE_TIMEOUT_LIMIT,
    REPORT_MAX_AGE_LIMIT,
    IdleTracker,
    idle_timeout_allowed,
    report_max_age_allowed,
)
from hub.ledger.runtime import HPCHubLedger
from hub.ledger.store import Ledger, alembic_config, schema_revision, upgrade
from hub.ledger.types import ProjectKind, Role
from hub.numbers import whole_number_argument
from hub.reconcile.budget_watch import (
    HubAPI,
    HubUnavailable,
    stop_exhausted_sessions,
    stop_idle_sessions,
)
from hub.reconcile.reconciler import SLURM_TIMEOUT_SECONDS, run_reconcile
from spawners.slurm.client import validate_cluster_name

LEDGER_URL_ENV = "HPCHUB_LEDGER_URL"
DEFAULT_LEDGER_URL = "sqlite:////var/lib/hpchub-demo/hub/ledger.sqlite"  # later: the hub's config decides

# Ledger field -> the argument the user typed, per command (for error lines).
_ARGUMENT_NAMES = {
    "project create": {
        "gpu_hours": "--gpu-hours",
        "account": "--account",
        "kind": "--kind",
        "start": "--start",
        "end": "--end",
    },  # fmt: skip
    "grant": {"gpu_hours": "HOURS", "reason": "--reason"},
    "member add": {"role": "--role", "cap_gpu_hours": "--cap"},
    "member cap": {"cap_gpu_hours": "H", "reason": "--reason"},
    **COURSE_ARGUMENT_NAMES,
    **ALLOCATION_ARGUMENT_NAMES,
}

CSV_COLUMNS = (
    "cluster", "job_id", "user", "project", "gpu_type", "gpus", "start", "end",
    "elapsed_seconds", "gpu_hours", "source", "kind",
)  # fmt: skip


def _default_url(config_file: str | None = None) -> str:
    """--db-url, else $HPCHUB_LEDGER_URL, else c.HPCHubLedger.db_url of the hub's configuration
    file (``--config``: the site's, or the demo's), else the demo's SQLite file."""
    return os.environ.get(LEDGER_URL_ENV) or _url_from_config(config_file) or DEFAULT_LEDGER_URL


def _settings_from_config(config_file: str | None):
    """``HPCHubLedger`` as a hub configuration file sets it (None: no file found)."""

    config = load_hub_config(config_file)
    return None if config is None else HPCHubLedger(config=config)


def _url_from_config(config_file: str | None) -> str | None:
    """The ledger URL a hub configuration file sets (see :func:`load_hub_config`)."""
    settings = _settings_from_config(config_file)
    return (settings.db_url or None) if settings is not None else None


def _orphan_grace(args):
    """--orphan-grace, else c.HPCHubLedger.orphan_grace of the --config file if it exists, else the
    traitlet's default (seconds)."""

    seconds = args.orphan_grace
    if seconds is None:
        config_file = getattr(args, "config", None)
        settings = _settings_from_config(config_file) if config_file and os.path.isfile(config_file) else None
        seconds = (settings or HPCHubLedger()).orphan_grace
    if not 0 <= seconds <= 86400:
        raise UsageError(f"--orphan-grace: from 0 to 86400 seconds, got {seconds:g}")
    return timedelta(seconds=seconds)


def _add_db_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db-url",
        default=None,
        help=f"the ledger database (default ${LEDGER_URL_ENV}, else c.HPCHubLedger.db_url of --config, "
        f"else {DEFAULT_LEDGER_URL})",
    )


def _who() -> str:
    try:
        user = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user} (hpchub command line)"


def _hours(mgs: int) -> str:
    """Tables: always 4 decimals."""
    return str(arith.round_gpu_hours(mgs))


def _said(mgs: int) -> str:
    """Sentences: ``100.0``, ``2.5``, ``0.0019``."""
    return arith.format_gpu_hours(mgs)


# --- commands -----------------------------------------------------------------------------------


def _project_create(ledger: Ledger, args) -> None:
    info = ledger.create_project(
        args.name, account=args.account, kind=args.kind, gpu_hours=args.gpu_hours,
        start=args.start, end=args.end, who=_who(),
    )  # fmt: skip
    budget = ledger.figures(info.name).grants_mgs
    period = ""
    if info.period_start or info.period_end:
        period = f", {info.period_start or '...'} to {info.period_end or '...'}"
    what = f"account {info.slurm_account}, {info.kind.value}, {_said(budget)} GPU-h{period}"
    print(f"created project {info.name} ({what})")


def _grant(ledger: Ledger, args) -> None:
    total = ledger.grant(args.name, args.hours, reason=args.reason, who=_who())
    amount = arith.gpu_hours_to_mgs(args.hours, "gpu_hours", allow_negative=True)
    print(f"{args.name}: granted {'+' if amount > 0 else ''}{_said(amount)} GPU-h; budget now {_said(total)} GPU-h")


def _member_add(ledger: Ledger, args) -> None:
    ledger.add_member(args.name, args.user, role=args.role, cap_gpu_hours=args.cap, who=args.who)
    cap_mgs = next(m.cap_mgs for m in ledger.figures(args.name).members if m.user == args.user)
    cap = "" if cap_mgs is None else f", cap {_said(cap_mgs)} GPU-h"
    if args.cap is None and cap_mgs is not None:
        cap += " (the course's per-student cap)"
    print(f"{args.user} is now {args.role} of {args.name}{cap}")


def _member_cap(ledger: Ledger, args) -> None:
    ledger.set_cap(args.name, args.user, args.cap, reason=args.reason, who=_who())
    print(f"{args.user}'s cap in {args.name} is now {_said(arith.gpu_hours_to_mgs(args.cap, 'cap_gpu_hours'))} GPU-h")


def _member_remove(ledger: Ledger, args) -> None:
    ledger.remove_member(args.name, args.user, who=_who())
    print(f"{args.user} is no longer a member of {args.name} (running sessions continue)")


def _usage(ledger: Ledger, args) -> None:
    if args.json:
        print(json.dumps(ledger.usage(args.name), indent=2))
        return
    figures = ledger.figures(args.name)
    print(
        f"{figures.project}: budget {_hours(figures.grants_mgs)} GPU-h, used {_hours(figures.used_mgs)}, "
        f"held {_hours(figures.held_mgs)}, remaining {_hours(figures.remaining_mgs)}"
    )
    rows = [("user", "role", "cap", "used", "held")]
    for member in figures.members:
        cap = "-" if member.cap_mgs is None else _hours(member.cap_mgs)
        rows.append((member.user, member.role.value, cap, _hours(member.used_mgs), _hours(member.held_mgs)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _charge_cells(charge) -> tuple[str, ...]:
    def when(moment):
        return "" if moment is None else moment.isoformat()

    return (
        charge.cluster, charge.job_id, charge.user, charge.project, charge.gpu_type, str(charge.gpus),
        when(charge.start), when(charge.end), str(charge.elapsed_seconds), _hours(charge.weighted_mgs),
        charge.source.value, charge.kind.value,
    )  # fmt: skip


def _charges(ledger: Ledger, args) -> None:
    charges = ledger.charges(args.name)
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(_charge_cells(charge) for charge in charges)
        return
    if not charges:
        print(f"{args.name}: no charges")
        return
    rows = [("job", "user", "gpus", "end", "gpu_hours", "kind")]
    for charge in charges:
        cells = _charge_cells(charge)
        gpus = f"{charge.gpus} x {charge.gpu_type}" if charge.gpus else "0"
        kind = f"{charge.kind.value} ({charge.source.value})"
        rows.append((charge.job_id, charge.user, gpus, cells[7], cells[9], kind))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"total {_hours(sum(charge.weighted_mgs for charge in charges))} GPU-h in {len(charges)} jobs")


def _ledger_export(ledger: Ledger, args) -> None:

    text = json.dumps(export_ledger(ledger), indent=1, sort_keys=True) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return
    try:
        with open(args.output, "x", encoding="utf-8") as handle:  # never overwrite a backup
            os.chmod(args.output, 0o600)  # it names every user and project
            handle.write(text)
    except FileExistsError:
        raise UsageError(f"--output: {args.output} exists; choose a new file") from None
    except OSError as exc:
        raise UsageError(f"--output: cannot write {args.output}: {exc.strerror}") from None
    print(f"exported the ledger to {args.output}", file=sys.stderr)


def _ledger_import(ledger: Ledger, args) -> None:

    try:
        with open(args.file, encoding="utf-8") as handle:
            dump = json.load(handle)
    except OSError as exc:
        raise UsageError(f"FILE: cannot read {args.file}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"FILE: {args.file} is not JSON: {exc}") from None
    counts = import_ledger(ledger, dump)
    imported = ", ".join(f"{count} {table.removeprefix('hpchub_')}" for table, count in counts.items() if count)
    print(f"imported {imported or 'nothing (an empty export)'}")


COMMANDS = {
    "project create": _project_create,
    "grant": _grant,
    "member add": _member_add,
    "member cap": _member_cap,
    "member remove": _member_remove,
    "usage": _usage,
    "charges": _charges,
    "project expire-check": cmd_expire_check,
    **COURSE_COMMANDS,
    **ALLOCATION_COMMANDS,
    "ledger export": _ledger_export,
    "ledger import": _ledger_import,
}


def _ledger_url(args) -> tuple[str, str]:
    """The ledger's URL for this command, and the same without its password (for messages)."""
    url = args.db_url or _default_url(getattr(args, "config", None))
    try:
        return url, make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise UsageError(f"--db-url: not a database URL: {url!r}") from None


def cmd_ledger(args) -> int:
    url, shown_url = _ledger_url(args)
    try:
        upgrade(url)
        args.who = _who()
        with Ledger(url) as ledger:
            COMMANDS[args.ledger_command](ledger, args)
        return 0
    except LedgerInputError as exc:
        field = _ARGUMENT_NAMES.get(args.ledger_command, {}).get(exc.field, exc.field)
        raise UsageError(f"{field}: {exc.rule}") from None
    except (NoSuchModuleError, LedgerError, SQLAlchemyError) as exc:
        return _database_failure(exc, shown_url)


def _database_failure(exc: Exception, shown_url: str) -> int:
    """One line for a ledger command that could not finish: exit 2 for a bad URL, else 1."""
    if isinstance(exc, NoSuchModuleError):
        raise UsageError(f"--db-url: {exc}") from None
    if isinstance(exc, SQLAlchemyError):
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"hpchub: ledger database {shown_url}: {detail}", file=sys.stderr)
    else:
        print(f"hpchub: {exc}", file=sys.stderr)
    return 1


def cmd_db_upgrade(args) -> int:
    """``hpchub db upgrade``: migrate the ledger's tables to the code's schema (idempotent)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 (slow: only `db upgrade` needs it)

    url, shown_url = _ledger_url(args)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        before = schema_revision(url)
        upgrade(url)
    except (NoSuchModuleError, SQLAlchemyError) as exc:
        return _database_failure(exc, shown_url)
    if before == head:
        print(f"{shown_url}: at schema {head} already")
    else:
        print(f"{shown_url}: upgraded from {before or 'empty'} to {head}")
    return 0


def cmd_reconcile(args) -> int:
    """``hpchub reconcile``: see hub/reconcile/reconciler.py (imported here: it needs the Slurm client)."""

    url, shown_url = _ledger_url(args)
    if args.every is not None and not args.every > 0:
        raise UsageError(f"--every: must be more than 0 seconds, got {args.every:g}")
    if args.cluster is not None:
        try:
            validate_cluster_name(args.cluster)
        except ValueError as exc:
            raise UsageError(f"--cluster: {exc}") from None
    orphan_grace = _orphan_grace(args)
    cluster = slurm_cluster(args)
    client = cluster.client(timeout=SLURM_TIMEOUT_SECONDS)
    watches = []
    if args.stop_exhausted_after is not None:
        watches.append(_budget_watch(args.stop_exhausted_after))
    idle_watch = _idle_watch(args)
    if idle_watch is not None:
        watches.append(idle_watch)
    watches.append(reconcile_notices(args))  # the period check, budget mail, sending (hub/reconcile/notices.py)
    after_pass = None
    if watches:

        def after_pass(ledger) -> list[str]:
            return [line for watch in watches for line in watch(ledger)]

    pid_lock = _take_pid_file(args.pid_file) if args.pid_file else None
    try:
        upgrade(url)
        with Ledger(url) as ledger:
            passes = run_reconcile(
                ledger,
                client,
                every=args.every,
                cluster=args.cluster or cluster.name or None,
                dry_run=args.dry_run,
                after_pass=None if after_pass is None else (lambda: after_pass(ledger)),
                pause_file=args.pause_file,
                prune_unknown_associations=args.prune_unknown_associations,
                orphan_grace=orphan_grace,
            )
            return asyncio.run(passes)
    except (NoSuchModuleError, LedgerError, SQLAlchemyError) as exc:
        return _database_failure(exc, shown_url)
    finally:
        if pid_lock is not None:  # held open (and locked) until here
            pid_lock.close()


def _take_pid_file(path: str):
    """One reconciler per pid file: hold an exclusive lock on it for the process's life.

    A second one (a restarted service while the first still runs) exits with one line
    instead of reconciling twice. The file holds our pid for `kill $(cat PATH)`.
    """

    handle = open(path, "a+")  # noqa: SIM115 (kept open: the lock lives as long as the process)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise UsageError(f"--pid-file: another reconciler runs (pid {handle.read().strip() or '?'}, {path})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _budget_watch(grace_seconds: float):
    """The stop of used-up sessions after each pass (needs the hub's API: a managed service)."""

    if not 0 <= grace_seconds <= 86400:
        raise UsageError(f"--stop-exhausted-after: from 0 to 86400 seconds, got {grace_seconds:g}")
    hub = HubAPI.from_environment()
    if hub is None:
        raise UsageError(
            "--stop-exhausted-after: needs JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN "
            "(the hub's API and a token with delete:servers)"
        )
    tracker = ExhaustionTracker(grace=timedelta(seconds=grace_seconds))
    return _unless_hub_unavailable("budget watch", lambda ledger: stop_exhausted_sessions(ledger, tracker, hub))


def _unless_hub_unavailable(what: str, watch):
    """``watch`` after each pass; a hub that does not answer stops nothing and says so in the log."""

    def after_pass(ledger) -> list[str]:
        try:
            return watch(ledger)
        except HubUnavailable as exc:
            return [f"{what}: the hub did not answer, nothing stopped this pass: {exc}"]

    return after_pass


def _config_settings(args):
    """``HPCHubLedger`` of the --config file if it exists, else the traitlets' defaults."""

    config_file = getattr(args, "config", None)
    settings = _settings_from_config(config_file) if config_file and os.path.isfile(config_file) else None
    return settings or HPCHubLedger()


def _idle_watch(args):
    """The idle stop after each pass (``--stop-idle-after``, else c.HPCHubLedger.idle_timeout_minutes;
    0: off, but courses' own idle-stop-after still applies to their sessions): see hub/ledger/idle.py.
    It reads the sessions' own activity reports from the ledger and stops through the hub's API."""

    settings = None
    minutes = args.stop_idle_after
    if minutes is None:
        settings = _config_settings(args)
        minutes = settings.idle_timeout_minutes
    if not idle_timeout_allowed(minutes):
        raise UsageError(f"--stop-idle-after: {IDLE_TIMEOUT_LIMIT}, got {minutes:g}")
    percent = args.idle_gpu_busy
    if percent is None:
        percent = (settings or _config_settings(args)).idle_gpu_busy_percent
    if not 1 <= percent <= 100:
        raise UsageError(f"--idle-gpu-busy: from 1 to 100 percent, got {percent}")
    max_age = args.idle_report_max_age
    if max_age is None:
        max_age = (settings or _config_settings(args)).idle_report_max_age_seconds
    if not report_max_age_allowed(max_age):
        raise UsageError(f"--idle-report-max-age: {REPORT_MAX_AGE_LIMIT}, got {max_age:g}")
    hub = HubAPI.from_environment()
    if hub is None:
        if minutes:
            raise UsageError(f"--stop-idle-after: {IDLE_NEEDS}")
        return _courses_idle_unwatched()
    tracker = IdleTracker(timeout=timedelta(minutes=minutes), gpu_busy_percent=percent,
                          report_max_age=timedelta(seconds=max_age))  # fmt: skip
    return _unless_hub_unavailable("idle stop", lambda ledger: stop_idle_sessions(ledger, tracker, hub))


IDLE_NEEDS = "needs JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN (the hub's API and a token with delete:servers)"


def _courses_idle_unwatched():
    """The site's idle stop is off and the reconciler has no hub API: a course's own idle stop
    cannot run; said once in the log (when some course sets one), never a crash."""
    said = []

    def after_pass(ledger) -> list[str]:
        courses = sorted(ledger.course_idle_timeouts()) if not said else []
        if not courses:
            return []
        said.append(True)
        return [
            f"idle stop: {', '.join(courses)} set their own idle stop (course setting idle-stop-after), "
            f"but it is not applied: the reconciler {IDLE_NEEDS}"
        ]

    return after_pass


# --- parsers ------------------------------------------------------------------------------------


def add_parsers(subparsers) -> None:
    """Add ``project``, ``grant``, ``member``, ``course``, ``usage``, ``charges`` and ``reconcile`` to ``hpchub``."""

    def leaf(parent, name: str, command: str, **kwargs) -> argparse.ArgumentParser:
        parser = one_line_errors(parent.add_parser(name, **kwargs))
        _add_db_url(parser)
        parser.set_defaults(func=cmd_ledger, ledger_command=command)
        return parser

    project = one_line_errors(subparsers.add_parser("project", help="projects and their GPU-hour budgets"))
    project_sub = project.add_subparsers(**SUBCOMMANDS)
    create = leaf(project_sub, "create", "project create", help="a new project with its first grant")
    create.add_argument("name", metavar="NAME", help="2-40 characters: a-z, 0-9 and '-', starting with a letter")
    create.add_argument("--account", required=True, help="the project's Slurm account")
    create.add_argument("--kind", required=True, choices=[k.value for k in ProjectKind])
    create.add_argument("--gpu-hours", required=True, metavar="H", help="the first grant in weighted GPU-hours")
    create.add_argument("--start", metavar="DATE", help="first day of the period (YYYY-MM-DD)")
    create.add_argument("--end", metavar="DATE", help="last day of the period, inclusive (YYYY-MM-DD)")
    leaf(project_sub, "expire-check", "project expire-check",
         help="projects whose period ends within 30 days, has ended, or whose space is due for archiving; "
         "queues the warning mail (the reconciler runs it every pass)")  # fmt: skip

    grant = leaf(subparsers, "grant", "grant", help="append a signed grant (e.g. +10 or -5 GPU-hours)")
    grant.add_argument("name", metavar="NAME")
    grant.add_argument("hours", metavar="HOURS", help="signed GPU-hours, at most 4 decimals")
    grant.add_argument("--reason", required=True, metavar="TEXT")

    member = one_line_errors(subparsers.add_parser("member", help="project members and their caps"))
    member_sub = member.add_subparsers(**SUBCOMMANDS)
    add = leaf(member_sub, "add", "member add", help="add a member with a role (and a cap)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("user", metavar="USER")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--cap", metavar="H", help="the member's cap in GPU-hours (default: none)")
    cap = leaf(member_sub, "cap", "member cap", help="set a member's cap (appends an entry)")
    cap.add_argument("name", metavar="NAME")
    cap.add_argument("user", metavar="USER")
    cap.add_argument("cap", metavar="H", help="GPU-hours, >= 0")
    cap.add_argument("--reason", required=True, metavar="TEXT")
    remove = leaf(member_sub, "remove", "member remove", help="end a membership (kept as history)")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("user", metavar="USER")

    add_course_parsers(subparsers, leaf, SUBCOMMANDS)
    add_allocation_parsers(subparsers, leaf, SUBCOMMANDS)

    backup = one_line_errors(subparsers.add_parser("ledger", help="export and import the whole ledger (backup)"))
    backup_sub = backup.add_subparsers(**SUBCOMMANDS)
    export = leaf(backup_sub, "export", "ledger export", help="every project, member, grant, cap, session and charge "
                  "as versioned JSON, from one consistent snapshot")  # fmt: skip
    export.add_argument("--output", metavar="FILE", help="a new file (mode 0600; default: standard output)")
    restore = leaf(backup_sub, "import", "ledger import", help="an export into an empty ledger, all or nothing")
    restore.add_argument("file", metavar="FILE")

    database = one_line_errors(subparsers.add_parser("db", help="the ledger's database"))
    database_sub = database.add_subparsers(**SUBCOMMANDS)
    db_upgrade = leaf(
        database_sub, "upgrade", "db upgrade", help="migrate the ledger's tables to this version's schema"
    )
    db_upgrade.set_defaults(func=cmd_db_upgrade)

    usage = leaf(subparsers, "usage", "usage", help="a project's budget, use, holds and members")
    usage.add_argument("name", metavar="NAME")
    usage.add_argument("--json", action="store_true", help="machine-readable (GPU-hours with 4 decimals)")

    charges = leaf(subparsers, "charges", "charges", help="a project's charges, one per job")
    charges.add_argument("name", metavar="NAME")
    charges.add_argument("--csv", action="store_true", help="CSV with a header line")

    reconcile = leaf(
        subparsers, "reconcile", "reconcile",
        help="import final charges from sacct and mirror budgets and caps into Slurm's limits",
    )  # fmt: skip
    reconcile.set_defaults(func=cmd_reconcile)
    reconcile.add_argument(
        "--every", type=float, metavar="SECONDS", help="a pass every SECONDS until stopped (default: one pass)"
    )
    reconcile.add_argument(
        "--slurm-conf", metavar="PATH", help="Slurm's configuration (default $SLURM_CONF, else Slurm's own)"
    )
    reconcile.add_argument(
        "--cluster",
        metavar="NAME",
        help="the Slurm cluster (default c.SlurmCluster.name of --config, else the one of the Slurm configuration)",
    )
    reconcile.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    reconcile.add_argument(
        "--prune-unknown-associations", action="store_true",
        help="also block, then remove, user associations on project accounts of users who never were members "
        "(default: associations the site made by hand are left alone)",
    )  # fmt: skip
    reconcile.add_argument(
        "--orphan-grace", type=float, metavar="SECONDS",
        help="cancel and report jobs tagged 'hpchub:' that no portal session records once they are this old "
        "(default c.HPCHubLedger.orphan_grace of --config, else 120)",
    )  # fmt: skip
    reconcile.add_argument(
        "--pid-file", metavar="PATH",
        help="write our pid there and hold a lock on it: a second reconciler with the same file refuses to run",
    )  # fmt: skip
    reconcile.add_argument(
        "--pause-file", metavar="PATH",
        help="with --every: skip passes while PATH exists (maintenance), e.g. /var/lib/hpchub/reconcile.pause",
    )  # fmt: skip
    reconcile.add_argument(
        "--stop-exhausted-after", type=float, metavar="SECONDS",
        help="after each pass, stop running sessions whose project budget or member cap has been used up "
        "for SECONDS (the grace, e.g. 300); stops them through the hub's API: needs JUPYTERHUB_API_URL "
        "and JUPYTERHUB_API_TOKEN (a token with delete:servers)",
    )  # fmt: skip
    reconcile.add_argument(
        "--stop-idle-after", type=float, metavar="MINUTES",
        help="after each pass, stop running sessions idle for MINUTES: no cell or terminal command running, no "
        "user activity (an open browser tab is none), GPUs below --idle-gpu-busy or unknown; warned at half; a "
        "session that does not answer is never stopped. The project pays only until the stop. 0 = off (default "
        "c.HPCHubLedger.idle_timeout_minutes of --config, else 0; example 30). A course's own idle stop "
        "(hpchub course settings --idle-stop-after) is used for its sessions when shorter, and even when this is "
        "0. It reads the activity the sessions report to the hub themselves (it never asks a session) and stops "
        "through the hub's API as --stop-exhausted-after does; at 0 without the API a course's idle stop is not "
        "applied and the log says so once",
    )  # fmt: skip
    reconcile.add_argument(
        "--idle-report-max-age", type=float, metavar="SECONDS",
        help="with --stop-idle-after: a session whose latest activity report is older than this is 'unknown' and "
        "never stopped (default c.HPCHubLedger.idle_report_max_age_seconds of --config, else 180; from 10 to 86400)",
    )  # fmt: skip
    reconcile.add_argument(
        "--idle-gpu-busy", type=whole_number_argument(), metavar="PERCENT",
        help="with --stop-idle-after: GPU utilization at which a session is computing, never idle "
        "(default c.HPCHubLedger.idle_gpu_busy_percent of --config, else 5)",
    )  # fmt: skip
