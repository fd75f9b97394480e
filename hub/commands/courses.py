"""``hpchub course create|settings|roster|sync|report|lab-hours|close``: courses on the admin command line.

The commands run through ``cli.cmd_ledger`` like the other ledger commands (the same
database choice, exit codes and one-line errors); ``add_course_parsers`` adds them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from datetime import datetime, timezone

from hub.cli_support import UsageError, load_hub_config, slurm_cluster
from hub.ledger import arithmetic as arith
from hub.ledger.course_accounts import foreign_reservation
from hub.ledger.course_records import (
    COURSE_FIELDS,
    REPORT_COLUMNS,
    new_course,
    report_csv,
    report_hours,
)
from hub.ledger.courses import (
    DEFAULT_GROUP_ROLES,
    OnDrop,
    idle_stop_minutes,
    parse_roster_csv,
    ta_extension_mgs,
    yes_no,
)
from hub.ledger.errors import LedgerError
from hub.ledger.store import Ledger
from hub.numbers import whole_number_argument
from spawners.slurm.accounts import read_account_tree
from spawners.slurm.client import SlurmCommandError
from spawners.slurm.reservations import (
    create_reservation,
    delete_reservation,
    show_reservation,
)

# Ledger field -> the argument the user typed (for error lines).
ARGUMENT_NAMES = {
    "course create": {
        "gpu_hours": "--gpu-hours",
        "per_student": "--per-student",
        "gpu_types": "--gpu-types",
        "max_gpus": "--max-gpus",
        "max_hours": "--max-hours",
        "max_sessions": "--max-sessions",
        "reservation": "--reservation",
        "account": "--account",
        "start": "--start",
        "end": "--end",
        "ta_extension_limit": "--ta-extension-limit",
        "lab_hours_only": "--lab-hours-only",
        "on_drop": "--on-drop",
        "idle_stop_after": "--idle-stop-after",
        "instructor": "--instructor",
        "name": "NAME",
    },  # fmt: skip
    "course settings": {
        "ta_extension_limit": "--ta-extension-limit",
        "lab_hours_only": "--lab-hours-only",
        "on_drop": "--on-drop",
        "idle_stop_after": "--idle-stop-after",
        "reason": "--reason",
    },  # fmt: skip
    "course roster": {"csv": "--csv"},
    "course sync": {"group_roles": "--group-role"},
}
MAX_CSV_BYTES = 1_000_000
ON_DROP_HELP = (
    "what happens to a student's running sessions when their membership ends (a roster or IdP-group sync, member "
    "remove): finish (they run to their end) or stop (the budget watch, hpchub reconcile --stop-exhausted-after, "
    "stops them after its grace with the reason shown); new sessions are refused either way"
)
LAB_HOURS_ONLY_HELP = (
    "students start sessions only while the course's lab-hours reservation (--reservation) is active; outside "
    "it their spawns are refused naming course rule lab-hours-only (default: no, they queue normally)"
)
IDLE_STOP_HELP = (
    "stop the course's sessions after this many minutes idle (no cell, terminal or GPU use; warned at half), "
    "1 to 10080; only shorter than the site's idle stop counts (the site's applies when it is shorter), and it "
    "applies even when the site's is off (default: none, the site's idle stop; hpchub reconcile --stop-idle-after)"
)
TA_EXTENSION_HELP = (
    "the most GPU-hours a TA may extend one student's cap by, over the per-student cap, in all (0: TAs may not "
    "extend; default: none, the site's HPCHubAPI.ta_cap_limit_gpu_hours applies); instructors and admins are not "
    "limited"
)


def read_slurm_accounts(args):
    """Slurm's account tree (``spawners.slurm.accounts``) of the hub's cluster (``--slurm-conf``, else
    ``$SLURM_CONF``, else the --config file's, else Slurm's own); a failure is one line, exit 1: a
    course is never created unchecked."""

    client = slurm_cluster(args).client()
    try:
        return asyncio.run(read_account_tree(client))
    except SlurmCommandError as exc:
        raise SlurmUnavailable(f"--account: cannot read Slurm's accounts to check it ({exc.summary}); nothing "
                               "was created") from None  # fmt: skip
    except ValueError as exc:
        raise SlurmUnavailable(f"--account: Slurm's accounts are unreadable ({exc}); nothing was created") from None


def _course_create(ledger: Ledger, args) -> None:
    fields = {field: getattr(args, field) for field in COURSE_FIELDS}
    info, rules = new_course(ledger, fields, who=args.who, slurm_accounts=read_slurm_accounts(args))
    budget = arith.format_gpu_hours(ledger.figures(info.name).grants_mgs)
    print(f"created course {info.name} (account {info.slurm_account}, {budget} GPU-h, "
          f"{info.period_start} to {info.period_end})")  # fmt: skip
    for line in rules.describe():
        print(f"  {line}")


def _course_settings(ledger: Ledger, args) -> None:
    """Show the instructor's settings, or change those given (one appended record each)."""
    rules = ledger.course_rules(args.name)
    if rules is None:
        raise UsageError(f"NAME: {args.name} is not a course")
    changes: dict[str, object] = {}
    if args.ta_extension_limit is not None:
        changes["ta_extension_mgs"] = ta_extension_mgs(args.ta_extension_limit)
    if args.lab_hours_only is not None:
        changes["lab_hours_only"] = yes_no(args.lab_hours_only, "lab_hours_only")
    if args.on_drop is not None:
        changes["on_drop"] = OnDrop(args.on_drop)
    if args.idle_stop_after is not None:
        changes["idle_stop_minutes"] = idle_stop_minutes(args.idle_stop_after)
    if changes:
        wanted = dataclasses.replace(rules, **changes)
        rules, changed = ledger.set_course_settings(args.name, wanted, reason=args.reason, who=args.who)
        print(f"{args.name}: {', '.join(changed) if changed else 'nothing'} changed")
    for line in settings_lines(rules):
        print(f"  {line}")


