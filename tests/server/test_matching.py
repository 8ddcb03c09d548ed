"""Request paths and hosts as route matching sees them."""

import pytest

from hookaido.server.matching import clean_path, host_matches, path_matches, request_host


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("", "/"),
        ("/", "/"),
        ("//", "/"),
        ("/a//b/", "/a/b"),
        ("/a/./b/../c", "/a/c"),
        ("/../../etc", "/etc"),
        ("//a", "/a"),
        ("a/b", "/a/b"),
    ],
)
def test_request_paths_are_cleaned(raw, cleaned):
    assert clean_path(raw) == cleaned


@pytest.mark.parametrize(
    ("route", "path", "matches"),
    [
        ("/", "/anything/at/all", True),
        ("/hooks", "/hooks", True),
        ("/hooks", "/hooks/x", True),
        ("/hooks", "/hooks-x", False),
        ("/hooks/a", "/hooks", False),
    ],
)
def test_route_paths_match_whole_segments(route, path, matches):
    assert path_matches(route, path) is matches


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Example.COM", "example.com"),
        ("example.com.:8443", "example.com"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[::1]", "::1"),
        ("", ""),
        (None, ""),
    ],
)
def test_request_host_drops_case_port_brackets_and_trailing_dot(header, host):
    assert request_host(header) == host


def test_wildcard_hosts_match_subdomains_only():
    assert host_matches(("*.example.com",), "a.example.com")
    assert not host_matches(("*.example.com",), "example.com")
    assert host_matches(("*",), "anything")
    assert not host_matches(("*",), "")
