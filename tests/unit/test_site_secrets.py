"""Demo secrets are recognisable wherever they are copied, and a hub outside demo mode refuses
them (hub/site_secrets.py)."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from hub.site_secrets import (
    MARKER_SUFFIX,
    SiteConfigError,
    check_hub_secrets,
    demo_secret,
    is_demo_secret,
    secret_bytes,
    site_problems,
    write_demo_secret,
)

pytestmark = pytest.mark.unit


def test_demo_secrets_carry_their_tag_and_site_secrets_do_not() -> None:
    demo = demo_secret(32)
    assert len(demo) == 32 and is_demo_secret(demo) and demo != demo_secret(32)
    assert not any(is_demo_secret(secrets.token_bytes(32)) for _ in range(1000))
    assert not is_demo_secret(demo[:-1] + bytes([demo[-1] ^ 1]))  # one bit off: not a demo secret
    assert not is_demo_secret(b"") and not is_demo_secret(None)
    # as hex (the files, JUPYTERHUB_CRYPT_KEY) or base64, it is still recognised
    assert is_demo_secret(secret_bytes(demo.hex())) and is_demo_secret(secret_bytes(base64.urlsafe_b64encode(demo)))
    assert secret_bytes("not a secret at all!") is None or not is_demo_secret(secret_bytes("not a secret at all!"))


def test_write_demo_secret_creates_once_with_mode_0600_and_a_marker(tmp_path) -> None:
    path = tmp_path / "hub" / "crypt_key"
    text = write_demo_secret(path)
    assert is_demo_secret(bytes.fromhex(text)) and len(bytes.fromhex(text)) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "demo" in (tmp_path / "hub" / f"crypt_key{MARKER_SUFFIX}").read_text()
    assert write_demo_secret(path) == text  # kept
    older = tmp_path / "older_secret"
    older.write_text("ab" * 32)
    assert write_demo_secret(older) == "ab" * 32  # a file from before the tags is kept as it is


SITE = {
    "cookie_secret": secrets.token_bytes(32),
    "cookie_secret_file": None,
    "crypt_keys": [secrets.token_bytes(32)],
    "allow_insecure_issuer": False,
    "client_secret": secrets.token_hex(32),
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param({"allow_insecure_issuer": True}, "allow_insecure_issuer is for demo mode only", id="http-issuer"),
        pytest.param({"cookie_secret": demo_secret()}, "the cookie secret is a demo-generated one", id="cookie"),
        pytest.param({"crypt_keys": []}, "no crypt key: set JUPYTERHUB_CRYPT_KEY", id="no-crypt-key"),
        pytest.param(
            {"crypt_keys": [secrets.token_bytes(32), demo_secret()]},
            "JUPYTERHUB_CRYPT_KEY holds a demo-generated key",
            id="demo-crypt-key-rotated",
        ),
        pytest.param(
            {"client_secret": demo_secret().hex()},
            "the OpenID Connect client secret is the demo provider's",
            id="client",
        ),
    ],
)
def test_site_problems(change: dict, problem: str) -> None:
    assert site_problems(**SITE) == []
    [found] = site_problems(**(SITE | change))
    assert found.startswith(problem)


def test_a_cookie_secret_file_with_a_demo_marker_is_refused(tmp_path) -> None:
    path = tmp_path / "jupyterhub_cookie_secret"
    path.write_text(secrets.token_hex(32))
    assert site_problems(**(SITE | {"cookie_secret_file": str(path)})) == []
    (tmp_path / f"jupyterhub_cookie_secret{MARKER_SUFFIX}").write_text("demo")
    [problem] = site_problems(**(SITE | {"cookie_secret_file": str(path)}))
    assert "was generated for the demo" in problem


@pytest.fixture
def crypt_keys():
    from jupyterhub.crypto import CryptKeeper

    keeper = CryptKeeper.instance()
    before = list(keeper.keys)
    yield keeper
    keeper.keys = before


def _authenticator(demo_mode: bool, cookie_secret: bytes):
    config = Config()
    config.HPCHubSite.demo_mode = demo_mode
    app = SimpleNamespace(config=config, cookie_secret=cookie_secret, cookie_secret_file="", parent=None)
    return SimpleNamespace(parent=app, allow_insecure_issuer=True, client_secret="x")


def test_check_hub_secrets_refuses_outside_demo_mode_only(crypt_keys) -> None:
    crypt_keys.keys = [demo_secret()]
    check_hub_secrets(_authenticator(True, demo_secret()))  # the demo itself
    with pytest.raises(SiteConfigError) as refused:
        check_hub_secrets(_authenticator(False, demo_secret()))
    message = str(refused.value)
    assert message.startswith("hpchub refuses to start outside demo mode: ")
    for part in ("allow_insecure_issuer", "cookie secret is a demo-generated one", "JUPYTERHUB_CRYPT_KEY holds"):
        assert part in message
    crypt_keys.keys = [secrets.token_bytes(32)]
    site = _authenticator(False, secrets.token_bytes(32))
    site.allow_insecure_issuer = False
    check_hub_secrets(site)
    check_hub_secrets(SimpleNamespace(parent=None))  # not inside a hub: nothing to check
