"""The egress policy: scheme, rebinding protection, deny and allow rules by host, wildcard, CIDR."""

import pytest

from hookaido.config.model import EgressPolicy
from hookaido.egress import EgressDenied, EgressGuard, EgressUnresolved, is_public


def guard(answers: dict[str, list[str]] | None = None, **policy) -> EgressGuard:
    answers = answers or {}

    def resolver(host, port):
        if host not in answers:
            raise OSError("name does not resolve")
        return answers[host]

    return EgressGuard(EgressPolicy(**policy), resolver)


def test_https_only_refuses_plain_http_by_default():
    with pytest.raises(EgressDenied, match="https_only"):
        guard().check("http://203.0.113.9/hook")


def test_only_http_and_https_schemes_are_deliverable():
    with pytest.raises(EgressDenied, match="scheme"):
        guard().check("ftp://203.0.113.9/hook")


def test_approved_destination_carries_the_checked_addresses_path_and_host_header():
    checked = guard({"hooks.example.com": ["203.0.113.9", "2001:db8::9"]})

    destination = checked.check("https://Hooks.Example.com.:8443/in?x=1")

    assert destination.host == "hooks.example.com"
    assert destination.port == 8443
    assert destination.path == "/in?x=1"
    assert destination.host_header == "Hooks.Example.com.:8443"
    assert destination.addresses == ("203.0.113.9", "2001:db8::9")


def test_rebind_protection_denies_a_name_with_any_non_public_address():
    checked = guard({"mixed.example.com": ["203.0.113.9", "10.1.2.3"]})

    with pytest.raises(EgressDenied, match="not public"):
        checked.check("https://mixed.example.com/")


def test_allow_rules_do_not_exempt_from_rebind_protection():
    checked = guard({"internal.example.com": ["192.168.1.5"]}, allow=("internal.example.com",))

    with pytest.raises(EgressDenied, match="not public"):
        checked.check("https://internal.example.com/")


def test_non_public_addresses_follow_the_documented_ranges():
    from ipaddress import ip_address

    for text in (
        "127.0.0.1",
        "10.0.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "172.16.0.1",
        "192.0.0.1",
        "192.168.0.1",
        "198.18.0.1",
        "240.0.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "64:ff9b::1",
        "224.0.0.1",
    ):
        assert not is_public(ip_address(text)), text
    for text in ("203.0.113.9", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8"):
        assert is_public(ip_address(text)), text


def test_resolution_failure_is_retryable_not_a_denial():
    with pytest.raises(EgressUnresolved):
        guard().check("https://nowhere.example.com/")


def test_without_rebind_protection_or_cidr_rules_nothing_is_resolved():
    checked = guard(dns_rebind_protection=False, allow=("*.example.com",))

    destination = checked.check("https://a.example.com/")

    assert destination.addresses == ()


def test_deny_by_host_wildcard_and_cidr():
    answers = {"a.example.com": ["203.0.113.9"], "b.example.org": ["198.51.100.7"]}

    with pytest.raises(EgressDenied):
        guard(answers, deny=("a.example.com",)).check("https://a.example.com/")
    with pytest.raises(EgressDenied):
        guard(answers, deny=("*.example.com",)).check("https://a.example.com/")
    with pytest.raises(EgressDenied):
        guard(answers, deny=("198.51.100.0/24",)).check("https://b.example.org/")
    assert guard(answers, deny=("*.example.com",)).check("https://b.example.org/")


def test_wildcard_rule_matches_subdomains_but_not_the_apex():
    answers = {"example.com": ["203.0.113.1"], "api.example.com": ["203.0.113.2"]}
    checked = guard(answers, allow=("*.example.com",))

    assert checked.check("https://api.example.com/").host == "api.example.com"
    with pytest.raises(EgressDenied, match="not allowed"):
        checked.check("https://example.com/")


def test_cidr_allow_requires_every_resolved_address_inside():
    answers = {"inside.test": ["203.0.113.5"], "straddle.test": ["203.0.113.5", "198.51.100.1"]}
    checked = guard(answers, allow=("203.0.113.0/24",))

    assert checked.check("https://inside.test/").addresses == ("203.0.113.5",)
    with pytest.raises(EgressDenied, match="not allowed"):
        checked.check("https://straddle.test/")


def test_star_allows_any_host_and_ip_literals_are_checked_as_given():
    checked = guard(allow=("*",))

    assert checked.check("https://203.0.113.9/").addresses == ("203.0.113.9",)
    with pytest.raises(EgressDenied, match="not public"):
        checked.check("https://[::ffff:127.0.0.1]/")


def test_loopback_is_reachable_only_when_allowed_with_rebind_protection_off():
    checked = guard(allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False)

    assert checked.check("http://127.0.0.1:9/").addresses == ("127.0.0.1",)
    with pytest.raises(EgressDenied, match="not allowed"):
        checked.check("http://127.0.0.2:9/")
