"""The ledger's REST API (/hub/api/hpchub/v1) against the real hub: every endpoint x every
kind of caller, bad input, the CSV export, member management and the preview's figures.

Callers log in through the identity provider (cookie + X-XSRFToken), or use tokens made
through JupyterHub's own API, or a real single-user server's token.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import requests
from conftest import logged_in_session

pytestmark = pytest.mark.integration

V1 = "/hub/api/hpchub/v1"
PASSWORDS = {name: f"{name}-demo" for name in ("alice", "bob", "carol", "dave", "tom", "erin", "admin")}
BOB_H200 = {
    "project": "vision-lab",
    "partition": "gpu",
    "gpu_type": "h200",
    "gpus": 2,
    "hours": 1.5,
    "environment": "default",
}
TOM_DEBUG = {
    "project": "cs101",
    "partition": "debug",
    "gpu_type": "a100",
    "gpus": 1,
    "hours": 0.25,
    "environment": "default",
}
CHARGE_START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


# --- callers ----------------------------------------------------------------------------------------


def _logged_in(portal, name: str) -> requests.Session:
    return logged_in_session(portal, name, PASSWORDS[name])


def _token_session(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    return session


def _make_token(portal, session: requests.Session, user: str, scopes: list[str] | None = None) -> str:
    body = {"note": "hpchub API test", "expires_in": 3600}
    if scopes is not None:
        body["scopes"] = scopes
    response = session.post(f"{portal.api}/users/{user}/tokens", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["token"]


@pytest.fixture(scope="module")
def users(portal) -> dict[str, requests.Session]:
    """Cookie sessions of every demo user that has a part in a project (and the admin)."""
    return {name: _logged_in(portal, name) for name in PASSWORDS}


@pytest.fixture(scope="module")
def server_token(portal, users) -> str:
    """tom's running server's own token ($JUPYTERHUB_API_TOKEN in the job)."""
    spawn = portal.session().post(portal.spawn_path("tom"), json={"user_options": TOM_DEBUG}, timeout=60)
    assert spawn.status_code in (201, 202), spawn.text
    try:
        portal.wait_ready("tom")
        yield portal.server_token("tom")
    finally:
        portal.session().delete(portal.spawn_path("tom"), timeout=60)
        portal.wait_stopped("tom")


@pytest.fixture(scope="module")
def callers(portal, users, server_token) -> dict[str, requests.Session]:
    """The matrix's callers: nobody, a member of another project, a member, a pi, an admin,
    a server's token, and a JupyterHub service (the tests' own, without hpchub scopes)."""
    return {
        "anonymous": requests.Session(),
        "other-project": users["carol"],  # cs101 student, not in vision-lab
        "member": users["bob"],
        "member-token": _token_session(_make_token(portal, users["bob"], "bob")),
        "pi": users["alice"],
        "admin": users["admin"],
        "server-token": _token_session(server_token),
        "service": portal.session(),
    }


def _ledger_url(portal) -> str:
    return f"sqlite:///{portal.state_dir / 'hub' / 'ledger.sqlite'}"


def _usage(portal, hpchub, project: str) -> dict:
    return json.loads(hpchub("usage", project, "--json", "--db-url", _ledger_url(portal)).stdout)


IMPORT_CHARGES = """
import sys
from datetime import datetime, timedelta
from hub.ledger import Ledger
url, cluster, start = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
with Ledger(url, cluster=cluster) as ledger:
    for job_id, user, counts, seconds in (("990001", "bob", {"h200": 1}, 1800), ("990002", "alice", {"a100": 2}, 3600)):
        ledger.import_final_charge(cluster, job_id, user, "vision-lab", counts, start,
                                   start + timedelta(seconds=seconds), seconds)
"""


@pytest.fixture(scope="module")
def charges(portal) -> None:
    """Two finished jobs on vision-lab (bob's and alice's), as the reconciler imports them
    from sacct, written to the hub's ledger by the installed package (the import is not
    the API's part)."""
    cluster = json.loads((portal.state_dir / "hub" / "demo-config.json").read_text())["cluster_name"]
    subprocess.run(
        [sys.executable, "-c", IMPORT_CHARGES, _ledger_url(portal), cluster, CHARGE_START.isoformat()],
        cwd="/",
        check=True,
        timeout=60,
    )  # the installed package, not the checkout


# --- every endpoint x every caller ----------------------------------------------------------------------

