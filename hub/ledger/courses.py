"""Courses (pure): a course's rules, the check of a student's request against them, and the
roster CSV.

A course is a project of kind ``course`` plus ``CourseRules``: the per-student cap every
student gets when added (caps may add up to more than the budget; the budget still bounds
the total), and limits that bind each student's sessions (GPU types, GPUs per session,
hours per session, sessions at once). Instructors and TAs are not bound by them. The
ledger checks the rules inside the atomic admission, so two concurrent spawns of one
student cannot both pass ``max_sessions``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum

from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError
from hub.ledger.idle import COURSE_IDLE_LIMIT, idle_timeout_allowed
from hub.ledger.types import GPU_TYPE_RE, Role, check_enum
from hub.numbers import NumberError, parse_whole
from spawners import names

ROSTER_ROLES = (Role.STUDENT, Role.TA, Role.INSTRUCTOR)
# A principal as the identity provider names it: user@institution.example (no spaces, one @).
PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
RESERVATION_RE = names.anchored(names.RESERVATION)
MAX_ROSTER_ROWS = 5000
# IdP group patterns that make a user a course member, with the role each gives ('{course}': its name):
# the login's default (HPCHubOIDCAuthenticator.course_group_roles) and hpchub course sync's.
DEFAULT_GROUP_ROLES = {"{course}-students": "student", "{course}-tas": "ta", "{course}-instructors": "instructor"}


class OnDrop(Enum):
    """What happens to a dropped student's running sessions (new ones are refused either way)."""

    FINISH = "finish"  # they run to their time limit
    STOP = "stop"  # the budget watch stops them after its grace, with the reason


@dataclass(frozen=True)
class CourseRules:
    """What binds a course's students. ``None`` (or an empty ``gpu_types``): no limit."""

    per_student_mgs: int
    gpu_types: tuple[str, ...] = ()
    max_gpus: int | None = None
    max_seconds: int | None = None
    max_sessions: int | None = None
    reservation: str | None = None
    # the instructor's settings (append-only ``hpchub_course_settings`` rows; see ``SETTINGS``)
    ta_extension_mgs: int | None = (
        None  # a ta raises a student's cap to at most per-student + this; None: the site's rule
    )
    lab_hours_only: bool = False  # students start sessions only while the lab-hours reservation is active
    on_drop: OnDrop = OnDrop.FINISH  # a dropped student's running sessions: finish, or stop
    idle_stop_minutes: int | None = None  # the course's sessions stop idle after this (if shorter than the site's)

    def describe(self) -> list[str]:
        """The rules in words, one per line (the CLI, the form's help)."""
        lines = [f"each student's cap: {arith.format_gpu_hours(self.per_student_mgs)} GPU-h"]
        if self.gpu_types:
            lines.append(f"GPU types: {', '.join(self.gpu_types)}")
        if self.max_gpus is not None:
            lines.append(f"at most {self.max_gpus} GPU{'s' if self.max_gpus != 1 else ''} per session")
        if self.max_seconds is not None:
            lines.append(f"at most {arith.format_hours(self.max_seconds)} h per session")
        if self.max_sessions is not None:
            lines.append(f"at most {self.max_sessions} session{'s' if self.max_sessions != 1 else ''} at once")
        if self.reservation:
            lines.append(f"lab hours: Slurm reservation {self.reservation}")
        if self.ta_extension_mgs is not None:
            lines.append(f"a TA may extend a student's cap by at most {arith.format_gpu_hours(self.ta_extension_mgs)} "
                         "GPU-h in all")  # fmt: skip
        if self.lab_hours_only:
            lines.append("students start sessions only during the lab hours")
        if self.on_drop is OnDrop.STOP:
            lines.append("a dropped student's running sessions are stopped")
        if self.idle_stop_minutes is not None:
            lines.append(f"sessions idle for {self.idle_stop_minutes} min are stopped (unless the site's idle stop is "
                         "shorter)")  # fmt: skip
        return lines

    def settings(self) -> dict[str, str]:
        """The instructor's settings as the ledger stores them (``SETTINGS``: name -> text)."""
        return {
            SETTING_TA_EXTENSION: "" if self.ta_extension_mgs is None else str(self.ta_extension_mgs),
            SETTING_LAB_HOURS_ONLY: "yes" if self.lab_hours_only else "no",
            SETTING_ON_DROP: self.on_drop.value,
            SETTING_IDLE_STOP: "" if self.idle_stop_minutes is None else str(self.idle_stop_minutes),
        }

    def with_settings(self, stored: Mapping[str, str]) -> CourseRules:
        """These rules with the stored settings (the latest of each) applied."""
        changes: dict[str, object] = {}
        if SETTING_TA_EXTENSION in stored:
            text = stored[SETTING_TA_EXTENSION]
            changes["ta_extension_mgs"] = int(text) if text else None
        if SETTING_LAB_HOURS_ONLY in stored:
            changes["lab_hours_only"] = stored[SETTING_LAB_HOURS_ONLY] == "yes"
        if SETTING_ON_DROP in stored:
            changes["on_drop"] = OnDrop(stored[SETTING_ON_DROP])
        if SETTING_IDLE_STOP in stored:
            changes["idle_stop_minutes"] = int(stored[SETTING_IDLE_STOP]) if stored[SETTING_IDLE_STOP] else None
        return replace(self, **changes)

    def check(self) -> CourseRules:
        """These rules if they fit together (else ``LedgerInputError`` naming the field)."""
        if self.lab_hours_only and not self.reservation:
            raise LedgerInputError("lab_hours_only", "needs the course's lab-hours reservation (--reservation RES)")
        return self


