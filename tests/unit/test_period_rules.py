"""The period's pure rules (hub/ledger/period.py), its banners (hub/ledger/enforce.py) and the
words of the notices (hub/mail/texts.py)."""

from __future__ import annotations

from datetime import date

import pytest

from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.arithmetic import BudgetWarning, project_closed_reason
from hub.ledger.enforce import period_banners
from hub.ledger.period import (
    ProjectStatus,
    archive_due,
    archive_from,
    ending_text,
    period_finding,
    project_status,
    renewal_path,
    warning_key,
    warning_threshold,
)
from hub.ledger.types import ProjectInfo, ProjectKind, ProjectState
from hub.mail import texts

pytestmark = pytest.mark.unit

END = date(2027, 1, 7)


@pytest.mark.parametrize(
    ("state", "end", "today", "status"),
    [
        pytest.param("active", None, date(2030, 1, 1), ProjectStatus.ACTIVE, id="no-end"),
        pytest.param("active", END, date(2027, 1, 7), ProjectStatus.ACTIVE, id="last-day-inclusive"),
        pytest.param("active", END, date(2027, 1, 8), ProjectStatus.EXPIRED, id="day-after-end"),
        pytest.param("closed", END, date(2027, 1, 1), ProjectStatus.CLOSED, id="closed-before-end"),
        pytest.param("closed", END, date(2027, 2, 1), ProjectStatus.CLOSED, id="closed-after-end"),
    ],
)
def test_project_status(state, end, today, status) -> None:
    assert project_status(state, end, today) is status


@pytest.mark.parametrize(
    ("today", "threshold"),
    [
        pytest.param(date(2026, 12, 7), None, id="31-days-left"),
        pytest.param(date(2026, 12, 8), 30, id="30-days-left"),
        pytest.param(date(2026, 12, 31), 7, id="7-days-left"),
        pytest.param(date(2026, 12, 30), 30, id="8-days-left"),
        pytest.param(date(2027, 1, 6), 1, id="1-day-left"),
        pytest.param(date(2027, 1, 7), 1, id="the-last-day"),
        pytest.param(date(2027, 1, 8), None, id="past-the-end"),
    ],
)
def test_warning_threshold(today, threshold) -> None:
    assert warning_threshold(END, today) == threshold


def test_warning_key_changes_with_the_end_date() -> None:
    assert warning_key("vision-lab", 7, END) == "period-7:vision-lab:2027-01-07"
    assert warning_key("vision-lab", 7, date(2028, 1, 7)) != warning_key("vision-lab", 7, END)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        pytest.param("research", "/hub/hpchub/apply?renew=vision-lab", id="research"),
        pytest.param("lab", "/hub/hpchub/apply?renew=vision-lab", id="lab"),
        pytest.param("course", None, id="course-has-no-renewal"),
    ],
)
def test_renewal_path(kind, path) -> None:
    assert renewal_path("vision-lab", kind) == path


@pytest.mark.parametrize(
    ("renewal", "reason"),
    [
        pytest.param("/hub/hpchub/apply?renew=vision-lab",
                     "vision-lab's period ended on 2027-01-07. Request a renewal: /hub/hpchub/apply?renew=vision-lab",
                     id="with-renewal"),
        pytest.param(None, "vision-lab's period ended on 2027-01-07.", id="course"),
    ],
)  # fmt: skip
def test_the_refusal_after_the_end_names_the_date_and_the_renewal(renewal, reason) -> None:
    assert project_closed_reason("vision-lab", state="active", state_reason=None, period_start=None, period_end=END,
                                 today=date(2027, 1, 8), renewal=renewal) == reason  # fmt: skip
    assert project_closed_reason("vision-lab", state="active", state_reason=None, period_start=None, period_end=END,
                                 today=END, renewal=renewal) is None  # fmt: skip


