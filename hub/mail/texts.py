"""The words of the portal's own notices (subjects and bodies), pure functions of the figures and
dates: the budget warnings at 80 %, 95 % and used up, and the period's warnings before and at its end.

Subjects are the portal's text plus project names (the project-name rule allows no line break), so
they always pass the outbox's header check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from hub.ledger.arithmetic import BudgetWarning, Rounding, format_gpu_hours
from hub.ledger.period import ended_text, ending_text, in_days

SIGNATURE = "\n-- \nThe research computing portal (an automatic message: replies are not read).\n"


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


def _used_words(level: BudgetWarning) -> str:
    return "used up" if level is BudgetWarning.EXHAUSTED else f"{level.percent} % used"


def budget_warning(project: str, level: BudgetWarning, used_mgs: int, limit_mgs: int, page: str) -> MailText:
    """A project's GPU-hour budget reached a warning threshold."""
    left = format_gpu_hours(max(0, limit_mgs - used_mgs), Rounding.FLOOR)
    body = (
        f"{project} has used {format_gpu_hours(used_mgs)} of its {format_gpu_hours(limit_mgs)} GPU-hours "
        f"({_used_words(level)}); {left} GPU-h are left.\n"
    )
    if level is BudgetWarning.EXHAUSTED:
        body += "Running sessions stop after the grace period and no new ones start. Ask for more GPU-hours.\n"
    body += f"\nThe project's page: {page}\n"
    return MailText(f"{project}: the GPU-hour budget is {_used_words(level)}", body + SIGNATURE)


def cap_warning(project: str, user: str, level: BudgetWarning, used_mgs: int, cap_mgs: int, page: str) -> MailText:
    """A member's cap in a project reached a warning threshold."""
    left = format_gpu_hours(max(0, cap_mgs - used_mgs), Rounding.FLOOR)
    body = (
        f"In {project}, {user} has used {format_gpu_hours(used_mgs)} of a cap of {format_gpu_hours(cap_mgs)} "
        f"GPU-hours ({_used_words(level)}); {left} GPU-h are left.\n"
    )
    if level is BudgetWarning.EXHAUSTED:
        body += "Your running sessions in it stop after the grace period. Ask the project's PI to raise the cap.\n"
    body += f"\nThe project's page: {page}\n"
    return MailText(f"{project}: your GPU-hour cap is {_used_words(level)}", body + SIGNATURE)


def period_ending(project: str, period_end: date, today: date, renewal: str | None, page: str) -> MailText:
    """The period ends soon (30, 7 or 1 days before; the end date is inclusive)."""
    left = (period_end - today).days
    body = ending_text(project, period_end, today, renewal) + "\n\n"
    body += (
        f"{project} takes new sessions until the end of {period_end.isoformat()}. After that no new session "
        "starts, running ones stop after the grace period, and what is left of its GPU-hours cannot be used.\n"
    )
    if renewal:
        body += f"\nRequest a renewal: {renewal}\n"
    body += f"The project's page: {page}\n"
    return MailText(f"{project} ends on {period_end.isoformat()}, {in_days(left)}", body + SIGNATURE)


def period_ended(project: str, period_end: date, renewal: str | None, page: str) -> MailText:
    """The period has ended: the project is expired."""
    body = ended_text(project, period_end, renewal) + "\n\n"
    body += "No new sessions start on it; running ones stop after the grace period. Its files stay where they are.\n"
    body += f"\nThe project's page: {page}\n"
    return MailText(f"{project} has expired: its period ended on {period_end.isoformat()}", body + SIGNATURE)
