"""Allocations through the REST API against the real test hub and cluster: fiona applies to the
demo's 2027-academic call, the call manager (admin) assigns rev1 (rev2, at fiona's institution,
is refused as conflicted), rev1 scores, the manager awards 40 GPU-h; Slurm then has the new
account with fiona on it, ``hpchub usage`` shows 40 GPU-h and fiona's session runs on it.

A fault: ``sacctmgr add user`` fails during an award (a wrapper in front of Slurm's commands):
no project, no grant, no Slurm account is left, and the award succeeds when tried again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from conftest import logged_in_session

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("awards_leave_no_members")]

V1 = "/hub/api/hpchub/v1"
DOMAINS = {"rev1": "inst.example"}
PEOPLE = ("fiona", "rev1", "rev2", "admin", "bob")
FIONA_SPAWN = {"partition": "gpu", "gpu_type": "a100", "gpus": 1, "hours": 0.25, "environment": "default"}


def proposal_fields(project: str, **overrides) -> dict:
    fields = {
        "call": "2027-academic", "title": "Diffusion models for cell images",
        "abstract": "We train diffusion models on microscopy images.", "field_of_science": "1.6", "gpu_hours": 60,
        "period_months": 12, "justification": "The models need 80 GB GPUs.", "team": ["gus@lab.example"],
        "organisation": "Uni", "project_name": project,
    }  # fmt: skip
    fields.update(overrides)
    return fields


def log_in(portal, name: str) -> requests.Session:
    return logged_in_session(portal, name, domain=DOMAINS.get(name, "uni.example"))


@pytest.fixture(scope="module")
def people(portal) -> dict[str, requests.Session]:
    """Cookie sessions of the allocation's people; each login records their principal and groups."""
    return {name: log_in(portal, name) for name in PEOPLE}


def api(portal, session: requests.Session, method: str, path: str, **kwargs) -> requests.Response:
    return session.request(method, f"{portal.url}{V1}{path}", timeout=120, **kwargs)


def submitted_proposal(portal, people, project: str, **overrides) -> int:
    """A proposal of fiona's, submitted to 2027-academic."""
    draft = api(portal, people["fiona"], "POST", "/proposals", json=proposal_fields(project, **overrides))
    assert draft.status_code == 201, draft.text
    number = draft.json()["id"]
    submitted = api(portal, people["fiona"], "POST", f"/proposals/{number}/submit")
    assert submitted.status_code == 200 and submitted.json()["state"] == "submitted", submitted.text
    return number


def reviewed_proposal(portal, people, project: str, **overrides) -> int:
    """Submitted, rev1 assigned and scored: ready for a decision."""
    number = submitted_proposal(portal, people, project, **overrides)
    assigned = api(portal, people["admin"], "POST", f"/proposals/{number}/reviewers", json={"reviewer": "rev1"})
    assert assigned.status_code == 200, assigned.text
    criteria = api(portal, people["rev1"], "GET", f"/proposals/{number}/reviews").json()["criteria"]
    review = api(portal, people["rev1"], "POST", f"/proposals/{number}/reviews",
                 json={"scores": dict.fromkeys(criteria, 4), "comment": "Sound plan."})  # fmt: skip
    assert review.status_code == 201, review.text
    return number


def slurm_associations(portal, account: str) -> list[str]:
    out = portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "associations", f"account={account}",
                       "format=Account,User")  # fmt: skip
    return [line for line in out.splitlines() if line.strip()]


def test_the_demo_calls_are_open_to_applicants(portal, people) -> None:
    calls = api(portal, people["fiona"], "GET", "/calls")
    assert calls.status_code == 200, calls.text
    by_name = {call["name"]: call for call in calls.json()["calls"]}
    assert {"2027-academic", "starter", "2027-industry"} <= set(by_name)
    academic = by_name["2027-academic"]
    assert (academic["open"], academic["review_required"], academic["max_request_gpu_hours"]) == (True, True, 500.0)
    created = api(portal, people["fiona"], "POST", "/calls", json={"name": "fiona-call"})
    assert created.status_code == 403  # not a call manager: the scope is missing


