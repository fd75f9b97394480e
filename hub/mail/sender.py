"""Hand the ledger's queued mail to the site's relay, with the standard library only.

``send_pending(ledger, settings)`` reads the unsent messages (``Ledger.unsent_mail``), opens
one SMTP conversation for them (``smtplib``, STARTTLS and login when configured), sends each
as an ``email.message.EmailMessage`` and appends an attempt per message
(``Ledger.record_mail_attempt``). The conversation runs in a worker thread
(``asyncio.to_thread``), each step bounded by ``c.HPCHubMail.timeout``, so the event loop of the
caller never waits on the network.

A relay that cannot be reached (or refuses the login) is one log line naming the host, the port
and the error; one attempt is recorded (on the oldest message) and every message stays queued
for the next pass. A relay that refuses one message records that message's failure and goes on
with the others. Neither passwords nor bodies are ever logged; the lines name the recipient, the
message's key and its subject (the subject is the portal's own text).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from hub.ledger.errors import LedgerError
from hub.ledger.mail_outbox import OutboxMessage, check_mail_address, check_subject
from hub.mail.settings import HPCHubMail

UNCONFIGURED = (
    "mail: not configured (c.HPCHubMail.smtp_host and from_address): {count} message(s) stay queued in the ledger"
)


@dataclass
class SendReport:
    """What one pass did: messages sent, messages that failed, and lines for the log."""

    sent: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)


def compose(message: OutboxMessage, settings: HPCHubMail, *, now=None) -> EmailMessage:
    """The message as it goes to the relay. The address and subject are checked again (a row
    written by other code must not add a header either); the standard library's policy refuses
    CR and LF in any header as well."""
    mail = EmailMessage()
    mail["From"] = check_mail_address(settings.from_address, "from_address")
    mail["To"] = check_mail_address(message.to_address)
    mail["Subject"] = check_subject(message.subject)
    mail["Date"] = format_datetime(now or message.queued_at)
    mail["Message-ID"] = make_msgid(domain=settings.from_address.rsplit("@", 1)[1])
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-HPCHub-Key"] = message.key
    mail.set_content(message.body)
    return mail


def _connect(settings: HPCHubMail) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _error_text(exc: BaseException) -> str:
    """One line for an SMTP or socket error (its class and the server's words, never our password)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {' '.join(detail.split())}"
    return f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no detail'}"


def _deliver(ledger, settings: HPCHubMail, messages: list[OutboxMessage]) -> SendReport:
    report = SendReport()
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        smtp = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        error = _error_text(exc)
        ledger.record_mail_attempt(messages[0].id, False, f"{where}: {error}")
        report.failed += 1
        report.lines.append(f"mail: relay {where} not reached: {error}; {len(messages)} message(s) stay queued")
        return report
    try:
        for message in messages:
            try:
                smtp.send_message(compose(message, settings, now=ledger.clock()))
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                ledger.record_mail_attempt(message.id, False, _error_text(exc))
                report.failed += 1
                report.lines.append(f"mail: {message.key} to {message.to_address} refused by {where}: "
                                    f"{_error_text(exc)}")  # fmt: skip
                continue
            except (LedgerError, ValueError) as exc:  # a row that cannot make a message: never sent as is
                ledger.record_mail_attempt(message.id, False, f"not sent: {exc}")
                report.failed += 1
                report.lines.append(f"mail: {message.key}: not sent: {exc}")
                continue
            ledger.record_mail_attempt(message.id, True)
            report.sent += 1
            report.lines.append(f"mailed {message.to_address}: {message.subject} ({message.key})")
    except (OSError, smtplib.SMTPException) as exc:  # the conversation broke off: the rest wait
        report.lines.append(f"mail: relay {where} broke off: {_error_text(exc)}; the rest stay queued")
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return report


async def send_pending(ledger, settings: HPCHubMail) -> SendReport:
    """Send what is queued (at most ``settings.batch`` messages), recording each attempt. Never
    raises for the relay: its failures are in the report's lines and the messages stay queued."""
    if not settings.configured:
        return SendReport()
    messages = await asyncio.to_thread(ledger.unsent_mail, settings.batch)
    if not messages:
        return SendReport()
    return await asyncio.to_thread(_deliver, ledger, settings, messages)


def send_pending_now(ledger, settings: HPCHubMail) -> SendReport:
    """``send_pending`` for a caller that is already in a worker thread (the reconciler's watches)."""
    return asyncio.run(send_pending(ledger, settings))


def unconfigured_line(ledger) -> str | None:
    """The log line of a pass without a relay when messages wait, else None."""
    count = ledger.unsent_mail_count()
    return UNCONFIGURED.format(count=count) if count else None
