"""``hpchub call create|list|close`` and ``hpchub proposal list|show|assign|decide``: allocation calls
and proposals on the admin command line.

The commands run through ``cli.cmd_ledger`` like the other ledger commands (the same database
choice, exit codes and one-line errors); ``add_allocation_parsers`` adds them. They act with the
site admin's rights (a call manager's), with the same checks as the API: the rules are
:mod:`hub.allocations.service`'s and the ledger's, and an award is :func:`hub.allocations.award.award`
(Slurm account, the PI's association, the project space and the ledger's records, all or nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from hub.allocations import award as awarding
from hub.allocations import notices, service
from hub.allocations.service import View
from hub.allocations.settings import HPCHubAllocations
from hub.cli_support import UsageError, load_hub_config, slurm_cluster
from hub.envs.config import HPCHubEnvironments
from hub.ledger import arithmetic as arith
from hub.ledger.allocations import Audience, Decision, ProposalState
from hub.ledger.errors import LedgerError
from hub.ledger.runtime import HPCHubLedger
from hub.ledger.store import Ledger
from spawners.slurm.client import SlurmCommandError, validate_cluster_name
from spawners.slurm.cluster_parsers import parse_show_config

# Ledger field -> the argument the user typed (for error lines).
ARGUMENT_NAMES = {
    "call create": {
        "name": "NAME",
        "title": "--title",
        "audience": "--audience",
        "opens": "--opens",
        "closes": "--closes",
        "gpu_hours": "--gpu-hours",
        "max_request": "--max-request",
        "period_months": "--period-months",
        "review_required": "--review",
        "criteria": "--criteria",
    },  # fmt: skip
    "call close": {"call": "NAME", "reason": "--reason"},
    "proposal list": {"call": "--call", "state": "--state"},
    "proposal show": {"proposal": "ID"},
    "proposal assign": {"proposal": "ID", "reviewer": "REVIEWER"},
    "proposal decide": {"proposal": "ID", "decision": "DECISION", "gpu_hours": "--gpu-hours", "message": "--message"},
}


# The award logs its failures for the hub's log; here the error line says it once (exit 1), so the
# warning must not reach stderr through logging's last-resort handler.
logging.getLogger(awarding.log.name).addHandler(logging.NullHandler())


class AwardNotMade(LedgerError):
    """An award failed and was undone: one line naming the step, exit 1 (``cli.cmd_ledger``)."""


def _config(args):
    return load_hub_config(getattr(args, "config", None))


def _allocation_settings(args) -> HPCHubAllocations:
    config = _config(args)
    return HPCHubAllocations(config=config) if config is not None else HPCHubAllocations()


def _today(ledger: Ledger):
    return ledger.clock().astimezone(ledger.site_timezone).date()


def _print_json(value) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# --- calls -----------------------------------------------------------------------------------------


def _call_create(ledger: Ledger, args) -> None:
    review = (not args.startup) if args.review is None else args.review
    spec = service.call_spec({
        "name": args.name, "title": args.title, "audience": args.audience, "opens": args.opens,
        "closes": args.closes, "gpu_hours": args.gpu_hours, "max_request": args.max_request,
        "period_months": args.period_months, "review_required": review, "criteria": args.criteria,
        "reviews_visible": args.reviews_visible, "startup": args.startup, "report_required": args.report_required,
    })  # fmt: skip
    info = ledger.create_call(spec, who=args.who)
    print(f"created call {info.name}: {arith.format_gpu_hours(spec.available_mgs)} GPU-h, at most "
          f"{arith.format_gpu_hours(spec.max_request_mgs)} per proposal, {spec.period_months}-month period, open "
          f"{spec.opens} to {spec.closes}, {'review required' if spec.review_required else 'no review'}")  # fmt: skip


def _call_list(ledger: Ledger, args) -> None:
    today = _today(ledger)
    calls = [service.call_json(info, ledger.call_awarded_mgs(info.name), today) for info in ledger.calls()]
    if args.json:
        _print_json(calls)
        return
    if not calls:
        print("no calls")
        return
    rows = [("name", "audience", "opens", "closes", "state", "gpu-h", "awarded", "max", "review")]
    for call in calls:
        state = "open" if call["open"] else ("closed" if call["closed_on"] else "not open")
        review = "start-up" if call["startup"] else ("yes" if call["review_required"] else "no")
        rows.append((call["name"], ",".join(call["audiences"]), call["opens"], call["closes"], state,
                     f"{call['gpu_hours']:g}", f"{call['gpu_hours_awarded']:g}", f"{call['max_request_gpu_hours']:g}",
                     review))  # fmt: skip
    _table(rows)


def _call_close(ledger: Ledger, args) -> None:
    info = ledger.close_call(args.name, reason=args.reason, who=args.who)
    print(f"call {info.name} is closed from {info.closed_at}: no more submissions ({args.reason}); proposals "
          "submitted already are still reviewed and decided")  # fmt: skip


# --- proposals -------------------------------------------------------------------------------------


def _states(value: str | None) -> list[ProposalState] | None:
    if not value:
        return None
    try:
        return [ProposalState(word.strip()) for word in value.split(",")]
    except ValueError:
        raise UsageError(
            f"--state: one or more of {', '.join(s.value for s in ProposalState)}, got {value!r}"
        ) from None


def _proposal_list(ledger: Ledger, args) -> None:
    found = ledger.proposals(call=args.call, states=_states(args.state), limit=1000)
    shown = [service.proposal_json(info, View.MANAGER) for info in found]
    if args.json:
        _print_json(shown)
        return
    if not shown:
        print("no proposals")
        return
    rows = [("id", "call", "state", "applicant", "project", "gpu-h", "reviewers", "title")]
    for p in shown:
        rows.append((str(p["id"]), p["call"], p["state"], p["applicant"], p["project_name"] or "-",
                     f"{p['gpu_hours']:g}", ",".join(p["reviewers"]) or "-", p["title"][:60]))  # fmt: skip
    _table(rows)


def _proposal_show(ledger: Ledger, args) -> None:
    info = ledger.proposal(args.id)
    call = ledger.proposal_call(info.id)
    shown = service.proposal_json(info, View.MANAGER, reviews=ledger.reviews(info.id), call=call)
    if args.json:
        _print_json(shown)
        return
    print(f"#{shown['id']} {shown['title']} ({shown['kind']}, call {shown['call']}): {shown['state']}")
    print(f"  applicant {shown['applicant']} ({info.applicant_principal}); project {shown['project_name'] or '-'}")
    print(f"  {shown['gpu_hours']:g} GPU-h for {shown['period_months']} months; field "
          f"{shown['field_of_science'] or '-'} {shown['field_of_science_name'] or ''}".rstrip())  # fmt: skip
    print(f"  team: {', '.join(shown['team']) or '-'}; organisation: {shown['organisation'] or '-'}")
    print(f"  reviewers: {', '.join(shown['reviewers']) or '-'}")
    for score in shown["scores"]:
        if score["count"]:
            print(f"  {score['criterion']}: mean {score['mean']} over {score['count']}, spread {score['spread']}")
    for event in shown["history"]:
        print(f"  {event['at']} {event['state']} by {event['by']}: {event['reason']}")


def _proposal_assign(ledger: Ledger, args) -> None:
    settings = _allocation_settings(args)
    service.check_assignable(ledger, args.reviewer, settings)
    info = ledger.assign_reviewer(args.id, args.reviewer, who=args.who)
    notices.queue(ledger, notices.assigned(info, args.reviewer, settings.portal_url))
    print(f"#{info.id}: {args.reviewer} assigned (reviewers: {', '.join(info.reviewers)}); {info.state.value}")


def award_context(ledger: Ledger, args) -> awarding.AwardContext:
    """Slurm as the other commands find it (``--slurm-conf``, ``$SLURM_CONF``, the --config file's) and
    the cluster's name: ``--cluster``, else c.SlurmCluster.name or c.HPCHubLedger.cluster of --config,
    else Slurm's own ClusterName."""
    config = _config(args)
    cluster = slurm_cluster(args)
    client = cluster.client()
    name = args.cluster or cluster.name or (HPCHubLedger(config=config).cluster if config is not None else "")
    if not name:
        try:
            name = parse_show_config(asyncio.run(client.show_config())).get("ClusterName", "")
        except SlurmCommandError as exc:
            raise AwardNotMade(f"--cluster: cannot ask Slurm for its ClusterName ({exc.summary}); nothing was made")
    try:
        validate_cluster_name(name)
    except ValueError as exc:
        raise UsageError(f"--cluster: {exc}") from None
    settings = _allocation_settings(args)
    environments = HPCHubEnvironments(config=config) if config is not None else None
    return awarding.AwardContext(client=client, cluster=name, settings=settings, environments=environments)


def _proposal_decide(ledger: Ledger, args) -> None:
    decision = Decision(args.decision)
    if decision is not Decision.AWARD:
        if args.gpu_hours is not None:
            raise UsageError(f"--gpu-hours: only an award gives GPU-hours, not {decision.value}")
        info = ledger.decide(args.id, decision, who=args.who, message=args.message)
        notices.queue(ledger, notices.decided(info, _allocation_settings(args).portal_url))
        print(f"#{info.id}: {info.state.value} ({args.message})")
        return
    ledger.plan_award(args.id, gpu_hours=args.gpu_hours)  # bad input is exit 2 before Slurm is asked
    context = award_context(ledger, args)
    try:
        result = asyncio.run(awarding.award(ledger, int(args.id), context, who=args.who, message=args.message,
                                            gpu_hours=args.gpu_hours))  # fmt: skip
    except awarding.AwardFailed as exc:
        raise AwardNotMade(str(exc)) from None
    plan = result.plan
    print(f"#{plan.proposal_id}: awarded {arith.format_gpu_hours(plan.amount_mgs)} GPU-h to {plan.project} "
          f"(Slurm account {plan.account}, PI {plan.pi}), {plan.period_start} to {plan.period_end}"
          + (f"; invited: {', '.join(sorted(result.invitations))}" if result.invitations else ""))  # fmt: skip


COMMANDS = {
    "call create": _call_create,
    "call list": _call_list,
    "call close": _call_close,
    "proposal list": _proposal_list,
    "proposal show": _proposal_show,
    "proposal assign": _proposal_assign,
    "proposal decide": _proposal_decide,
}


def add_allocation_parsers(subparsers, leaf, subcommands: dict) -> None:
    call = subparsers.add_parser("call", help="allocation calls: rounds of GPU-hours people apply to")
    call.error = lambda message: call.exit(2, f"{call.prog}: {message}\n")  # one line, like the others
    call_sub = call.add_subparsers(**subcommands)
    create = leaf(call_sub, "create", "call create", help="a new call (a round of GPU-hours)")
    create.add_argument("name", metavar="NAME", help="2-40 characters: a-z, 0-9 and '-', e.g. 2027-academic")
    create.add_argument("--title", required=True, metavar="TEXT", help="shown to applicants")
    create.add_argument("--audience", required=True, metavar="A[,A]",
                        help=f"who may apply: one or more of {', '.join(a.value for a in Audience)}")  # fmt: skip
    create.add_argument("--opens", required=True, metavar="DATE", help="first day of submissions (YYYY-MM-DD)")
    create.add_argument("--closes", required=True, metavar="DATE", help="last day of submissions, inclusive")
    create.add_argument("--gpu-hours", required=True, metavar="H", help="the GPU-hours of the round")
    create.add_argument("--max-request", required=True, metavar="H", help="the most one proposal may ask for")
    create.add_argument("--period-months", required=True, metavar="N", help="an award's period, 1-60 months")
    create.add_argument("--review", action=argparse.BooleanOptionalAction, default=None,
                        help="--review: reviewers score each proposal before a decision; --no-review: a manager "
                        "decides at once (default: review, except for a start-up call)")  # fmt: skip
    create.add_argument("--criteria", metavar="A;B;C",
                        help="the review criteria, each scored 1-5 (default: scientific or business merit; "
                        "technical readiness; need for GPUs)")  # fmt: skip
    create.add_argument("--reviews-visible", action="store_true",
                        help="applicants read the reviews (anonymised) once decided or returned")  # fmt: skip
    create.add_argument("--startup", action="store_true",
                        help="a start-up call: no review, each eligible user's proposal is awarded at once, once "
                        "per user every 12 months")  # fmt: skip
    create.add_argument("--report-required", action="store_true",
                        help="a renewal needs the project's report of outcomes first")  # fmt: skip
    listing = leaf(call_sub, "list", "call list", help="every call with its hours and state")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    close = leaf(call_sub, "close", "call close", help="no more submissions from today")
    close.add_argument("name", metavar="NAME")
    close.add_argument("--reason", required=True, metavar="TEXT", help="recorded with the closing")

    proposal = subparsers.add_parser("proposal", help="proposals to allocation calls: list, show, assign, decide")
    proposal.error = lambda message: proposal.exit(2, f"{proposal.prog}: {message}\n")
    proposal_sub = proposal.add_subparsers(**subcommands)
    plist = leaf(proposal_sub, "list", "proposal list", help="proposals, newest first (at most 1000)")
    plist.add_argument("--call", metavar="CALL", help="only this call's")
    plist.add_argument(
        "--state", metavar="S[,S]", help=f"only these states: {', '.join(s.value for s in ProposalState)}"
    )
    plist.add_argument("--json", action="store_true", help="machine-readable")
    show = leaf(proposal_sub, "show", "proposal show", help="one proposal with its reviews, scores and history")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true", help="machine-readable")
    assign = leaf(proposal_sub, "assign", "proposal assign",
                  help="assign a reviewer (in the reviewer groups at their latest login, without a conflict of "
                  "interest)")  # fmt: skip
    assign.add_argument("id", metavar="ID")
    assign.add_argument("reviewer", metavar="REVIEWER", help="the reviewer's Unix user, e.g. rev1")
    decide = leaf(proposal_sub, "decide", "proposal decide",
                  help="award (the project, its Slurm account, the PI's association, the grant, the space and the "
                  "team's invitations, all or nothing), reject or return for changes")  # fmt: skip
    decide.add_argument("id", metavar="ID")
    decide.add_argument("decision", metavar="DECISION", choices=[d.value for d in Decision],
                        help="award, reject or return")  # fmt: skip
    decide.add_argument("--gpu-hours", metavar="H", help="an award's GPU-hours, at most what was asked (default: that)")
    decide.add_argument("--message", required=True, metavar="TEXT", help="the decision's message to the applicant")
    decide.add_argument("--slurm-conf", metavar="PATH", help="Slurm's configuration (default $SLURM_CONF)")
    decide.add_argument("--cluster", metavar="NAME",
                        help="the Slurm cluster of the new account (default c.SlurmCluster.name or "
                        "c.HPCHubLedger.cluster of --config, else Slurm's ClusterName)")  # fmt: skip
