"""A course's settings through the real hub (issue 7): the instructor's TA extension limit
binds a TA's extension (refused above it with the rule named), ..."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.integration
V1 = "/hub/api/hpchub/v1"


def _logged_in(portal, name: str) -> requests.Session:
    session, response = portal.login(f"{name}@uni.example", f"{name}-demo")
    assert response.status_code == 200, (name, response.url)
    session.headers["X-XSRFToken"] = session.cookies.get("_xsrf", "")
    return session


@pytest.fixture(scope="module")
def staff(portal) -> dict[str, requests.Session]:
    return {name: _logged_in(portal, name) for name in ("dave", "tom", "carol")}


def _carol_cap(portal) -> float:
    return next(m for m in portal.usage("cs101")["members"] if m["user"] == "carol")["cap_gpu_hours"]


def test_a_ta_extends_within_the_instructors_limit_and_is_refused_above_it(portal, staff):
    settings_url = f"{portal.url}{V1}/projects/cs101/course-settings"
    cap_url = f"{portal.url}{V1}/projects/cs101/members/carol/cap"
    before = _carol_cap(portal)
    over_base = before - 5.0  # the demo's per-student cap is 5 GPU-h
    refused = staff["tom"].post(settings_url, json={"ta_extension_limit_gpu_hours": 1}, timeout=30)
    assert refused.status_code == 403 and "only an instructor of cs101" in refused.json()["message"]
    bad = staff["dave"].post(settings_url, json={"ta_extension_limit_gpu_hours": -1}, timeout=30)
    assert bad.status_code == 400 and bad.json()["message"].startswith("ta_extension_limit_gpu_hours:")
    answer = staff["dave"].post(settings_url, json={"ta_extension_limit_gpu_hours": over_base + 1,
                                                    "reason": "integration test"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] == ["ta-extension-limit"]
    try:
        within = staff["tom"].post(cap_url, json={"cap_gpu_hours": before + 1, "reason": "lab week"}, timeout=30)
        assert within.status_code == 200, within.text
        above = staff["tom"].post(cap_url, json={"cap_gpu_hours": before + 1.5, "reason": "more"}, timeout=30)
        assert above.status_code == 403
        assert "(course rule ta-extension-limit)" in above.json()["message"]
        assert _carol_cap(portal) == before + 1
        unlimited = staff["dave"].post(cap_url, json={"cap_gpu_hours": before + 3, "reason": "instructor"}, timeout=30)
        assert unlimited.status_code == 200, unlimited.text
        shown = staff["carol"].get(settings_url, timeout=30)
        assert shown.status_code == 200 and shown.json()["ta_extension_limit_gpu_hours"] == over_base + 1
    finally:
        staff["dave"].post(cap_url, json={"cap_gpu_hours": before, "reason": "test restores the cap"}, timeout=30)
        staff["dave"].post(settings_url, json={"ta_extension_limit_gpu_hours": None, "reason": "test"}, timeout=30)