@pytest.mark.parametrize(
    ("status", "today", "grace", "due"),
    [
        pytest.param(ProjectStatus.EXPIRED, date(2027, 4, 7), 90, False, id="day-90-of-the-grace"),
        pytest.param(ProjectStatus.EXPIRED, date(2027, 4, 8), 90, True, id="after-the-grace"),
        pytest.param(ProjectStatus.EXPIRED, date(2027, 1, 8), 0, True, id="no-grace"),
        pytest.param(ProjectStatus.CLOSED, date(2027, 4, 8), 90, True, id="closed-after-the-grace"),
        pytest.param(ProjectStatus.ACTIVE, date(2027, 4, 8), 90, False, id="active-never"),
    ],
)
def test_archive_due(status, today, grace, due) -> None:
    assert archive_due(status, END, today, grace) is due
    assert archive_from(END, 90) == date(2027, 4, 7 + 1)


@pytest.mark.parametrize(
    ("kind", "state", "today", "line"),
    [
        pytest.param("research", "active", date(2026, 12, 31), "vision-lab: ends on 2027-01-07, in 7 days (the 7-day "
                     "warning)", id="warned"),
        pytest.param("research", "active", date(2026, 12, 1), None, id="too-early"),
        pytest.param("research", "active", date(2027, 1, 8), "vision-lab: expired, its period ended on 2027-01-07",
                     id="expired"),
        pytest.param("research", "active", date(2027, 5, 1), "vision-lab: expired, its period ended on 2027-01-07; "
                     "its project space is due for archiving since 2027-04-08", id="archive"),
        pytest.param("research", "closed", date(2027, 2, 1), None, id="closed-within-grace"),
        pytest.param("course", "active", date(2027, 1, 6), "vision-lab: ends on 2027-01-07, tomorrow (the 1-day "
                     "warning)", id="course-tomorrow"),
    ],
)  # fmt: skip
def test_period_finding(kind, state, today, line) -> None:
    finding = period_finding("vision-lab", kind, state, END, today, 90)
    assert (finding.describe() if finding else None) == line


def _info(name: str, kind: str, end: date | None, state: str = "active") -> ProjectInfo:
    return ProjectInfo(name, name, ProjectKind(kind), ProjectState(state), None, None, end)


def test_period_banners_link_the_renewal() -> None:
    banners = period_banners(
        [_info("vision-lab", "research", END), _info("cs101", "course", date(2026, 12, 1)),
         _info("tiny-lab", "lab", date(2027, 6, 1)), _info("old-lab", "research", END, state="closed")],
        date(2026, 12, 31),
    )  # fmt: skip
    assert [(b.project, b.level, b.text, b.link) for b in banners] == [
        ("cs101", 100, "cs101's period ended on 2026-12-01: no new sessions.", None),
        ("vision-lab", 95, "vision-lab ends on 2027-01-07, in 7 days: request a renewal",
         "/hub/hpchub/apply?renew=vision-lab"),
    ]  # fmt: skip


def test_ending_text() -> None:
    assert ending_text("vision-lab", END, date(2026, 12, 31), "/x") == "vision-lab ends on 2027-01-07, in 7 days: " \
        "request a renewal"  # fmt: skip
    assert ending_text("cs101", END, END, None) == "cs101 ends on 2027-01-07, today (its last day)."


def test_mail_texts_are_one_line_subjects_with_the_figures() -> None:
    text = texts.budget_warning("vision-lab", BudgetWarning.AT_80, 80 * H, 100 * H, "https://hpc/p")
    assert text.subject == "vision-lab: the GPU-hour budget is 80 % used"
    assert "vision-lab has used 80.0 of its 100.0 GPU-hours (80 % used); 20.0 GPU-h are left." in text.body
    text = texts.cap_warning("vision-lab", "bob", BudgetWarning.EXHAUSTED, 20 * H, 20 * H, "p")
    assert text.subject == "vision-lab: your GPU-hour cap is used up" and "raise the cap" in text.body
    text = texts.period_ending("vision-lab", END, date(2026, 12, 31), "https://hpc/hub/hpchub/apply?renew=vision-lab",
                               "p")  # fmt: skip
    assert text.subject == "vision-lab ends on 2027-01-07, in 7 days"
    assert "Request a renewal: https://hpc/hub/hpchub/apply?renew=vision-lab" in text.body
    assert texts.period_ended("cs101", END, None, "p").subject == "cs101 has expired: its period ended on 2027-01-07"
    for t in (text, texts.period_ended("cs101", END, None, "p")):
        assert "\n" not in t.subject and "\r" not in t.subject
