"""The spawner's errors: what the user reads instead of a traceback (pure; no subprocess).

- ``SpawnError``: a failure the user should read (budget, validation, Slurm, the ledger).
- ``SlurmNotAnswering``: slurmctld did not answer a spawn's sbatch: HTTP 503.
- ``LedgerUnavailable``: the ledger's database did not answer admission: HTTP 503, nothing
  submitted or held.
- :func:`mark_handled` and :func:`quiet_handled_errors`: an error the spawner raised on purpose
  and logged in one line gets no traceback from JupyterHub's ``apply_user_options`` runner.
"""

from __future__ import annotations

import html
import logging

from tornado import web

from spawners.slurm.client import SlurmCommandError, SlurmTimeoutError


class SpawnError(Exception):
    """A failure the user should read (budget, validation, Slurm): no traceback needed."""

    def __init__(self, message: str, reason: str = "failed"):
        super().__init__(message)
        self.reason = reason  # for metrics: "slurm" (refused by Slurm), "ledger" or "failed" (the job died)
        self.jupyterhub_message = message
        self.jupyterhub_html_message = html.escape(message).replace("\n", "<br>")


# What Slurm's commands print when slurmctld is down or overloaded (the request never reached it).
SLURM_NOT_ANSWERING_MARKERS = ("Unable to contact slurm controller", "Socket timed out", "Zero Bytes were transmitted")


def slurm_not_answering(exc: SlurmCommandError) -> bool:
    """True when the command failed because slurmctld did not answer (not because it refused)."""
    return isinstance(exc, SlurmTimeoutError) or any(marker in exc.stderr for marker in SLURM_NOT_ANSWERING_MARKERS)


class SlurmNotAnswering(web.HTTPError):
    """A spawn that could not reach slurmctld: HTTP 503 with a message the user can act on."""

    def __init__(self, exc: SlurmCommandError):
        message = f"Slurm is not answering, try again shortly ({exc.first_stderr_line or exc.summary})"
        super().__init__(503, message)
        self.jupyterhub_message = message
        self.jupyterhub_html_message = html.escape(message)


def database_detail(exc: BaseException) -> str:
    """The first line of a database error (e.g. ``database is locked``), without SQL or traceback."""
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0][:200]


class LedgerUnavailable(web.HTTPError):
    """The ledger's database did not answer (locked, down): HTTP 503, nothing submitted or held."""

    def __init__(self, exc: BaseException):
        message = (f"The GPU-hour ledger is not available right now ({database_detail(exc)}); nothing was "
                   "submitted and nothing is held. Try again shortly.")  # fmt: skip
        super().__init__(503, message)
        self.jupyterhub_message = message
        self.jupyterhub_html_message = html.escape(message)


class HandledErrorFilter(logging.Filter):
    """Leaves out JupyterHub's "Exception applying user_options" traceback for an error the spawner
    raised on purpose (a refused option, a budget refusal, a denied account) and logged itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not getattr(error, "hpchub_handled", False)


_HANDLED_ERROR_FILTER = HandledErrorFilter()


def mark_handled(error: BaseException) -> BaseException:
    """``error``, marked as raised on purpose and already logged (returned, to be raised)."""
    error.hpchub_handled = True  # type: ignore[attr-defined]
    return error


def quiet_handled_errors(log: logging.Logger | logging.LoggerAdapter) -> None:
    """Install the filter on the logger of ``log`` (once)."""
    logger = getattr(log, "logger", log)  # a LoggerAdapter's logger
    if _HANDLED_ERROR_FILTER not in logger.filters:
        logger.addFilter(_HANDLED_ERROR_FILTER)