def settings_lines(rules) -> list[str]:
    """The instructor's settings in words, one line each."""
    limit = rules.ta_extension_mgs
    ta = ("none (the site-wide HPCHubAPI.ta_cap_limit_gpu_hours applies)" if limit is None
          else f"{arith.format_gpu_hours(limit)} GPU-h over the per-student cap")  # fmt: skip
    lab = ("yes: students start sessions only while the lab hours are on" if rules.lab_hours_only
           else "no: outside the lab hours students' sessions queue normally")  # fmt: skip
    drop = (
        "stop: a dropped student's running sessions are stopped after the budget watch's grace"
        if rules.on_drop is OnDrop.STOP
        else "finish: a dropped student's running sessions run to their end"
    )
    idle = ("none: the site's idle stop applies" if rules.idle_stop_minutes is None
            else f"{rules.idle_stop_minutes} min: the course's sessions stop when idle that long (the site's idle "
                 "stop if shorter)")  # fmt: skip
    return [f"ta-extension-limit: {ta}", f"lab-hours-only: {lab}", f"on-drop: {drop}", f"idle-stop-after: {idle}"]


def _read_csv(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--csv: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_CSV_BYTES:
        raise UsageError(f"--csv: {path} is larger than {MAX_CSV_BYTES:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"--csv: {path} is not UTF-8 text") from None


def _course_roster(ledger: Ledger, args) -> None:
    rows, problems = parse_roster_csv(_read_csv(args.csv))
    if problems:
        for problem in problems:
            print(f"hpchub: --csv: {problem}", file=sys.stderr)
        raise UsageError(f"--csv: {len(problems)} bad row(s); nothing was imported")
    result = ledger.import_roster(args.name, rows, who=args.who)
    print(f"{args.name}: {len(result.added)} added to the roster (pending until their first login), "
          f"{len(result.unchanged)} already there")  # fmt: skip


def _course_sync(ledger: Ledger, args) -> None:
    """The course's roster from the IdP groups as each user's last login showed them."""
    roles = _configured_group_roles(getattr(args, "config", None))
    if args.group_role:
        roles = {}
        for item in args.group_role:
            pattern, _, role = item.partition("=")
            if "{course}" not in pattern or not role:
                raise UsageError(f"--group-role: PATTERN=ROLE with {{course}} in the pattern, got {item!r}")
            roles[pattern] = role
    result = ledger.sync_course(args.name, roles, now=None)
    for change in result.changes:
        print(change)
    print(f"{args.name}: {len(result.changes)} change(s) from the groups recorded at the last login of "
          f"{result.users_read} user(s)")  # fmt: skip
    if result.unrecorded:
        print(f"{len(result.unrecorded)} member(s) a group added have no recorded groups and were left as they are "
              f"(until their next login): {', '.join(result.unrecorded)}")  # fmt: skip


def _configured_group_roles(config_file: str | None) -> dict[str, str]:
    """``c.HPCHubOIDCAuthenticator.course_group_roles`` of the hub's configuration file (``hpchub
    --config``, if it exists), else the login's default."""

    if config_file and os.path.isfile(config_file):
        section = load_hub_config(config_file).get("HPCHubOIDCAuthenticator") or {}
        if "course_group_roles" in section:
            return dict(section["course_group_roles"])
    return dict(DEFAULT_GROUP_ROLES)


def _course_report(ledger: Ledger, args) -> None:
    rows = ledger.course_report(args.name)
    if args.csv:
        sys.stdout.write(report_csv(rows))
        return
    table = [REPORT_COLUMNS] + [
        (row.user, row.role, str(row.sessions), report_hours(row.used_mgs), report_hours(row.cap_mgs) or "-",
         str(row.extensions))
        for row in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in table) for i in range(len(REPORT_COLUMNS))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    pending = [principal for principal, _role, user in ledger.roster(args.name) if user is None]
    if pending:
        print(f"{len(pending)} on the roster never logged in")


def _course_close(ledger: Ledger, args) -> None:
    ledger.close_project(args.name, reason=args.reason, who=args.who)
    print(f"{args.name} is closed: no new sessions ({args.reason}); the reconciler lowers its Slurm limit to what "
          "was used once and then no longer mirrors it, and the budget watch stops running sessions after its "
          "grace")  # fmt: skip


def _course_lab_hours(ledger: Ledger, args) -> None:
    """Switch the course's lab hours on (a Slurm reservation from now) or off, or show them."""

    rules = ledger.course_rules(args.name)
    if rules is None:
        raise UsageError(f"NAME: {args.name} is not a course")
    if not rules.reservation:
        raise UsageError(f"--reservation: {args.name} has no lab-hours reservation (give one at course create)")
    if args.on and not args.nodes:
        raise UsageError("--nodes: which nodes the lab hours reserve, e.g. gpu03")
    account = ledger.project(args.name).slurm_account
    client = slurm_cluster(args).client()

    async def act() -> str:
        if args.on or args.off:
            found = await show_reservation(client, rules.reservation)
            refusal = foreign_reservation(args.name, account, rules.reservation, found)
            if refusal is not None:
                raise LabHoursFailed(refusal)
        if args.on:
            nodes = [node.strip() for node in args.nodes.split(",") if node.strip()]
            if found is not None:
                raise UsageError(f"--on: reservation {rules.reservation} exists already; --off first")
            await create_reservation(client, rules.reservation, minutes=args.minutes, nodes=nodes, accounts=[account])
        elif args.off:
            if found is None or not await delete_reservation(client, rules.reservation):
                return f"{args.name}: lab hours were not on (no reservation {rules.reservation})"
            return f"{args.name}: lab hours off (reservation {rules.reservation} deleted)"
        found = await show_reservation(client, rules.reservation)
        if found is None:
            return f"{args.name}: lab hours off (no reservation {rules.reservation})"
        state = "on" if found.active_at(datetime.now(timezone.utc)) else "not active now"
        return (f"{args.name}: lab hours {state}: reservation {found.name} on {found.nodes}, "
                f"{found.start:%Y-%m-%d %H:%M} to {found.end:%Y-%m-%d %H:%M %Z}")  # fmt: skip

    try:
        print(asyncio.run(act()))
    except ValueError as exc:
        raise UsageError(f"--nodes: {exc}") from None
    except SlurmCommandError as exc:
        denied = any(word in exc.stderr.lower() for word in ("access denied", "permission", "not authorized"))
        hint = " (creating or deleting a reservation needs a Slurm operator)" if denied else ""
        raise LabHoursFailed(exc.summary + hint) from None


class LabHoursFailed(LedgerError):
    """Slurm refused: one line, exit 1 (``cli.cmd_ledger``)."""


class SlurmUnavailable(LedgerError):
    """Slurm could not be asked what a command must check: one line, exit 1 (``cli.cmd_ledger``)."""


COMMANDS = {
    "course create": _course_create,
    "course settings": _course_settings,
    "course roster": _course_roster,
    "course sync": _course_sync,
    "course report": _course_report,
    "course close": _course_close,
    "course lab-hours": _course_lab_hours,
}


def add_course_parsers(subparsers, leaf, subcommands: dict) -> None:
    course = subparsers.add_parser("course", help="courses: a project with per-student caps and rules")
    course.error = lambda message: course.exit(2, f"{course.prog}: {message}\n")  # one line, like the others
    course_sub = course.add_subparsers(**subcommands)
    create = leaf(course_sub, "create", "course create", help="a course: project, budget, period and rules")
    create.add_argument("name", metavar="NAME", help="2-40 characters: a-z, 0-9 and '-', starting with a letter")
    create.add_argument(
        "--account",
        required=True,
        help="the course's Slurm account: one of its own that exists, with no accounts under it "
        "(never root) and no other project has (sacctmgr add account NAME first)",
    )
    create.add_argument(
        "--slurm-conf",
        metavar="PATH",
        help="Slurm's configuration, to check --account (default $SLURM_CONF, else Slurm's own)",
    )
    create.add_argument("--start", required=True, metavar="DATE", help="first day of the term (YYYY-MM-DD)")
    create.add_argument("--end", required=True, metavar="DATE", help="last day of the term, inclusive (YYYY-MM-DD)")
    create.add_argument("--gpu-hours", required=True, metavar="H", help="the course's budget in weighted GPU-hours")
    create.add_argument("--per-student", required=True, metavar="H", help="each student's cap in GPU-hours, e.g. 5")
    create.add_argument("--gpu-types", metavar="T,T", help="GPU types students may use, e.g. a100 (default: any)")
    create.add_argument("--max-gpus", metavar="N", help="GPUs per student session, 1-64 (default: no limit)")
    create.add_argument("--max-hours", metavar="H", help="hours per student session, multiple of 0.25 (default: none)")
    create.add_argument("--max-sessions", metavar="N", help="sessions at once per student, 1-100 (default: none)")
    create.add_argument(
        "--reservation",
        metavar="RES",
        help="the Slurm reservation of the lab hours: the course's own NAME-lab (e.g. cs101-lab)",
    )
    create.add_argument("--ta-extension-limit", metavar="H", help=TA_EXTENSION_HELP)
    create.add_argument("--lab-hours-only", action="store_true", help=LAB_HOURS_ONLY_HELP)
    create.add_argument("--on-drop", choices=[o.value for o in OnDrop], help=ON_DROP_HELP + " (default finish)")
    create.add_argument("--idle-stop-after", metavar="MIN", help=IDLE_STOP_HELP)
    create.add_argument("--instructor", metavar="USER", help="a Unix user to make the course's instructor")
    settings = leaf(
        course_sub,
        "settings",
        "course settings",
        help="show or change the instructor's settings (each change an appended record)",
    )
    settings.add_argument("name", metavar="NAME")
    settings.add_argument("--ta-extension-limit", metavar="H", help=TA_EXTENSION_HELP + "; 'none' removes it")
    settings.add_argument("--lab-hours-only", choices=("yes", "no"), help=LAB_HOURS_ONLY_HELP)
    settings.add_argument("--on-drop", choices=[o.value for o in OnDrop], help=ON_DROP_HELP)
    settings.add_argument("--idle-stop-after", metavar="MIN", help=IDLE_STOP_HELP + "; 'none' removes it")
    settings.add_argument(
        "--reason", default="changed on the command line", metavar="TEXT", help="recorded with the change"
    )
    roster = leaf(course_sub, "roster", "course roster", help="add principals from a CSV (pending until they log in)")
    roster.add_argument("name", metavar="NAME")
    roster.add_argument(
        "--csv", required=True, metavar="FILE",
        help="rows of principal[,role] (role student, ta or instructor; default student); a header row "
        "'principal,role' is optional. Any bad row: every one is reported and nothing is imported",
    )  # fmt: skip
    sync = leaf(
        course_sub, "sync", "course sync", help="the roster from the IdP groups recorded at each user's last login",
        description="Re-read the course's roster from the identity provider's groups as a login does "
        "(c.HPCHubOIDCAuthenticator.course_group_roles): add members a group gives, end memberships a group gave "
        "and no longer gives. The group claims reach the hub only when a user logs in (or at the refresh before a "
        "spawn), so this reads the groups the ledger recorded at each user's last login, not the identity "
        "provider now; users who never logged in are not seen (put them on the roster with course roster --csv).",
    )  # fmt: skip
    sync.add_argument("name", metavar="NAME")
    sync.add_argument(
        "--group-role", action="append", metavar="PATTERN=ROLE",
        help="a group pattern and the role it gives, e.g. '{course}-students=student' (repeat; default: "
        "c.HPCHubOIDCAuthenticator.course_group_roles of hpchub --config FILE if it sets them, else the login's "
        "defaults {course}-students=student, {course}-tas=ta, {course}-instructors=instructor)",
    )  # fmt: skip
    report = leaf(course_sub, "report", "course report", help="per member: sessions, GPU-hours, cap, extensions")
    report.add_argument("name", metavar="NAME")
    report.add_argument("--csv", action="store_true", help="CSV with a header line")
    lab = leaf(course_sub, "lab-hours", "course lab-hours", help="lab hours: the course's Slurm reservation on or off")
    lab.add_argument("name", metavar="NAME")
    switch = lab.add_mutually_exclusive_group()
    switch.add_argument("--on", action="store_true", help="reserve --nodes for the course from now for --minutes")
    switch.add_argument("--off", action="store_true", help="end the lab hours (delete the reservation)")
    lab.add_argument(
        "--minutes", type=whole_number_argument(1), default=60, metavar="N", help="how long, with --on (default 60)"
    )
    lab.add_argument("--nodes", metavar="NODE,NODE", help="the nodes to reserve, with --on, e.g. gpu03")
    lab.add_argument("--slurm-conf", metavar="PATH", help="Slurm's configuration (default $SLURM_CONF)")
    close = leaf(course_sub, "close", "course close", help="close the course: no new sessions")
    close.add_argument("name", metavar="NAME")
    close.add_argument("--reason", default="the term has ended", metavar="TEXT", help="shown to its users")
