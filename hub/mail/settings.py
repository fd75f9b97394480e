"""``c.HPCHubMail``: the mail relay the portal sends through, and the portal's own address."""

from __future__ import annotations

from traitlets import Bool, Float, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from hub.ledger.errors import LedgerInputError
from hub.ledger.mail_outbox import check_mail_address


class HPCHubMail(Configurable):
    """The SMTP relay and the sender's address. Mail is off (messages stay queued in the ledger,
    and ``hpchub doctor`` warns) until ``smtp_host`` and ``from_address`` are both set."""

    smtp_host = Unicode(
        "",
        help="Host name or address of the SMTP relay the portal hands its mail to; '' = mail off (messages stay "
        "queued and are sent once it is set). Default ''. Example: 'smtp.uni.example' (the demo: '127.0.0.1').",
    ).tag(config=True)
    smtp_port = Integer(
        25,
        help="TCP port of the SMTP relay. Default 25. Example: 587 (with starttls = True); the demo: 8025.",
    ).tag(config=True)
    starttls = Bool(
        False,
        help="Upgrade the connection with STARTTLS (the relay's certificate is checked against the system's CAs) "
        "before logging in or sending. Default False. Example: True (with smtp_port = 587).",
    ).tag(config=True)
    smtp_user = Unicode(
        "",
        help="User name to log in to the relay with (SMTP AUTH); '' = no login. Default ''. Example: 'hpchub'. "
        "Use it only with starttls = True: a login over plain SMTP shows the password to the network.",
    ).tag(config=True)
    smtp_password = Unicode(
        "",
        help="Password of smtp_user at the relay (never logged). Default ''. Example: read it from a file the "
        "hub's account alone reads: open('/etc/hpchub/smtp_password').read().strip().",
    ).tag(config=True)
    from_address = Unicode(
        "",
        help="The address the portal's mail comes from (its From header); '' = mail off. Default ''. Example: "
        "'hpc-portal@uni.example' (the demo: 'hpchub@demo.example').",
    ).tag(config=True)
    timeout = Float(
        30.0,
        help="Seconds each step of a conversation with the relay may take (connect, STARTTLS, login, each message) "
        "before the pass gives up and leaves the messages for the next pass. From 1 to 600. Default 30. Example: 10.",
    ).tag(config=True)
    portal_url = Unicode(
        "",
        help="The portal's public address, put before the links in mail (a renewal request, a project page); '' = "
        "links are paths such as /hub/hpchub/apply?renew=vision-lab. Default ''. Example: 'https://hpc.uni.example'.",
    ).tag(config=True)
    batch = Integer(
        100,
        help="At most this many queued messages are sent per reconciler pass (the rest go in the next ones). From 1 "
        "to 10000. Default 100. Example: 500.",
    ).tag(config=True)

    @validate("from_address")
    def _valid_from(self, proposal):
        value = proposal["value"]
        if value:
            try:
                check_mail_address(value, "from_address")
            except LedgerInputError as exc:
                raise TraitError(f"c.HPCHubMail.from_address: {exc.rule}, got {value!r}") from None
        return value

    @validate("smtp_host")
    def _valid_host(self, proposal):
        value = proposal["value"]
        if any(ch.isspace() or not ch.isprintable() for ch in value) or len(value) > 253:
            raise TraitError(f"c.HPCHubMail.smtp_host: a host name or address, got {value!r}")
        return value

    @validate("smtp_port")
    def _valid_port(self, proposal):
        if not 1 <= proposal["value"] <= 65535:
            raise TraitError(f"c.HPCHubMail.smtp_port: from 1 to 65535, got {proposal['value']}")
        return proposal["value"]

    @validate("timeout")
    def _valid_timeout(self, proposal):
        if not 1 <= proposal["value"] <= 600:
            raise TraitError(f"c.HPCHubMail.timeout: from 1 to 600 seconds, got {proposal['value']:g}")
        return proposal["value"]

    @validate("batch")
    def _valid_batch(self, proposal):
        if not 1 <= proposal["value"] <= 10_000:
            raise TraitError(f"c.HPCHubMail.batch: from 1 to 10000, got {proposal['value']}")
        return proposal["value"]

    @validate("portal_url")
    def _valid_portal_url(self, proposal):
        value = proposal["value"].rstrip("/")
        if value and not (value.startswith(("https://", "http://")) and value.isprintable() and " " not in value):
            raise TraitError(f"c.HPCHubMail.portal_url: an http(s) URL, got {value!r}")
        return value

    @property
    def configured(self) -> bool:
        """Whether mail is sent at all (a relay and a From address)."""
        return bool(self.smtp_host and self.from_address)

    def link(self, path: str) -> str:
        """``path`` (``/hub/...``) as a link for a message: after ``portal_url`` when it is set."""
        return portal_link(self.portal_url, path)


def portal_link(portal_url: str, path: str) -> str:
    """``path`` (``/hub/...``) after the portal's address (``''``: the path alone)."""
    return f"{portal_url.rstrip('/')}{path}" if portal_url else path
