"""Unit tests for the pages' rows and the admin page's sorting (hub/project_pages/tables.py)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from urllib.parse import parse_qs

import pytest

from hub.ledger import LedgerInputError
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.types import (
    MemberUsage,
    ProjectUsage,
    Role,
    SessionRecord,
    SessionState,
)
from hub.project_pages import tables
from hub.project_pages.tables import (
    COLUMN_KEYS,
    ProjectRow,
    headers,
    parse_sort,
    sort_rows,
)

pytestmark = pytest.mark.unit


def row(name, budget, used, held=0.0, *, kind="research", state="active", start=None, end=None) -> ProjectRow:
    budget_mgs, used_mgs, held_mgs = int(budget * H), int(used * H), int(held * H)
    return ProjectRow(
        project=name, kind=kind, state=state, state_reason=None, period_start=start, period_end=end,
        budget_mgs=budget_mgs, used_mgs=used_mgs, held_mgs=held_mgs, remaining_mgs=budget_mgs - used_mgs - held_mgs,
        percent_tenths=tables.percent_tenths(used_mgs, budget_mgs),
    )  # fmt: skip


ROWS = [
    row("vision-lab", 100, 30, 4, start=date(2026, 1, 1), end=date(2026, 12, 31)),
    row("cs101", 50, 45, 1, kind="course", start=date(2026, 1, 1), end=date(2026, 6, 30)),
    row("tiny-lab", 0.25, 0.25, kind="lab"),
    row("empty", 0, 0, state="closed"),
    row("alpha", 100, 10, 0, start=date(2025, 9, 1), end=date(2026, 8, 31)),
]


def names(rows) -> list[str]:
    return [r.project for r in rows]


@pytest.mark.parametrize(
    ("column", "direction", "expected"),
    [
        pytest.param("project", "asc", ["alpha", "cs101", "empty", "tiny-lab", "vision-lab"], id="project-asc"),
        pytest.param("project", "desc", ["vision-lab", "tiny-lab", "empty", "cs101", "alpha"], id="project-desc"),
        pytest.param("remaining", "asc", ["empty", "tiny-lab", "cs101", "vision-lab", "alpha"], id="remaining-asc"),
        pytest.param(
            "remaining", "desc", ["alpha", "vision-lab", "cs101", "empty", "tiny-lab"], id="remaining-desc-ties-by-name"
        ),
        pytest.param(
            "budget", "desc", ["alpha", "vision-lab", "cs101", "tiny-lab", "empty"], id="budget-desc-ties-by-name"
        ),
        pytest.param("used", "asc", ["empty", "tiny-lab", "alpha", "vision-lab", "cs101"], id="used-asc"),
        pytest.param("held", "desc", ["vision-lab", "cs101", "alpha", "empty", "tiny-lab"], id="held-desc"),
        pytest.param(
            "percent", "desc", ["tiny-lab", "cs101", "vision-lab", "alpha", "empty"], id="percent-desc-no-budget-last"
        ),
        pytest.param(
            "percent", "asc", ["alpha", "vision-lab", "cs101", "tiny-lab", "empty"], id="percent-asc-no-budget-last"
        ),
        pytest.param("kind", "asc", ["cs101", "tiny-lab", "alpha", "empty", "vision-lab"], id="kind-asc"),
        pytest.param(
            "state", "desc", ["empty", "alpha", "cs101", "tiny-lab", "vision-lab"], id="state-desc-closed-first"
        ),
        pytest.param("period", "asc", ["alpha", "cs101", "vision-lab", "empty", "tiny-lab"], id="period-asc-open-last"),
        pytest.param(
            "period", "desc", ["vision-lab", "cs101", "alpha", "empty", "tiny-lab"], id="period-desc-open-last"
        ),
    ],
)
def test_sort_rows(column, direction, expected) -> None:
    assert names(sort_rows(ROWS, column, direction)) == expected
    assert names(ROWS)[0] == "vision-lab"  # not sorted in place


@pytest.mark.parametrize(
    ("sort", "direction", "expected"),
    [
        pytest.param(None, None, ("project", "asc"), id="defaults"),
        pytest.param("", "", ("project", "asc"), id="empty-is-default"),
        pytest.param("remaining", None, ("remaining", "asc"), id="direction-defaults-asc"),
        pytest.param("percent", "desc", ("percent", "desc"), id="given"),
    ],
)
def test_parse_sort(sort, direction, expected) -> None:
    assert parse_sort(sort, direction) == expected


@pytest.mark.parametrize(
    ("sort", "direction", "field", "words"),
    [
        pytest.param("cost", "asc", "sort", "one of project, kind, budget, used", id="unknown-column"),
        pytest.param("project; drop", "asc", "sort", "got 'project; drop'", id="unsafe-column"),
        pytest.param("used", "up", "dir", "one of asc, desc; got 'up'", id="unknown-direction"),
        pytest.param("x" * 500, "asc", "sort", "got '" + "x" * 40 + "'", id="long-value-cut"),
    ],
)
def test_parse_sort_refuses_naming_the_parameter(sort, direction, field, words) -> None:
    with pytest.raises(LedgerInputError) as caught:
        parse_sort(sort, direction)
    assert caught.value.field == field and words in caught.value.message


def test_headers_mark_the_sorted_column_and_toggle_it() -> None:
    answer = {h.column.key: h for h in headers("remaining", "asc")}
    assert list(answer) == list(COLUMN_KEYS)
    assert answer["remaining"].aria_sort == "ascending"
    assert parse_qs(answer["remaining"].href[1:]) == {"sort": ["remaining"], "dir": ["desc"]}
    assert {h.aria_sort for key, h in answer.items() if key != "remaining"} == {"none"}
    # another column: figures start descending, text ascending
    assert parse_qs(answer["used"].href[1:]) == {"sort": ["used"], "dir": ["desc"]}
    assert parse_qs(answer["project"].href[1:]) == {"sort": ["project"], "dir": ["asc"]}
    descending = {h.column.key: h for h in headers("remaining", "desc")}
    assert descending["remaining"].aria_sort == "descending"
    assert parse_qs(descending["remaining"].href[1:]) == {"sort": ["remaining"], "dir": ["asc"]}


@pytest.mark.parametrize(
    ("used", "budget", "tenths", "text"),
    [
        pytest.param(0, 100 * H, 0, "0.0 %", id="none-used"),
        pytest.param(80 * H, 100 * H, 800, "80.0 %", id="eighty"),
        pytest.param(H // 3, 100 * H, 3, "0.3 %", id="rounded-down"),
        pytest.param(100 * H, 100 * H, 1000, "100.0 %", id="all"),
        pytest.param(120 * H, 100 * H, 1200, "120.0 %", id="over-after-a-reduced-grant"),
        pytest.param(5 * H, 0, None, "-", id="no-budget"),
    ],
)
def test_percent(used, budget, tenths, text) -> None:
    assert tables.percent_tenths(used, budget) == tenths
    assert tables.percent_text(tenths) == text


def test_row_cells_and_values() -> None:
    cells, values = ROWS[1].cells, ROWS[1].values
    assert cells == {
        "project": "cs101",
        "kind": "course",
        "budget": "50.0",
        "used": "45.0",
        "held": "1.0",
        "remaining": "4.0",
        "percent": "90.0 %",
        "state": "active",
        "period": "2026-01-01 to 2026-06-30",
    }
    assert values == {"budget": 50.0, "used": 45.0, "held": 1.0, "remaining": 4.0, "percent": 90.0}
    assert ROWS[2].cells["period"] == "open"


FIGURES = ProjectUsage(
    "vision-lab",
    100 * H,
    3 * H + H // 2,
    2 * H,
    (MemberUsage("alice", Role.PI, None, 3 * H, 0), MemberUsage("bob", Role.MEMBER, 20 * H, H // 2, 2 * H)),
)


@pytest.mark.parametrize(
    ("caller", "read_all", "users"),
    [
        pytest.param("alice", True, ["alice", "bob"], id="pi-all"),
        pytest.param("bob", False, ["bob"], id="member-own"),
        pytest.param("admin", True, ["alice", "bob"], id="admin-all"),
        pytest.param("carol", False, [], id="stranger-none"),
    ],
)
def test_member_rows(caller, read_all, users) -> None:
    rows = tables.member_rows(FIGURES, caller, read_all)
    assert [r["user"] for r in rows] == users


def test_member_row_figures() -> None:
    bob = tables.member_rows(FIGURES, "bob", False)[0]
    assert bob == {
        "user": "bob",
        "role": "member",
        "cap": "20.0",
        "cap_value": 20.0,
        "used": "0.5",
        "used_value": 0.5,
        "held": "2.0",
        "held_value": 2.0,
        "cap_left": "17.5",
        "percent_of_project": "0.5 %",
    }
    alice = tables.member_rows(FIGURES, "alice", True)[0]
    assert (alice["cap"], alice["cap_value"], alice["cap_left"]) == ("none", None, "-")


def test_figures_view_matches_usage_json() -> None:
    from hub.ledger.store import usage_json

    usage = usage_json(FIGURES)
    view = tables.figures_view(FIGURES)
    assert {key: view[key]["value"] for key in view} == {
        "budget": usage["budget_gpu_hours"],
        "used": usage["used_gpu_hours"],
        "held": usage["held_gpu_hours"],
        "remaining": usage["remaining_gpu_hours"],
    }
    assert view["remaining"]["text"] == "94.5"


T = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(
            SessionRecord(1, "bob", "", "17", "h200", 4, 3600, SessionState.RUNNING, None, T, T, None, H, 3 * H),
            {
                "server": "(default)",
                "gpus": "4 x h200",
                "start": "2026-03-02 09:00 UTC",
                "end": "-",
                "gpu_hours": "1.0",
                "state": "running",
                "reason": "",
            },
            id="running",
        ),
        pytest.param(
            SessionRecord(
                2,
                "bob",
                "big",
                "18",
                "a100",
                2,
                7200,
                SessionState.ENDED,
                "stopped: vision-lab's GPU-hour budget is used up (100.0 of 100.0 GPU-h)",
                T,
                T,
                T.replace(hour=10),
                H,
                0,
            ),
            {
                "server": "big",
                "gpus": "2 x a100",
                "start": "2026-03-02 09:00 UTC",
                "end": "2026-03-02 10:00 UTC",
                "gpu_hours": "1.0",
                "state": "ended",
                "reason": "stopped: vision-lab's GPU-hour budget is used up (100.0 of 100.0 GPU-h)",
            },
            id="stopped-with-reason",
        ),
        pytest.param(
            SessionRecord(3, "carol", "", None, None, 0, 900, SessionState.ADMITTED, None, T, None, None, 0, 0),
            {
                "server": "(default)",
                "gpus": "no GPU",
                "start": "-",
                "end": "-",
                "gpu_hours": "0.0",
                "state": "pending",
                "reason": "",
            },
            id="pending-cpu",
        ),
    ],
)
def test_session_rows(record, expected) -> None:
    [answer] = tables.session_rows([record])
    assert {key: answer[key] for key in expected} == expected


def test_project_links() -> None:
    [link] = tables.project_links([("vision-lab", "pi", FIGURES)])
    assert link == {
        "project": "vision-lab",
        "role": "pi",
        "path": "hpchub/projects/vision-lab",
        "budget": "100.0",
        "remaining": "94.5",
        "remaining_value": 94.5,
        "percent": "3.5 %",
    }
