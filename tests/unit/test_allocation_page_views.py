"""What the allocation pages show (hub/allocation_pages/views.py, the reads of apply.py, review.py and
manage.py) and the project page's allocation history, on a SQLite ledger with the demo's calls."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from hub.allocation_pages import apply, manage, review, views
from hub.demo.seed import demo_calls
from hub.ledger import Ledger, upgrade
from hub.ledger import allocations as rules
from hub.ledger.allocations import ConflictKind, ProposalState, Review
from hub.ledger.arithmetic import MGS_PER_GPU_HOUR as H
from hub.ledger.award_records import AwardPlan
from hub.project_pages.allocation_history import allocation_history, report_state

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 11, 9, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
FIONA = dict(applicant="fiona", applicant_principal="fiona@uni.example")
GOOD = {
    "title": "Diffusion models for cell images", "abstract": "We train.", "field_of_science": "1.6",
    "gpu_hours": "60", "period_months": "12", "justification": "A100s are too small.", "team": "gus@lab.example",
    "organisation": "Uni", "project_name": "cells",
}  # fmt: skip
CRITERIA = rules.DEFAULT_CRITERIA


@pytest.fixture
def ledger(ledger_url: str):
    upgrade(ledger_url)
    with Ledger(ledger_url, clock=lambda: NOW) as ledger:
        for spec in demo_calls(TODAY):
            ledger.create_call(spec, who="seed")
        for user, principal, groups in (("rev1", "rev1@inst.example", {"hpc-users", "hpc-reviewers"}),
                                        ("rev2", "rev2@uni.example", {"hpc-users", "hpc-reviewers"}),
                                        ("fiona", "fiona@uni.example", {"hpc-users"}),
                                        ("rev9", None, {"hpc-reviewers"})):  # fmt: skip
            if principal:
                ledger.record_login_principal(user, principal)
            ledger.record_login_groups(user, groups)
        yield ledger


def submitted(ledger: Ledger, **fields) -> int:
    draft = ledger.save_proposal(call="2027-academic", fields={**GOOD, **fields}, **FIONA)
    return ledger.submit_proposal(draft.id, applicant="fiona").id


def award_plan(ledger: Ledger, proposal: int) -> AwardPlan:
    return ledger.plan_award(proposal, gpu_hours="40")


# --- views (pure) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "state", "left"),
    [
        pytest.param(TODAY, "open", "4960.0", id="open"),
        pytest.param(TODAY - timedelta(days=30), "not open yet", "4960.0", id="before"),
        pytest.param(TODAY + timedelta(days=400), "closed", "4960.0", id="after"),
    ],
)
def test_a_call_row_says_its_state_and_the_hours_left(ledger: Ledger, today: date, state: str, left: str) -> None:
    row = views.call_row(ledger.call("2027-academic"), 40 * H, today)
    assert (row["state"], row["left"], row["largest"], row["awarded"]) == (state, left, "500.0", "40.0")
    assert row["kind"] == "reviewed"


def test_the_startup_call_row_says_it_awards_at_once(ledger: Ledger) -> None:
    assert views.call_row(ledger.call("starter"), 0, TODAY)["kind"] == "start-up: awarded at once"


def test_form_values_keep_what_was_typed_else_the_saved_version(ledger: Ledger) -> None:
    draft = ledger.save_proposal(call="2027-academic", fields=GOOD, **FIONA)
    assert views.form_values(draft)["gpu_hours"] == "60.0"
    assert views.form_values(draft)["team"] == "gus@lab.example"
    assert views.form_values(draft, {"title": "typed"})["title"] == "typed"
    assert views.form_values(None, project_name="vision-lab")["project_name"] == "vision-lab"


@pytest.mark.parametrize(
    ("scores", "mean", "spread"),
    [
        pytest.param([], "-", "-", id="none"),
        pytest.param([(4, 4, 4)], "4.00", "0", id="one"),
        pytest.param([(5, 4, 3), (1, 4, 3)], "3.33", "4", id="two-apart"),
    ],
)
def test_the_score_line_is_the_mean_of_every_score_and_the_largest_spread(scores, mean, spread) -> None:
    reviews = [Review(1, f"r{n}", dict(zip(CRITERIA, s, strict=True)), "", NOW) for n, s in enumerate(scores)]
    line = views.score_line(reviews, CRITERIA)
    assert (line.count, line.mean, line.spread) == (len(scores), mean, spread)


def test_reviews_are_anonymous_except_for_managers() -> None:
    reviews = [Review(1, "rev1", dict.fromkeys(CRITERIA, 4), "Sound.", NOW)]
    assert views.review_rows(reviews, CRITERIA, False)[0]["reviewer"] == "reviewer 1"
    assert views.review_rows(reviews, CRITERIA, True)[0]["reviewer"] == "rev1"


@pytest.mark.parametrize(
    ("conflict", "label"),
    [
        pytest.param(None, "rev1: no conflict known", id="none"),
        pytest.param(ConflictKind.INSTITUTION,
                     "rev1: conflicted (shares the institution of the applicant or a team member)", id="institution"),
        pytest.param("unknown: no login", "rev1: conflicted (unknown: no login)", id="undecided"),
    ],
)  # fmt: skip
def test_a_candidate_is_labelled_with_their_conflict(conflict, label: str) -> None:
    [row] = views.candidate_rows(["rev1"], {"rev1": conflict}, ())
    assert row["label"] == label


def test_reviewer_candidates_are_the_users_in_a_reviewer_group(ledger: Ledger) -> None:
    assert views.reviewer_candidates(ledger.login_groups(), ["hpc-reviewers"]) == ["rev1", "rev2", "rev9"]


def test_history_hides_the_managers_names_from_applicants(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    info = ledger.assign_reviewer(proposal, "rev1", who="admin (hpchub pages)")
    assert [r["by"] for r in views.history_rows(info, False)] == ["fiona", "fiona", "the call's managers"]
    assert views.history_rows(info, False)[-1]["reason"] == "a reviewer was assigned"  # no reviewer's name
    assert views.history_rows(info, True)[-1]["by"] == "admin (hpchub pages)"
    assert views.history_rows(info, True)[-1]["reason"] == "reviewer rev1 assigned"


# --- the pages' reads ----------------------------------------------------------------------------


def test_the_apply_page_lists_open_calls_and_my_proposals(ledger: Ledger) -> None:
    ledger.save_proposal(call="2027-academic", fields={"title": "First try"}, **FIONA)
    page = apply.apply_page(ledger, "fiona", TODAY)
    assert [c["name"] for c in page["calls"]] == ["2027-academic", "2027-industry", "starter"]
    assert [(p["title"], p["state"]) for p in page["proposals"]] == [("First try", "draft")]
    assert apply.apply_page(ledger, "rev1", TODAY)["proposals"] == []


def test_the_call_page_shows_candidates_with_their_conflicts_and_scores(ledger: Ledger) -> None:
    draft = ledger.save_proposal(call="2027-academic", fields=GOOD, **FIONA)  # drafts are the applicant's own
    proposal = submitted(ledger, project_name="cells2")
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    ledger.submit_review(proposal, "rev1", scores=dict(zip(CRITERIA, (5, 4, 3), strict=True)), comment="Good.")
    page = manage.call_page(ledger, "2027-academic", ["hpc-reviewers"], TODAY, 0)
    assert [r["id"] for r in page["rows"]] == [proposal] and draft.id != proposal
    [row] = page["open"]
    assert (row["mean"], row["spread"], row["reviewers"]) == ("4.00", "0", "rev1")  # one reviewer: no spread
    conflicts = {c["user"]: c["conflict"] for c in row["candidates"]}
    assert conflicts == {"rev1": None, "rev2": rules.CONFLICT_WORDS[ConflictKind.INSTITUTION],
                         "rev9": views.UNKNOWN_CONFLICT}  # fmt: skip
    assert [c["assigned"] for c in row["candidates"]] == [True, False, False]


def test_the_reviewers_list_hides_a_conflicted_title(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    assert review.reviews_page(ledger, "rev1")[0]["open"] is True
    ledger.declare_conflict(proposal, "rev1", reason="a co-author")
    [row] = review.reviews_page(ledger, "rev1")
    assert (row["conflicted"], row["open"], row["title"]) == (True, False, "(not shown: conflict of interest)")


def test_the_calls_page_counts_the_hours_awarded(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    ledger.record_award(award_plan(ledger, proposal), who="admin", message="Well argued.")
    rows = {r["name"]: r for r in manage.calls_page(ledger, TODAY)}
    assert (rows["2027-academic"]["awarded"], rows["2027-academic"]["left"]) == ("40.0", "4960.0")
    assert ledger.proposal(proposal).state is ProposalState.AWARDED


# --- the project page's allocation history -------------------------------------------------------


def test_the_project_page_shows_the_award_the_team_and_the_report_due(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    ledger.record_award(award_plan(ledger, proposal), who="admin", message="Well argued.")
    history = allocation_history(ledger, ledger.project("cells"), TODAY)
    [award] = history["awards"]
    assert (award["call"], award["gpu_hours"], award["at"], award["until"]) == ("2027-academic", "40.0", "2027-01-11",
                                                                              "2028-01-10")  # fmt: skip
    assert history["team"] == [{"principal": "gus@lab.example", "role": "member", "state": "invited", "user": "-"}]
    assert history["report"] == "due at the end of the period (2028-01-10)"
    ledger.accept_invitations("gus@lab.example", "gus")
    assert allocation_history(ledger, ledger.project("cells"), TODAY)["team"][0]["state"] == "accepted"


def test_a_project_no_award_made_has_no_allocation_history(ledger: Ledger) -> None:
    ledger.create_project("old-lab", account="old-lab", kind="research", gpu_hours=1, who="admin")
    assert allocation_history(ledger, ledger.project("old-lab"), TODAY) is None


@pytest.mark.parametrize(
    ("awarded", "end", "expected"),
    [
        pytest.param(False, None, None, id="not-awarded"),
        pytest.param(True, date(2027, 1, 1), "due: the period ended on 2027-01-01", id="ended"),
        pytest.param(True, None, "due at the end of the period", id="no-end"),
    ],
)
def test_report_state(awarded: bool, end, expected) -> None:
    assert report_state([], awarded, end, TODAY) == expected


def test_the_allocation_routes() -> None:
    from hub.allocation_pages.routes import ROUTES  # noqa: PLC0415  (imports JupyterHub's handlers)

    assert [route for route, _handler in ROUTES] == [
        r"/hpchub/apply/?",
        r"/hpchub/proposals/new/?",
        r"/hpchub/proposals/([0-9]{1,11})/attachment",
        r"/hpchub/proposals/([0-9]{1,11})/?",
        r"/hpchub/reviews/?",
        r"/hpchub/reviews/([0-9]{1,11})/?",
        r"/hpchub/calls/?",
        r"/hpchub/calls/([^/]+)/?",
        r"/hpchub/invitations/([A-Za-z0-9_-]{10,100})",
    ]


def test_the_call_page_shows_an_assigned_reviewers_declared_conflict(ledger: Ledger) -> None:
    proposal = submitted(ledger)
    ledger.assign_reviewer(proposal, "rev1", who="admin")
    ledger.declare_conflict(proposal, "rev1", reason="a co-author")
    [row] = manage.call_page(ledger, "2027-academic", ["hpc-reviewers"], TODAY, 0)["open"]
    labels = {c["user"]: c["label"] for c in row["candidates"]}
    assert labels["rev1"] == "rev1: assigned; conflicted (declared a conflict of interest)"
    assert labels["rev2"] == "rev2: conflicted (shares the institution of the applicant or a team member)"
