"""What the project and admin pages' tables show (pure: no database, no framework).

- The admin page's rows (every project's figures at a glance) and their sorting: a column
  and a direction from the query string (``?sort=remaining&dir=asc``), checked by allowlist,
  and each header's link and ``aria-sort``.
- The project page's member and session rows, the figures formatted for reading.

GPU-hours come from the ledger's exact figures (``mgs``) and are shown as ``hpchub usage``
shows them (4 decimals at most); ``value`` fields carry the JSON number for machines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from urllib.parse import urlencode

from hub.ledger import arithmetic as arith
from hub.ledger.errors import LedgerInputError
from hub.ledger.period import project_status
from hub.ledger.types import ProjectInfo, ProjectUsage, SessionRecord
from hub.project_pages.burndown import BurnDown


def hours_text(mgs: int) -> str:
    """``96.5``, ``4.0``, ``0.0019``: GPU-hours as the command line prints them."""
    return arith.format_gpu_hours(mgs)


def when_text(moment: datetime | None) -> str:
    """``2026-03-02 09:00 UTC``; ``-`` for None."""
    return "-" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def period_text(start: date | None, end: date | None) -> str:
    if start is None and end is None:
        return "open"
    return f"{start.isoformat() if start else '…'} to {end.isoformat() if end else 'open'}"


def percent_tenths(used_mgs: int, budget_mgs: int) -> int | None:
    """used / budget in tenths of a percent, rounded down (exact); None without a budget."""
    if budget_mgs <= 0:
        return None
    return used_mgs * 1000 // budget_mgs


def percent_text(tenths: int | None) -> str:
    return "-" if tenths is None else f"{tenths // 10}.{tenths % 10} %"


# --- the admin page: every project, sortable ---------------------------------------------------------


@dataclass(frozen=True)
class ProjectRow:
    project: str
    kind: str
    state: str
    state_reason: str | None
    period_start: date | None
    period_end: date | None
    budget_mgs: int
    used_mgs: int
    held_mgs: int
    remaining_mgs: int
    percent_tenths: int | None

    @property
    def cells(self) -> dict[str, str]:
        """The text of each column."""
        return {
            "project": self.project, "kind": self.kind,
            "budget": hours_text(self.budget_mgs), "used": hours_text(self.used_mgs),
            "held": hours_text(self.held_mgs), "remaining": hours_text(self.remaining_mgs),
            "percent": percent_text(self.percent_tenths), "state": self.state,
            "period": period_text(self.period_start, self.period_end),
        }  # fmt: skip

    @property
    def values(self) -> dict[str, float | None]:
        """The JSON numbers of the figure columns (``data-value``)."""
        return {
            "budget": arith.gpu_hours_json(self.budget_mgs), "used": arith.gpu_hours_json(self.used_mgs),
            "held": arith.gpu_hours_json(self.held_mgs), "remaining": arith.gpu_hours_json(self.remaining_mgs),
            "percent": None if self.percent_tenths is None else self.percent_tenths / 10,
        }  # fmt: skip


def project_row(info: ProjectInfo, figures: ProjectUsage, today: date | None = None) -> ProjectRow:
    """The admin page's row; ``state`` is active, expired (past its end date on ``today``) or closed."""
    state = info.state.value if today is None else project_status(info.state, info.period_end, today).value
    return ProjectRow(
        project=info.name, kind=info.kind.value, state=state, state_reason=info.state_reason,
        period_start=info.period_start, period_end=info.period_end, budget_mgs=figures.grants_mgs,
        used_mgs=figures.used_mgs, held_mgs=figures.held_mgs, remaining_mgs=figures.remaining_mgs,
        percent_tenths=percent_tenths(figures.used_mgs, figures.grants_mgs),
    )  # fmt: skip


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool  # right-aligned, first sorted descending


COLUMNS: tuple[Column, ...] = (
    Column("project", "Project", False),
    Column("kind", "Kind", False),
    Column("budget", "Budget (GPU-h)", True),
    Column("used", "Used (GPU-h)", True),
    Column("held", "Held (GPU-h)", True),
    Column("remaining", "Remaining (GPU-h)", True),
    Column("percent", "% used", True),
    Column("state", "State", False),
    Column("period", "Period", False),
)
COLUMN_KEYS = tuple(column.key for column in COLUMNS)
DIRECTIONS = ("asc", "desc")
DEFAULT_SORT = ("project", "asc")


def parse_sort(sort: str | None, direction: str | None) -> tuple[str, str]:
    """The query's ``sort`` and ``dir`` (absent: by project, ascending); unknown values are a
    ``LedgerInputError`` naming the parameter and what it allows."""
    sort = DEFAULT_SORT[0] if sort in (None, "") else sort
    if sort not in COLUMN_KEYS:
        raise LedgerInputError("sort", f"one of {', '.join(COLUMN_KEYS)}; got {str(sort)[:40]!r}")
    if direction in (None, ""):
        direction = "asc"
    if direction not in DIRECTIONS:
        raise LedgerInputError("dir", f"one of asc, desc; got {str(direction)[:40]!r}")
    return sort, direction


