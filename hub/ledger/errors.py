"""The ledger's errors (pure: no database, no framework).

- ``LedgerInputError``: bad input (unknown project, negative hours, a bad role, an unsafe
  name). Names the field; nothing was changed. CLI exit 2, HTTP 400 (404 for ``NotFound``
  where the caller may not learn that the thing exists).
- ``BudgetRefused``: a well-formed request that the budget (or a closed project) does not
  allow. CLI exit 1, HTTP 403. The message is meant for the user, as is.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error the ledger raises on purpose."""


class LedgerInputError(LedgerError, ValueError):
    """Bad input: ``field`` names the offending field, ``message`` says the rule."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.rule = message
        self.message = f"{field}: {message}"
        super().__init__(self.message)


class NotFound(LedgerInputError):
    """An unknown project, member or session."""


class BudgetRefused(LedgerError):
    """Admission refused: ``message`` states what is left and what the request needs."""

    def __init__(self, message: str, session_id: int | None = None) -> None:
        self.message = message
        self.session_id = session_id  # the recorded refusal, when one was recorded
        super().__init__(message)
