"""The budget meter's figures, texts and warning rule (pure: no widgets, no network, no clock).

The meter reads ``GET /hub/api/hpchub/v1/users/{u}/servers/{s}/session`` with the server's
own token (see docs/api.md). Walltime counts down locally between refreshes: the answer's
``seconds_left`` (computed with the hub's clock) is turned into a deadline on the kernel's
monotonic clock, so a skew between the node's and the hub's clocks does not matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

WARN_SECONDS = 15 * 60  # less than 15 minutes of walltime left
WARN_FRACTION = 0.05  # less than 5 % of the project's budget left
UNREACHABLE = "portal not reachable, retrying"
SESSION_PATH = "/hpchub/v1/users/{user}/servers/{server}/session"


@dataclass(frozen=True)
class Figures:
    """One session answer, as the meter shows it."""

    project: str
    job_id: str | None
    state: str
    cost_so_far_gpu_hours: float
    project_remaining_gpu_hours: float | None
    project_budget_gpu_hours: float | None
    seconds_left: int | None  # at the time of the answer; None while the job pends
    end: str | None
    idle_notice: str | None = None  # the idle stop's warning ("idle: this session stops at ...")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def session_url(api_url: str, user: str, server: str) -> str:
    """``$JUPYTERHUB_API_URL`` (``.../hub/api``) + the session path; the default server is ``""``."""
    return api_url.rstrip("/") + SESSION_PATH.format(user=quote(user, safe=""), server=quote(server, safe=""))


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    return float(value)  # type: ignore[arg-type]


def figures_from_session(answer: Mapping[str, Any]) -> Figures:
    """The session endpoint's JSON -> Figures (a missing key is a KeyError: a wrong answer)."""
    seconds = answer.get("seconds_left")
    return Figures(
        project=str(answer["project"]),
        job_id=None if answer.get("job_id") is None else str(answer["job_id"]),
        state=str(answer.get("state") or ""),
        cost_so_far_gpu_hours=float(answer["cost_so_far_gpu_hours"]),
        project_remaining_gpu_hours=_number(answer.get("project_remaining_gpu_hours")),
        project_budget_gpu_hours=_number(answer.get("project_budget_gpu_hours")),
        seconds_left=None if seconds is None else int(seconds),
        end=answer.get("end"),
        idle_notice=str(answer["idle_notice"]) if answer.get("idle_notice") else None,
    )


def deadline(seconds_left: int | None, received_monotonic: float) -> float | None:
    """The job's end on the monotonic clock (None while pending)."""
    return None if seconds_left is None else received_monotonic + seconds_left


def seconds_until(deadline_monotonic: float | None, now_monotonic: float) -> int | None:
    """Whole seconds left at ``now`` (never below 0); None: no end known yet."""
    if deadline_monotonic is None:
        return None
    return max(0, int(deadline_monotonic - now_monotonic))


def format_time_left(seconds: int | None, state: str = "") -> str:
    """``1:05:09``, ``0:14:59``, ``0:00:00 (time is up)``; a pending job: ``not started (pending)``."""
    if seconds is None:
        return f"not started ({state})" if state else "not started"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{text} (time is up)" if seconds == 0 else text


def format_gpu_hours(value: float | None) -> str:
    """``12.50 GPU-h``; ``-`` when unknown. Two decimals: the ledger keeps four, the meter is a glance."""
    if value is None:
        return "-"
    return f"{value:.2f} GPU-h"


def warnings(seconds_left: int | None, remaining: float | None, budget: float | None) -> list[str]:
    """Why the meter warns: less than 15 min of walltime, or less than 5 % of the budget left.

    A budget of 0 (or none granted) warns when nothing is left; unknown figures never warn.
    """
    reasons = []
    if seconds_left is not None and seconds_left < WARN_SECONDS:
        reasons.append(f"less than {WARN_SECONDS // 60} min of walltime left")
    if remaining is not None and budget is not None:
        if (budget > 0 and remaining < WARN_FRACTION * budget) or (budget <= 0 and remaining <= 0):
            reasons.append(f"less than {WARN_FRACTION:.0%} of the project's budget left")
    return reasons


def warning_line(reasons: list[str]) -> str:
    """The meter's status line: ``Warning: <reasons>. Save your work.``; the idle stop's notice
    ("idle: this session stops at ...") without its "idle: " (it says "idle since")."""
    shown = [reason.removeprefix("idle: ") for reason in reasons]
    return "Warning: " + "; ".join(shown) + ". Save your work."


def is_warning(seconds_left: int | None, remaining: float | None, budget: float | None) -> bool:
    return bool(warnings(seconds_left, remaining, budget))


def error_text(status: int | None, message: str = "") -> str:
    """What the meter shows after a failed refresh (it keeps the last figures and retries)."""
    if status == 404:
        return "no running session for this server (the portal answered 404), retrying"
    if status in (401, 403):
        return f"the portal refused this server's token ({status}), retrying"
    return UNREACHABLE
