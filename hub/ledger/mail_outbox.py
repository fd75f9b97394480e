"""The mail outbox: mixed into ``Ledger`` (uses ``_read``/``_write``/``_now``).

Whatever wants to tell someone something queues a message here, in the same database as the
rest of the ledger, and returns at once: the reconciler's mail pass (``hub.mail.sender``) hands
the messages to the site's mail relay and records each attempt. So a relay that is down delays
mail and never fails the action that queued it, and nothing is sent twice: a message is sent
once it has a successful attempt.

A message's ``key`` says what it is about (``period-30:vision-lab:2027-01-07``,
``budget-80:vision-lab:360000000``); ``queue_mail`` returns False when that key was queued
before, which is how a warning goes out once per threshold.

Headers are built from the address and the subject: both are checked here (one line, no CR or
LF, an address of the usual form), so nothing a user typed can add a header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from hub.ledger.errors import LedgerInputError
from hub.ledger.mail_models import MailAttempt, MailMessage, UserContact
from hub.ledger.types import check_user

MAX_SUBJECT = 200
MAX_KEY = 200
MAX_ADDRESS = 254
MAX_BODY = 100_000
MAX_ERROR = 500

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS_RE = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})*")
KEY_RE = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_KEY)


def check_mail_address(value: object, field: str = "to_address") -> str:
    """An address ``local@domain`` (letters, digits and the usual punctuation of a local part; a
    host name), at most 254 characters: no spaces, no CR or LF, no display name, no second address."""
    if not isinstance(value, str) or len(value) > MAX_ADDRESS or not ADDRESS_RE.fullmatch(value):
        raise LedgerInputError(field, "a mail address like name@uni.example (one address, no spaces or line breaks)")
    return value


def check_subject(value: object, field: str = "subject") -> str:
    """One line of 1 to 200 printable characters (no CR, LF or other control character)."""
    if not isinstance(value, str) or not value.strip():
        raise LedgerInputError(field, "must not be empty")
    if len(value) > MAX_SUBJECT:
        raise LedgerInputError(field, f"at most {MAX_SUBJECT} characters, got {len(value)}")
    if any(not ch.isprintable() for ch in value):
        raise LedgerInputError(field, "one line of printable characters (no line breaks)")
    return value.strip()


def check_mail_key(value: object, field: str = "key") -> str:
    if not isinstance(value, str) or not KEY_RE.fullmatch(value):
        raise LedgerInputError(field, f"1 to {MAX_KEY} printable ASCII characters without spaces")
    return value


def check_body(value: object, field: str = "body") -> str:
    if not isinstance(value, str) or not value.strip():
        raise LedgerInputError(field, "must not be empty")
    if len(value) > MAX_BODY:
        raise LedgerInputError(field, f"at most {MAX_BODY} characters, got {len(value)}")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in value):
        raise LedgerInputError(field, "text: printable characters, line breaks and tabs only")
    return value.replace("\r\n", "\n")


@dataclass(frozen=True)
class OutboxMessage:
    """A queued message as the sender reads it; ``attempts``: the failed tries so far."""

    id: int
    key: str
    to_address: str
    to_user: str | None
    subject: str
    body: str
    queued_at: datetime
    attempts: int


def _one_line(error: str | None) -> str | None:
    if error is None:
        return None
    line = " ".join(str(error).split())
    return line[:MAX_ERROR] or "error"


class MailOutbox:
    def queue_mail(
        self,
        *,
        to_user: str | None,
        to_address: str,
        subject: str,
        body: str,
        key: str,
        now: datetime | None = None,
    ) -> bool:
        """Queue a message; False (nothing written) when ``key`` was queued before. Bad input
        raises ``LedgerInputError`` naming the field (an address or subject with a line break)."""
        if to_user is not None:
            check_user(to_user, "to_user")
        to_address, subject = check_mail_address(to_address), check_subject(subject)
        body, key = check_body(body), check_mail_key(key)
        now = self._now(now)
        queued = select(exists().where(MailMessage.key == key))
        with self._read() as session:  # a warning checked every pass: most calls find it queued
            if session.scalar(queued):
                return False
        try:
            with self._write() as session:
                if session.scalar(queued):
                    return False
                session.add(MailMessage(key=key, to_address=to_address, to_user=to_user, subject=subject,
                                        body=body, queued_at=now))  # fmt: skip
        except IntegrityError:  # another process queued the same key meanwhile
            return False
        return True

    def mail_queued(self, key: str) -> bool:
        """Whether a message with this key was ever queued."""
        check_mail_key(key)
        with self._read() as session:
            return bool(session.scalar(select(exists().where(MailMessage.key == key))))

    def unsent_mail(self, limit: int = 100) -> list[OutboxMessage]:
        """Messages without a successful attempt, oldest first (at most ``limit``)."""
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
            raise LedgerInputError("limit", "a whole number from 1 to 10000")
        sent = exists().where(MailAttempt.message_id == MailMessage.id, MailAttempt.ok.is_(True))
        failed = select(func.count(MailAttempt.id)).where(MailAttempt.message_id == MailMessage.id).scalar_subquery()
        with self._read() as session:
            rows = session.execute(
                select(MailMessage, failed).where(~sent).order_by(MailMessage.id).limit(limit)
            ).all()  # fmt: skip
            return [
                OutboxMessage(
                    row.id, row.key, row.to_address, row.to_user, row.subject, row.body, row.queued_at, int(tries)
                )  # fmt: skip
                for row, tries in rows
            ]

    def unsent_mail_count(self) -> int:
        sent = exists().where(MailAttempt.message_id == MailMessage.id, MailAttempt.ok.is_(True))
        with self._read() as session:
            return int(session.scalar(select(func.count(MailMessage.id)).where(~sent)))

    def record_mail_attempt(
        self, message_id: int, ok: bool, error: str | None = None, now: datetime | None = None
    ) -> None:
        """Append one attempt: ``ok``, or the error (kept to one line)."""
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise LedgerInputError("message_id", "a message id")
        if not isinstance(ok, bool):
            raise LedgerInputError("ok", "true or false")
        now = self._now(now)
        with self._write() as session:
            if session.get(MailMessage, message_id) is None:
                raise LedgerInputError("message_id", f"no queued message {message_id}")
            session.add(MailAttempt(message_id=message_id, at=now, ok=ok, error=None if ok else _one_line(error)))

    def mail_messages(self, *, to_user: str | None = None, limit: int = 100) -> list[OutboxMessage]:
        """The latest queued messages (sent or not), newest first: for the doctor and the tests."""
        query = select(MailMessage).order_by(MailMessage.id.desc()).limit(limit)
        if to_user is not None:
            query = query.where(MailMessage.to_user == check_user(to_user))
        with self._read() as session:
            return [
                OutboxMessage(row.id, row.key, row.to_address, row.to_user, row.subject, row.body, row.queued_at, 0)
                for row in session.scalars(query)
            ]

    # --- users' addresses -------------------------------------------------------------------------

    def record_mail_address(self, user: str, address: str, *, now: datetime | None = None) -> bool:
        """Keep the user's mail address as a login gave it: a row when it differs from the latest.
        Returns whether a row was added."""
        check_user(user)
        address = check_mail_address(address, "address")
        now = self._now(now)
        latest = select(UserContact.address).where(UserContact.user == user).order_by(UserContact.id.desc()).limit(1)
        with self._read() as session:  # most logins change nothing: no write lock for them
            if session.scalars(latest).first() == address:
                return False
        with self._write() as session:
            if session.scalars(latest).first() == address:
                return False
            session.add(UserContact(user=user, address=address, recorded_at=now))
            return True

    def mail_address(self, user: str) -> str | None:
        """The user's latest recorded mail address (None: no login gave one yet)."""
        check_user(user)
        latest = select(UserContact.address).where(UserContact.user == user).order_by(UserContact.id.desc()).limit(1)
        with self._read() as session:
            return session.scalars(latest).first()

    def mail_addresses(self, users) -> dict[str, str]:
        """user -> latest address, for those of ``users`` that have one (one read)."""
        names = sorted({check_user(user) for user in users})
        if not names:
            return {}
        latest = select(func.max(UserContact.id)).where(UserContact.user.in_(names)).group_by(UserContact.user)
        with self._read() as session:
            rows = session.execute(select(UserContact.user, UserContact.address).where(UserContact.id.in_(latest)))
            return {user: address for user, address in rows}
