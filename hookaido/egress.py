"""The egress policy for push delivery: which URLs a deliverer may reach, and at which address.

A check resolves the host once and returns the addresses it approved; the caller connects to
exactly those, so a DNS answer that changes between check and connect cannot reach elsewhere.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from hookaido.config.model import EgressPolicy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NON_PUBLIC_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "240.0.0.0/4",
        "::/96",
        "64:ff9b::/96",
        "fc00::/7",
    )
)


class EgressDenied(Exception):
    """The policy forbids the target; delivery must not be retried (``policy_denied``)."""


class EgressUnresolved(Exception):
    """The target's host name could not be resolved; a later attempt may succeed."""


@dataclass(frozen=True)
class Destination:
    """An approved target: where to connect and what to tell the server.

    ``addresses`` is empty when the policy needed no resolution; connect by ``host`` then.
    """

    scheme: str
    host: str  # lower-cased, without a trailing dot or IPv6 brackets
    port: int
    path: str  # path plus query, as sent in the request line
    host_header: str  # the Host header value of the original URL
    addresses: tuple[str, ...] = ()


def unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    address = unmapped(address)
    if (
        address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
    ):
        return False
    return not any(address in network for network in NON_PUBLIC_NETWORKS)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    return list(seen)


@dataclass(frozen=True)
class _Rules:
    hosts: tuple[str, ...]  # exact names, "*" or "*.suffix"
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, rules: tuple[str, ...]) -> "_Rules":
        hosts: list[str] = []
        networks: list[IPNetwork] = []
        for rule in rules:
            text = rule.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                hosts.append(text)
        return cls(tuple(hosts), tuple(networks))

    def match_host(self, host: str) -> bool:
        for rule in self.hosts:
            if rule == "*" or rule == host:
                return True
            if rule.startswith("*.") and host.endswith(rule[1:]):
                return True
        return False

    def contains(self, address: IPAddress) -> bool:
        address = unmapped(address)
        return any(address in network for network in self.networks)


class EgressGuard:
    """Applies one ``EgressPolicy``. ``resolver(host, port) -> [address, ...]`` is swappable."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Callable[[str, int], list[str]] | None = None,
    ):
        self.policy = policy
        self.resolver = resolver or system_resolver
        self._allow = _Rules.parse(policy.allow)
        self._deny = _Rules.parse(policy.deny)

    def check(self, url: str) -> Destination:
        """Approve ``url`` or raise ``EgressDenied`` / ``EgressUnresolved``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise EgressDenied(f"scheme {scheme!r} is not http or https")
        if scheme == "http" and self.policy.https_only:
            raise EgressDenied("plain http is refused by egress https_only")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise EgressDenied("the target URL has no host")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise EgressDenied(f"the target URL has an invalid port: {exc}") from exc

        addresses = self._addresses(host, port)
        self._check_addresses(addresses)
        if self._deny.match_host(host):
            raise EgressDenied(f"host {host!r} is denied by egress policy")
        if self._allow.hosts or self._allow.networks:
            self._check_allowed(host, addresses)

        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return Destination(
            scheme=scheme,
            host=host,
            port=port,
            path=path,
            host_header=parts.netloc.rsplit("@", 1)[-1],
            addresses=tuple(str(address) for address in addresses),
        )

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if not (self.policy.dns_rebind_protection or self._allow.networks or self._deny.networks):
            return []
        try:
            found = self.resolver(host, port)
        except OSError as exc:
            raise EgressUnresolved(f"cannot resolve {host!r}: {exc}") from exc
        if not found:
            raise EgressUnresolved(f"{host!r} resolved to no address")
        return [ipaddress.ip_address(address) for address in found]

    def _check_addresses(self, addresses: list[IPAddress]) -> None:
        for address in addresses:
            if self.policy.dns_rebind_protection and not is_public(address):
                raise EgressDenied(f"address {address} is not public (dns_rebind_protection)")
            if self._deny.contains(address):
                raise EgressDenied(f"address {address} is denied by egress policy")

    def _check_allowed(self, host: str, addresses: list[IPAddress]) -> None:
        if self._allow.match_host(host):
            return
        if self._allow.networks and addresses:
            if all(self._allow.contains(address) for address in addresses):
                return
        raise EgressDenied(f"host {host!r} is not allowed by egress policy")
