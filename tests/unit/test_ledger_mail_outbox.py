"""The mail outbox and users' mail addresses in the ledger (hub/ledger/mail_outbox.py): queued once
per key, append-only attempts, header fields checked. Runs on PostgreSQL too (test_ledger_postgres.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from hub.ledger import Ledger, LedgerInputError, upgrade
from hub.ledger.mail_models import MailAttempt, MailMessage

pytestmark = pytest.mark.unit

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def outbox(ledger_url: str):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=lambda: T0) as ledger:
        yield ledger


def _queue(ledger: Ledger, key: str = "period-30:vision-lab:2027-01-31", **changes) -> bool:
    fields = {"to_user": "alice", "to_address": "alice@uni.example", "subject": "vision-lab ends on 2027-01-31",
              "body": "Request a renewal.\n", "key": key, **changes}  # fmt: skip
    return ledger.queue_mail(**fields)


def test_a_key_is_queued_once(outbox: Ledger) -> None:
    assert _queue(outbox) is True
    assert _queue(outbox, subject="another subject") is False
    [message] = outbox.unsent_mail()
    assert (message.to_address, message.subject, message.attempts) == (
        "alice@uni.example", "vision-lab ends on 2027-01-31", 0,
    )  # fmt: skip
    assert outbox.mail_queued("period-30:vision-lab:2027-01-31")
    assert not outbox.mail_queued("period-7:vision-lab:2027-01-31")


def test_a_message_is_sent_once_it_has_an_ok_attempt(outbox: Ledger) -> None:
    _queue(outbox)
    _queue(outbox, key="period-7:vision-lab:2027-01-31")
    first, second = outbox.unsent_mail()
    outbox.record_mail_attempt(first.id, False, "Connection refused\nsecond line")
    [again, _second] = outbox.unsent_mail()
    assert (again.id, again.attempts) == (first.id, 1)
    outbox.record_mail_attempt(first.id, True, None, now=T0 + timedelta(minutes=1))
    assert [m.id for m in outbox.unsent_mail()] == [second.id]
    assert outbox.unsent_mail_count() == 1
    with outbox._read() as session:  # noqa: SLF001
        attempts = session.scalars(select(MailAttempt).order_by(MailAttempt.id)).all()
        assert [(a.ok, a.error) for a in attempts] == [(False, "Connection refused second line"), (True, None)]


def test_rows_are_append_only(outbox: Ledger) -> None:
    _queue(outbox)
    with pytest.raises(RuntimeError, match="append-only"):
        with outbox._write() as session:  # noqa: SLF001
            session.scalars(select(MailMessage)).one().subject = "changed"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"to_address": "alice@uni.example\r\nBcc: eve@evil.example"}, "to_address", id="crlf-in-address"),
        pytest.param({"to_address": "Alice <alice@uni.example>"}, "to_address", id="display-name"),
        pytest.param({"to_address": "alice@uni.example, eve@evil.example"}, "to_address", id="two-addresses"),
        pytest.param({"to_address": "alice"}, "to_address", id="no-domain"),
        pytest.param({"subject": "hello\r\nBcc: eve@evil.example"}, "subject", id="crlf-in-subject"),
        pytest.param({"subject": "hello\nX-Injected: 1"}, "subject", id="lf-in-subject"),
        pytest.param({"subject": ""}, "subject", id="empty-subject"),
        pytest.param({"subject": "x" * 201}, "subject", id="long-subject"),
        pytest.param({"key": "has space"}, "key", id="key-with-space"),
        pytest.param({"body": ""}, "body", id="empty-body"),
        pytest.param({"body": "bell \x07"}, "body", id="control-in-body"),
        pytest.param({"to_user": "Not A User"}, "to_user", id="bad-user"),
    ],
)
def test_bad_fields_are_refused_and_nothing_is_queued(outbox: Ledger, changes: dict, field: str) -> None:
    with pytest.raises(LedgerInputError) as refused:
        _queue(outbox, **changes)
    assert refused.value.field == field
    assert outbox.unsent_mail() == []


def test_the_latest_address_of_a_user_counts(outbox: Ledger) -> None:
    assert outbox.mail_address("alice") is None
    assert outbox.record_mail_address("alice", "alice@uni.example") is True
    assert outbox.record_mail_address("alice", "alice@uni.example") is False
    assert outbox.record_mail_address("alice", "alice.smith@uni.example") is True
    outbox.record_mail_address("bob", "bob@uni.example")
    assert outbox.mail_address("alice") == "alice.smith@uni.example"
    assert outbox.mail_addresses(["alice", "bob", "carol"]) == {"alice": "alice.smith@uni.example",
                                                                "bob": "bob@uni.example"}  # fmt: skip
    with pytest.raises(LedgerInputError):
        outbox.record_mail_address("alice", "alice@uni.example\nBcc: x@y.example")
