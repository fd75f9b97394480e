"""The environments pages in a real browser (Playwright driving Debian's chromium) on the real
cluster: alice (vision-lab's pi) is refused with the message beside the field, then creates an
environment from an uploaded requirements.txt and watches its build log stream until the Slurm job
ends; bob (member) sees the environments without any control; carol (not a member) gets 404.

Screenshots: test-artifacts/envs-*.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [pytest.mark.integration, pytest.mark.browser]

ENV = "webenv"
BUILD_TIMEOUT_MS = 300_000


def _envs_url(portal) -> str:
    return f"{portal.url}/hub/hpchub/projects/vision-lab/environments"


@pytest.fixture(scope="module")
def cleanup(portal):
    config = str(portal.state_dir / "hub" / "jupyterhub_config.py")
    yield
    portal.ledger_cli("--config", config, "env", "remove", "vision-lab", ENV, check=False)


@pytest.fixture(scope="module")
def built_in_browser(portal, log_in, cleanup, tmp_path_factory) -> dict:
    """alice creates vision-lab/webenv on the page (upload) and watches the build to its end."""
    page = log_in("alice")
    page.goto(f"{portal.url}/hub/hpchub/projects/vision-lab")
    page.click("#hpchub-environments-link")
    page.wait_for_url(_envs_url(portal))
    spec = tmp_path_factory.mktemp("envpage") / "requirements.txt"
    spec.write_text("# from the page\nhpchub-hello==1.0\n")
    page.fill("#hpchub-env-name", ENV)
    page.set_input_files("#hpchub-env-file", str(spec))
    with page.expect_navigation():
        page.click("#hpchub-env-submit")
    assert page.url == f"{_envs_url(portal)}/{ENV}/1"
    first_state = page.get_attribute("#hpchub-build", "data-state")
    first_log = page.text_content("#hpchub-build-log")
    page.wait_for_selector('#hpchub-build:not([data-state="building"])', timeout=BUILD_TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "envs-build-alice.png"), full_page=True)
    return {
        "page": page,
        "first_state": first_state,
        "first_log": first_log,
        "state": page.get_attribute("#hpchub-build", "data-state"),
        "log": page.text_content("#hpchub-build-log"),
        "result": page.text_content("#hpchub-build-result"),
    }


@pytest.mark.parametrize(
    ("name", "spec", "field", "message"),
    [
        pytest.param("Bad Name", "hpchub-hello==1.0\n", "name", "must be 1-32 characters", id="name"),
        pytest.param(
            "refused",
            "hpchub-hello>=1\n",
            "spec",
            "spec line 1 ('hpchub-hello>=1'): every package must be pinned",
            id="unpinned",
        ),
        pytest.param("refused", "hpchub-hello==1.0 ; rm -rf /\n", "spec", "environment markers", id="marker"),
        pytest.param("refused", "no-such-package==1.0\n", "spec", "unknown package 'no-such-package'", id="unknown"),
    ],
)
def test_alice_sees_a_refusal_beside_its_field_and_no_job_starts(portal, log_in, name, spec, field, message) -> None:
    jobs_before = set(portal.jobs())
    page = log_in("alice")
    page.goto(_envs_url(portal))
    page.fill("#hpchub-env-name", name)
    page.fill("#hpchub-env-spec", spec)
    with page.expect_navigation() as navigation:
        page.click("#hpchub-env-submit")
    assert navigation.value.status == 400
    assert message in page.text_content(f"#hpchub-env-{field}-error")
    assert page.get_attribute(f"#hpchub-env-{field}", "aria-invalid") == "true"
    assert page.input_value("#hpchub-env-name") == name  # what was typed stays for the correction
    assert set(portal.jobs()) == jobs_before
    assert not (portal.state_dir / "projects" / "vision-lab" / "envs" / "refused").exists()


@pytest.mark.parametrize(
    ("file_name", "text"),
    [("environment.yml", "name: lab\n"), ("requirements.txt", "dependencies:\n  - numpy=2.1\n")],
    ids=["by-name", "by-content"],
)
def test_an_environment_yml_upload_is_refused_saying_why(portal, log_in, tmp_path, file_name, text) -> None:
    jobs_before = set(portal.jobs())
    upload = tmp_path / file_name
    upload.write_text(text)
    page = log_in("alice")
    page.goto(_envs_url(portal))
    page.fill("#hpchub-env-name", "refused")
    page.set_input_files("#hpchub-env-file", str(upload))
    with page.expect_navigation() as navigation:
        page.click("#hpchub-env-submit")
    assert navigation.value.status == 400
    assert "a conda environment.yml cannot be built on this site" in page.text_content("#hpchub-env-spec-error")
    assert set(portal.jobs()) == jobs_before


def test_alice_watches_the_build_log_stream_until_the_job_ends(built_in_browser) -> None:
    assert built_in_browser["first_state"] == "building"  # the page opened while the job was pending or running
    assert "is ready" not in built_in_browser["first_log"]
    assert built_in_browser["state"] == "ready", built_in_browser["log"]
    assert "hpchub: vision-lab/webenv version 1 is ready" in built_in_browser["log"]  # followed to the end
    assert "Version 1 is ready" in built_in_browser["result"]
    assert "ready" in built_in_browser["page"].text_content("#hpchub-build-state")


def test_the_list_shows_the_ready_default_with_controls_for_alice(portal, built_in_browser) -> None:
    page = built_in_browser["page"]
    page.click("#hpchub-build-back")
    row = page.locator(f'.hpchub-env[data-environment="{ENV}"] tr.hpchub-env-version[data-version="1"]')
    assert row.get_attribute("data-state") == "ready" and "v1 (default)" in row.text_content()
    assert row.locator(".hpchub-env-remove").count() == 1
    assert page.locator("#hpchub-env-create").count() == 1
    page.screenshot(path=str(ARTIFACTS / "envs-list-alice.png"), full_page=True)


def test_a_failed_rebuild_shows_its_log_and_keeps_the_default(portal, log_in, built_in_browser) -> None:
    wheelhouse = portal.state_dir / "wheelhouse"
    broken = wheelhouse / "hpchub_broken-1.0-py3-none-any.whl"
    broken.write_text("not a zip file\n")  # in the wheelhouse, so refused only by pip inside the job
    os.chmod(broken, 0o644)
    try:
        page = log_in("alice")
        page.goto(_envs_url(portal))
        page.click(f'.hpchub-env[data-environment="{ENV}"] .hpchub-env-rebuild')  # fills the name
        assert page.input_value("#hpchub-env-name") == ENV
        page.fill("#hpchub-env-spec", "hpchub-hello==1.0\nhpchub-broken==1.0\n")
        with page.expect_navigation():
            page.click("#hpchub-env-submit")
        assert page.url == f"{_envs_url(portal)}/{ENV}/2"
        page.wait_for_selector('#hpchub-build:not([data-state="building"])', timeout=BUILD_TIMEOUT_MS)
    finally:
        broken.unlink()
    assert page.get_attribute("#hpchub-build", "data-state") == "failed"
    assert "The build failed" in page.text_content("#hpchub-build-result")
    assert "is invalid" in page.text_content("#hpchub-build-log")
    page.reload()
    assert "v1 stays the default" in page.text_content("#hpchub-build-result")
    page.goto(_envs_url(portal))
    env = page.locator(f'.hpchub-env[data-environment="{ENV}"]')
    assert env.locator(".hpchub-env-default").text_content() == "v1"
    assert env.locator('tr[data-version="2"]').get_attribute("data-state") == "failed"
    page.screenshot(path=str(ARTIFACTS / "envs-failed-alice.png"), full_page=True)


@pytest.mark.parametrize("width", [1280, 390], ids=["1280px", "390px"])
def test_bob_sees_the_environments_without_controls(portal, log_in, built_in_browser, width) -> None:
    page = log_in("bob", width)
    response = page.goto(_envs_url(portal))
    assert response.status == 200
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # wide tables scroll in their box
    row = page.locator(f'.hpchub-env[data-environment="{ENV}"] tr.hpchub-env-version[data-version="1"]')
    assert row.get_attribute("data-state") == "ready"
    assert page.locator("#hpchub-env-create").count() == 0
    assert page.locator(".hpchub-env-remove, .hpchub-env-rebuild").count() == 0
    assert "members use environments" in page.text_content(".hpchub-project-meta")
    page.screenshot(path=str(ARTIFACTS / f"envs-list-bob-{width}.png"), full_page=True)
    response = page.goto(f"{_envs_url(portal)}/{ENV}/1")
    assert response.status == 200 and "is ready" in page.text_content("#hpchub-build-log")
    # a member's form post (with a valid XSRF token) is refused all the same
    answer = page.evaluate(
        """async (url) => { const r = await fetch(url, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/x-www-form-urlencoded"},
        body: "name=x&spec=hpchub-hello%3D%3D1.0&_xsrf=" + encodeURIComponent(window.jhdata.xsrf_token)});
        return [r.status, await r.text()]; }""",
        _envs_url(portal),
    )
    assert answer[0] == 403 and "a member of vision-lab may not change its environments" in answer[1]


@pytest.mark.parametrize("path", ["", f"/{ENV}/1"], ids=["list", "build"])
def test_an_outsider_gets_404(portal, log_in, built_in_browser, path) -> None:
    page = log_in("carol")
    response = page.goto(f"{_envs_url(portal)}{path}")
    assert response.status == 404
