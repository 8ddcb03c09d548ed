"""Compile ``defaults { ... }``: body/header caps, delivery defaults, egress, publish policy,
trend signals and adaptive backpressure."""

import re
from datetime import timedelta

from hookaido.config import values
from hookaido.config.ast import Directive
from hookaido.config.compile_globals import compile_retry
from hookaido.config.compile_reader import Block, Problems, parse_value
from hookaido.config.model import (
    AdaptiveBackpressure,
    Defaults,
    EgressPolicy,
    PublishPolicy,
    RetryPolicy,
    TrendSignals,
)

DEFAULTS_DIRECTIVES = {
    "max_body",
    "max_headers",
    "deliver",
    "egress",
    "publish_policy",
    "trend_signals",
    "adaptive_backpressure",
}
_BILLION = 10**9
TREND_RANGES = {
    "stale_grace_factor": (1, 60),
    "sustained_growth_consecutive": (1, 1000),
    "sustained_growth_min_samples": (1, 10**6),
    "sustained_growth_min_delta": (1, _BILLION),
    "recent_surge_min_total": (1, _BILLION),
    "recent_surge_min_delta": (1, _BILLION),
    "recent_surge_percent": (1, 10000),
    "dead_share_high_min_total": (1, _BILLION),
    "dead_share_high_percent": (1, 100),
    "queued_pressure_min_total": (1, _BILLION),
    "queued_pressure_percent": (1, 100),
    "queued_pressure_leased_multiplier": (1, 10**6),
}


def compile_defaults(directive: Directive | None, problems: Problems) -> Defaults:
    if directive is None:
        return Defaults()
    block = Block(directive.block, problems, "defaults", known=DEFAULTS_DIRECTIVES)
    base = Defaults()
    retry, timeout, concurrency = base.retry, base.timeout, base.concurrency
    deliver = block.one("deliver")
    if deliver is not None:
        retry, timeout, concurrency = _compile_default_deliver(deliver, problems)

    def sub(name, compiler, fallback):
        found = block.one(name)
        return compiler(found, problems) if found is not None else fallback

    return Defaults(
        max_body=block.parsed("max_body", values.parse_size, base.max_body),
        max_headers=block.parsed("max_headers", values.parse_size, base.max_headers),
        retry=retry,
        timeout=timeout,
        concurrency=concurrency,
        egress=sub("egress", compile_egress, base.egress),
        publish_policy=sub("publish_policy", _compile_publish_policy, base.publish_policy),
        trend_signals=sub("trend_signals", _compile_trend_signals, base.trend_signals),
        adaptive_backpressure=sub(
            "adaptive_backpressure", _compile_backpressure, base.adaptive_backpressure
        ),
    )


def _compile_default_deliver(directive: Directive, problems: Problems):
    where = "defaults.deliver"
    block = Block(directive.block, problems, where, known={"retry", "timeout", "concurrency"})
    retry_directive = block.one("retry")
    retry = (
        compile_retry(retry_directive, problems, where, RetryPolicy())
        if retry_directive
        else RetryPolicy()
    )
    timeout = block.parsed("timeout", values.parse_positive_duration, timedelta(seconds=10))
    concurrency = block.parsed("concurrency", lambda text: values.parse_int(text, 1), 20)
    return retry, timeout, concurrency


_EGRESS_HOST = re.compile(
    r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"  # first label, maybe after "*."
    r"(\.[A-Za-z0-9_-]+)*\.?"
)


def _check_egress_rule(text: str) -> str:
    rule = text.strip()
    if "://" in rule:
        raise ValueError(f'invalid rule "{text}": write a host, IP or CIDR, not a URL')
    if rule == "*":
        return rule
    try:
        return values.parse_ip_network(rule)
    except ValueError:
        pass
    if not _EGRESS_HOST.fullmatch(rule):
        raise ValueError(f'invalid rule "{text}": expected an IP, a CIDR, a host, * or *.domain')
    return rule.lower().rstrip(".")


