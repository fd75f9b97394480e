"""What each allocation step mails, and that queueing never fails the step (pure and a recording outbox)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from hub.allocations import notices
from hub.ledger.allocations import (
    CallInfo,
    ProposalContent,
    ProposalEvent,
    ProposalInfo,
    ProposalKind,
    ProposalState,
    check_call_spec,
)
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H

pytestmark = pytest.mark.unit

AT = datetime(2027, 1, 11, 9, tzinfo=timezone.utc)
CALL = CallInfo(1, check_call_spec(
    name="2027-academic", title="Academic call", audiences="academic", opens=date(2027, 1, 1),
    closes=date(2027, 3, 31), gpu_hours=5000, max_request=500, period_months=12, review_required=True,
), None, "admin")  # fmt: skip


def proposal(*events: tuple[ProposalState, str]) -> ProposalInfo:
    content = ProposalContent("Cells", "A", "1.6", 60 * H, 12, "J", ("gus@lab.example",), "", "cells")
    return ProposalInfo(7, "2027-academic", ProposalKind.NEW, "fiona", "fiona@uni.example", events[-1][0], content, 1,
                        tuple(ProposalEvent(s, AT, "admin", r) for s, r in events), ())  # fmt: skip


def test_each_step_names_the_proposal_and_links_to_it() -> None:
    info = proposal((ProposalState.SUBMITTED, "submitted"))
    notice = notices.submitted(info, CALL, "https://hpc.example.org")
    assert (notice.key, notice.to_user) == ("proposal-7:submitted", "fiona")
    assert "https://hpc.example.org/hub/hpchub/proposals/7" in notice.body and "60.0 GPU-h" in notice.body
    returned = notices.decided(proposal((ProposalState.SUBMITTED, ""), (ProposalState.RETURNED, "Say more.")), "")
    assert "returned" in returned.subject and "Say more." in returned.body
    invite = notices.invited("cells", "gus@lab.example", "tok123", "fiona", "")
    assert (invite.to_user, invite.to_address) == (None, "gus@lab.example")
    assert "/hub/hpchub/invitations/tok123" in invite.body


class Outbox:
    def __init__(self, fail: bool = False) -> None:
        self.fail, self.queued = fail, []

    def mail_address(self, user: str) -> str | None:
        return {"fiona": "fiona@uni.example"}.get(user)

    def queue_mail(self, **message) -> bool:
        if self.fail:
            raise RuntimeError("database is locked")
        self.queued.append(message)
        return True


def test_queueing_uses_the_recorded_address_and_never_raises() -> None:
    outbox = Outbox()
    notices.queue(outbox, notices.submitted(proposal((ProposalState.SUBMITTED, "")), CALL, ""))
    assert [m["to_address"] for m in outbox.queued] == ["fiona@uni.example"]
    notices.queue(Outbox(fail=True), notices.submitted(proposal((ProposalState.SUBMITTED, "")), CALL, ""))
