"""The reconciler's notices, after each pass: the period check, the budget warnings by mail, and
sending what is queued.

- **The period** (``expire_check``): every project with an end date is looked at on the site's
  today (``hub.ledger.period``). 30, 7 and 1 days before the end its leaders (PIs; a course's
  instructors) get a warning mail, queued once per project, threshold and end date (a renewal
  that moves the end warns again); after the end the project is expired and they get one mail
  saying so; after the data grace (``c.HPCHubAllocations.data_grace_days``) the project's space
  is listed as due for archiving. ``hpchub project expire-check`` runs the same check once and
  prints everything it found.
- **The budget** (``budget_notices``): a project at 80 %, 95 % or used up mails its leaders, a
  member at one of those shares of their cap mails the member, once per threshold and grant total
  (or cap): a new grant that lowers the share and a later crossing warns again.
- **Sending** (``hub.mail.sender.send_pending``) when ``c.HPCHubMail`` has a relay; without one
  the messages stay queued, the log says so once, and ``hpchub doctor`` warns.

Queueing never fails the pass: a user without an address or a ledger error is a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hub.ledger.arithmetic import BudgetWarning, warning_level
from hub.ledger.period import PeriodFinding, ProjectStatus, expired_key, period_finding, warning_key
from hub.ledger.types import ProjectState
from hub.mail import texts
from hub.mail.notify import Notified, notify_user, project_leaders
from hub.mail.sender import send_pending_now, unconfigured_line
from hub.mail.settings import HPCHubMail

PROJECT_PAGE = "/hub/hpchub/projects/{project}"


@dataclass
class NoticeReport:
    """``findings``: each project the period check has something to say about (``found``: their lines,
    the command's output); ``queued``: a line per mail queued now (the reconciler's log)."""

    findings: list[PeriodFinding] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # leaders without a mail address (the command says so)

    @property
    def found(self) -> list[str]:
        return [finding.describe() for finding in self.findings]


def _notify(
    ledger, users, text: texts.MailText, event: str, report_lines: list[str], what: str,
    unreachable: list[str] | None = None,
) -> None:  # fmt: skip
    for user in users:
        outcome = notify_user(ledger, user, subject=text.subject, body=text.body, event=event)
        if outcome is Notified.QUEUED:
            report_lines.append(f"{what}: mail queued for {user} ({event})")
        elif outcome is Notified.NO_ADDRESS and unreachable is not None:
            unreachable.append(f"{what}: no mail address for {user} yet (none of their logins gave one)")


def expire_check(ledger, mail: HPCHubMail, *, data_grace_days: int, now: datetime | None = None) -> NoticeReport:
    """The period check of every project (module docstring): findings, and the mail it queued."""
    today = ledger.today(now)
    report = NoticeReport()
    for info in ledger.projects():
        finding = period_finding(info.name, info.kind, info.state, info.period_end, today, data_grace_days)
        if finding is None:
            continue
        report.findings.append(finding)
        renewal = mail.link(finding.renewal) if finding.renewal else None
        page = mail.link(PROJECT_PAGE.format(project=info.name))
        if finding.threshold is not None:
            text = texts.period_ending(info.name, finding.period_end, today, renewal, page)
            event = warning_key(info.name, finding.threshold, finding.period_end)
        elif finding.status is ProjectStatus.EXPIRED:
            text = texts.period_ended(info.name, finding.period_end, renewal, page)
            event = expired_key(info.name, finding.period_end)
        else:
            continue
        what = f"{info.name} ({finding.status.value}, ends {finding.period_end.isoformat()})"
        _notify(ledger, project_leaders(ledger, info.name), text, event, report.queued, what, report.unreachable)
    return report


def budget_notices(ledger, mail: HPCHubMail, now: datetime | None = None) -> list[str]:
    """Queue the budget and cap warnings reached (module docstring); lines for what was queued."""
    lines: list[str] = []
    for info in ledger.projects():
        if info.state is ProjectState.CLOSED:
            continue
        figures = ledger.figures(info.name, now)
        page = mail.link(PROJECT_PAGE.format(project=info.name))
        level = warning_level(figures.used_mgs, figures.grants_mgs)
        if figures.grants_mgs > 0 and level is not BudgetWarning.NONE:
            text = texts.budget_warning(info.name, level, figures.used_mgs, figures.grants_mgs, page)
            event = f"budget-{level.value}:{info.name}:{figures.grants_mgs}"
            _notify(ledger, project_leaders(ledger, info.name), text, event, lines, info.name)
        for member in figures.members:
            if not member.cap_mgs:
                continue
            cap_level = warning_level(member.used_mgs, member.cap_mgs)
            if cap_level is not BudgetWarning.NONE:
                text = texts.cap_warning(info.name, member.user, cap_level, member.used_mgs, member.cap_mgs, page)
                event = f"cap-{cap_level.value}:{info.name}:{member.cap_mgs}"
                _notify(ledger, [member.user], text, event, lines, info.name)
    return lines


def notice_watch(mail: HPCHubMail, *, data_grace_days: int):
    """The reconciler's ``after_pass`` part for notices: the period check and budget warnings queue
    mail, then what is queued is sent (or, without a relay, the log says once that it waits)."""
    said_unconfigured = []

    def after_pass(ledger) -> list[str]:
        lines = expire_check(ledger, mail, data_grace_days=data_grace_days).queued
        lines += budget_notices(ledger, mail)
        if mail.configured:
            lines += send_pending_now(ledger, mail).lines
        elif not said_unconfigured and (line := unconfigured_line(ledger)):
            said_unconfigured.append(True)
            lines.append(line)
        return lines

    return after_pass
