"""Allocation attacks, each performed as the user would, with a token they made themselves with
their own login: a reviewer reads a proposal nobody assigned them; a conflicted reviewer scores the
proposal they were refused for; an applicant decides her own proposal; another user reads her
draft and its attachment; a manager decides twice; an applicant sends an oversized or non-PDF
attachment, or asks for 10^9 GPU-hours.

The defences: every allocation endpoint checks the JupyterHub scope and then the allocation
rules (``hub/allocations/service.py``); whoever may not see a proposal gets the 404 of one that
does not exist; a refusal stores nothing.
"""

from __future__ import annotations

import pytest
import requests
from conftest import logged_in_session, own_token, token_session

V1 = "/hub/api/hpchub/v1"
DOMAINS = {"rev1": "inst.example"}
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def tokens(portal) -> dict[str, requests.Session]:
    """Each person's own token (made with their own login, which also records their principal)."""
    out = {}
    for name in ("fiona", "bob", "rev1", "rev2", "admin"):
        session = logged_in_session(portal, name, domain=DOMAINS.get(name, "uni.example"))
        out[name] = token_session(own_token(portal, session, name))
    return out


def call(portal, session: requests.Session, method: str, path: str, **kwargs) -> requests.Response:
    return session.request(method, f"{portal.url}{V1}{path}", timeout=120, **kwargs)


def draft(portal, tokens, project: str, **overrides) -> int:
    fields = {"call": "2027-academic", "title": "Attack surface", "abstract": "A.", "field_of_science": "1.2",
              "gpu_hours": 10, "justification": "J.", "project_name": project, **overrides}  # fmt: skip
    made = call(portal, tokens["fiona"], "POST", "/proposals", json=fields)
    assert made.status_code == 201, made.text
    return made.json()["id"]


def submitted(portal, tokens, project: str) -> int:
    number = draft(portal, tokens, project)
    assert call(portal, tokens["fiona"], "POST", f"/proposals/{number}/submit").status_code == 200
    return number


def in_review(portal, tokens, project: str) -> int:
    number = submitted(portal, tokens, project)
    assigned = call(portal, tokens["admin"], "POST", f"/proposals/{number}/reviewers", json={"reviewer": "rev1"})
    assert assigned.status_code == 200, assigned.text
    return number


def test_a_reviewer_cannot_read_a_proposal_nobody_assigned_them(portal, tokens) -> None:
    number = submitted(portal, tokens, "atk-unassigned")
    for path in (f"/proposals/{number}", f"/proposals/{number}/reviews", f"/proposals/{number}/attachment"):
        answer = call(portal, tokens["rev1"], "GET", path)
        assert answer.status_code == 404, (path, answer.text)
        assert "Attack surface" not in answer.text
    listed = call(portal, tokens["rev1"], "GET", "/proposals", params={"assigned": "1"}).json()["proposals"]
    assert number not in [p["id"] for p in listed]
    everything = call(portal, tokens["rev1"], "GET", "/proposals", params={"call": "2027-academic"})
    assert everything.status_code == 403  # only call managers list a call's proposals


def test_a_refused_conflicted_reviewer_cannot_score(portal, tokens) -> None:
    number = in_review(portal, tokens, "atk-conflict")
    refused = call(portal, tokens["admin"], "POST", f"/proposals/{number}/reviewers", json={"reviewer": "rev2"})
    assert refused.status_code == 400 and "conflicted" in refused.json()["message"]
    criteria = call(portal, tokens["admin"], "GET", f"/proposals/{number}/reviews").json()["criteria"]
    scored = call(portal, tokens["rev2"], "POST", f"/proposals/{number}/reviews",
                  json={"scores": dict.fromkeys(criteria, 5), "comment": "Excellent!"})  # fmt: skip
    assert scored.status_code == 404, scored.text
    assert call(portal, tokens["rev2"], "GET", f"/proposals/{number}").status_code == 404
    reviews = call(portal, tokens["admin"], "GET", f"/proposals/{number}/reviews").json()["reviews"]
    assert reviews == []  # nothing stored
    # a reviewer who declares a conflict loses the proposal too
    assert call(portal, tokens["rev1"], "POST", f"/proposals/{number}/conflict", json={"reason": "co-author"}).ok
    assert call(portal, tokens["rev1"], "GET", f"/proposals/{number}").status_code == 404
    late = call(portal, tokens["rev1"], "POST", f"/proposals/{number}/reviews",
                json={"scores": dict.fromkeys(criteria, 5), "comment": "x"})  # fmt: skip
    assert late.status_code == 400 and "conflicted reviewer cannot score" in late.json()["message"]


def test_an_applicant_cannot_decide_her_own_proposal(portal, tokens) -> None:
    number = in_review(portal, tokens, "atk-self-award")
    for decision in ("award", "reject", "return"):
        answer = call(portal, tokens["fiona"], "POST", f"/proposals/{number}/decision",
                      json={"decision": decision, "gpu_hours": 10 if decision == "award" else None,
                            "message": "mine"})  # fmt: skip
        assert answer.status_code == 403, answer.text
    assigned = call(portal, tokens["fiona"], "POST", f"/proposals/{number}/reviewers", json={"reviewer": "fiona"})
    assert assigned.status_code == 403
    assert call(portal, tokens["admin"], "GET", f"/proposals/{number}").json()["state"] == "in_review"


