"""Identity -> cluster account rules, and the issuer checks (pure)."""

from __future__ import annotations

import pytest

from hub.auth.mapping import MappingRefused, MappingRules, map_principal
from hub.auth.oidc import IssuerError, check_issuer_url, validate_discovery

pytestmark = pytest.mark.unit

RULES = MappingRules.from_config(
    {"uni.example": {}, "uni-a.example": {}, "uni-b.example": {"prefix": "b-"}, "lab.example": {"suffix": "-lab"}},
    {"Prof.Smith@uni.example": "psmith"},
    callable_rule=lambda principal: "guest1" if principal == "visitor@guest.example" else None,
)


@pytest.mark.parametrize(
    ("principal", "account"),
    [
        pytest.param("alice@uni.example", "alice", id="scoped-local-part"),
        pytest.param("ALICE@Uni.Example", "alice", id="case-folded"),
        pytest.param("alice@uni-a.example", "alice", id="institution-a"),
        pytest.param("alice@uni-b.example", "b-alice", id="institution-b-prefixed-never-same-account"),
        pytest.param("carol@lab.example", "carol-lab", id="suffix"),
        pytest.param("prof.smith@uni.example", "psmith", id="table-wins-over-scope"),
        pytest.param("visitor@guest.example", "guest1", id="callable-last-resort"),
    ],
)
def test_principal_maps_to_account(principal, account):
    assert map_principal(principal, RULES) == account


@pytest.mark.parametrize(
    ("principal", "words"),
    [
        pytest.param("alice@other.example", "other.example", id="unlisted-institution"),
        pytest.param("alice@uni.example.evil.com", "uni.example.evil.com", id="suffix-lookalike-domain"),
        pytest.param("alice", "no scoped principal", id="no-scope"),
        pytest.param("", "no scoped principal", id="empty"),
        pytest.param(None, "no scoped principal", id="missing-claim"),
        pytest.param("al ice@uni.example", "no scoped principal", id="space"),
        pytest.param("root;id@uni.example", "no scoped principal", id="shell-metacharacter"),
        pytest.param("Al.Ice@uni.example", "not a valid cluster account", id="dot-not-a-unix-name"),
        pytest.param("a@b@uni.example", "no scoped principal", id="two-ats"),
    ],
)
def test_refused_principals_say_why(principal, words):
    with pytest.raises(MappingRefused) as excinfo:
        map_principal(principal, RULES)
    assert words in str(excinfo.value)


@pytest.mark.parametrize(
    ("scopes", "table", "field"),
    [
        pytest.param({"Uni.Example": {}}, {}, "Uni.Example", id="upper-case-domain"),
        pytest.param({"uni.example": {"strip": True}}, {}, "prefix", id="unknown-rule-key"),
        pytest.param({}, {"a@uni.example": "Bad Name"}, "Bad Name", id="bad-table-account"),
    ],
)
def test_bad_rules_are_refused_at_start(scopes, table, field):
    with pytest.raises(ValueError) as excinfo:
        MappingRules.from_config(scopes, table)
    assert field in str(excinfo.value)


@pytest.mark.parametrize(
    ("issuer", "allow", "ok"),
    [
        pytest.param("https://login.uni.example", False, True, id="https"),
        pytest.param("http://127.0.0.1:5556", True, True, id="http-loopback-allowed"),
        pytest.param("http://localhost:5556", True, True, id="http-localhost-allowed"),
        pytest.param("http://127.0.0.1:5556", False, False, id="http-loopback-not-allowed"),
        pytest.param("http://login.uni.example", True, False, id="http-off-loopback-never"),
        pytest.param("ftp://login.uni.example", True, False, id="other-scheme"),
        pytest.param("login.uni.example", True, False, id="no-scheme"),
    ],
)
def test_issuer_url_rules(issuer, allow, ok):
    if ok:
        check_issuer_url(issuer, allow_insecure=allow)
    else:
        with pytest.raises(IssuerError):
            check_issuer_url(issuer, allow_insecure=allow)


GOOD_DOC = {
    "issuer": "https://idp.example",
    "authorization_endpoint": "https://idp.example/auth",
    "token_endpoint": "https://idp.example/token",
    "userinfo_endpoint": "https://idp.example/me",
    "code_challenge_methods_supported": ["S256"],
}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param({"issuer": "https://evil.example"}, "names issuer", id="issuer-mismatch"),
        pytest.param({"token_endpoint": "https://evil.example/token"}, "own origin", id="foreign-endpoint"),
        pytest.param({"userinfo_endpoint": None}, "no userinfo_endpoint", id="missing-endpoint"),
        pytest.param({"code_challenge_methods_supported": ["plain"]}, "PKCE", id="no-pkce-s256"),
    ],
)
def test_inconsistent_discovery_is_refused(change, words):
    with pytest.raises(IssuerError) as excinfo:
        validate_discovery("https://idp.example", {**GOOD_DOC, **change})
    assert words in str(excinfo.value)


def test_consistent_discovery_gives_the_endpoints():
    assert validate_discovery("https://idp.example", GOOD_DOC)["token_endpoint"] == "https://idp.example/token"