def test_apply_review_award_and_spawn(portal, people, hpchub) -> None:
    fiona, admin, rev1, rev2 = people["fiona"], people["admin"], people["rev1"], people["rev2"]
    draft = api(portal, fiona, "POST", "/proposals", json=proposal_fields("fiona-cells", gpu_hours=50))
    assert draft.status_code == 201, draft.text
    number = draft.json()["id"]
    assert (draft.json()["state"], draft.json()["version"]) == ("draft", 1)
    changed = api(portal, fiona, "PUT", f"/proposals/{number}",
                  json={k: v for k, v in proposal_fields("fiona-cells").items() if k != "call"})  # fmt: skip
    assert (changed.status_code, changed.json()["version"], changed.json()["gpu_hours"]) == (200, 2, 60.0)
    mine = api(portal, fiona, "GET", "/proposals").json()["proposals"]
    assert number in [p["id"] for p in mine]
    assert api(portal, fiona, "POST", f"/proposals/{number}/submit").json()["state"] == "submitted"

    refused = api(portal, admin, "POST", f"/proposals/{number}/reviewers", json={"reviewer": "rev2"})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("reviewer: rev2 shares the institution of the applicant")
    assigned = api(portal, admin, "POST", f"/proposals/{number}/reviewers", json={"reviewer": "rev1"})
    assert (assigned.status_code, assigned.json()["state"], assigned.json()["reviewers"]) == (200, "in_review",
                                                                                             ["rev1"])  # fmt: skip
    assert api(portal, rev2, "GET", f"/proposals/{number}").status_code == 404
    assigned_to_rev1 = api(portal, rev1, "GET", "/proposals", params={"assigned": "1"}).json()["proposals"]
    assert number in [p["id"] for p in assigned_to_rev1]
    criteria = api(portal, rev1, "GET", f"/proposals/{number}/reviews").json()["criteria"]
    review = api(portal, rev1, "POST", f"/proposals/{number}/reviews",
                 json={"scores": dict.fromkeys(criteria, 4), "comment": "Sound plan."})  # fmt: skip
    assert review.status_code == 201, review.text
    scores = api(portal, admin, "GET", f"/proposals/{number}/reviews").json()
    assert [(s["count"], s["mean"], s["spread"]) for s in scores["scores"]] == [(1, 4.0, 0)] * len(criteria)
    assert scores["reviews"][0]["reviewer"] == "rev1"
    assert api(portal, fiona, "GET", f"/proposals/{number}/reviews").json()["reviews"] == []  # not decided yet

    decided = api(portal, admin, "POST", f"/proposals/{number}/decision",
                  json={"decision": "award", "gpu_hours": 40, "message": "Well argued; 40 of 60."})  # fmt: skip
    assert decided.status_code == 200, decided.text
    award = decided.json()["award"]
    assert (award["project"], award["account"], award["pi"], award["gpu_hours"]) == ("fiona-cells", "fiona-cells",
                                                                                     "fiona", 40.0)  # fmt: skip
    assert award["invited"] == ["gus@lab.example"]
    assert decided.json()["proposal"]["state"] == "awarded"

    assert "fiona-cells|fiona" in slurm_associations(portal, "fiona-cells")
    usage = json.loads(hpchub("usage", "fiona-cells", "--json", "--db-url", portal.ledger_url).stdout)
    assert usage["budget_gpu_hours"] == 40.0 and [m["user"] for m in usage["members"]] == ["fiona"]
    assert usage["members"][0]["role"] == "pi"

    fiona = people["fiona"] = log_in(portal, "fiona")  # the login after the award sees her association
    project = api(portal, fiona, "GET", "/projects/fiona-cells")
    assert project.status_code == 200 and project.json()["budget_gpu_hours"] == 40.0
    history = api(portal, fiona, "GET", "/projects/fiona-cells/allocation").json()
    assert [(a["call"], a["gpu_hours"]) for a in history["awards"]] == [("2027-academic", 40.0)]
    assert [(i["principal"], i["state"]) for i in history["invitations"]] == [("gus@lab.example", "invited")]
    assert api(portal, fiona, "GET", f"/proposals/{number}/reviews").json()["reviews"][0]["reviewer"] == "reviewer 1"

    spawn = fiona.post(f"{portal.api}/users/fiona/server", json={"user_options": {"project": "fiona-cells",
                       **FIONA_SPAWN}}, timeout=120)  # fmt: skip
    assert spawn.status_code in (201, 202), spawn.text
    try:
        portal.wait_ready("fiona", timeout=120)
        assert [job["account"] for job in portal.jobs().values() if job["user"] == "fiona"] == ["fiona-cells"]
    finally:
        portal.session().delete(portal.spawn_path("fiona"), timeout=60)
        portal.wait_stopped("fiona")


def test_a_name_slurm_has_already_is_refused_at_award_and_nothing_is_made(portal, people, hpchub) -> None:
    portal.slurm("sacctmgr", "-i", "add", "account", "fiona-taken", "cluster=hpchubtest",
                 "description=made outside the portal")  # fmt: skip
    number = reviewed_proposal(portal, people, "fiona-taken")
    decided = api(portal, people["admin"], "POST", f"/proposals/{number}/decision",
                  json={"decision": "award", "message": "ok"})  # fmt: skip
    assert decided.status_code == 409, decided.text
    assert "Slurm account fiona-taken failed" in decided.json()["message"]
    assert hpchub("usage", "fiona-taken", "--db-url", portal.ledger_url, check=False).returncode == 2
    assert api(portal, people["admin"], "GET", f"/proposals/{number}").json()["state"] == "in_review"


