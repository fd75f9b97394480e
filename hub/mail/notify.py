"""Queue mail for portal users without ever failing the action that caused it.

``notify_user(ledger, user, subject=..., body=..., event=...)`` looks up the user's mail address
(the latest their logins gave, ``Ledger.mail_address``) and queues one message under the key
``EVENT:USER``: the same event is mailed to the same user once, and to each of several users
once. It answers what happened (``Notified``) and never raises: a user without a recorded address,
bad text or a ledger that fails is a line in the log, and the caller goes on.

``project_leaders(ledger, project)`` are the users a project's notices go to: its PIs, or for a
course its instructors (managers too when the project has no PI).
"""

from __future__ import annotations

import enum
import logging

from sqlalchemy.exc import SQLAlchemyError

from hub.ledger.errors import LedgerError
from hub.ledger.types import Role

log = logging.getLogger(__name__)


class Notified(enum.Enum):
    QUEUED = "queued"
    ALREADY = "already queued"  # this event was mailed to this user before
    NO_ADDRESS = "no mail address"  # no login has given one yet
    FAILED = "failed"  # bad text or the ledger failed (logged)


def notify_user(ledger, user: str, *, subject: str, body: str, event: str, logger=None) -> Notified:
    """Queue ``subject`` and ``body`` for ``user`` under the key ``EVENT:USER``."""
    logger = logger or log
    try:
        address = ledger.mail_address(user)
        if address is None:
            return Notified.NO_ADDRESS
        queued = ledger.queue_mail(to_user=user, to_address=address, subject=subject, body=body,
                                   key=f"{event}:{user}")  # fmt: skip
    except (LedgerError, SQLAlchemyError) as exc:
        logger.warning("mail %s to %s not queued: %s", event, user, str(exc).splitlines()[0] if str(exc) else exc)
        return Notified.FAILED
    return Notified.QUEUED if queued else Notified.ALREADY


LEADER_ROLES = (Role.PI, Role.INSTRUCTOR)


def project_leaders(ledger, project: str) -> list[str]:
    """The active members a project's notices go to: PIs and instructors; managers when there is
    neither. Sorted by name."""
    figures = ledger.figures(project)
    leaders = sorted(m.user for m in figures.members if m.role in LEADER_ROLES)
    return leaders or sorted(m.user for m in figures.members if m.role is Role.MANAGER)
