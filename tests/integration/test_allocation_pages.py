"""The allocation pages over HTTP and in a real browser, on the test portal with the demo's calls
and identities, through the real login:

- bad input on the proposal form (a missing title, 10^9 GPU-h, a file that is not a PDF): the
  message under the field, what was typed kept, nothing stored;
- who sees what: the top bar's Reviews and Calls, a manager's page refused to others (403), an
  unassigned reviewer's 404;
- a start-up request awarded at once (its project and Slurm account exist), a second refused with
  the reason; a renewal asked by a project's pi, refused to a member; an award whose Slurm step
  fails shown with the step and the reason, nothing made, then retried;
- the walk (Playwright, Debian's chromium): fiona applies to 2027-academic, the manager assigns
  rev1 (rev2, of fiona's institution, is refused as conflicted), rev1 scores, the manager awards
  40 GPU-h, fiona logs in again and sees the project on its page and in the spawn form. Screenshots
  test-artifacts/alloc-*.png (and the form at 390 px).
"""

from __future__ import annotations

import html
import re
import secrets

import pytest
from conftest import ARTIFACTS, logged_in_session

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("awards_leave_no_members")]

GOOD = {
    "title": "Diffusion models for cell images", "abstract": "We train a diffusion model on microscopy images.",
    "field_of_science": "1.6", "gpu_hours": "60", "period_months": "12",
    "justification": "The model needs 80 GB per GPU.", "team": "", "organisation": "Uni",
}  # fmt: skip


