"""The development identity provider speaks real OpenID Connect (its own instance, free port)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_provider_protocol_checks():
    """Discovery, code flow with PKCE S256, ID token and userinfo claims, refresh, wrong password,
    a group change seen at the next login and refresh, and logs free of secrets."""
    script = Path(__file__).with_name("idp_protocol_check.py")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert ", 0 failed" in result.stdout