# The instructor's settings, recorded append-only (the latest row of each name wins).
SETTING_TA_EXTENSION = "ta-extension-limit"
SETTING_LAB_HOURS_ONLY = "lab-hours-only"
SETTING_ON_DROP = "on-drop"
SETTING_IDLE_STOP = "idle-stop-after"  # minutes; "": the site's idle stop (hub/ledger/idle.py effective_idle_timeout)
SETTINGS = (SETTING_TA_EXTENSION, SETTING_LAB_HOURS_ONLY, SETTING_ON_DROP, SETTING_IDLE_STOP)
STOP_REASON_DROPPED = (
    "stopped: {user} was dropped from {course} ({how}); the course stops a dropped student's sessions "
    "(course setting on-drop)"
)

NO_LIMIT_WORDS = ("none", "")


def ta_extension_mgs(value: object, field: str = "ta_extension_limit") -> int | None:
    """The TA extension limit in GPU-hours (0: TAs may not extend) -> mgs; None or "none": no
    course limit (the site's ``c.HPCHubAPI.ta_cap_limit_gpu_hours`` applies)."""
    if value is None or isinstance(value, str) and value.strip().lower() in NO_LIMIT_WORDS:
        return None
    return arith.gpu_hours_to_mgs(value, field)


def idle_stop_minutes(value: object, field: str = "idle_stop_after") -> int | None:
    """The course's idle stop in whole minutes, 1 to the site's limit; None or "none": not set
    (the site's applies). 0 is refused: a course cannot switch the site's stop off."""
    if value is None or isinstance(value, str) and value.strip().lower() in NO_LIMIT_WORDS:
        return None
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str):
        try:
            text = parse_whole(text, field, low=1)
        except NumberError:
            raise LedgerInputError(field, f"must be {COURSE_IDLE_LIMIT}, got {str(value)[:40]!r}") from None
    if isinstance(text, bool) or not isinstance(text, int) or text < 1 or not idle_timeout_allowed(text):
        raise LedgerInputError(field, f"must be {COURSE_IDLE_LIMIT}, got {str(value)[:40]!r}")
    return text


