"""Institutional login against the real OpenID Connect provider, one test per outcome."""

from __future__ import annotations

import re
import time

import pytest

ARTIFACTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.integration


def _text(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _hub_user(portal, name):
    response = portal.session().get(f"{portal.api}/users/{name}", timeout=30)
    return response.json() if response.status_code == 200 else None


def test_bob_logs_in_and_lands_on_home_mapped_to_bob(portal):
    session, response = portal.login("bob@uni.example", "bob-demo")
    assert response.status_code == 200
    assert response.url == f"{portal.url}/hub/home"
    assert "Start My Server" in _text(response.text)
    me = session.get(f"{portal.api}/user", headers={"X-XSRFToken": session.cookies.get("_xsrf", "")}, timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "bob"


def _me(session):
    return session.get(
        f"{session.hub_api}/user", headers={"X-XSRFToken": session.cookies.get("_xsrf", "")}, timeout=30
    ).json()


def test_idp_groups_are_mirrored_and_admin_group_makes_admin(portal):
    session, _ = portal.login("bob@uni.example", "bob-demo")
    session.hub_api = portal.api
    me = _me(session)
    assert {"hpc-users", "vision-lab"} <= set(me["groups"]) and me["admin"] is False
    session, _ = portal.login("admin@uni.example", "admin-demo")
    session.hub_api = portal.api
    me = _me(session)
    assert me["name"] == "admin" and me["admin"] is True and "hpc-admins" in me["groups"]


def test_mallory_without_hpc_users_gets_403_with_reason(portal):
    _session, response = portal.login("mallory@uni.example", "mallory-demo")
    assert response.status_code == 403
    text = _text(response.text)
    assert "Your login worked" in text and "hpc-users" in text


def test_nocluster_gets_the_clear_page_and_cannot_spawn(portal):
    session, response = portal.login("nocluster@uni.example", "nocluster-demo")
    assert response.status_code == 200
    text = _text(response.text)
    assert "does not exist yet" in text and "https://hpc.uni.example/apply" in text
    assert "Start My Server" not in text
    spawn = portal.session().post(portal.spawn_path("nocluster"), json={"user_options": {}}, timeout=30)
    assert spawn.status_code == 403, spawn.text
    assert "does not exist yet" in spawn.json()["message"]


def test_other_institution_is_refused_and_never_mapped_to_alice(portal):
    alice_before = _hub_user(portal, "alice")
    session, response = portal.login("alice@other.example", "alice-demo")
    assert response.status_code == 403
    assert "other.example" in _text(response.text)
    assert "jupyterhub-session-id" not in session.cookies or session.get(
        f"{portal.url}/hub/home", timeout=30
    ).url.endswith("/hub/login")
    assert _hub_user(portal, "alice") == alice_before  # no login recorded for alice


def test_wrong_password_is_refused_by_the_provider(portal):
    session, response = portal.login("bob@uni.example", "not-bobs-password")
    assert response.status_code == 401
    assert "Invalid username or password" in _text(response.text)
    home = session.get(f"{portal.url}/hub/home", timeout=30)
    assert "/hub/login" in home.url


def test_tampered_state_is_refused(portal):
    session = __import__("requests").Session()
    form = session.get(f"{portal.url}/hub/oauth_login", timeout=30)
    action = re.search(r'<form[^>]*action="([^"]+)"', form.text).group(1)
    from urllib.parse import parse_qs, urlencode, urljoin, urlparse

    response = session.post(
        urljoin(form.url, action),
        data={"username": "bob@uni.example", "password": "bob-demo"},
        allow_redirects=False,
        timeout=30,
    )
    # Follow the provider's redirects by hand until it sends us back to the hub's callback.
    for _ in range(10):
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(f"{portal.url}/hub/oauth_callback"):
            break
        response = session.get(location, allow_redirects=False, timeout=30)
    query = parse_qs(urlparse(location).query)
    query["state"] = ["eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ"]  # {"state_id": "forged"}
    callback = session.get(
        f"{portal.url}/hub/oauth_callback?" + urlencode({k: v[0] for k, v in query.items()}), timeout=30
    )
    assert callback.status_code in (400, 403), callback.status_code
    assert "/hub/home" not in callback.url


def test_group_removed_at_the_idp_stops_the_next_spawn_without_new_login(portal):
    session, response = portal.login("erin@uni.example", "erin-demo")
    assert response.url.endswith("/hub/home")
    original = ["hpc-users", "tiny-lab"]
    try:
        portal.set_idp_groups("erin@uni.example", ["tiny-lab"])
        spawn = portal.session().post(
            portal.spawn_path("erin"),
            json={"user_options": {"project": "tiny-lab", "gpu_type": "a100", "gpus": 1, "hours": 0.25}},
            timeout=30,
        )
        assert spawn.status_code == 403, spawn.text
        assert not portal.jobs() or all("user=erin" not in job["comment"] for job in portal.jobs().values())
    finally:
        portal.set_idp_groups("erin@uni.example", original)
    session, response = portal.login("erin@uni.example", "erin-demo")
    assert response.url.endswith("/hub/home")


@pytest.mark.browser
def test_browser_login_as_bob_lands_on_home(portal):
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{portal.url}/hub/oauth_login")
            page.fill("input[name=username]", "bob@uni.example")
            page.fill("input[name=password]", "bob-demo")
            page.screenshot(path=str(ARTIFACTS / "login-form.png"))
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{portal.url}/hub/home", timeout=30000)
            time.sleep(0.5)
            page.screenshot(path=str(ARTIFACTS / "home-bob.png"), full_page=True)
            assert "bob" in page.content()
        finally:
            browser.close()
