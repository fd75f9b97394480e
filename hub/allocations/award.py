"""An award makes the project, all or nothing: its Slurm account and the PI's association, its
project space, then the ledger's records (``Ledger.record_award``: project, grant, PI, team
invitations, the award and its event, one transaction).

The steps run in that order so that the ledger, the truth, is written last: when a step fails,
the steps before it are undone in reverse order (the PI's association and the account removed,
the empty space and the group this award made removed) and the manager sees which step failed
and Slurm's or the system's words. Nothing is left half-made; the award can be tried again.

A renewal or a supplement touches only the ledger (a grant and a later end date); the
reconciler's next pass raises the account's Slurm limit.

A start-up call's proposal is awarded at submission (``submit``), with the call as its decider.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hub.allocations import notices
from hub.allocations.settings import HPCHubAllocations
from hub.envs import space as sp
from hub.envs import unix
from hub.envs.config import HPCHubEnvironments
from hub.ledger import Ledger
from hub.ledger.allocations import ProposalInfo
from hub.ledger.award_records import AwardPlan, AwardResult
from hub.ledger.errors import LedgerInputError
from hub.ledger.runtime import HPCHubLedger
from spawners.slurm.client import SlurmClient, SlurmCommandError
from spawners.slurm.cluster import SlurmCluster

log = logging.getLogger("hpchub.allocations")


class AwardFailed(Exception):
    """A step of the award failed and what was made before it was undone: ``step`` names it."""

    def __init__(self, step: str, message: str, undo_problems: tuple[str, ...] = (), *, refused: bool = False) -> None:
        # refused: a rule stopped it (the account or the space exists, the proposal changed), not a failure
        self.step, self.message, self.undo_problems, self.refused = step, message, undo_problems, refused
        left = f" (and undoing left: {'; '.join(undo_problems)})" if undo_problems else ""
        super().__init__(f"the award was not made: {step} failed: {message}{left}; nothing was created, try again")


@dataclass(frozen=True)
class AwardContext:
    """What an award needs besides the ledger: Slurm, the cluster's name and the site's settings."""

    client: SlurmClient
    cluster: str
    settings: HPCHubAllocations
    environments: HPCHubEnvironments | None = None


def context_from_config(config, *, log: logging.Logger | None = None, ledger: Ledger | None = None) -> AwardContext:
    """The award's context as the hub's configuration gives it: the hub's Slurm cluster
    (``SlurmCluster.from_config``; its name, else the ledger's ``c.HPCHubLedger.cluster``), the
    allocation and environment settings. Used alike by the API, the pages and the command line."""
    cluster = SlurmCluster.from_config(config)
    name = cluster.name or (ledger.cluster if ledger is not None else HPCHubLedger(config=config).cluster)
    return AwardContext(
        client=cluster.client(log=log) if log is not None else cluster.client(),
        cluster=name,
        settings=HPCHubAllocations(config=config),
        environments=HPCHubEnvironments(config=config),
    )


Undo = Callable[[], Awaitable[None]]


async def award(
    ledger: Ledger, proposal_id: int, context: AwardContext, *, who: str, message: str, gpu_hours: object = None,
    now: datetime | None = None,
) -> AwardResult:  # fmt: skip
    """Award ``proposal_id`` (``gpu_hours``: None for what was asked, else at most that)."""
    plan = await asyncio.to_thread(ledger.plan_award, proposal_id, gpu_hours=gpu_hours, now=now)
    undo: list[tuple[str, Undo]] = []
    step = "the ledger"
    try:
        if plan.new_project:
            step = f"Slurm account {plan.account}"
            await _add_account(context, plan, undo)
            step = f"Slurm association of {plan.pi} with {plan.account}"
            await context.client.sacctmgr_add_user(plan.pi, account=plan.account, cluster=context.cluster)
            undo.append((step, lambda: _remove_user(context, plan)))
            if context.environments is not None and context.environments.project_root:
                step = f"project space of {plan.project}"
                made = await asyncio.to_thread(_make_space, context.environments, plan)
                undo.append((step, lambda: asyncio.to_thread(_remove_space, made)))
        step = "the ledger"
        result = await asyncio.to_thread(ledger.record_award, plan, who=who, message=message, now=now)
    except (SlurmCommandError, OSError, unix.SpaceError, LedgerInputError) as exc:
        problems = await _undo(undo)
        words = exc.summary if isinstance(exc, SlurmCommandError) else str(exc)
        log.warning("award of proposal #%s failed at %s: %s", proposal_id, step, words)
        raise AwardFailed(step, words, problems, refused=isinstance(exc, LedgerInputError)) from None
    await asyncio.to_thread(_notify_award, ledger, result, context.settings.portal_url)
    return result


def _notify_award(ledger: Ledger, result: AwardResult, portal_url: str) -> None:
    info = ledger.proposal(result.plan.proposal_id)
    end = result.plan.period_end.isoformat()
    notices.queue(ledger, notices.awarded(info, result.plan.project, result.plan.amount_mgs, end, portal_url))
    for principal, token in result.invitations.items():
        notices.queue(ledger, notices.invited(result.plan.project, principal, token, info.applicant, portal_url))


async def submit(
    ledger: Ledger, proposal_id: int, context: AwardContext, *, applicant: str, now: datetime | None = None
) -> ProposalInfo:
    """Submit; a start-up call's proposal is then awarded at once (or, if the award fails, stays
    submitted for a manager to award, and the error is raised)."""
    info = await asyncio.to_thread(ledger.submit_proposal, proposal_id, applicant=applicant, now=now)
    call = await asyncio.to_thread(ledger.proposal_call, proposal_id)
    await asyncio.to_thread(notices.queue, ledger, notices.submitted(info, call, context.settings.portal_url))
    if not call.spec.startup:
        return info
    await award(ledger, proposal_id, context, who=f"start-up call {call.name}", message="start-up award", now=now)
    return await asyncio.to_thread(ledger.proposal, proposal_id)


# --- the steps and their undoing -----------------------------------------------------------------


async def _add_account(context: AwardContext, plan: AwardPlan, undo: list[tuple[str, Undo]]) -> None:
    if await context.client.account_exists(plan.account):
        raise LedgerInputError("account", f"Slurm has an account {plan.account} already (not made by this award)")
    description = f"project {plan.project}, proposal #{plan.proposal_id}"
    await context.client.sacctmgr_add_account(
        plan.account, parent=context.settings.slurm_parent_account, cluster=context.cluster, description=description
    )
    undo.append((f"Slurm account {plan.account}", lambda: _remove_account(context, plan)))


async def _remove_user(context: AwardContext, plan: AwardPlan) -> None:
    await context.client.sacctmgr_remove_user(plan.pi, account=plan.account, cluster=context.cluster)


async def _remove_account(context: AwardContext, plan: AwardPlan) -> None:
    # The award made the account (no cluster had it): remove the account itself, not only its
    # association on this cluster, which would leave its record in slurmdbd.
    await context.client.sacctmgr_remove_account(plan.account, cluster=None)


@dataclass(frozen=True)
class _MadeSpace:
    space: sp.ProjectSpace
    existed: bool
    group_made: bool


def _make_space(settings: HPCHubEnvironments, plan: AwardPlan) -> _MadeSpace:
    space = sp.ProjectSpace(Path(settings.project_root), plan.project)
    existed = os.path.lexists(space.path)
    if existed:
        raise unix.SpaceError(f"{space.path} exists already (a space of an earlier project?): archive or move it")
    group_made = settings.manage_unix_groups and unix.group_id(plan.project) is None
    unix.ensure_space(space, [plan.pi], manage_groups=settings.manage_unix_groups, hub_account=settings.hub_account)
    return _MadeSpace(space, existed, group_made)


def _remove_space(made: _MadeSpace) -> None:
    """Remove the empty directories this award made (never following a link), and its group."""
    path = made.space.path
    for child in ("shared", "envs", "kernels"):
        try:
            os.rmdir(os.path.join(path, child))
        except FileNotFoundError:
            pass
    os.rmdir(path)
    if made.group_made:
        unix.remove_group(made.space.project)


async def _undo(undo: list[tuple[str, Undo]]) -> tuple[str, ...]:
    problems = []
    for what, action in reversed(undo):
        try:
            await action()
        except (SlurmCommandError, OSError, unix.SpaceError) as exc:
            words = exc.summary if isinstance(exc, SlurmCommandError) else str(exc)
            log.error("undoing %s after a failed award: %s", what, words)
            problems.append(f"{what}: {words}")
    return tuple(problems)
