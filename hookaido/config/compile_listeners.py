"""Rules across listeners: tokens, loopback-only admin, shared sockets, prefixes, TLS, gRPC.

Works on compiled blocks plus the places their ``listen`` values were written.
"""

from dataclasses import dataclass

from hookaido.config import values
from hookaido.config.compile_reader import Problems, quote
from hookaido.config.model import Route
from hookaido.errors import Location


@dataclass
class Listener:
    """One component's listen string, prefix, TLS and where to point errors."""

    component: str  # ingress | pull_api | admin_api | metrics | grpc
    listen: str
    at: Location | None
    prefix: str = ""
    tls: object = None

    @property
    def target(self):
        try:
            return values.parse_listen(self.listen).bind_target
        except ValueError:
            return None


def check_listeners(
    listeners: dict[str, Listener],
    routes: tuple[Route, ...],
    pull_api,
    admin_api,
    pull_api_at: Location | None,
    problems: Problems,
) -> None:
    pull_routes = [route for route in routes if route.pull is not None]
    _check_pull_tokens(pull_routes, pull_api, pull_api_at, problems)
    _check_admin(listeners, admin_api, problems)

    active = [listeners["ingress"], listeners["admin_api"]]
    if pull_routes:
        active.insert(1, listeners["pull_api"])
    _check_bind_targets(active, problems)
    _check_shared(active, routes, problems)
    _check_separate(listeners, active, pull_routes, problems)


def _check_pull_tokens(pull_routes, pull_api, pull_api_at, problems: Problems) -> None:
    if pull_routes and not pull_api.present:
        first = pull_routes[0]
        problems.error(
            first.location,
            f"route {quote(first.path)} uses pull but there is no pull_api block",
        )
    if pull_api.tokens or "pull_api.auth token" in problems.rejected:
        return  # a refused pull_api token was already reported
    if pull_api.present and not pull_routes:
        problems.error(pull_api_at, "pull_api: auth token is required when no route uses pull")
    for route in pull_routes:
        refused = f"route {quote(route.path)}.pull.auth token" in problems.rejected
        if not route.pull.tokens and not refused:
            problems.error(
                route.location,
                f"route {quote(route.path)}: pull needs auth token (pull_api has no auth token)",
            )


def _check_admin(listeners: dict[str, Listener], admin_api, problems: Problems) -> None:
    if admin_api.tokens:
        return
    admin = listeners["admin_api"]
    try:
        loopback = values.parse_listen(admin.listen).is_loopback
    except ValueError:
        return
    if not loopback:
        problems.error(
            admin.at,
            f"admin_api: auth token is required when listen {quote(admin.listen)}"
            " is not a loopback address",
        )
    elif admin.listen == listeners["ingress"].listen:
        problems.error(
            admin.at,
            "admin_api: auth token is required when it shares ingress.listen"
            f" {quote(admin.listen)}",
        )


_LOCALHOST = ("localhost", "localhost.")
_LOCALHOST_IPS = ("127.0.0.1", "::1")


def _same_socket(one: tuple[str, int], other: tuple[str, int]) -> bool:
    """Whether two bind targets open one socket; ``localhost`` binds a loopback address."""
    if one == other:
        return True
    if one[1] != other[1]:
        return False
    hosts = {one[0], other[0]}
    return bool(hosts & set(_LOCALHOST)) and bool(hosts & set(_LOCALHOST_IPS))


def _check_bind_targets(active: list[Listener], problems: Problems) -> None:
    for index, listener in enumerate(active):
        for other in active[:index]:
            if (
                listener.listen != other.listen
                and listener.target is not None
                and other.target is not None
                and _same_socket(listener.target, other.target)
            ):
                problems.error(
                    listener.at,
                    f"{listener.component}.listen {quote(listener.listen)} and"
                    f" {other.component}.listen {quote(other.listen)} name the same address;"
                    " write it identically to share the listener",
                )


def _check_shared(active: list[Listener], routes, problems: Problems) -> None:
    groups: dict[str, list[Listener]] = {}
    for listener in active:
        groups.setdefault(listener.listen, []).append(listener)
    for group in groups.values():
        if len(group) < 2:
            continue
        apis = [listener for listener in group if listener.component != "ingress"]
        names = " and ".join(listener.component for listener in group)
        for api in apis:
            if not api.prefix:
                problems.error(
                    api.at,
                    f"{api.component}: a prefix is required when {names} share"
                    f" listen {quote(api.listen)}",
                )
        for index, api in enumerate(apis):
            for other in apis[:index]:
                if (
                    api.prefix
                    and other.prefix
                    and (
                        values.path_within(api.prefix, other.prefix)
                        or values.path_within(other.prefix, api.prefix)
                    )
                ):
                    problems.error(
                        api.at,
                        f"{api.component}.prefix {quote(api.prefix)} and {other.component}.prefix"
                        f" {quote(other.prefix)} must differ and must not be nested",
                    )
        if any(listener.component == "ingress" for listener in group):
            _check_route_prefixes(apis, routes, problems)
        first = group[0]
        for listener in group[1:]:
            if listener.tls != first.tls:
                problems.error(
                    listener.at,
                    f"{listener.component} and {first.component} share listen"
                    f" {quote(listener.listen)} but their tls settings differ",
                )


def _check_route_prefixes(apis: list[Listener], routes, problems: Problems) -> None:
    for api in apis:
        if not api.prefix:
            continue
        for route in routes:
            if values.path_within(route.path, api.prefix) or values.path_within(
                api.prefix, route.path
            ):
                problems.error(
                    route.location,
                    f"route {quote(route.path)} collides with {api.component}.prefix"
                    f" {quote(api.prefix)} on the shared listener {quote(api.listen)}",
                )


def _check_separate(listeners, active: list[Listener], pull_routes, problems: Problems) -> None:
    grpc = listeners.get("grpc")
    if grpc is not None:
        if not pull_routes:
            problems.error(grpc.at, "pull_api.grpc_listen needs at least one pull route")
        others = active + ([listeners["metrics"]] if "metrics" in listeners else [])
        _check_own_address(grpc, "pull_api.grpc_listen", others, problems)
    metrics = listeners.get("metrics")
    if metrics is not None:
        _check_own_address(metrics, "observability.metrics.listen", active, problems)


def _check_own_address(
    listener: Listener, name: str, others: list[Listener], problems: Problems
) -> None:
    """A listener that must not share its address reports each listener that does."""
    for other in others:
        if listener.target is not None and listener.target == other.target:
            problems.error(
                listener.at,
                f"{name} {quote(listener.listen)} uses the same address as"
                f" {other.component}.listen {quote(other.listen)}",
            )
