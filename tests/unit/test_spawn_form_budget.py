"""The spawn form's figures from a real (SQLite) ledger: what is left per project, which
project cannot be chosen, and the preview of the initial choices (spawners.slurm.form_budget)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from hub.ledger import Ledger, upgrade
from spawners.catalog import Catalogue, Environment
from spawners.slurm.cluster_parsers import parse_sinfo
from spawners.slurm.form_budget import initial_preview, project_budgets
from spawners.slurm.request_context import RequestContext

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DEMO = parse_sinfo(
    "gpu*|8:00:00|gpu:h200:4|gpu[01-02]\ngpu*|8:00:00|gpu:a100:4|gpu03\ndebug|30:00|gpu:a100:4|gpu03\n"
    "cpu|4:00:00|(null)|cpu01\n"
)
CATALOGUE = Catalogue([Environment("default", "Default", "JupyterLab", "venv", "/opt/x", None, True, True)])


def context(user: str, projects: list[str], default_hours: Decimal = Decimal(1)) -> RequestContext:
    return RequestContext(user=user, cluster=DEMO, accounts={p: p for p in projects}, catalogue=CATALOGUE,
                          default_hours=default_hours)  # fmt: skip


@pytest.fixture
def ledger(ledger_url):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=lambda: NOW) as ledger:
        ledger.create_project("vision-lab", account="vision-lab", kind="research", gpu_hours=100, who="admin")
        ledger.add_member("vision-lab", "bob", role="member", cap_gpu_hours=20, who="admin")
        ledger.create_project("tiny-lab", account="tiny-lab", kind="lab", gpu_hours="0.25", who="admin")
        ledger.add_member("tiny-lab", "erin", role="pi", who="admin")
        ledger.create_project("broke-lab", account="broke-lab", kind="lab", gpu_hours="0.1", who="admin")
        ledger.add_member("broke-lab", "erin", role="pi", who="admin")
        yield ledger


@pytest.mark.parametrize(
    ("user", "projects", "expected"),
    [
        pytest.param(
            "bob", ["vision-lab"], {"vision-lab": ("100.0 GPU-h left; your cap: 20.0 left", "")}, id="bob-cap"
        ),
        pytest.param(
            "erin",
            ["tiny-lab", "broke-lab"],
            {
                "tiny-lab": ("0.25 GPU-h left", ""),
                "broke-lab": ("0.1 GPU-h left", "cannot pay for the smallest session, 1 GPU for 0.25 h = 0.125 GPU-h"),
            },
            id="erin-one-usable",
        ),  # fmt: skip
        pytest.param("erin", ["tiny-lab", "no-such-lab"], {"tiny-lab": ("0.25 GPU-h left", "")}, id="unknown-left-out"),
    ],
)
def test_project_budgets(ledger, user, projects, expected) -> None:
    budgets = project_budgets(ledger, user, DEMO, projects)
    assert {p: (b.note, b.reason) for p, b in budgets.items()} == expected


def test_a_cap_smaller_than_the_project_decides(ledger) -> None:
    ledger.set_cap("vision-lab", "bob", "0.1", reason="test", who="admin")
    budget = project_budgets(ledger, "bob", DEMO, ["vision-lab"])["vision-lab"]
    assert budget.note == "100.0 GPU-h left; your cap: 0.1 left" and budget.reason.startswith("cannot pay")


def test_initial_preview_of_an_allowed_choice(ledger) -> None:
    previous = {"project": "vision-lab", "gpu_type": "h200", "gpus": 4, "hours": 1.0}
    preview = initial_preview(ledger, context("bob", ["vision-lab"]), previous, {})
    assert preview.error == "" and preview.answer["allowed"] is True
    assert preview.answer["summary"] == (
        "This reserves up to 4.0 GPU-h (4 x h200 x 1 h). vision-lab has 96.0 left; your cap has 16.0 left."
    )


def test_initial_preview_of_a_refused_choice_offers_what_fits(ledger) -> None:
    previous = {"project": "tiny-lab", "gpu_type": "h200", "gpus": "1", "hours": "1"}
    preview = initial_preview(ledger, context("erin", ["tiny-lab"]), previous, {})
    assert preview.answer["allowed"] is False
    assert preview.answer["offer_text"] == "You can afford 1 x h200 for 0.25 h or 1 x a100 for 0.5 h."


def test_initial_preview_of_a_bad_choice_is_its_error(ledger) -> None:
    previous = {"project": "vision-lab", "gpu_type": "h200", "gpus": "1", "hours": "0.3"}
    preview = initial_preview(ledger, context("bob", ["vision-lab"]), previous, {})
    assert preview.error.startswith("hours: must be a multiple of 0.25") and not preview.answer


@pytest.mark.parametrize(
    ("lab_hours", "reason"),
    [
        pytest.param({"cs101": True}, "", id="on"),
        pytest.param({"cs101": False}, "course rule lab-hours-only: its lab hours are off now", id="off"),
        pytest.param({}, "course rule lab-hours-only: whether its lab hours are on is not known now", id="unknown"),
    ],
)
def test_a_lab_hours_only_course_cannot_be_chosen_outside_its_lab_hours(ledger, lab_hours, reason) -> None:
    from hub.ledger.courses import make_rules  # noqa: PLC0415

    rules = make_rules(per_student=5, reservation="cs101-lab", lab_hours_only=True)
    ledger.create_course("cs101", account="cs101", start="2026-01-01", end="2026-06-30", gpu_hours=50, rules=rules,
                         who="admin")  # fmt: skip
    ledger.add_member("cs101", "carol", role="student", who="admin")
    ledger.add_member("cs101", "dave", role="instructor", who="admin")
    budgets = project_budgets(ledger, "carol", DEMO, ["cs101"], lab_hours)
    assert budgets["cs101"].reason == reason and budgets["cs101"].course.lab_hours_only
    assert project_budgets(ledger, "dave", DEMO, ["cs101"], {"cs101": False})["cs101"].reason == ""  # staff: unbound
    preview = initial_preview(
        ledger, context("carol", ["cs101"]), {"gpu_type": "a100", "gpus": "1"}, budgets, lab_hours
    )
    assert preview.answer["allowed"] is (reason == "")
    if reason:
        assert "(course rule lab-hours-only)" in preview.answer["message"]
