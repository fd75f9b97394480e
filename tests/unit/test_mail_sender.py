"""The mail sender (hub/mail/sender.py) against a real SMTP server in this process (aiosmtpd with the
demo's store, hub/demo/mailserver.py): queued messages are sent once, a relay that is down leaves
them queued with one line naming host and port, a refused recipient does not stop the others."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from hub.demo.mailserver import MailStore, StoreHandler, read_mailbox
from hub.ledger import Ledger, upgrade
from hub.mail.sender import compose, send_pending, unconfigured_line
from hub.mail.settings import HPCHubMail

pytestmark = pytest.mark.unit

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=timezone.utc)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RefusingHandler(StoreHandler):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def relay(tmp_path):
    store_dir = tmp_path / "mail"
    controller = Controller(RefusingHandler(MailStore(store_dir)), hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller, store_dir
    finally:
        controller.stop()


@pytest.fixture
def ledger(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade(url)
    with Ledger(url, clock=lambda: T0) as ledger:
        yield ledger


def _settings(port: int, **changes) -> HPCHubMail:
    return HPCHubMail(smtp_host="127.0.0.1", smtp_port=port, from_address="hpchub@demo.example", timeout=5, **changes)


def _queue(ledger: Ledger, user: str, key: str, subject: str = "vision-lab ends on 2027-01-31, in 30 days") -> None:
    ledger.queue_mail(to_user=user, to_address=f"{user}@uni.example", subject=subject, body=f"Dear {user},\n", key=key)


async def test_queued_mail_is_sent_once_and_stored(ledger: Ledger, relay) -> None:
    controller, store_dir = relay
    _queue(ledger, "alice", "period-30:vision-lab:2027-01-31:alice")
    _queue(ledger, "bob", "budget-80:vision-lab:1:bob", subject="vision-lab: 80 % of the GPU-hours used")
    report = await send_pending(ledger, _settings(controller.port))
    assert (report.sent, report.failed) == (2, 0)
    assert report.lines == [
        "mailed alice@uni.example: vision-lab ends on 2027-01-31, in 30 days (period-30:vision-lab:2027-01-31:alice)",
        "mailed bob@uni.example: vision-lab: 80 % of the GPU-hours used (budget-80:vision-lab:1:bob)",
    ]
    assert ledger.unsent_mail() == []
    assert (await send_pending(ledger, _settings(controller.port))).sent == 0  # nothing twice
    alice, bob = read_mailbox(store_dir)
    assert [alice.path.name, bob.path.name] == ["000001.eml", "000002.eml"]
    assert (alice.to, alice.envelope_to, alice.sender) == ("alice@uni.example", ("alice@uni.example",),
                                                           "hpchub@demo.example")  # fmt: skip
    assert (alice.subject, alice.body, alice.key) == (
        "vision-lab ends on 2027-01-31, in 30 days", "Dear alice,\n", "period-30:vision-lab:2027-01-31:alice",
    )  # fmt: skip


async def test_a_relay_that_is_down_leaves_everything_queued(ledger: Ledger) -> None:
    _queue(ledger, "alice", "k1:alice")
    _queue(ledger, "bob", "k2:bob")
    port = _free_port()  # nothing listens there
    report = await send_pending(ledger, _settings(port, smtp_user="hpchub", smtp_password="s3cret-pw"))
    assert (report.sent, report.failed) == (0, 1)
    [line] = report.lines
    assert line.startswith(f"mail: relay 127.0.0.1:{port} not reached: ConnectionRefusedError")
    assert "s3cret-pw" not in line and "Dear" not in line
    assert [(m.key, m.attempts) for m in ledger.unsent_mail()] == [("k1:alice", 1), ("k2:bob", 0)]


async def test_a_refused_login_names_no_password(ledger: Ledger, tmp_path) -> None:
    def refuse(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    controller = Controller(StoreHandler(MailStore(tmp_path / "m")), hostname="127.0.0.1", port=_free_port(),
                            authenticator=refuse, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        _queue(ledger, "alice", "k1:alice")
        report = await send_pending(ledger, _settings(controller.port, smtp_user="hpchub", smtp_password="s3cret-pw"))
    finally:
        controller.stop()
    [line] = report.lines
    assert "SMTPAuthenticationError: 535" in line and "s3cret-pw" not in line
    assert len(ledger.unsent_mail()) == 1


async def test_a_refused_recipient_does_not_stop_the_others(ledger: Ledger, relay) -> None:
    controller, store_dir = relay
    ledger.queue_mail(to_user=None, to_address="nobody@uni.example", subject="s", body="b", key="k0")
    _queue(ledger, "alice", "k1:alice")
    report = await send_pending(ledger, _settings(controller.port))
    assert (report.sent, report.failed) == (1, 1)
    assert "k0 to nobody@uni.example refused by" in report.lines[0] and "550" in report.lines[0]
    assert [m.key for m in ledger.unsent_mail()] == ["k0"]
    assert [m.to for m in read_mailbox(store_dir)] == ["alice@uni.example"]


async def test_unconfigured_mail_stays_queued(ledger: Ledger) -> None:
    _queue(ledger, "alice", "k1:alice")
    report = await send_pending(ledger, HPCHubMail())
    assert (report.sent, report.lines) == (0, [])
    assert unconfigured_line(ledger) == (
        "mail: not configured (c.HPCHubMail.smtp_host and from_address): 1 message(s) stay queued in the ledger"
    )


def test_compose_refuses_a_header_with_a_line_break(ledger: Ledger) -> None:
    from hub.ledger.mail_outbox import OutboxMessage

    bad = OutboxMessage(1, "k", "alice@uni.example", "alice", "hi\r\nBcc: eve@evil.example", "body", T0, 0)
    with pytest.raises(ValueError, match="subject"):
        compose(bad, _settings(25))


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        pytest.param("from_address", "Portal <p@uni.example>", id="from-with-name"),
        pytest.param("from_address", "p@uni.example\r\nBcc: x@y.example", id="from-crlf"),
        pytest.param("smtp_port", 0, id="port-0"),
        pytest.param("timeout", 0.0, id="timeout-0"),
        pytest.param("smtp_host", "relay\r\nx", id="host-crlf"),
        pytest.param("portal_url", "ftp://x", id="url-not-http"),
    ],
)
def test_bad_settings_are_refused(trait: str, value) -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError, match=f"c.HPCHubMail.{trait}"):
        HPCHubMail(**{trait: value})


def test_every_setting_is_configurable_and_explained() -> None:
    for name, trait in HPCHubMail.class_traits(config=True).items():
        assert "Default" in trait.help and "Example" in trait.help, name


def test_the_store_numbers_on_from_the_highest_file_and_never_replaces_one(tmp_path) -> None:
    (tmp_path / "000007.eml").write_bytes(b"Subject: old\r\n\r\nold\r\n")
    (tmp_path / ".incoming-1-3.tmp").write_bytes(b"half")  # a temporary file is no message
    store = MailStore(tmp_path)
    assert store.store(b"Subject: new\r\n\r\nnew\r\n").name == "000008.eml"
    assert [m.subject for m in read_mailbox(tmp_path)] == ["old", "new"]
    assert not list(tmp_path.glob(".incoming-*-8.tmp"))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.org"])
def test_the_demo_server_listens_on_loopback_only(host) -> None:
    from hub.demo.mailserver import check_loopback

    with pytest.raises(SystemExit, match="loopback"):
        check_loopback(host)
    assert check_loopback("127.0.0.1") == "127.0.0.1"