def yes_no(value: object, field: str) -> bool:
    """true/false, or the command line's yes/no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return value.strip().lower() == "yes"
    raise LedgerInputError(field, f"must be yes or no (true or false), got {str(value)[:40]!r}")


def ta_extension_refusal(course: str, rules: CourseRules, target: str, new_cap_mgs: int) -> str | None:
    """Why a ta may not set ``target``'s cap to ``new_cap_mgs`` under the course's own limit
    (course rule ta-extension-limit: at most per-student + the limit), or None."""
    limit = rules.ta_extension_mgs
    if limit is None or new_cap_mgs - rules.per_student_mgs <= limit:
        return None
    fmt = arith.format_gpu_hours
    if limit == 0:
        return f"{course} lets no ta extend a cap (course rule ta-extension-limit); ask an instructor"
    return (
        f"{course} lets a ta extend a student's cap by at most {fmt(limit)} GPU-h over the course's "
        f"{fmt(rules.per_student_mgs)} GPU-h, to {fmt(rules.per_student_mgs + limit)} GPU-h (course rule "
        f"ta-extension-limit); {target}'s cap would be {fmt(new_cap_mgs)} GPU-h; ask an instructor"
    )


def make_rules(
    *,
    per_student: object,
    gpu_types: str | tuple[str, ...] | list[str] | None = None,
    max_gpus: object = None,
    max_hours: object = None,
    max_sessions: object = None,
    reservation: str | None = None,
    ta_extension_limit: object = None,
    lab_hours_only: object = False,
    on_drop: object = None,
    idle_stop_after: object = None,
) -> CourseRules:
    """Validated rules from what an admin typed (the field names are the CLI's options)."""
    per_student_mgs = arith.gpu_hours_to_mgs(per_student, "per_student")
    if per_student_mgs <= 0:
        raise LedgerInputError("per_student", "must be more than 0 GPU-hours")
    if isinstance(gpu_types, str):
        gpu_types = tuple(t.strip() for t in gpu_types.split(",") if t.strip())
    types = tuple(gpu_types or ())
    for gpu_type in types:
        if not GPU_TYPE_RE.fullmatch(gpu_type):
            raise LedgerInputError(
                "gpu_types", f"{gpu_type!r} is not a GPU type name (lower-case letters, digits, '-', '_')"
            )
    if len(set(types)) != len(types):
        raise LedgerInputError("gpu_types", "lists a GPU type twice")

    def whole(value: object, field: str, low: int, high: int) -> int | None:
        if value is None:
            return None
        number = value
        if isinstance(value, str):
            try:
                number = parse_whole(value.strip(), field)
            except NumberError:
                number = None
        if isinstance(number, bool) or not isinstance(number, int):
            raise LedgerInputError(field, f"must be a whole number from {low} to {high}, got {str(value)[:40]!r}")
        if not low <= number <= high:
            raise LedgerInputError(field, f"must be from {low} to {high}, got {number}")
        return number

    max_seconds = None if max_hours is None else arith.hours_to_seconds(max_hours, "max_hours")
    if reservation is not None and not RESERVATION_RE.fullmatch(reservation):
        raise LedgerInputError(
            "reservation", f"{reservation!r} is not a Slurm reservation name (letters, digits, '_', '.', '-')"
        )
    return CourseRules(
        per_student_mgs=per_student_mgs, gpu_types=types, max_gpus=whole(max_gpus, "max_gpus", 1, 64),
        max_seconds=max_seconds, max_sessions=whole(max_sessions, "max_sessions", 1, 100), reservation=reservation,
        ta_extension_mgs=ta_extension_mgs(ta_extension_limit), lab_hours_only=yes_no(lab_hours_only, "lab_hours_only"),
        on_drop=OnDrop.FINISH if on_drop is None else check_enum(OnDrop, on_drop, "on_drop"),
        idle_stop_minutes=idle_stop_minutes(idle_stop_after),
    ).check()  # fmt: skip


def course_refusal(
    course: str,
    rules: CourseRules,
    *,
    gpu_type: str | None,
    gpus: int,
    total_seconds: int,
    sessions_held: int | None,
    lab_hours_on: bool | None = None,
) -> str | None:
    """Why a student's request breaks a course rule (the message names the rule), or None.

    ``total_seconds`` is the session's whole reservation (for an extension: with the added
    hours); ``sessions_held`` the student's admitted or running sessions in the course
    before this one (None: an extension, which starts no session); ``lab_hours_on`` whether the
    course's lab-hours reservation is active now (None: not known, e.g. Slurm did not answer)."""
    if rules.lab_hours_only and sessions_held is not None and lab_hours_on is not True:
        now = "they are off now" if lab_hours_on is False else "whether they are on is not known now; try again shortly"
        return f"{course} lets students start sessions only during its lab hours (course rule lab-hours-only); {now}."
    if rules.gpu_types and gpus and gpu_type not in rules.gpu_types:
        allowed = " or ".join(rules.gpu_types)
        return (
            f"{course} allows students only {allowed} GPUs (course rule gpu-types); this request asks for {gpu_type}."
        )
    if rules.max_gpus is not None and gpus > rules.max_gpus:
        return (
            f"{course} allows students at most {rules.max_gpus} GPU{'s' if rules.max_gpus != 1 else ''} per session "
            f"(course rule max-gpus); this request asks for {gpus}."
        )
    if rules.max_seconds is not None and total_seconds > rules.max_seconds:
        return (
            f"{course} allows students at most {arith.format_hours(rules.max_seconds)} h per session "
            f"(course rule max-hours); this session would reserve {arith.format_hours(total_seconds)} h."
        )
    if rules.max_sessions is not None and sessions_held is not None and sessions_held >= rules.max_sessions:
        plural = "s" if rules.max_sessions != 1 else ""
        return (
            f"{course} allows students at most {rules.max_sessions} session{plural} at once (course rule "
            f"max-sessions); you have {sessions_held} running or starting. Stop one first."
        )
    return None


# --- the roster CSV --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterRow:
    line: int
    principal: str
    role: Role


@dataclass(frozen=True)
class RosterProblem:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


def parse_roster_csv(text: str) -> tuple[list[RosterRow], list[RosterProblem]]:
    """Rows of ``principal[,role]`` (a header row ``principal,role`` is optional; role
    defaults to student). Every bad row is reported; the caller imports nothing if any is."""
    rows: list[RosterRow] = []
    problems: list[RosterProblem] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    roles = {role.value: role for role in ROSTER_ROLES}
    for line, fields in enumerate(reader, start=1):
        fields = [f.strip() for f in fields]
        if not any(fields) or fields[0].startswith("#"):
            continue
        if line == 1 and fields[0].lower() == "principal":
            continue
        if len(rows) + len(problems) >= MAX_ROSTER_ROWS:
            problems.append(RosterProblem(line, f"more than {MAX_ROSTER_ROWS} rows"))
            break
        if len(fields) > 2:
            problems.append(RosterProblem(line, f"expected principal[,role], got {len(fields)} fields"))
            continue
        principal = fields[0].lower()
        role_text = (fields[1] if len(fields) > 1 and fields[1] else "student").lower()
        if not PRINCIPAL_RE.fullmatch(principal):
            problems.append(RosterProblem(line, f"{fields[0][:80]!r} is not a principal like name@uni.example"))
            continue
        if role_text not in roles:
            problems.append(RosterProblem(line, f"role {role_text[:40]!r} is not one of {', '.join(roles)}"))
            continue
        if principal in seen:
            problems.append(RosterProblem(line, f"{principal} is listed twice (first on line {seen[principal]})"))
            continue
        seen[principal] = line
        rows.append(RosterRow(line, principal, roles[role_text]))
    return rows, problems
