"""The mail outbox's tables, on the ledger's ``Base`` (prefix ``hpchub_``), and each user's
mail address as their logins gave it.

All three are append-only: a message is queued once (its ``key`` is unique, which is how a
warning is sent once), every try to send it is an attempt row, and a message is sent when it
has an attempt that succeeded. A user's address is their latest contact row. Nothing here is
updated or deleted (the ledger's ORM session refuses it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.ledger.models import AppendOnlyRecord, Base, UtcDateTime


class MailMessage(AppendOnlyRecord, Base):
    """A message to send: to an address (and the portal user it is for, if any). ``key`` names
    what it is about (``period-30:vision-lab:2027-01-07``): a second message with the same key
    is never queued."""

    __tablename__ = "hpchub_mail_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    to_user: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MailAttempt(AppendOnlyRecord, Base):
    """One try to hand a message to the mail relay: ok, or the error (one line)."""

    __tablename__ = "hpchub_mail_attempts"
    __table_args__ = (Index("ix_hpchub_mail_attempts_message_id_ok", "message_id", "ok"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("hpchub_mail_messages.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class UserContact(AppendOnlyRecord, Base):
    """A user's mail address as a login showed it (the identity provider's email claim), a row
    each time it changed; the latest row is the address."""

    __tablename__ = "hpchub_user_contacts"
    __table_args__ = (Index("ix_hpchub_user_contacts_user_id", "user", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(254))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
