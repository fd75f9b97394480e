"""The allocation API's request parsing (hub/api/allocations.py, allocation_reviews.py): pure."""

from __future__ import annotations

import pytest

from hub.api.allocation_reviews import parse_decision
from hub.api.allocations import parse_page, parse_proposal_body, parse_states, proposal_number
from hub.ledger.allocations import Decision, ProposalKind, ProposalState
from hub.ledger.errors import LedgerInputError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("limit", "offset", "page"),
    [
        pytest.param(None, None, (100, 0), id="defaults"),
        pytest.param("1000", "20", (1000, 20), id="largest-page"),
        pytest.param("", "", (100, 0), id="empty"),
    ],
)
def test_page(limit, offset, page) -> None:
    assert parse_page(limit, offset) == page


@pytest.mark.parametrize(
    ("limit", "offset", "field"),
    [
        pytest.param("0", None, "limit", id="limit-zero"),
        pytest.param("1001", None, "limit", id="limit-too-large"),
        pytest.param("-1", None, "limit", id="limit-negative"),
        pytest.param(None, "x", "offset", id="offset-text"),
    ],
)
def test_bad_page(limit, offset, field) -> None:
    with pytest.raises(LedgerInputError) as caught:
        parse_page(limit, offset)
    assert caught.value.field == field


def test_states() -> None:
    assert parse_states(None) is None
    assert parse_states("submitted, in_review") == [ProposalState.SUBMITTED, ProposalState.IN_REVIEW]
    with pytest.raises(LedgerInputError, match="state: one or more of draft"):
        parse_states("submitted,won")


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1" * 12, "1.5", ""])
def test_bad_proposal_numbers_name_the_field(value) -> None:
    with pytest.raises(LedgerInputError, match="^proposal: a proposal number"):
        proposal_number(value)


def test_proposal_number() -> None:
    assert proposal_number("12") == 12


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"decision": "award", "gpu_hours": 40, "message": "ok"}, (Decision.AWARD, 40, "ok"), id="award"),
        pytest.param({"decision": "award"}, (Decision.AWARD, None, ""), id="award-what-was-asked"),
        pytest.param({"decision": "reject", "message": "no"}, (Decision.REJECT, None, "no"), id="reject"),
    ],
)
def test_decision(body, expected) -> None:
    assert parse_decision(body) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"decision": "accept"}, "decision", id="unknown-decision"),
        pytest.param({"decision": "return", "gpu_hours": 5}, "gpu_hours", id="hours-without-award"),
        pytest.param({"decision": "award", "by": "me"}, "by", id="unknown-key"),
        pytest.param({"decision": "reject", "message": 5}, "message", id="message-not-text"),
        pytest.param(None, "body", id="no-body"),
    ],
)
def test_bad_decision_names_the_field(body, field) -> None:
    with pytest.raises(LedgerInputError) as caught:
        parse_decision(body)
    assert caught.value.field == field


def testparse_proposal_body() -> None:
    call, kind, fields = parse_proposal_body({"call": "starter", "title": "T", "kind": "renewal"}, new=True)
    assert (call, kind, fields) == ("starter", ProposalKind.RENEWAL, {"title": "T"})
    with pytest.raises(LedgerInputError, match="^call:"):
        parse_proposal_body({"title": "T"}, new=True)
    with pytest.raises(LedgerInputError, match="^call: unknown field"):
        parse_proposal_body({"call": "starter", "title": "T"}, new=False)  # a proposal stays with its call
    with pytest.raises(LedgerInputError, match="^kind: one of new"):
        parse_proposal_body({"call": "starter", "kind": "extension"}, new=True)