def _sort_key(row: ProjectRow, column: str):
    """(missing?, value): rows without a value (no budget, no period) sort last either way."""
    value = {
        "project": row.project, "kind": row.kind, "budget": row.budget_mgs, "used": row.used_mgs,
        "held": row.held_mgs, "remaining": row.remaining_mgs, "percent": row.percent_tenths,
        "state": row.state,
        "period": None if row.period_start is None and row.period_end is None
        else (row.period_start or date.min, row.period_end or date.max),
    }[column]  # fmt: skip
    return value


def sort_rows(rows: Iterable[ProjectRow], column: str, direction: str) -> list[ProjectRow]:
    """Rows by ``column`` (``asc``/``desc``), ties by project name ascending; rows without a value
    in that column (a project without budget or period) come last in both directions."""
    column, direction = parse_sort(column, direction)
    by_name = sorted(rows, key=lambda row: row.project)
    present = [row for row in by_name if _sort_key(row, column) is not None]
    missing = [row for row in by_name if _sort_key(row, column) is None]
    present.sort(key=lambda row: _sort_key(row, column), reverse=direction == "desc")  # stable: ties by name
    return present + missing


@dataclass(frozen=True)
class Header:
    column: Column
    href: str  # the query string that sorts by this column (toggles the direction if already sorted)
    aria_sort: str  # ascending | descending | none
    next_direction: str


def headers(sort: str, direction: str) -> list[Header]:
    """Each column header: the link that sorts by it and its ``aria-sort``. A click on the sorted
    column reverses it; another column starts descending for figures, ascending for text."""
    answer = []
    for column in COLUMNS:
        if column.key == sort:
            aria = "ascending" if direction == "asc" else "descending"
            following = "desc" if direction == "asc" else "asc"
        else:
            aria = "none"
            following = "desc" if column.numeric else "asc"
        answer.append(Header(column, "?" + urlencode({"sort": column.key, "dir": following}), aria, following))
    return answer


# --- the project page --------------------------------------------------------------------------------


def figures_view(figures: ProjectUsage) -> dict[str, dict]:
    """The four headline figures: text and JSON value (what ``hpchub usage --json`` says)."""
    return {
        key: {"text": hours_text(mgs), "value": arith.gpu_hours_json(mgs)}
        for key, mgs in (("budget", figures.grants_mgs), ("used", figures.used_mgs), ("held", figures.held_mgs),
                         ("remaining", figures.remaining_mgs))
    }  # fmt: skip


def member_rows(figures: ProjectUsage, caller: str | None, read_all: bool) -> list[dict]:
    """Every member's row (pi, manager, instructor, ta, admin) or only the caller's own."""
    rows = []
    for member in figures.members:
        if not read_all and member.user != caller:
            continue
        cap_left = member.cap_remaining_mgs
        rows.append({
            "user": member.user, "role": member.role.value,
            "cap": "none" if member.cap_mgs is None else hours_text(member.cap_mgs),
            "cap_value": None if member.cap_mgs is None else arith.gpu_hours_json(member.cap_mgs),
            "used": hours_text(member.used_mgs), "used_value": arith.gpu_hours_json(member.used_mgs),
            "held": hours_text(member.held_mgs), "held_value": arith.gpu_hours_json(member.held_mgs),
            "cap_left": "-" if cap_left is None else hours_text(cap_left),
            "percent_of_project": percent_text(percent_tenths(member.used_mgs, figures.grants_mgs)),
        })  # fmt: skip
    return rows


STATE_WORDS = {"admitted": "pending", "running": "running", "ended": "ended"}


def session_rows(records: Sequence[SessionRecord]) -> list[dict]:
    """The recent sessions table: user, server, GPUs x type, start, end, GPU-h, state or reason."""
    rows = []
    for record in records:
        state = STATE_WORDS.get(record.state.value, record.state.value)
        reason = record.message or ""
        rows.append({
            "user": record.user, "server": record.server_name or "(default)", "job_id": record.job_id or "",
            "gpus": f"{record.gpus} x {record.gpu_type}" if record.gpus and record.gpu_type else "no GPU",
            "start": when_text(record.started_at), "end": when_text(record.ended_at),
            "gpu_hours": hours_text(record.cost_mgs), "gpu_hours_value": arith.gpu_hours_json(record.cost_mgs),
            "held": hours_text(record.held_mgs), "state": state, "reason": reason,
        })  # fmt: skip
    return rows


def chart_summary(data: BurnDown) -> str:
    """The chart's words (its caption and the SVG's accessible name)."""
    return (
        f"GPU-hours remaining in {data.project} from {data.start:%Y-%m-%d} to {data.end:%Y-%m-%d}: budget "
        f"{hours_text(data.budget_mgs)}, {hours_text(data.remaining_mgs)} remaining on {data.now:%Y-%m-%d} "
        f"({hours_text(data.used_mgs)} used, {hours_text(data.held_mgs)} held by running sessions)."
    )


def project_links(items: Iterable[tuple[str, str, ProjectUsage]]) -> list[dict]:
    """The home page's "Your projects": (project, role, figures) -> a row with its page's path
    (relative to the hub's base URL)."""
    rows = []
    for name, role, figures in items:
        rows.append({
            "project": name, "role": role, "path": f"hpchub/projects/{name}",
            "budget": hours_text(figures.grants_mgs), "remaining": hours_text(figures.remaining_mgs),
            "remaining_value": arith.gpu_hours_json(figures.remaining_mgs),
            "percent": percent_text(percent_tenths(figures.used_mgs, figures.grants_mgs)),
        })  # fmt: skip
    return rows
