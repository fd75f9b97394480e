"""The project page's allocation history, read from the ledger: each award (call, proposal, kind,
GPU-hours, date, the period it set), the team's invitations (invited or accepted), the final
report's state and the project's end date. Pure apart from the reads; the unit tests call it on
a SQLite ledger."""

from __future__ import annotations

from datetime import date, timezone

from hub.ledger import Ledger
from hub.ledger import arithmetic as arith
from hub.ledger.types import ProjectInfo


def report_state(reports: list, awarded: bool, end: date | None, today: date) -> str | None:
    """``submitted on DATE``, ``due: the period ended on DATE``, ``due at the end (DATE)``, or None
    (a project no award made asks for no report)."""
    if reports:
        return f"submitted on {reports[-1].at.astimezone(timezone.utc).date().isoformat()}"
    if not awarded:
        return None
    if end is None:
        return "due at the end of the period"
    if today > end:
        return f"due: the period ended on {end.isoformat()}"
    return f"due at the end of the period ({end.isoformat()})"


def allocation_history(ledger: Ledger, info: ProjectInfo, today: date) -> dict | None:
    """What the page shows, or None for a project no call's award made and nobody was invited to."""
    awards = ledger.awards(info.name)
    invitations = ledger.invitations(info.name)
    if not awards and not invitations:
        return None
    rows = [
        {"call": a.call, "proposal": a.proposal_id, "kind": a.kind.value, "gpu_hours": arith.format_gpu_hours(a.amount_mgs),
         "at": a.at.astimezone(timezone.utc).date().isoformat(), "until": a.period_end.isoformat(), "message": a.message}
        for a in awards
    ]  # fmt: skip
    team = [
        {"principal": i.principal, "role": i.role.value, "state": i.state, "user": i.user or "-"} for i in invitations
    ]
    return {
        "awards": rows, "renewals": sum(1 for a in awards if a.kind.value != "new"), "team": team,
        "end": info.period_end.isoformat() if info.period_end else None,
        "report": report_state(ledger.reports(info.name), bool(awards), info.period_end, today),
    }  # fmt: skip