def _failing_sacctmgr(directory: Path) -> Path:
    """Slurm's commands, with ``sacctmgr add user`` failing as Slurm would refuse it."""
    directory.mkdir(parents=True, exist_ok=True)
    for command in ("scontrol", "squeue", "sinfo", "sacct", "sbatch", "scancel"):
        link = directory / command
        if not link.exists():
            link.symlink_to(f"/usr/bin/{command}")
    wrapper = directory / "sacctmgr"
    wrapper.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = user ] && [ "$prev" = add ] && '
                       '{ echo "sacctmgr: error: injected: association refused" >&2; exit 1; }; prev=$a; done\n'
                       'exec /usr/bin/sacctmgr "$@"\n')  # fmt: skip
    wrapper.chmod(0o755)
    return directory


@pytest.mark.faults
def test_a_sacctmgr_failure_during_an_award_leaves_nothing_and_a_retry_succeeds(portal, people, tmp_path) -> None:
    number = reviewed_proposal(portal, people, "fiona-fault", gpu_hours=20)
    bin_dir = _failing_sacctmgr(tmp_path / "slurm-bin")
    config = tmp_path / "hub_config.py"
    config.write_text(f"c.SlurmCluster.bin_dir = {str(bin_dir)!r}\nc.HPCHubLedger.cluster = 'hpchubtest'\n")
    failed = portal.ledger_cli("--config", str(config), "proposal", "decide", str(number), "award", "--message",
                               "ok", check=False)  # fmt: skip
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "Slurm association of fiona with fiona-fault failed" in failed.stderr
    assert "injected: association refused" in failed.stderr and failed.stderr.count("\n") == 1
    assert portal.ledger_cli("usage", "fiona-fault", check=False).returncode == 2  # no project, so no grant
    assert slurm_associations(portal, "fiona-fault") == []  # no account (the step before was undone)
    assert "fiona-fault" not in portal.slurm("sacctmgr", "--noheader", "--parsable2", "show", "account",
                                             "format=Account")  # fmt: skip
    assert api(portal, people["admin"], "GET", f"/proposals/{number}").json()["state"] == "in_review"

    config.write_text("c.HPCHubLedger.cluster = 'hpchubtest'\n")
    retried = portal.ledger_cli("--config", str(config), "proposal", "decide", str(number), "award", "--message",
                                "ok", check=False)  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    assert "fiona-fault|fiona" in slurm_associations(portal, "fiona-fault")
    assert portal.usage("fiona-fault")["budget_gpu_hours"] == 20.0


def test_a_startup_request_is_awarded_at_once_and_a_second_is_refused(portal, people) -> None:
    fields = {"call": "starter", "title": "First steps", "abstract": "Trying GPUs.", "field_of_science": "1.2",
              "gpu_hours": 5, "project_name": "fiona-start"}  # fmt: skip
    first = api(portal, people["fiona"], "POST", "/proposals", json=fields).json()["id"]
    awarded = api(portal, people["fiona"], "POST", f"/proposals/{first}/submit")
    assert (awarded.status_code, awarded.json()["state"]) == (200, "awarded"), awarded.text
    deadline = time.monotonic() + 30
    while "fiona-start|fiona" not in slurm_associations(portal, "fiona-start"):
        assert time.monotonic() < deadline
        time.sleep(1)
    second = api(portal, people["fiona"], "POST", "/proposals", json={**fields, "project_name": "fiona-start2"})
    again = api(portal, people["fiona"], "POST", f"/proposals/{second.json()['id']}/submit")
    assert again.status_code == 400 and again.json()["message"].startswith("call: fiona had a start-up award")
    assert api(portal, people["fiona"], "GET", f"/proposals/{second.json()['id']}").json()["state"] == "draft"


def test_the_command_line_lists_and_shows_what_the_api_made(portal) -> None:
    listed = json.loads(portal.ledger_cli("proposal", "list", "--call", "2027-academic", "--json").stdout)
    assert "fiona-cells" in [p["project_name"] for p in listed if p["state"] == "awarded"]
    calls = json.loads(portal.ledger_cli("call", "list", "--json").stdout)
    assert next(c for c in calls if c["name"] == "2027-academic")["gpu_hours_awarded"] >= 40.0
