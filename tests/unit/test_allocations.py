"""Calls, proposals, reviews and awards: the pure rules and the ledger's records (SQLite)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from hub.allocations.service import View, proposal_json
from hub.ledger import Ledger, LedgerInputError, upgrade
from hub.ledger import allocations as rules
from hub.ledger.allocations import ConflictKind, Decision, ProposalKind, ProposalState
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.errors import NotFound

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 11, 9, 0, tzinfo=timezone.utc)


def academic_call(**overrides) -> rules.CallSpec:
    fields = dict(
        name="2027-academic", title="Academic call 2027", audiences="academic", opens=date(2027, 1, 1),
        closes=date(2027, 3, 31), gpu_hours=5000, max_request=500, period_months=12, review_required=True,
    )  # fmt: skip
    fields.update(overrides)
    return rules.check_call_spec(**fields)


def starter_call() -> rules.CallSpec:
    return rules.check_call_spec(
        name="starter", title="Start-up", audiences=[a.value for a in rules.Audience], opens=date(2027, 1, 1),
        closes=date(2028, 12, 31), gpu_hours=100000, max_request=10, period_months=12, review_required=False,
        startup=True,
    )  # fmt: skip


FIONA = dict(applicant="fiona", applicant_principal="fiona@uni.example")
GOOD = {
    "title": "Diffusion models for cell images", "abstract": "We train.", "field_of_science": "1.6",
    "gpu_hours": "60", "period_months": 12, "justification": "A100s are too small.", "team": "gus@lab.example",
    "organisation": "Uni", "project_name": "cells",
}  # fmt: skip


# --- the rules (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"name": "Bad Name"}, "name", id="name-space"),
        pytest.param({"title": ""}, "title", id="title-missing"),
        pytest.param({"audiences": "students"}, "audience", id="audience-unknown"),
        pytest.param({"closes": date(2026, 12, 1)}, "closes", id="closes-before-opens"),
        pytest.param({"gpu_hours": 10**9}, "gpu_hours", id="round-too-large"),
        pytest.param({"max_request": 6000}, "max_request", id="largest-above-round"),
        pytest.param({"period_months": 0}, "period_months", id="period-zero"),
        pytest.param({"criteria": "merit,=x"}, "criteria", id="criterion-with-comma"),
        pytest.param({"startup": True}, "review_required", id="startup-with-review"),
    ],
)
def test_a_bad_call_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(LedgerInputError) as refused:
        academic_call(**overrides)
    assert refused.value.field == field


def test_a_call_gets_the_default_criteria() -> None:
    assert academic_call().criteria == rules.DEFAULT_CRITERIA


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"title": ""}, "title", id="title-missing"),
        pytest.param({"title": "a\nb"}, "title", id="title-two-lines"),
        pytest.param({"gpu_hours": 10**9}, "gpu_hours", id="hours-absurd"),
        pytest.param({"gpu_hours": "501"}, "gpu_hours", id="hours-above-largest-request"),
        pytest.param({"gpu_hours": "-5"}, "gpu_hours", id="hours-negative"),
        pytest.param({"field_of_science": "9.9"}, "field_of_science", id="field-unknown"),
        pytest.param({"period_months": 13}, "period_months", id="period-longer-than-call"),
        pytest.param({"team": "not-a-login"}, "team", id="team-not-principal"),
        pytest.param({"project_name": "Cells!"}, "project_name", id="project-name-rule"),
        pytest.param({"abstract": ""}, "abstract", id="abstract-missing"),
    ],
)
def test_a_bad_proposal_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(LedgerInputError) as refused:
        rules.check_content({**GOOD, **overrides}, call=academic_call(), applicant_principal="fiona@uni.example",
                            kind=ProposalKind.NEW, complete=True)  # fmt: skip
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("reviewer", "principal", "team", "organisation", "orgs", "declared", "expected"),
    [
        pytest.param("rev1", "rev1@inst.example", (), "", (), False, None, id="other-institution"),
        pytest.param("rev2", "rev2@uni.example", (), "", (), False, ConflictKind.INSTITUTION, id="same-institution"),
        pytest.param("gus", "gus@inst.example", ("gus@inst.example",), "", (), False, ConflictKind.TEAM, id="on-team"),
        pytest.param("rev1", "rev1@inst.example", ("x@inst.example",), "", (), False, ConflictKind.INSTITUTION,
                     id="team-members-institution"),
        pytest.param("fiona", "fiona@uni.example", (), "", (), False, ConflictKind.TEAM, id="the-applicant"),
        pytest.param("rev1", "rev1@inst.example", (), "Nova AI", ("nova ai",), False, ConflictKind.ORGANISATION,
                     id="same-organisation"),
        pytest.param("rev1", "rev1@inst.example", (), "", (), True, ConflictKind.DECLARED, id="declared"),
    ],
)  # fmt: skip
def test_conflicts_of_interest(reviewer, principal, team, organisation, orgs, declared, expected) -> None:
    assert rules.conflict_reason(
        reviewer=reviewer, reviewer_principal=principal, applicant="fiona", applicant_principal="fiona@uni.example",
        team=team, organisation=organisation, reviewer_organisations=orgs, declared=declared,
    ) is expected  # fmt: skip


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        pytest.param("10.1234/abc.def", True, id="plain"),
        pytest.param("https://doi.org/10.5281/zenodo.123", True, id="url"),
        pytest.param("doi:10.1000/xyz", True, id="doi-prefix"),
        pytest.param("10.12/abc", False, id="registrant-too-short"),
        pytest.param("11.1234/abc", False, id="not-10"),
        pytest.param("10.1234/a b", False, id="space"),
    ],
)
def test_doi_syntax(text: str, ok: bool) -> None:
    if ok:
        assert rules.check_doi(text).startswith("10.")
    else:
        with pytest.raises(LedgerInputError):
            rules.check_doi(text)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        pytest.param(date(2027, 1, 31), 1, date(2027, 2, 28), id="month-end-clamped"),
        pytest.param(date(2027, 11, 15), 3, date(2028, 2, 15), id="year-wrap"),
        pytest.param(date(2027, 3, 1), -12, date(2026, 3, 1), id="back"),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert rules.add_months(day, months) == expected


def test_award_periods() -> None:
    today = date(2027, 1, 11)
    assert rules.award_period(today, 12, kind=ProposalKind.NEW) == (today, date(2028, 1, 10))
    assert rules.award_period(today, 6, current_end=date(2027, 3, 1), kind=ProposalKind.RENEWAL)[1] == date(2027, 9, 1)
    assert rules.award_period(today, 6, current_end=date(2026, 12, 1), kind=ProposalKind.RENEWAL)[1] == date(
        2027, 7, 11
    )
    assert rules.award_period(today, 6, current_end=date(2027, 3, 1), kind=ProposalKind.SUPPLEMENT)[1] == date(
        2027, 3, 1
    )


def test_scores_are_whole_numbers_for_each_criterion() -> None:
    criteria = rules.DEFAULT_CRITERIA
    assert rules.check_scores(dict.fromkeys(criteria, 4), criteria) == dict.fromkeys(criteria, 4)
    with pytest.raises(LedgerInputError, match="from 1 to 5"):
        rules.check_scores({**dict.fromkeys(criteria, 4), criteria[0]: 6}, criteria)
    with pytest.raises(LedgerInputError, match="unknown criterion"):
        rules.check_scores({**dict.fromkeys(criteria, 4), "beauty": 3}, criteria)


# --- the records -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=clock) as ledger:
        ledger.create_call(academic_call(), who="admin")
        ledger.create_call(starter_call(), who="admin")
        for user, principal in (("rev1", "rev1@inst.example"), ("rev2", "rev2@uni.example")):
            ledger.record_login_principal(user, principal)
        yield ledger


def submitted(ledger: Ledger, **fields) -> int:
    draft = ledger.save_proposal(call="2027-academic", fields={**GOOD, **fields}, **FIONA)
    return ledger.submit_proposal(draft.id, applicant="fiona").id


def test_a_draft_is_saved_as_versions_and_submitted(ledger: Ledger) -> None:
    draft = ledger.save_proposal(call="2027-academic", fields={"title": "First try"}, **FIONA)
    assert (draft.state, draft.version) == (ProposalState.DRAFT, 1)
    with pytest.raises(LedgerInputError) as refused:
        ledger.submit_proposal(draft.id, applicant="fiona")
    assert refused.value.field == "abstract"
    edited = ledger.save_proposal(call="2027-academic", fields=GOOD, proposal_id=draft.id, **FIONA)
    assert (edited.version, edited.content.gpu_hours_mgs) == (2, 60 * H)
    done = ledger.submit_proposal(draft.id, applicant="fiona")
    assert done.state is ProposalState.SUBMITTED
    with pytest.raises(LedgerInputError, match="only a draft"):
        ledger.save_proposal(call="2027-academic", fields=GOOD, proposal_id=draft.id, **FIONA)
    assert [e.state for e in ledger.proposal(draft.id).events] == [ProposalState.DRAFT, ProposalState.SUBMITTED]


def test_another_users_draft_is_not_found(ledger: Ledger) -> None:
    draft = ledger.save_proposal(call="2027-academic", fields=GOOD, **FIONA)
    with pytest.raises(NotFound):
        ledger.save_proposal(call="2027-academic", fields=GOOD, proposal_id=draft.id, applicant="mallory",
                             applicant_principal="mallory@uni.example")  # fmt: skip
    with pytest.raises(NotFound):
        ledger.submit_proposal(draft.id, applicant="bob")


def test_a_bad_draft_stores_nothing(ledger: Ledger) -> None:
    with pytest.raises(LedgerInputError):
        ledger.save_proposal(call="2027-academic", fields={**GOOD, "gpu_hours": 10**9}, **FIONA)
    assert ledger.count_proposals() == 0


def test_a_closed_call_takes_no_proposal(ledger: Ledger, clock: Clock) -> None:
    clock.now = datetime(2027, 4, 1, 9, tzinfo=timezone.utc)
    with pytest.raises(LedgerInputError, match="closed on 2027-03-31"):
        ledger.save_proposal(call="2027-academic", fields=GOOD, **FIONA)


def test_a_project_name_in_use_is_refused_at_submission(ledger: Ledger) -> None:
    ledger.create_project("cells", account="cells", kind="research", gpu_hours=1, who="admin")
    draft = ledger.save_proposal(call="2027-academic", fields=GOOD, **FIONA)
    with pytest.raises(LedgerInputError) as refused:
        ledger.submit_proposal(draft.id, applicant="fiona")
    assert refused.value.field == "project_name"


def test_a_conflicted_reviewer_is_refused_and_an_unassigned_one_cannot_read(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    with pytest.raises(LedgerInputError, match="rev2 shares the institution"):
        ledger.assign_reviewer(proposal, "rev2", who="admin")
    with pytest.raises(LedgerInputError, match="has not logged in"):
        ledger.assign_reviewer(proposal, "rev3", who="admin")
    assert ledger.assign_reviewer(proposal, "rev1", who="admin").state is ProposalState.IN_REVIEW
    with pytest.raises(NotFound):
        ledger.proposal_for_reviewer(proposal, "rev2")
    with pytest.raises(NotFound):
        ledger.submit_review(proposal, "rev2", scores=dict.fromkeys(rules.DEFAULT_CRITERIA, 5), comment="")
    assert ledger.proposal_for_reviewer(proposal, "rev1").id == proposal


def test_the_conflicts_of_many_proposals_at_once_agree_with_each_ones(ledger: Ledger) -> None:
    clear = submitted(ledger)
    on_team = submitted(ledger, team="rev1@inst.example", project_name="other")
    declared = submitted(ledger, project_name="third")
    ledger.assign_reviewer(declared, "rev1", who="admin")
    ledger.declare_conflict(declared, "rev1", reason="co-author")
    ids = [clear, on_team, declared, 9999]
    for reviewer in ("rev1", "rev2"):
        each = {i: ledger.conflicts(i, [reviewer])[reviewer] for i in ids[:3]}
        assert ledger.conflicts_of(reviewer, ids) == each  # the unknown id left out
    assert ledger.conflicts_of("rev1", ids)[clear] is None
    assert None not in (ledger.conflicts_of("rev1", ids)[on_team], ledger.conflicts_of("rev1", ids)[declared])
    assert ledger.conflicts_of("rev1", []) == {}
    with pytest.raises(LedgerInputError, match="has not logged in"):
        ledger.conflicts_of("rev3", ids)


def test_the_conflict_table_of_many_reviewers_and_proposals(ledger: Ledger) -> None:
    clear = submitted(ledger)
    on_team = submitted(ledger, team="rev1@inst.example", project_name="other")
    table = ledger.conflict_table([clear, on_team, 9999], ["rev1", "rev2", "rev3"])
    assert set(table) == {clear, on_team}
    for proposal in (clear, on_team):
        for reviewer in ("rev1", "rev2"):
            assert table[proposal][reviewer] == ledger.conflicts(proposal, [reviewer])[reviewer]
    assert table[on_team]["rev1"] is rules.ConflictKind.TEAM
    assert "rev3" not in table[clear] and "rev3" not in table[on_team]  # never logged in: cannot be ruled out
    assert ledger.conflict_table([], ["rev1"]) == {}
    assert ledger.conflict_table([clear], []) == {clear: {}}


def test_a_review_once_and_a_declared_conflict_closes_the_proposal(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.record_login_principal("rev3", "rev3@far.example")
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    ledger.assign_reviewer(proposal, "rev3", who="admin")
    scores = dict.fromkeys(rules.DEFAULT_CRITERIA, 4)
    ledger.submit_review(proposal, "rev1", scores=scores, comment="Sound.")
    with pytest.raises(LedgerInputError, match="already"):
        ledger.submit_review(proposal, "rev1", scores=scores, comment="Changed my mind.")
    ledger.declare_conflict(proposal, "rev3", reason="former student of the PI")
    with pytest.raises(LedgerInputError, match="conflict"):
        ledger.submit_review(proposal, "rev3", scores=scores, comment="")
    summary = rules.summarise_scores(ledger.reviews(proposal), rules.DEFAULT_CRITERIA)
    assert [(s.count, s.mean, s.spread) for s in summary] == [(1, 4.0, 0)] * 3


def test_an_award_makes_the_project_its_grant_the_pi_and_the_invitations(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    with pytest.raises(LedgerInputError) as refused:
        ledger.plan_award(proposal, gpu_hours=61)
    assert refused.value.field == "gpu_hours"
    plan = ledger.plan_award(proposal, gpu_hours=40)
    assert (plan.project, plan.account, plan.new_project, plan.period_end) == (
        "cells",
        "cells",
        True,
        date(2028, 1, 10),
    )
    result = ledger.record_award(plan, who="admin", message="Well argued; 40 of 60.")
    assert ledger.usage("cells")["budget_gpu_hours"] == 40
    assert [(m["user"], m["role"]) for m in ledger.usage("cells")["members"]] == [("fiona", "pi")]
    assert list(result.invitations) == ["gus@lab.example"]
    assert ledger.proposal(proposal).state is ProposalState.AWARDED
    assert ledger.awards("cells")[0].call == "2027-academic"
    with pytest.raises(LedgerInputError, match="decided already"):
        ledger.decide(proposal, Decision.REJECT, who="admin", message="No.")
    assert [i.state for i in ledger.invitations("cells")] == ["invited"]
    assert ledger.accept_invitations("gus@lab.example", "gus") == [("cells", "member")]
    assert [i.state for i in ledger.invitations("cells")] == ["accepted"]
    assert ledger.accept_invitations("gus@lab.example", "gus") == []


def test_a_stale_plan_is_refused(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    plan = ledger.plan_award(proposal)
    ledger.decide(proposal, Decision.RETURN, who="admin", message="Say more about the data.")
    with pytest.raises(LedgerInputError):
        ledger.record_award(plan, who="admin", message="")
    assert ledger.projects() == []


def test_review_is_required_before_an_award(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    with pytest.raises(LedgerInputError, match="requires review"):
        ledger.plan_award(proposal)


def test_a_returned_proposal_is_edited_and_submitted_again(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.decide(proposal, "return", who="admin", message="Justify the H200s.")
    ledger.save_proposal(
        call="2027-academic", fields={**GOOD, "justification": "Memory."}, proposal_id=proposal, **FIONA
    )
    assert ledger.submit_proposal(proposal, applicant="fiona").state is ProposalState.SUBMITTED


def test_a_startup_award_once_per_user_per_period(ledger: Ledger, clock: Clock) -> None:
    first = ledger.save_proposal(call="starter", fields={**GOOD, "gpu_hours": 10, "justification": ""}, **FIONA)
    ledger.submit_proposal(first.id, applicant="fiona")
    ledger.record_award(ledger.plan_award(first.id), who="starter call", message="")
    second = ledger.save_proposal(call="starter", fields={**GOOD, "gpu_hours": 5, "project_name": "cells2"}, **FIONA)
    with pytest.raises(LedgerInputError, match="one per user every 12 months"):
        ledger.submit_proposal(second.id, applicant="fiona")
    clock.now += timedelta(days=370)
    assert ledger.submit_proposal(second.id, applicant="fiona").state is ProposalState.SUBMITTED


def test_a_renewal_appends_a_grant_and_moves_the_end(ledger: Ledger, clock: Clock) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    ledger.record_award(ledger.plan_award(proposal), who="admin", message="")
    clock.now = datetime(2027, 3, 1, 9, tzinfo=timezone.utc)
    renewal = ledger.save_proposal(call="2027-academic", kind="renewal", fields={**GOOD, "gpu_hours": 20,
                                   "period_months": 6}, **FIONA)  # fmt: skip
    ledger.submit_proposal(renewal.id, applicant="fiona")
    ledger.assign_reviewer(renewal.id, "rev1", who="admin")
    ledger.record_award(ledger.plan_award(renewal.id), who="admin", message="renewed")
    assert ledger.usage("cells")["budget_gpu_hours"] == 80
    assert ledger.project("cells").period_end == date(2028, 7, 10)
    assert [a.kind for a in ledger.awards("cells")] == [ProposalKind.NEW, ProposalKind.RENEWAL]


def test_only_the_pi_asks_for_a_renewal(ledger: Ledger) -> None:
    ledger.create_project("cells", account="cells", kind="research", gpu_hours=1, who="admin")
    draft = ledger.save_proposal(call="2027-academic", kind="renewal", fields=GOOD, **FIONA)
    with pytest.raises(LedgerInputError, match="only the PI"):
        ledger.submit_proposal(draft.id, applicant="fiona")


def test_a_report_checks_dois(ledger: Ledger) -> None:
    ledger.create_project("cells", account="cells", kind="research", gpu_hours=1, who="admin")
    with pytest.raises(LedgerInputError) as refused:
        ledger.submit_report("cells", who="fiona", narrative="Done.", outputs={"publications": ["not a doi"]})
    assert refused.value.field == "outputs.publications"
    assert ledger.reports("cells") == []
    ledger.submit_report("cells", who="fiona", narrative="Done.", outputs={"publications": ["10.1234/x"]})
    assert ledger.reports("cells")[0].outputs["publications"] == ("10.1234/x",)


def test_the_list_filters_by_state_reviewer_and_applicant(ledger: Ledger) -> None:
    first = submitted(ledger)
    ledger.save_proposal(call="2027-academic", fields={**GOOD, "project_name": "other"}, **FIONA)
    ledger.assign_reviewer(first, "rev1", who="admin")
    assert [p.id for p in ledger.proposals(reviewer="rev1")] == [first]
    assert [p.state for p in ledger.proposals(states=[ProposalState.DRAFT])] == [ProposalState.DRAFT]
    assert ledger.proposals(states=[ProposalState.SUBMITTED]) == []  # its latest event counts, not an earlier one
    assert [p.id for p in ledger.proposals(states=["in_review", "draft"], call="2027-academic", limit=1)] == [first + 1]
    assert [p.id for p in ledger.proposals(states=["in_review", "draft"], limit=1, offset=1)] == [first]
    assert len(ledger.proposals(applicant="fiona")) == 2
    assert ledger.proposals(applicant="rev1") == []


def test_the_reviews_of_many_proposals_at_once(ledger: Ledger) -> None:
    first, second = submitted(ledger), submitted(ledger, project_name="other")
    ledger.assign_reviewer(first, "rev1", who="admin")
    ledger.submit_review(first, "rev1", scores=dict.fromkeys(rules.DEFAULT_CRITERIA, 3), comment="")
    found = ledger.reviews_of([first, second])
    assert [r.reviewer for r in found[first]] == ["rev1"] and found[second] == []


def test_an_invitation_link_answers_only_for_its_principal(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    token = ledger.record_award(ledger.plan_award(proposal), who="admin", message="").invitations["gus@lab.example"]
    with pytest.raises(NotFound):
        ledger.invitation_for(token, "mallory@uni.example")
    with pytest.raises(NotFound):
        ledger.answer_invitation(token, user="mallory", principal="mallory@uni.example", accept=True)
    assert ledger.invitation_for(token, "gus@lab.example").state == "invited"
    assert ledger.answer_invitation(token, user="gus", principal="gus@lab.example", accept=True) == ("cells", "member")
    assert ledger.invitation_for(token, "gus@lab.example").state == "accepted"


def test_an_applicants_history_does_not_name_the_reviewer(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    info = ledger.assign_reviewer(proposal, "rev1", who="admin")
    assert "rev1" not in str(proposal_json(info, View.APPLICANT))
    assert "rev1" in str(proposal_json(info, View.MANAGER)["history"])
