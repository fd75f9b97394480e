"""Keep OAuth ``code`` and ``state`` values (and tokens) out of the hub's log.

JupyterHub's own request log scrubs them, but other lines carry the full callback URL: tornado
logs every ``HTTPError`` as ``403 GET /hub/oauth_callback?code=...&state=... (ip): reason`` (a
refused login: another institution, a group, a deny rule), an uncaught exception with the
request's repr, and oauthenticator logs the ``state_id`` of a mismatched state. A code is single
use but valid for a while, a state binds a login in progress: anyone who reads the log could
race the user to the callback. This filter rewrites each record before any handler writes it.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[secret]"
# a query (or form) parameter whose name contains one of these, as JupyterHub's own scrubbing matches
SECRET_KEY_PARTS = ("code", "state", "token", "secret", "auth", "key", "_xsrf", "password")
_PARAMETER = re.compile(
    r"(?P<key>(?:^|[?&;\s\"'(])[A-Za-z0-9_.\-]*(?:"
    + "|".join(re.escape(p) for p in SECRET_KEY_PARTS)
    + r")[A-Za-z0-9_.\-]*=)(?P<value>[^&;\s\"')#]+)",
    re.IGNORECASE,
)
_STATE_MISMATCH = re.compile(r"(OAuth state mismatch: )\S+ != \S+")


def redact(message: str) -> str:
    """``message`` without the values of secret parameters or a mismatched state's ids."""
    message = _PARAMETER.sub(lambda m: m.group("key") + REDACTED, message)
    return _STATE_MISMATCH.sub(rf"\g<1>{REDACTED} != {REDACTED}", message)


class SecretRedactingFilter(logging.Filter):
    """A handler filter: the record's formatted message, redacted (arguments folded in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a broken record is logging's to report, not ours)
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install(logger: logging.Logger) -> None:
    """Add the filter to every handler that ``logger``'s records reach (its own and its ancestors',
    as ``propagate`` allows); once per handler."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not any(isinstance(f, SecretRedactingFilter) for f in handler.filters):
                handler.addFilter(SecretRedactingFilter())
        current = current.parent if current.propagate else None