ENDPOINTS = {
    "list": ("GET", "/projects", None),
    "project": ("GET", "/projects/vision-lab", None),
    "charges": ("GET", "/projects/vision-lab/charges", None),
    "charges-csv": ("GET", "/projects/vision-lab/charges?format=csv", None),
    # state-neutral writes: bob's role and cap as they are; a member that does not exist
    "put-member": ("PUT", "/projects/vision-lab/members/bob", {"role": "member", "cap_gpu_hours": 20}),
    "delete-member": ("DELETE", "/projects/vision-lab/members/nobody", None),
    "cap": ("POST", "/projects/vision-lab/members/bob/cap", {"cap_gpu_hours": 20, "reason": "API test: unchanged"}),
    "preview": ("POST", "/preview", {**BOB_H200, "gpus": 1, "hours": 1}),
    # vision-lab is not a course: the lab hours' role check comes first, then "not a course" (409)
    "lab-hours-get": ("GET", "/projects/vision-lab/lab-hours", None),
    "lab-hours": ("POST", "/projects/vision-lab/lab-hours", {"on": False}),
}
# 403: no credentials or no hpchub scope; 404: a project the caller may not see (as if unknown);
# 400 on preview: vision-lab is not one of the caller's projects (the spawn's own answer).
EXPECTED = {
    #                anonymous other-project member member-token pi  admin server-token service
    "list":          (403,      200,          200,   200,         200, 200,  403,         403),
    "project":       (403,      404,          200,   200,         200, 200,  403,         403),
    "charges":       (403,      404,          200,   200,         200, 200,  403,         403),
    "charges-csv":   (403,      404,          200,   200,         200, 200,  403,         403),
    "put-member":    (403,      404,          403,   403,         200, 200,  403,         403),
    "delete-member": (403,      404,          403,   403,         404, 404,  403,         403),
    "cap":           (403,      404,          403,   403,         200, 200,  403,         403),
    "preview":       (403,      400,          200,   200,         200, 400,  403,         403),
    "lab-hours-get": (403,      404,          409,   409,         409, 409,  403,         403),
    "lab-hours":     (403,      404,          403,   403,         403, 409,  403,         403),
}  # fmt: skip
CALLERS = ("anonymous", "other-project", "member", "member-token", "pi", "admin", "server-token", "service")
MATRIX = [
    pytest.param(endpoint, caller, EXPECTED[endpoint][i], id=f"{endpoint}-{caller}")
    for endpoint in ENDPOINTS
    for i, caller in enumerate(CALLERS)
]


@pytest.mark.parametrize(("endpoint", "caller", "status"), MATRIX)
def test_endpoint_by_caller(portal, callers, charges, endpoint, caller, status):
    method, path, body = ENDPOINTS[endpoint]
    response = callers[caller].request(method, f"{portal.url}{V1}{path}", json=body, timeout=60)
    assert response.status_code == status, (response.status_code, response.text)
    if status >= 400:
        error = response.json()
        assert error["status"] == status and error["message"]
    if status == 404 and caller != "pi" and caller != "admin":
        assert response.json()["message"] == "no project 'vision-lab'"


def test_an_invisible_project_answers_exactly_like_an_unknown_one(portal, users):
    hidden = users["carol"].get(f"{portal.url}{V1}/projects/vision-lab", timeout=30)
    unknown = users["carol"].get(f"{portal.url}{V1}/projects/no-such-lab", timeout=30)
    assert (hidden.status_code, unknown.status_code) == (404, 404)
    assert hidden.json()["message"].replace("vision-lab", "X") == unknown.json()["message"].replace("no-such-lab", "X")


def test_cookie_writes_and_cross_site_reads_need_the_xsrf_header(portal, hpchub, users):
    """JupyterHub's rule: a plain GET with the cookie is a page view; a write, or a script's
    fetch (Sec-Fetch-Mode: cors), needs X-XSRFToken."""
    session = requests.Session()
    session.cookies.update(users["alice"].cookies)
    before = _usage(portal, hpchub, "vision-lab")
    put = session.put(f"{portal.url}{V1}/projects/vision-lab/members/zed", json={"role": "member"}, timeout=30)
    assert put.status_code == 403, put.text
    fetch = session.get(f"{portal.url}{V1}/projects", headers={"Sec-Fetch-Mode": "cors"}, timeout=30)
    assert fetch.status_code == 403, fetch.text
    assert _usage(portal, hpchub, "vision-lab") == before


