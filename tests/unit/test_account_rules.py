"""Identity deny rules (pure): which mapped cluster accounts no login and no spawn may use, and
the ``sub``-based mapping that does not trust a user-editable claim."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from hub.auth.account_rules import (
    AccountDenied,
    AccountRules,
    DenyRule,
    HPCHubAccountRules,
    check_account,
)
from hub.auth.mapping import MappingRefused, map_subject

pytestmark = pytest.mark.unit

RULES = AccountRules(denied=frozenset({"root", "hpchub", "nobody"}), minimum_uid=1000)


@pytest.mark.parametrize(
    ("account", "uid", "rule"),
    [
        pytest.param("root", 0, DenyRule.DENY_LIST, id="root"),
        pytest.param("root", None, DenyRule.DENY_LIST, id="root-even-if-missing"),
        pytest.param("hpchub", 998, DenyRule.DENY_LIST, id="service-account"),
        pytest.param("hpchub", 5000, DenyRule.DENY_LIST, id="service-account-with-a-high-uid"),
        pytest.param("nobody", 65534, DenyRule.DENY_LIST, id="nobody-above-the-minimum"),
        pytest.param("daemon", 1, DenyRule.MINIMUM_UID, id="daemon"),
        pytest.param("mysql", 102, DenyRule.MINIMUM_UID, id="system-account"),
        pytest.param("sysuser", 999, DenyRule.MINIMUM_UID, id="uid-999"),
    ],
)
def test_denied_accounts_name_their_rule(account, uid, rule):
    with pytest.raises(AccountDenied) as excinfo:
        check_account(account, uid, RULES)
    assert excinfo.value.rule is rule
    assert account in str(excinfo.value) and rule.value in str(excinfo.value)
    if uid is not None and rule is DenyRule.MINIMUM_UID:
        assert f"UID {uid}" in str(excinfo.value) and "1000" in str(excinfo.value)


@pytest.mark.parametrize(
    ("account", "uid"),
    [
        pytest.param("alice", 1000, id="uid-1000"),
        pytest.param("bob", 1001, id="uid-1001"),
        pytest.param("newstudent", None, id="missing-account-keeps-the-no-cluster-account-page"),
    ],
)
def test_ordinary_accounts_pass(account, uid):
    check_account(account, uid, RULES)


def test_a_site_list_and_minimum_apply():
    rules = AccountRules(denied=frozenset({"guest"}), minimum_uid=5000)
    with pytest.raises(AccountDenied):
        check_account("guest", 7000, rules)
    with pytest.raises(AccountDenied):
        check_account("alice", 1000, rules)
    check_account("root-like", 6000, rules)


def test_the_default_configuration_denies_root_the_service_account_and_system_accounts():
    configured = HPCHubAccountRules(config=Config())
    rules = configured.rules()
    assert {"root", "hpchub", "nobody"} <= rules.denied
    assert rules.minimum_uid == 1000
    for name in ("denied_accounts", "minimum_uid"):
        trait = HPCHubAccountRules.class_traits()[name]
        assert trait.metadata.get("config") and "Default" in trait.help and "Example" in trait.help


def test_the_hubs_own_account_is_denied_whatever_the_list_says(monkeypatch):
    import hub.auth.account_rules as module

    monkeypatch.setattr(module, "running_account", lambda: "hubsvc")
    config = Config()
    config.HPCHubAccountRules.denied_accounts = {"guest"}
    assert HPCHubAccountRules(config=config).rules().denied == frozenset({"guest", "hubsvc"})


@pytest.mark.parametrize(
    ("subject", "account"),
    [
        pytest.param("8f14e45f-ceea-467a-9f3b-1234", "alice", id="registered-subject"),
    ],
)
def test_subject_mapping_uses_only_the_table(subject, account):
    assert map_subject(subject, {"8f14e45f-ceea-467a-9f3b-1234": "alice"}) == account


@pytest.mark.parametrize(
    ("subject", "table", "words"),
    [
        pytest.param("unknown-sub", {"s1": "alice"}, "not registered", id="unregistered"),
        pytest.param("", {"": "alice"}, "no subject", id="empty"),
        pytest.param(None, {}, "no subject", id="missing"),
        pytest.param("S1", {"s1": "alice"}, "not registered", id="case-sensitive"),
        pytest.param("s1", {"s1": "Bad Name"}, "not a valid cluster account", id="bad-account"),
    ],
)
def test_subject_mapping_refusals_say_why(subject, table, words):
    with pytest.raises(MappingRefused) as excinfo:
        map_subject(subject, table)
    assert words in str(excinfo.value)