def text_of(page_html: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (no nested tags), unescaped."""
    found = re.search(rf'id="{re.escape(element_id)}"[^>]*>([^<]*)<', page_html)
    assert found, f"no #{element_id} in the page"
    return html.unescape(found.group(1)).strip()


def my_proposal_count(session, portal) -> int:
    return session.get(f"{portal.url}/hub/hpchub/apply", timeout=30).text.count('class="hpchub-proposal-row"')


@pytest.fixture(scope="module")
def reviewers_logged_in(portal):
    """rev1 and rev2 log in once: the ledger then knows their groups and institutions."""
    for principal in ("rev1@inst.example", "rev2@uni.example"):
        _session, response = portal.login(principal, principal.split("@")[0] + "-demo")
        assert response.status_code == 200 and response.url.endswith("/hub/home"), (principal, response.url)


@pytest.mark.parametrize(
    ("change", "files", "field", "message"),
    [
        pytest.param({"title": ""}, None, "title", "title: is required", id="missing-title"),
        pytest.param({"gpu_hours": "1000000000"}, None, "gpu_hours",
                     "gpu_hours: at most 100,000,000 GPU-h, got 1000000000.0", id="1e9-gpu-hours"),
        pytest.param({}, {"attachment": ("notes.pdf", b"just text", "application/pdf")}, "attachment",
                     "attachment: must be a PDF file (it does not start with %PDF-)", id="not-a-pdf"),
        pytest.param({}, {"attachment": ("big.pdf", b"%PDF-" + b"0" * (20 * 1024 * 1024), "application/pdf")},
                     "attachment", "attachment: at most 10 MB, got 20.0 MB", id="20-mb"),
    ],
)  # fmt: skip
def test_a_refused_field_is_named_under_it_and_nothing_is_stored(portal, change, files, field, message):
    fiona = logged_in_session(portal, "fiona")
    before = my_proposal_count(fiona, portal)
    typed = {**GOOD, "project_name": f"cells-{secrets.token_hex(3)}", **change, "action": "submit"}
    response = fiona.post(f"{portal.url}/hub/hpchub/proposals/new?call=2027-academic", data=typed, files=files,
                          timeout=60)  # fmt: skip
    assert response.status_code == 400
    assert text_of(response.text, f"hpchub-f-{field}-error") == message
    assert f'value="{typed["project_name"]}"' in response.text  # what was typed is kept
    assert my_proposal_count(fiona, portal) == before


def test_the_top_bar_and_the_pages_follow_the_roles(portal, reviewers_logged_in):
    fiona = logged_in_session(portal, "fiona")
    home = fiona.get(f"{portal.url}/hub/home", timeout=30).text
    assert 'id="hpchub-nav-apply"' in home and 'id="hpchub-nav-calls"' not in home and "hpchub-nav-reviews" not in home
    assert fiona.get(f"{portal.url}/hub/hpchub/calls", timeout=30).status_code == 403
    assert fiona.get(f"{portal.url}/hub/hpchub/calls/2027-academic", timeout=30).status_code == 403
    admin_home = logged_in_session(portal, "admin").get(f"{portal.url}/hub/home", timeout=30).text
    assert 'id="hpchub-nav-calls"' in admin_home
    rev1 = logged_in_session(portal, "rev1", domain="inst.example")
    assert 'id="hpchub-nav-reviews"' in rev1.get(f"{portal.url}/hub/home", timeout=30).text
    apply_page = fiona.get(f"{portal.url}/hub/hpchub/apply", timeout=30).text
    for call in ("2027-academic", "starter", "2027-industry"):
        assert f'id="hpchub-apply-{call}"' in apply_page


def test_an_unassigned_reviewer_and_a_stranger_get_404(portal, reviewers_logged_in):
    fiona = logged_in_session(portal, "fiona")
    typed = {**GOOD, "project_name": f"cells-{secrets.token_hex(3)}", "action": "submit"}
    response = fiona.post(f"{portal.url}/hub/hpchub/proposals/new?call=2027-academic", data=typed, timeout=60)
    assert response.status_code == 200, response.text[:500]
    proposal = int(response.url.rstrip("/").rsplit("/", 1)[1])
    assert text_of(response.text, "hpchub-proposal-state") == "submitted"
    rev1 = logged_in_session(portal, "rev1", domain="inst.example")
    assert rev1.get(f"{portal.url}/hub/hpchub/reviews/{proposal}", timeout=30).status_code == 404
    scores = {f"score.{c}": "5" for c in ("scientific or business merit", "technical readiness", "need for GPUs")}
    scored = rev1.post(f"{portal.url}/hub/hpchub/reviews/{proposal}", data={"action": "score", **scores}, timeout=30)
    assert scored.status_code == 404  # an unassigned reviewer cannot score either
    assert rev1.get(f"{portal.url}/hub/hpchub/proposals/{proposal}", timeout=30).status_code == 404
    bob = logged_in_session(portal, "bob")
    assert bob.get(f"{portal.url}/hub/hpchub/proposals/{proposal}", timeout=30).status_code == 404
    withdrawn = fiona.post(f"{portal.url}/hub/hpchub/proposals/{proposal}", data={"action": "withdraw"}, timeout=30)
    assert text_of(withdrawn.text, "hpchub-proposal-state") == "withdrawn"


def test_a_startup_request_is_awarded_at_once_and_a_second_is_refused(portal):
    erin = logged_in_session(portal, "erin")
    project = f"erin-start-{secrets.token_hex(2)}"
    typed = {"title": "Trying the GPUs", "abstract": "A first look.", "field_of_science": "1.2", "gpu_hours": "10",
             "project_name": project, "action": "submit"}  # fmt: skip
    response = erin.post(f"{portal.url}/hub/hpchub/proposals/new?call=starter", data=typed, timeout=120)
    assert response.status_code == 200, response.text[:1000]
    assert text_of(response.text, "hpchub-proposal-state") == "awarded"
    assert text_of(response.text, "hpchub-awarded-project") == project
    assert portal.usage(project)["budget_gpu_hours"] == 10.0
    assert project in portal.slurm("sacctmgr", "-nP", "show", "assoc", f"account={project}", "format=account,user")
    again = erin.post(f"{portal.url}/hub/hpchub/proposals/new?call=starter",
                      data={**typed, "project_name": f"{project}-b"}, timeout=60)  # fmt: skip
    assert again.status_code == 400
    refusal = text_of(again.text, "hpchub-proposal-error")
    assert refusal.startswith("call: erin had a start-up award (call starter) on ")
    assert "one per user every 12 months" in refusal


def test_a_project_leader_asks_for_a_renewal_and_a_member_may_not(portal):
    alice = logged_in_session(portal, "alice")
    page = alice.get(f"{portal.url}/hub/hpchub/apply?renew=vision-lab", timeout=30)
    assert page.status_code == 200
    assert 'id="hpchub-apply-2027-academic"' in page.text and 'id="hpchub-apply-starter"' not in page.text
    form = alice.get(f"{portal.url}/hub/hpchub/proposals/new?call=2027-academic&renew=vision-lab", timeout=30).text
    assert re.search(r'id="hpchub-f-project_name"[^>]*value="vision-lab"[^>]*readonly', form)
    typed = {**GOOD, "title": "Vision lab, second year", "project_name": "ignored", "action": "submit"}
    done = alice.post(f"{portal.url}/hub/hpchub/proposals/new?call=2027-academic&renew=vision-lab", data=typed,
                      timeout=60)  # fmt: skip
    assert done.status_code == 200, done.text[:500]
    assert text_of(done.text, "hpchub-proposal-state") == "submitted"
    assert 'data-kind="renewal" data-project="vision-lab"' in done.text
    bob = logged_in_session(portal, "bob")  # a member, not its pi or a manager
    assert bob.get(f"{portal.url}/hub/hpchub/apply?renew=vision-lab", timeout=30).status_code == 404
    assert bob.get(f"{portal.url}/hub/hpchub/proposals/new?call=2027-academic&renew=vision-lab",
                   timeout=30).status_code == 404  # fmt: skip


def test_a_failed_award_step_is_shown_with_its_reason_and_the_award_can_be_retried(portal, reviewers_logged_in):
    project = f"taken-{secrets.token_hex(3)}"
    dave = logged_in_session(portal, "dave")
    typed = {**GOOD, "title": "Compilers on GPUs", "project_name": project, "action": "submit"}
    submitted = dave.post(f"{portal.url}/hub/hpchub/proposals/new?call=2027-academic", data=typed, timeout=60)
    proposal = int(submitted.url.rstrip("/").rsplit("/", 1)[1])
    admin = logged_in_session(portal, "admin")
    call_page = f"{portal.url}/hub/hpchub/calls/2027-academic"
    assigned = admin.post(call_page, data={"proposal": proposal, "action": "assign", "reviewer": "rev1"}, timeout=30)
    assert text_of(assigned.text, "hpchub-call-done") == f"rev1 reviews #{proposal}."
    portal.slurm("sacctmgr", "-i", "add", "account", project, "cluster=hpchubtest", "description=made outside")
    decide = {"proposal": proposal, "action": "decide", "decision": "award", "gpu_hours": "20", "message": "Go."}
    refused = admin.post(call_page, data=decide, timeout=60)
    assert refused.status_code == 400
    assert text_of(refused.text, f"hpchub-decide-{proposal}-error") == (
        f"award: Slurm account {project} failed: account: Slurm has an account {project} already (not made by this "
        "award); nothing was created, try again"
    )
    assert portal.ledger_cli("usage", project, check=False).returncode == 2  # no project, no grant
    portal.slurm("sacctmgr", "-i", "remove", "account", project, "cluster=hpchubtest")
    retried = admin.post(call_page, data=decide, timeout=60)
    assert text_of(retried.text, "hpchub-call-done").startswith(f"#{proposal} awarded 20.0 GPU-h: project {project}")
    assert portal.usage(project)["budget_gpu_hours"] == 20.0
    twice = admin.post(call_page, data={**decide, "decision": "reject"}, timeout=60)  # a double decision
    assert twice.status_code == 400
    assert text_of(twice.text, "hpchub-call-error") == (
        f"#{proposal}: decision: #{proposal} is awarded: it was decided already"
    )
    assert portal.usage(project)["budget_gpu_hours"] == 20.0


def test_a_startup_award_that_slurm_refuses_leaves_the_proposal_submitted_saying_why(portal):
    project = f"tom-start-{secrets.token_hex(2)}"
    portal.slurm("sacctmgr", "-i", "add", "account", project, "cluster=hpchubtest", "description=made outside")
    tom = logged_in_session(portal, "tom")
    typed = {"title": "Trying the GPUs", "abstract": "A first look.", "field_of_science": "1.2", "gpu_hours": "5",
             "project_name": project, "action": "submit"}  # fmt: skip
    page = tom.post(f"{portal.url}/hub/hpchub/proposals/new?call=starter", data=typed, timeout=120)
    assert page.status_code == 200
    assert text_of(page.text, "hpchub-proposal-state") == "submitted"
    assert f"Slurm account {project}: account: Slurm has an account {project} already" in html.unescape(page.text)
    assert portal.ledger_cli("usage", project, check=False).returncode == 2


# --- the walk in a browser -------------------------------------------------------------------------


@pytest.mark.browser
def test_fiona_applies_rev1_scores_the_manager_awards_and_fiona_computes(portal, log_in, reviewers_logged_in):
    project = f"cells-{secrets.token_hex(3)}"
    fiona = log_in("fiona")
    fiona.click("#hpchub-nav-apply")
    fiona.wait_for_url(f"{portal.url}/hub/hpchub/apply")
    fiona.screenshot(path=str(ARTIFACTS / "alloc-apply.png"), full_page=True)
    fiona.click("#hpchub-apply-2027-academic")
    fiona.fill("#hpchub-f-title", "Diffusion models for cell images")
    fiona.fill("#hpchub-f-abstract", "We train a diffusion model on microscopy images.")
    fiona.select_option("#hpchub-f-field_of_science", "1.6")
    fiona.fill("#hpchub-f-gpu_hours", "600")  # over the call's largest request
    fiona.fill("#hpchub-f-justification", "The model needs 80 GB per GPU.")
    fiona.fill("#hpchub-f-project_name", project)
    fiona.click("#hpchub-save")
    assert fiona.locator("#hpchub-f-gpu_hours-error").inner_text() == (
        "gpu_hours: at most 500.0 GPU-h (the largest request of call 2027-academic), got 600.0"
    )
    assert fiona.input_value("#hpchub-f-title") == "Diffusion models for cell images"
    fiona.screenshot(path=str(ARTIFACTS / "alloc-proposal-error.png"), full_page=True)
    fiona.fill("#hpchub-f-gpu_hours", "60")
    fiona.click("#hpchub-save")
    assert fiona.locator("#hpchub-proposal-state").inner_text() == "draft"
    proposal = int(fiona.url.rstrip("/").rsplit("/", 1)[1])
    fiona.click("#hpchub-submit")
    fiona.locator("#hpchub-proposal[data-state=submitted]").wait_for()
    fiona.screenshot(path=str(ARTIFACTS / "alloc-proposal-submitted.png"), full_page=True)

    admin = log_in("admin")
    admin.click("#hpchub-nav-calls")
    admin.screenshot(path=str(ARTIFACTS / "alloc-calls.png"), full_page=True)
    admin.click("a[href$='/hpchub/calls/2027-academic']")
    admin.select_option(f"#hpchub-reviewer-{proposal}", "rev2")
    admin.click(f"#hpchub-assign-{proposal}-submit")
    assert admin.locator(f"#hpchub-reviewer-{proposal}-error").inner_text() == (
        "reviewer: rev2 shares the institution of the applicant or a team member: conflicted, cannot review this proposal"
    )
    admin.screenshot(path=str(ARTIFACTS / "alloc-assign-refused.png"), full_page=True)
    admin.select_option(f"#hpchub-reviewer-{proposal}", "rev1")
    admin.click(f"#hpchub-assign-{proposal}-submit")
    assert admin.locator("#hpchub-call-done").inner_text() == f"rev1 reviews #{proposal}."

    rev1 = log_in("rev1", domain="inst.example")
    rev1.click("#hpchub-nav-reviews")
    rev1.screenshot(path=str(ARTIFACTS / "alloc-reviews.png"), full_page=True)
    rev1.click(f"a[href$='/hpchub/reviews/{proposal}'] >> nth=0")
    rev1.wait_for_url(f"{portal.url}/hub/hpchub/reviews/{proposal}")
    rev1.locator("#hpchub-review-submit").wait_for()
    for score in rev1.locator("select.hpchub-score").all():
        score.select_option("4")
    rev1.fill("#hpchub-f-comment", "Sound plan; the hours are justified.")
    rev1.screenshot(path=str(ARTIFACTS / "alloc-review.png"), full_page=True)
    rev1.click("#hpchub-review-submit")
    rev1.locator("#hpchub-review-given").wait_for()

    admin.reload()
    row = admin.locator(f".hpchub-call-proposal[data-id='{proposal}']")
    assert row.locator(".hpchub-mean").inner_text() == "4.00"
    admin.fill(f"#hpchub-award-hours-{proposal}", "40")
    admin.fill(f"#hpchub-message-{proposal}", "Well argued; 40 GPU-h for a first year.")
    admin.click(f"#hpchub-decide-{proposal}-submit")
    assert (
        admin.locator("#hpchub-call-done").inner_text().startswith(f"#{proposal} awarded 40.0 GPU-h: project {project}")
    )
    admin.screenshot(path=str(ARTIFACTS / "alloc-awarded.png"), full_page=True)
    assert portal.usage(project)["budget_gpu_hours"] == 40.0
    assert "fiona" in portal.slurm("sacctmgr", "-nP", "show", "assoc", f"account={project}", "format=user")

    fiona = log_in("fiona")  # her next login: she has a Slurm association now, so a server may start
    fiona.goto(f"{portal.url}/hub/hpchub/proposals/{proposal}")
    assert fiona.locator("#hpchub-proposal-state").inner_text() == "awarded"
    shown = fiona.locator("#hpchub-proposal").inner_text()
    assert "reviewer 1" in shown and "rev1" not in shown  # the call shows reviews, anonymised
    fiona.screenshot(path=str(ARTIFACTS / "alloc-fiona-awarded.png"), full_page=True)
    fiona.click("#hpchub-awarded-project")
    fiona.wait_for_url(f"{portal.url}/hub/hpchub/projects/{project}")
    assert fiona.locator("#hpchub-awards .hpchub-award-row").count() == 1
    assert fiona.locator("#hpchub-renew-link").count() == 1  # she leads it: a renewal starts here
    fiona.screenshot(path=str(ARTIFACTS / "alloc-project.png"), full_page=True)
    fiona.goto(f"{portal.url}/hub/spawn")
    fiona.locator("#hpchub-project").wait_for()
    fiona.screenshot(path=str(ARTIFACTS / "alloc-spawn-form.png"), full_page=True)
    assert fiona.locator(f"#hpchub-project option[value='{project}']").count() == 1


@pytest.mark.browser
def test_the_proposal_form_and_the_call_pages_at_390_px(portal, log_in, reviewers_logged_in):
    page = log_in("fiona", width=390)
    page.goto(f"{portal.url}/hub/hpchub/proposals/new?call=2027-academic")
    page.locator("#hpchub-proposal-form").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "alloc-proposal-form-390.png"), full_page=True)
    page.goto(f"{portal.url}/hub/hpchub/apply")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Tab")  # keyboard: the first control takes focus
    assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON")
    admin = log_in("admin", width=390)
    for path in ("calls", "calls/2027-academic"):
        admin.goto(f"{portal.url}/hub/hpchub/{path}")
        admin.locator("h1").wait_for()
        assert admin.evaluate("document.documentElement.scrollWidth") <= 390, path
    admin.screenshot(path=str(ARTIFACTS / "alloc-call-390.png"), full_page=True)


def test_a_manager_creates_a_call_from_the_page(portal):
    admin = logged_in_session(portal, "admin")
    name = f"call-{secrets.token_hex(3)}"
    fields = {"name": name, "title": "A test round", "audience": ["academic", "sme"], "opens": "2027-02-01",
              "closes": "2027-01-01", "gpu_hours": "1000", "max_request": "100", "period_months": "6",
              "review_required": "on"}  # fmt: skip
    refused = admin.post(f"{portal.url}/hub/hpchub/calls", data=fields, timeout=30)
    assert refused.status_code == 400
    assert text_of(refused.text, "hpchub-f-closes-error") == "closes: 2027-01-01 is before the opening date 2027-02-01"
    assert f'value="{name}"' in refused.text and f"/hpchub/calls/{name}" not in refused.text  # kept, not created
    created = admin.post(f"{portal.url}/hub/hpchub/calls", data={**fields, "closes": "2027-06-30"}, timeout=30)
    assert created.status_code == 200 and created.url.startswith(f"{portal.url}/hub/hpchub/calls/{name}")
    assert text_of(created.text, "hpchub-call-done") == f"Call {name} created."
    assert text_of(created.text, "hpchub-call-hours") == "0.0 of 1000.0 GPU-h awarded, 1000.0 left"


def test_an_invitation_link_joins_its_principal_and_no_one_else(portal, mailbox, reviewers_logged_in):
    # rev1, whom no other module's checks list, is invited; both log in before the award, so only the link joins
    invitee = logged_in_session(portal, "rev1", domain="inst.example")
    alice = logged_in_session(portal, "alice")
    carol = logged_in_session(portal, "carol")
    project = f"carol-team-{secrets.token_hex(2)}"
    typed = {"title": "A team's first look", "abstract": "Together.", "field_of_science": "1.2", "gpu_hours": "5",
             "team": "rev1@inst.example", "project_name": project, "action": "submit"}  # fmt: skip
    response = carol.post(f"{portal.url}/hub/hpchub/proposals/new?call=starter", data=typed, timeout=120)
    assert text_of(response.text, "hpchub-proposal-state") == "awarded", response.text[:1000]
    message = mailbox.wait_for(to="rev1@inst.example", key=f"invitation:{project}:rev1@inst.example")
    link = re.search(r"/hub/hpchub/invitations/[A-Za-z0-9_-]+", message.body).group(0)
    assert alice.get(f"{portal.url}{link}", timeout=30).status_code == 404  # another login's link
    page = invitee.get(f"{portal.url}{link}", timeout=30)
    assert page.status_code == 200 and f"Join {project}" in page.text
    try:
        joined = invitee.post(f"{portal.url}{link}", data={"answer": "accept"}, timeout=30)
        assert joined.status_code == 200 and "You are now a member" in joined.text, joined.text[:1000]
        assert ("rev1", "member") in [(m["user"], m["role"]) for m in portal.usage(project)["members"]]
    finally:
        portal.ledger_cli("member", "remove", project, "rev1", check=False)