def test_users_keep_self_and_get_both_hpchub_scopes(portal, users):
    me = users["bob"].get(f"{portal.api}/user", timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "bob"
    scopes = set(me.json()["scopes"])
    assert {"custom:hpchub:read", "custom:hpchub:manage"} <= scopes
    assert "servers!user=bob" in scopes and "read:users!user=bob" in scopes  # what "self" expands to


def test_a_read_only_token_reads_but_cannot_manage(portal, users):
    token = _token_session(_make_token(portal, users["alice"], "alice", scopes=["custom:hpchub:read"]))
    assert token.get(f"{portal.url}{V1}/projects/vision-lab", timeout=30).status_code == 200
    put = token.put(
        f"{portal.url}{V1}/projects/vision-lab/members/bob", json={"role": "member", "cap_gpu_hours": 20}, timeout=30
    )
    assert put.status_code == 403 and "custom:hpchub:manage" in put.json()["message"]


# --- what each caller sees -------------------------------------------------------------------------


def test_pi_and_admin_see_the_figures_of_hpchub_usage(portal, hpchub, users, charges):
    expected = _usage(portal, hpchub, "vision-lab")
    for name in ("alice", "admin"):
        answer = users[name].get(f"{portal.url}{V1}/projects/vision-lab", timeout=30)
        assert answer.status_code == 200 and answer.json() == expected, name


def test_member_sees_the_totals_and_only_their_own_row(portal, hpchub, users, charges):
    expected = _usage(portal, hpchub, "vision-lab")
    answer = users["bob"].get(f"{portal.url}{V1}/projects/vision-lab", timeout=30).json()
    assert answer == {**expected, "members": [m for m in expected["members"] if m["user"] == "bob"]}


def _figures_close(api: dict, cli: dict, tolerance: float = 1e-3) -> bool:
    if api.keys() != cli.keys() or len(api["members"]) != len(cli["members"]):
        return False
    for mine, theirs in [(api, cli), *zip(api["members"], cli["members"])]:
        for key, value in mine.items():
            if key == "members":
                continue
            if isinstance(value, float) and isinstance(theirs[key], float):
                if abs(value - theirs[key]) > tolerance:
                    return False
            elif value != theirs[key]:
                return False
    return True


def test_project_lists(portal, hpchub, users):
    def listed(name):
        response = users[name].get(f"{portal.url}{V1}/projects", timeout=30)
        assert response.status_code == 200, response.text
        return {project["project"]: project for project in response.json()}

    assert {"vision-lab", "cs101", "tiny-lab"} <= set(listed("admin"))  # and what earlier tests made
    # A session may run meanwhile (its cost so far grows between the two reads): compare to 0.001 GPU-h.
    assert _figures_close(listed("admin")["cs101"], _usage(portal, hpchub, "cs101"))
    bob = listed("bob")
    assert set(bob) == {"vision-lab"} and [m["user"] for m in bob["vision-lab"]["members"]] == ["bob"]
    assert set(listed("erin")) == {"tiny-lab"}
    tom = listed("tom")  # a ta reads every member of the course
    assert {m["user"] for m in tom["cs101"]["members"]} == {"dave", "tom", "carol"}
    carol = listed("carol")
    assert [m["user"] for m in carol["cs101"]["members"]] == ["carol"]


def test_charges_json_and_csv(portal, hpchub, users, charges):
    url = f"{portal.url}{V1}/projects/vision-lab/charges"
    everything = users["alice"].get(url, timeout=30).json()
    jobs = {charge["job_id"]: charge for charge in everything["charges"]}
    assert {"990001", "990002"} <= set(jobs)
    assert jobs["990001"]["gpu_hours"] == 0.5 and jobs["990001"]["kind"] == "final"
    assert jobs["990002"]["gpu_hours"] == 1.0 and jobs["990002"]["gpu_type"] == "a100"
    assert jobs["990001"]["start"] == CHARGE_START.isoformat()
    own = users["bob"].get(url, timeout=30).json()
    assert {charge["user"] for charge in own["charges"]} == {"bob"}

    response = users["alice"].get(url, params={"format": "csv"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "vision-lab-charges.csv" in response.headers["Content-Disposition"]
    cli = hpchub("charges", "vision-lab", "--csv", "--db-url", _ledger_url(portal)).stdout
    assert response.text == cli
    rows = list(csv.DictReader(io.StringIO(users["bob"].get(url, params={"format": "csv"}, timeout=30).text)))
    assert rows and {row["user"] for row in rows} == {"bob"}


# --- bad input: 400 naming the field ----------------------------------------------------------------

BAD_INPUT = [
    pytest.param("GET", "/projects/Vision_Lab", None, "project", id="project-name"),
    pytest.param("GET", "/projects/vision-lab/charges?format=xml", None, "format", id="charges-format"),
    pytest.param("PUT", "/projects/vision-lab/members/Bad!User", {"role": "member"}, "user", id="user-name"),
    pytest.param("PUT", "/projects/vision-lab/members/zed", {"role": "boss"}, "role", id="unknown-role"),
    pytest.param("PUT", "/projects/vision-lab/members/zed", {"cap_gpu_hours": 1}, "role", id="missing-role"),
    pytest.param(
        "PUT",
        "/projects/vision-lab/members/zed",
        {"role": "member", "cap_gpu_hours": -1},
        "cap_gpu_hours",
        id="negative-cap",
    ),
    pytest.param(
        "PUT",
        "/projects/vision-lab/members/zed",
        {"role": "member", "cap_gpu_hours": "lots"},
        "cap_gpu_hours",
        id="cap-not-a-number",
    ),
    pytest.param(
        "PUT", "/projects/vision-lab/members/zed", {"role": "member", "colour": "red"}, "colour", id="unknown-field"
    ),
    pytest.param("PUT", "/projects/vision-lab/members/zed", ["member"], "body", id="body-not-an-object"),
    pytest.param(
        "POST",
        "/projects/vision-lab/members/bob/cap",
        {"cap_gpu_hours": 1.00001, "reason": "x"},
        "cap_gpu_hours",
        id="cap-five-decimals",
    ),
    pytest.param(
        "POST",
        "/projects/vision-lab/members/bob/cap",
        {"cap_gpu_hours": True, "reason": "x"},
        "cap_gpu_hours",
        id="cap-boolean",
    ),
    pytest.param("POST", "/projects/vision-lab/members/bob/cap", {"cap_gpu_hours": 5}, "reason", id="no-reason"),
    pytest.param(
        "POST",
        "/projects/vision-lab/members/bob/cap",
        {"cap_gpu_hours": 5, "reason": "a\nb"},
        "reason",
        id="reason-two-lines",
    ),
    pytest.param("POST", "/preview", {**BOB_H200, "hours": -1}, "hours", id="preview-negative-hours"),
    pytest.param("POST", "/preview", {**BOB_H200, "hours": 0.3}, "hours", id="preview-hours-not-quarter"),
    pytest.param("POST", "/preview", {**BOB_H200, "hours": 9}, "hours", id="preview-over-maxtime"),
    pytest.param("POST", "/preview", {**BOB_H200, "gpus": 9}, "gpus", id="preview-too-many-gpus"),
    pytest.param("POST", "/preview", {**BOB_H200, "gpu_type": "v100"}, "gpu_type", id="preview-gpu-type"),
    pytest.param(
        "POST", "/preview", {**BOB_H200, "partition": "gpu\n#SBATCH -A x"}, "partition", id="preview-injection"
    ),
    pytest.param("POST", "/preview", {**BOB_H200, "options": "--comment=x"}, "options", id="preview-unknown-key"),
    pytest.param("POST", "/preview", {**BOB_H200, "project": "cs101"}, "project", id="preview-not-my-project"),
    pytest.param("POST", "/preview", {**BOB_H200, "environment": "nope"}, "environment", id="preview-environment"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_INPUT)
def test_bad_input_is_400_naming_the_field(portal, hpchub, users, method, path, body, field):
    caller = users["bob"] if path == "/preview" else users["alice"]
    before = _usage(portal, hpchub, "vision-lab")
    response = caller.request(method, f"{portal.url}{V1}{path}", json=body, timeout=60)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith(f"{field}:"), message
    assert _usage(portal, hpchub, "vision-lab") == before  # nothing changed


def test_body_that_is_not_json_is_400(portal, users):
    response = users["bob"].post(
        f"{portal.url}{V1}/preview", data="{not json", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400 and "JSON" in response.json()["message"]


# --- managing members and caps ------------------------------------------------------------------------


def test_pi_adds_changes_and_removes_a_member(portal, hpchub, users):
    alice = users["alice"]
    url = f"{portal.url}{V1}/projects/vision-lab/members/zed"
    created = alice.put(url, json={"role": "member", "cap_gpu_hours": 2}, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "user": "zed",
        "role": "member",
        "cap_gpu_hours": 2.0,
        "used_gpu_hours": 0.0,
        "held_gpu_hours": 0.0,
    }
    again = alice.put(url, json={"role": "member", "cap_gpu_hours": 2}, timeout=30)
    assert (again.status_code, again.json()) == (200, created.json())
    promoted = alice.put(url, json={"role": "manager"}, timeout=30)
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    assert promoted.json()["cap_gpu_hours"] == 2.0  # carried over
    capped = alice.post(f"{url}/cap", json={"cap_gpu_hours": 3.25, "reason": "more for the deadline"}, timeout=30)
    assert capped.status_code == 200 and capped.json()["cap_gpu_hours"] == 3.25
    rows = {m["user"]: m for m in _usage(portal, hpchub, "vision-lab")["members"]}
    assert rows["zed"] == {**capped.json()}
    assert alice.delete(url, timeout=30).status_code == 204
    assert "zed" not in {m["user"] for m in _usage(portal, hpchub, "vision-lab")["members"]}
    gone = alice.delete(url, timeout=30)
    assert gone.status_code == 404 and gone.json()["message"].startswith("user:")


def test_nobody_but_an_admin_changes_their_own_membership_or_cap(portal, users):
    own = users["alice"].put(f"{portal.url}{V1}/projects/vision-lab/members/alice", json={"role": "member"}, timeout=30)
    assert own.status_code == 403 and "own" in own.json()["message"]
    cap = users["dave"].post(
        f"{portal.url}{V1}/projects/cs101/members/dave/cap", json={"cap_gpu_hours": 1000, "reason": "me"}, timeout=30
    )
    assert cap.status_code == 403 and "own" in cap.json()["message"]


def test_course_roles(portal, hpchub, users):
    cap_url = f"{portal.url}{V1}/projects/cs101/members/carol/cap"
    # the ta reads every member but may not change caps while no TA limit is set
    ta = users["tom"].post(cap_url, json={"cap_gpu_hours": 6, "reason": "project week"}, timeout=30)
    assert ta.status_code == 403 and "a ta may not change caps in cs101" in ta.json()["message"]
    ta_put = users["tom"].put(f"{portal.url}{V1}/projects/cs101/members/zoe", json={"role": "student"}, timeout=30)
    assert ta_put.status_code == 403
    # the student reads her own figures only, and changes nothing
    student = users["carol"].post(cap_url, json={"cap_gpu_hours": 6, "reason": "please"}, timeout=30)
    assert student.status_code == 403
    # the instructor raises and restores the student's cap
    raised = users["dave"].post(cap_url, json={"cap_gpu_hours": 6, "reason": "project week"}, timeout=30)
    assert raised.status_code == 200 and raised.json()["cap_gpu_hours"] == 6.0
    rows = {m["user"]: m for m in _usage(portal, hpchub, "cs101")["members"]}
    assert rows["carol"]["cap_gpu_hours"] == 6.0
    restored = users["dave"].post(cap_url, json={"cap_gpu_hours": 5, "reason": "back to normal"}, timeout=30)
    assert restored.status_code == 200 and restored.json()["cap_gpu_hours"] == 5.0
    # a pi of another project cannot see the course at all
    assert users["erin"].post(cap_url, json={"cap_gpu_hours": 6, "reason": "x"}, timeout=30).status_code == 404


def test_lab_hours_endpoint(portal, users):
    """Only cs101's instructor and admins switch its lab hours; bad bodies are 400 naming the field;
    switching on twice is 409; everyone in the course reads the state. Ends with the lab hours off."""
    url = f"{portal.url}{V1}/projects/cs101/lab-hours"
    try:
        assert users["dave"].get(url, timeout=30).json()["state"] == "off"
        for name in ("tom", "carol"):
            refused = users[name].post(url, json={"on": True, "minutes": 30}, timeout=30)
            assert refused.status_code == 403 and "only an instructor of cs101" in refused.json()["message"]
        assert users["erin"].post(url, json={"on": False}, timeout=30).status_code == 404
        for body, field in (({"on": True}, "minutes"), ({"on": "yes"}, "on"), ({"on": True, "minutes": 100000}, "minutes"),
                            ({"on": True, "minutes": 30, "nodes": "gpu01"}, "nodes")):  # fmt: skip
            bad = users["dave"].post(url, json=body, timeout=30)
            assert bad.status_code == 400 and bad.json()["message"].startswith(f"{field}:"), bad.text
        on = users["dave"].post(url, json={"on": True, "minutes": 30}, timeout=60)
        assert on.status_code == 200, on.text
        assert (on.json()["on"], on.json()["changed"], on.json()["reservation"]) == (True, True, "cs101-lab")
        assert "gpu03" in portal.slurm("scontrol", "show", "reservation", "cs101-lab")
        again = users["admin"].post(url, json={"on": True, "minutes": 30}, timeout=60)
        assert again.status_code == 409 and "on already" in again.json()["message"]
        assert users["carol"].get(url, timeout=30).json()["on"] is True
        off = users["dave"].post(url, json={"on": False}, timeout=60)
        assert off.status_code == 200 and (off.json()["on"], off.json()["changed"]) == (False, True)
        off_again = users["admin"].post(url, json={"on": False}, timeout=60)
        assert off_again.status_code == 200 and off_again.json()["changed"] is False
    finally:
        users["admin"].post(url, json={"on": False}, timeout=60)


# --- the preview --------------------------------------------------------------------------------------


def _preview(portal, session, options):
    response = session.post(f"{portal.url}{V1}/preview", json=options, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_preview_figures_match_hpchub_usage(portal, hpchub, users, charges):
    answer = _preview(portal, users["bob"], BOB_H200)
    usage = _usage(portal, hpchub, "vision-lab")
    bob = next(m for m in usage["members"] if m["user"] == "bob")
    cap_left = round(bob["cap_gpu_hours"] - bob["used_gpu_hours"] - bob["held_gpu_hours"], 4)
    sentences = {key: answer.pop(key) for key in ("summary", "left_now", "offers", "offer_text")}  # the form's
    assert sentences["summary"].startswith("This reserves up to 3.0 GPU-h (2 x h200 x 1.5 h). vision-lab has ")
    assert (sentences["offers"], sentences["offer_text"]) == ([], "")
    assert answer == {
        "project": "vision-lab",
        "user": "bob",
        "request": {
            "project": "vision-lab",
            "partition": "gpu",
            "gpu_type": "h200",
            "gpus": 2,
            "hours": 1.5,
            "environment": "default",
        },
        "allowed": True,
        "message": "",
        "cost_gpu_hours": 3.0,
        "project_remaining_gpu_hours": usage["remaining_gpu_hours"],
        "project_remaining_after_gpu_hours": round(usage["remaining_gpu_hours"] - 3.0, 4),
        "cap_remaining_gpu_hours": cap_left,
        "cap_remaining_after_gpu_hours": round(cap_left - 3.0, 4),
    }


def test_preview_weights_a100_and_accepts_the_spawn_body(portal, users):
    answer = _preview(portal, users["alice"], {"user_options": {**BOB_H200, "gpu_type": "a100", "gpus": 4, "hours": 1}})
    assert answer["cost_gpu_hours"] == 2.0 and answer["cap_remaining_gpu_hours"] is None  # alice has no cap


def test_preview_refusal_is_an_answer_not_an_error(portal, users):
    over_cap = _preview(portal, users["bob"], {**BOB_H200, "gpus": 4, "hours": 8})
    assert over_cap["allowed"] is False and over_cap["cost_gpu_hours"] == 32.0
    assert over_cap["message"].startswith("bob's cap in vision-lab has ")
    portal.set_remaining("tiny-lab", 0.25, "API preview test: the seeded 0.25 GPU-h")
    tiny = _preview(
        portal, users["erin"], {"project": "tiny-lab", "partition": "gpu", "gpu_type": "h200", "gpus": 1, "hours": 0.5}
    )
    assert tiny["allowed"] is False
    assert tiny["message"] == (
        "tiny-lab has 0.25 GPU-h left; this request needs 0.5 (1 x h200 x 0.5 h). Ask for fewer GPUs or hours."
    )
    assert (tiny["project_remaining_gpu_hours"], tiny["project_remaining_after_gpu_hours"]) == (0.25, -0.25)
