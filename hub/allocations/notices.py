"""The mail a step of an allocation sends: who gets it and what it says (pure), and queueing it.

Each notice has a key that names the step (``proposal-7:submitted``), so a step retried after a
failure queues its mail once. Queueing never fails the step that caused it: the mail goes to the
ledger's outbox and the reconciler's pass sends it (docs/mail.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hub.ledger import arithmetic as arith
from hub.ledger.allocations import CallInfo, ProposalInfo
from hub.mail.settings import portal_link

log = logging.getLogger("hpchub.allocations")


@dataclass(frozen=True)
class Notice:
    key: str
    to_user: str | None  # a Unix user whose recorded address is used, or None
    to_address: str | None  # an address (a principal) when the person has no user yet
    subject: str
    body: str


def submitted(info: ProposalInfo, call: CallInfo, portal_url: str) -> Notice:
    what = "It goes to review; you will hear when it is decided." if call.spec.review_required else ""
    return Notice(
        f"proposal-{info.id}:submitted", info.applicant, None,
        f"Proposal #{info.id} submitted to {call.spec.title}",
        f"Your proposal \"{info.content.title}\" (#{info.id}) was submitted to call {call.name}, asking for "
        f"{arith.format_gpu_hours(info.content.gpu_hours_mgs)} GPU-h. {what}\n\n"
        f"See it: {portal_link(portal_url, f'/hub/hpchub/proposals/{info.id}')}\n",
    )  # fmt: skip


def assigned(info: ProposalInfo, reviewer: str, portal_url: str) -> Notice:
    return Notice(
        f"proposal-{info.id}:assigned:{reviewer}", reviewer, None,
        f"A proposal to review: #{info.id}",
        f"You were assigned proposal #{info.id} of call {info.call} to review.\n\n"
        f"Review it, or declare a conflict of interest: {portal_link(portal_url, f'/hub/hpchub/reviews/{info.id}')}\n",
    )  # fmt: skip


def decided(info: ProposalInfo, portal_url: str) -> Notice:
    """Rejected or returned: the applicant reads the managers' message."""
    last = info.events[-1]
    verb = {"rejected": "was not awarded", "returned": "was returned to you for changes"}.get(
        last.state.value, last.state.value
    )
    return Notice(
        f"proposal-{info.id}:{last.state.value}:{len(info.events)}", info.applicant, None,
        f"Proposal #{info.id} {verb}",
        f"Your proposal \"{info.content.title}\" (#{info.id}) {verb}.\n\nThe call's managers wrote:\n{last.reason}\n\n"
        f"{portal_link(portal_url, f'/hub/hpchub/proposals/{info.id}')}\n",
    )  # fmt: skip


def awarded(info: ProposalInfo, project: str, amount_mgs: int, end: str, portal_url: str) -> Notice:
    return Notice(
        f"proposal-{info.id}:awarded", info.applicant, None,
        f"Awarded: {arith.format_gpu_hours(amount_mgs)} GPU-h for {project}",
        f"Your proposal \"{info.content.title}\" (#{info.id}) was awarded {arith.format_gpu_hours(amount_mgs)} GPU-h. "
        f"Project {project} runs until {end}.\n\n{info.events[-1].reason}\n\n"
        f"Start a session on it: {portal_link(portal_url, '/hub/spawn')}\n",
    )  # fmt: skip


def invited(project: str, principal: str, token: str, applicant: str, portal_url: str) -> Notice:
    return Notice(
        f"invitation:{project}:{principal}", None, principal,
        f"You are invited to the GPU project {project}",
        f"{applicant} listed you on the team of project {project}, which was just awarded GPU hours.\n\n"
        f"Log in to join it, or open: {portal_link(portal_url, f'/hub/hpchub/invitations/{token}')}\n",
    )  # fmt: skip


def queue(ledger, notice: Notice) -> None:
    """Put ``notice`` in the outbox (to the user's recorded address, else the given one); a
    failure is logged and the step that caused it goes on."""
    try:
        address = notice.to_address
        if notice.to_user is not None:
            address = ledger.mail_address(notice.to_user) or address
        if not address:
            log.warning("no mail address for %s: notice %s not queued", notice.to_user, notice.key)
            return
        ledger.queue_mail(to_user=notice.to_user, to_address=address, subject=notice.subject, body=notice.body,
                          key=notice.key)  # fmt: skip
    except Exception:  # noqa: BLE001  (a mail never fails the step that caused it)
        log.exception("could not queue notice %s", notice.key)
