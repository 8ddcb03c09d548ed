"""Ingress route resolution: path cleaning, segment-boundary prefixes and route matchers.

Built once per config generation; resolving a request only reads, so threads share it freely.
"""

import ipaddress
import posixpath
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qs

from hookaido.config.model import Matcher, Route


def clean_path(path: str) -> str:
    """Collapse ``//``, resolve ``.`` and ``..``, drop a trailing ``/``; empty becomes ``/``."""
    if not path:
        return "/"
    cleaned = posixpath.normpath("/" + path.lstrip("/"))
    # normpath keeps a leading "//" (POSIX allows it to mean something else); we do not.
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def path_matches(route_path: str, path: str) -> bool:
    """``/hooks`` matches ``/hooks`` and ``/hooks/x``, never ``/hooks-x``; ``/`` matches all."""
    if route_path == "/":
        return True
    return path == route_path or path.startswith(route_path + "/")


def request_host(host_header: str | None) -> str:
    """The Host header lower-cased, without port, IPv6 brackets or a trailing dot."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):
        end = host.find("]")
        host = host[1:end] if end != -1 else host[1:]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def host_pattern(pattern: str) -> str:
    """A ``host`` matcher entry in the form ``request_host`` gives requests."""
    return pattern.lower().rstrip(".")


def host_matches(patterns: tuple[str, ...], host: str) -> bool:
    """``patterns`` are already in ``host_pattern`` form."""
    if not host:
        return False
    for pattern in patterns:
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def peer_ip(remote_addr: str | None):
    """The TCP peer as an ``ip_address``, IPv4-mapped IPv6 unmapped; ``None`` if unparsable."""
    try:
        address = ipaddress.ip_address((remote_addr or "").strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class RequestFacts:
    """What the matchers look at. Host, headers, query and peer address are parsed only when
    a matcher asks, so a route table without such matchers costs nothing for them."""

    def __init__(self, method, path, host_header, headers, query_string, remote_addr):
        self.method = method
        self.path = clean_path(path)
        self._host_header = host_header
        self._headers = headers
        self._query_string = query_string
        self._remote_addr = remote_addr

    @cached_property
    def host(self) -> str:
        return request_host(self._host_header)

    @cached_property
    def headers(self) -> dict[str, list[str]]:
        """Lower-case name -> values."""
        by_name: dict[str, list[str]] = {}
        for name, value in self._headers.items():
            by_name.setdefault(name.lower(), []).append(value)
        return by_name

    @cached_property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self._query_string or "", keep_blank_values=True)

    @cached_property
    def remote_ip(self):
        return peer_ip(self._remote_addr)


class CompiledMatcher:
    """A route's ``match`` constraints with names, hosts and ``remote_ip`` prefixes
    normalised once, so a request only compares."""

    def __init__(self, matcher: Matcher):
        self.matcher = matcher
        self.methods = tuple(method.upper() for method in matcher.methods) or ("POST",)
        self.hosts = tuple(host_pattern(host) for host in matcher.hosts)
        self.headers = tuple((name.lower(), value) for name, value in matcher.headers)
        self.header_exists = tuple(name.lower() for name in matcher.header_exists)
        self.networks = tuple(
            ipaddress.ip_network(prefix, strict=False) for prefix in matcher.remote_ips
        )

    def matches_except_method(self, facts: RequestFacts) -> bool:
        matcher = self.matcher
        if self.hosts and not host_matches(self.hosts, facts.host):
            return False
        for name, wanted in self.headers:
            if not _header_has(facts.headers.get(name, ()), wanted):
                return False
        for name in self.header_exists:
            if name not in facts.headers:
                return False
        for key, wanted in matcher.query:
            if wanted not in facts.query.get(key, ()):
                return False
        for key in matcher.query_exists:
            if key not in facts.query:
                return False
        if self.networks:
            ip = facts.remote_ip
            if ip is None or not any(ip in network for network in self.networks):
                return False
        return True

    def matches_method(self, method: str) -> bool:
        return method in self.methods


def _header_has(values, wanted: str) -> bool:
    for value in values:
        if value == wanted:
            return True
        if any(part.strip() == wanted for part in value.split(",")):
            return True
    return False


@dataclass(frozen=True)
class Resolution:
    """The matched route, or ``None`` with the methods that would have matched (for 405)."""

    route: Route | None
    allowed: tuple[str, ...] = ()


class RouteTable:
    """The inbound routes in file order; outbound and internal routes are never matched."""

    def __init__(self, routes: tuple[Route, ...]):
        self.entries = [
            (route, CompiledMatcher(route.matcher))
            for route in routes
            if route.channel == "inbound"
        ]

    def resolve(self, facts: RequestFacts) -> Resolution:
        allowed: list[str] = []
        for route, matcher in self.entries:
            if not path_matches(route.path, facts.path):
                continue
            if not matcher.matches_except_method(facts):
                continue
            if matcher.matches_method(facts.method):
                return Resolution(route)
            allowed.extend(m for m in matcher.methods if m not in allowed)
        return Resolution(None, tuple(allowed))