def compile_egress(directive: Directive, problems: Problems) -> EgressPolicy:
    where = "defaults.egress"
    block = Block(
        directive.block,
        problems,
        where,
        known={"allow", "deny", "https_only", "redirects", "dns_rebind_protection"},
    )
    rules: dict[str, list[str]] = {"allow": [], "deny": []}
    for kind in rules:
        for rule_directive in block.all(kind):
            if not rule_directive.args:
                problems.error(rule_directive, f"{where}.{kind}: needs at least one rule")
            for value in rule_directive.args:
                rule = parse_value(problems, value, _check_egress_rule, f"{where}.{kind}")
                if rule is not None and rule not in rules[kind]:
                    rules[kind].append(rule)
    return EgressPolicy(
        allow=tuple(rules["allow"]),
        deny=tuple(rules["deny"]),
        https_only=block.parsed("https_only", values.parse_bool, True),
        redirects=block.parsed("redirects", values.parse_bool, False),
        dns_rebind_protection=block.parsed("dns_rebind_protection", values.parse_bool, True),
    )


_POLICY_FLAGS = {
    "direct": True,
    "managed": True,
    "allow_pull_routes": True,
    "allow_deliver_routes": True,
    "require_actor": False,
    "require_request_id": False,
    "fail_closed": False,
}


def _compile_publish_policy(directive: Directive, problems: Problems) -> PublishPolicy:
    where = "defaults.publish_policy"
    known = set(_POLICY_FLAGS) | {"actor_allow", "actor_prefix"}
    block = Block(directive.block, problems, where, known=known)
    flags = {
        name: block.parsed(name, values.parse_bool, default)
        for name, default in _POLICY_FLAGS.items()
    }
    lists: dict[str, list[str]] = {"actor_allow": [], "actor_prefix": []}
    for name, entries in lists.items():
        for entry_directive in block.all(name):
            if not entry_directive.args:
                problems.error(entry_directive, f"{where}.{name}: needs at least one value")
            for value in entry_directive.args:
                entry = value.text.strip()
                if not entry:
                    problems.error(value, f"{where}.{name}: empty entry")
                elif entry not in entries:
                    entries.append(entry)
    return PublishPolicy(
        **flags,
        actor_allow=tuple(lists["actor_allow"]),
        actor_prefix=tuple(lists["actor_prefix"]),
    )


def _compile_trend_signals(directive: Directive, problems: Problems) -> TrendSignals:
    where = "defaults.trend_signals"
    known = set(TREND_RANGES) | {"window", "expected_capture_interval"}
    block = Block(directive.block, problems, where, known=known)
    base = TrendSignals()
    numbers = {
        name: block.parsed(
            name,
            lambda text, low=low, high=high: values.parse_int(text, low, high),
            getattr(base, name),
        )
        for name, (low, high) in TREND_RANGES.items()
    }
    return TrendSignals(
        window=block.parsed("window", values.parse_positive_duration, base.window),
        expected_capture_interval=block.parsed(
            "expected_capture_interval",
            values.parse_positive_duration,
            base.expected_capture_interval,
        ),
        **numbers,
    )


def _compile_backpressure(directive: Directive, problems: Problems) -> AdaptiveBackpressure:
    where = "defaults.adaptive_backpressure"
    known = {
        "enabled",
        "min_total",
        "queued_percent",
        "ready_lag",
        "oldest_queued_age",
        "sustained_growth",
    }
    block = Block(directive.block, problems, where, known=known)
    base = AdaptiveBackpressure()
    return AdaptiveBackpressure(
        enabled=block.parsed("enabled", values.parse_bool, base.enabled),
        min_total=block.parsed(
            "min_total", lambda text: values.parse_int(text, 1, _BILLION), base.min_total
        ),
        queued_percent=block.parsed(
            "queued_percent", lambda text: values.parse_int(text, 1, 100), base.queued_percent
        ),
        ready_lag=block.parsed("ready_lag", values.parse_positive_duration, base.ready_lag),
        oldest_queued_age=block.parsed(
            "oldest_queued_age", values.parse_positive_duration, base.oldest_queued_age
        ),
        sustained_growth=block.parsed("sustained_growth", values.parse_bool, True),
    )