def test_another_user_cannot_read_a_draft_or_its_attachment(portal, tokens) -> None:
    number = draft(portal, tokens, "atk-draft", title="Secret plans")
    uploaded = call(portal, tokens["fiona"], "POST", f"/proposals/{number}/attachment",
                    params={"filename": "plan.pdf"}, data=PDF)  # fmt: skip
    assert uploaded.status_code == 200 and uploaded.json()["attachment"] == "plan.pdf", uploaded.text
    for path in (f"/proposals/{number}", f"/proposals/{number}/attachment", f"/proposals/{number}/reviews"):
        answer = call(portal, tokens["bob"], "GET", path)
        assert answer.status_code == 404 and "Secret plans" not in answer.text, (path, answer.text)
    changed = call(portal, tokens["bob"], "PUT", f"/proposals/{number}", json={"title": "mine now"})
    assert changed.status_code == 404
    assert call(portal, tokens["bob"], "POST", f"/proposals/{number}/submit").status_code == 404
    own = call(portal, tokens["fiona"], "GET", f"/proposals/{number}/attachment")
    assert own.status_code == 200 and own.content == PDF
    assert own.headers["Content-Type"] == "application/pdf"
    assert own.headers["Content-Disposition"] == 'attachment; filename="plan.pdf"'
    assert own.headers["X-Content-Type-Options"] == "nosniff"
    assert call(portal, tokens["fiona"], "GET", f"/proposals/{number}").json()["title"] == "Secret plans"


def test_a_second_decision_is_refused_and_stores_nothing(portal, tokens) -> None:
    number = in_review(portal, tokens, "atk-twice")
    first = call(portal, tokens["admin"], "POST", f"/proposals/{number}/decision",
                 json={"decision": "reject", "message": "Out of scope."})  # fmt: skip
    assert first.status_code == 200, first.text
    history = first.json()["proposal"]["history"]
    for body in ({"decision": "reject", "message": "again"}, {"decision": "award", "gpu_hours": 10, "message": "x"},
                 {"decision": "return", "message": "x"}):  # fmt: skip
        again = call(portal, tokens["admin"], "POST", f"/proposals/{number}/decision", json=body)
        assert again.status_code == 400 and "decided already" in again.json()["message"], again.text
    after = call(portal, tokens["admin"], "GET", f"/proposals/{number}").json()
    assert (after["state"], after["history"]) == ("rejected", history)
    assert call(portal, tokens["admin"], "GET", "/projects/atk-twice").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"%PDF-1.4\n" + b"0" * (20 * 1024 * 1024), "attachment: at most 10 MB, got 20.0 MB", id="20-mb"),
        pytest.param(b"<html><script>alert(1)</script></html>", "attachment: must be a PDF file", id="not-a-pdf"),
        pytest.param(b"", "attachment: must be a PDF file", id="empty"),
    ],
)  # fmt: skip
def test_a_bad_attachment_is_refused_naming_the_limit(portal, tokens, data, message) -> None:
    number = draft(portal, tokens, "atk-attach")
    answer = call(portal, tokens["fiona"], "POST", f"/proposals/{number}/attachment", params={"filename": "x.pdf"},
                  data=data)  # fmt: skip
    assert answer.status_code == 400 and answer.json()["message"].startswith(message), answer.text[:300]
    shown = call(portal, tokens["fiona"], "GET", f"/proposals/{number}").json()
    assert (shown["attachment"], shown["version"]) == (None, 1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"gpu_hours": 10**9}, "gpu_hours: at most 100,000,000 GPU-h", id="a-billion-gpu-hours"),
        pytest.param({"gpu_hours": 501}, "gpu_hours: at most 500.0 GPU-h (the largest request", id="over-the-call"),
        pytest.param({"title": ""}, "title: is required", id="no-title"),
        pytest.param({"field_of_science": "9.9"}, "field_of_science: one of the OECD", id="unknown-field"),
        pytest.param({"project_name": "Root"}, "project_name:", id="bad-project-name"),
        pytest.param({"owner": "admin"}, "owner: unknown field", id="unknown-key"),
    ],
)  # fmt: skip
def test_bad_proposal_input_names_the_field_and_stores_nothing(portal, tokens, fields, message) -> None:
    before = len(call(portal, tokens["fiona"], "GET", "/proposals", params={"limit": 1000}).json()["proposals"])
    body = {"call": "2027-academic", "title": "T", "project_name": "atk-input", **fields}
    answer = call(portal, tokens["fiona"], "POST", "/proposals", json=body)
    assert answer.status_code == 400 and answer.json()["message"].startswith(message), answer.text
    after = len(call(portal, tokens["fiona"], "GET", "/proposals", params={"limit": 1000}).json()["proposals"])
    assert after == before


def test_an_invitation_link_answers_only_its_own_principal(portal, tokens) -> None:
    for token in ("not-a-real-invitation-token", "x" * 40):
        answer = call(portal, tokens["bob"], "POST", f"/invitations/{token}", json={"accept": True})
        assert answer.status_code == 404, answer.text
    bad = call(portal, tokens["bob"], "POST", "/invitations/whatever-token-1", json={"accept": "yes"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("accept:")
