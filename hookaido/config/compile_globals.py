"""Compile the global blocks: listeners, TLS, rate limits, retry, tokens, retention, secrets.

Each function reads one block's directives and returns its runtime dataclass, recording every
problem (located) instead of raising.
"""

import math
from datetime import timedelta

from hookaido.config import values
from hookaido.config.ast import Directive
from hookaido.config.compile_reader import Block, Problems, parse_secret_ref, parse_value, quote
from hookaido.config.model import (
    AdminAPIConfig,
    IngressConfig,
    PullAPIConfig,
    QueueLimits,
    RateLimit,
    RetryPolicy,
    SecretRef,
    SecretVersion,
    TLSConfig,
)
from hookaido.queue import Retention

CLIENT_AUTH_MODES = {
    "none": "none",
    "off": "none",
    "request": "request",
    "require_any": "require_any",
    "verify_if_given": "verify_if_given",
    "require": "require",
    "require_and_verify": "require",
}
VERIFYING_MODES = {"verify_if_given", "require"}


# --------------------------------------------------------------------------------------
# Small shared pieces: TLS, rate limits, retry, tokens, listen
# --------------------------------------------------------------------------------------


def compile_tls(directive: Directive, problems: Problems, context: str) -> TLSConfig | None:
    where = f"{context}.tls"
    block = Block(
        directive.block,
        problems,
        where,
        known={"cert_file", "key_file", "client_ca", "client_auth"},
    )
    paths = {}
    for name in ("cert_file", "key_file"):
        value = block.value(name)
        if value is None or not value.text.strip():
            at = value if value is not None else directive
            problems.error(at, f"{where}: {name} is required")
        paths[name] = value.text if value is not None else ""
    client_ca_value = block.value("client_ca")
    client_ca = client_ca_value.text if client_ca_value is not None else None
    if client_ca is not None and not client_ca.strip():
        problems.error(client_ca_value, f"{where}: client_ca must not be empty")
        client_ca = None

    mode = "require" if client_ca else "none"
    mode_value = block.value("client_auth")
    if mode_value is not None:
        mode = CLIENT_AUTH_MODES.get(mode_value.text.lower())
        if mode is None:
            problems.error(
                mode_value,
                f"{where}.client_auth: unknown mode {quote(mode_value.text)} (expected none, "
                "request, require_any, verify_if_given, require or require_and_verify)",
            )
            mode = "none"
        elif mode in VERIFYING_MODES and not client_ca:
            problems.error(
                mode_value, f"{where}.client_auth {mode_value.text} needs client_ca to verify"
            )
        elif client_ca and mode not in VERIFYING_MODES:
            problems.warning(
                mode_value,
                f"{where}: client_ca is set but client_auth {mode_value.text} does not verify",
            )
    return TLSConfig(paths["cert_file"], paths["key_file"], client_ca, mode)


def compile_rate_limit(directive: Directive, problems: Problems, context: str) -> RateLimit | None:
    where = f"{context}.rate_limit"
    if directive.block is None or directive.args:
        problems.error(directive, f"{where}: expects a block {{ rps <number>; burst <int> }}")
        return None
    block = Block(directive.block, problems, where, known={"rps", "burst"})
    rps_value = block.value("rps")
    if rps_value is None:
        if not block.has("rps"):
            problems.error(directive, f"{where}: rps is required")
        return None
    rps = parse_value(problems, rps_value, values.parse_float, f"{where}.rps")
    if rps is None:
        return None
    if not rps > 0 or math.isinf(rps):
        problems.error(rps_value, f"{where}.rps: must be greater than 0, got {rps_value.text}")
        return None
    burst = block.parsed("burst", lambda text: values.parse_int(text, 1, None))
    return RateLimit(rps, burst if burst is not None else max(1, math.ceil(rps)))


def compile_retry(
    directive: Directive, problems: Problems, context: str, inherited: RetryPolicy
) -> RetryPolicy:
    """``retry exponential [max N] [base D] [cap D] [jitter F]``; omitted options inherit."""
    where = f"{context}.retry"
    args = directive.args
    if not args or args[0].text.lower() != "exponential":
        at = args[0] if args else directive
        got = quote(args[0].text) if args else "nothing"
        problems.error(at, f"{where}: type must be exponential, got {got}")
        return inherited
    parsers = {
        "max": lambda text: values.parse_int(text, 1, None),
        "base": values.parse_positive_duration,
        "cap": values.parse_positive_duration,
        "jitter": _parse_jitter,
    }
    chosen = {}
    rest = args[1:]
    for index in range(0, len(rest), 2):
        key = rest[index]
        name = key.text.lower()
        if name not in parsers:
            problems.error(
                key, f"{where}: unknown option {quote(key.text)} (expected max, base, cap, jitter)"
            )
            continue
        if name in chosen:
            problems.error(key, f"{where}: option {name} given twice")
            continue
        if index + 1 >= len(rest):
            problems.error(key, f"{where}: option {name} needs a value")
            continue
        parsed = parse_value(problems, rest[index + 1], parsers[name], f"{where} {name}")
        chosen[name] = parsed
    policy = RetryPolicy(
        max=chosen.get("max") or inherited.max,
        base=chosen.get("base") or inherited.base,
        cap=chosen.get("cap") or inherited.cap,
        jitter=chosen["jitter"] if chosen.get("jitter") is not None else inherited.jitter,
    )
    refused = any(f"{where} {name}" in problems.rejected for name in ("base", "cap"))
    if policy.base > policy.cap and not refused:
        problems.error(directive, f"{where}: base must not be greater than cap")
    return policy


def _parse_jitter(text: str) -> float:
    jitter = values.parse_float(text)
    if not 0 <= jitter <= 1:
        raise ValueError(f'jitter "{text}" must be between 0 and 1')
    return jitter


def compile_tokens(
    directives: list[Directive], problems: Problems, context: str
) -> tuple[SecretRef, ...]:
    """``auth token <ref>`` directives (repeatable): checked refs, duplicates reported."""
    tokens: list[SecretRef] = []
    for directive in directives:
        args = directive.args
        if len(args) != 2 or args[0].text != "token":
            kind = args[0].text if args else ""
            problems.error(
                directive,
                f"{context}: expected auth token <secret-ref>, got auth {kind}".rstrip(),
            )
            continue
        ref = parse_secret_ref(problems, args[1], f"{context}.auth token")
        if ref is None:
            continue
        if any(str(ref) == str(token) for token in tokens):
            problems.error(args[1], f"{context}: duplicate auth token {quote(str(ref))}")
            continue
        tokens.append(ref)
    return tuple(tokens)


def read_listen(block: Block, default: str) -> tuple[str, bool]:
    """The ``listen`` string (validated) and whether it was written."""
    value = block.value("listen")
    if value is None:
        return default, False
    parse_value(block.problems, value, values.parse_listen, f"{block.context}.listen")
    return value.text, True


def read_prefix(block: Block) -> str:
    value = block.value("prefix")
    if value is None:
        return ""
    return parse_value(block.problems, value, values.clean_prefix, f"{block.context}.prefix", "")


# --------------------------------------------------------------------------------------
# Listeners
# --------------------------------------------------------------------------------------


def compile_ingress(directive: Directive | None, problems: Problems) -> IngressConfig:
    if directive is None:
        problems.warning(None, 'ingress.listen not set; using default ":8080"')
        return IngressConfig()
    block = Block(directive.block, problems, "ingress", known={"listen", "tls", "rate_limit"})
    listen, written = read_listen(block, ":8080")
    if not written:
        problems.warning(directive, 'ingress.listen not set; using default ":8080"')
    tls = block.one("tls")
    rate_limit = block.one("rate_limit")
    return IngressConfig(
        listen=listen,
        tls=compile_tls(tls, problems, "ingress") if tls else None,
        rate_limit=compile_rate_limit(rate_limit, problems, "ingress") if rate_limit else None,
    )


PULL_API_DIRECTIVES = {
    "listen",
    "prefix",
    "auth",
    "max_batch",
    "max_lease_batch",
    "default_lease_ttl",
    "max_lease_ttl",
    "default_max_wait",
    "max_wait",
    "sse_keepalive",
    "sse_max_connection",
    "grpc_listen",
    "tls",
}


def compile_pull_api(directive: Directive | None, problems: Problems) -> PullAPIConfig:
    if directive is None:
        return PullAPIConfig()
    block = Block(directive.block, problems, "pull_api", known=PULL_API_DIRECTIVES)
    listen, _ = read_listen(block, ":9443")
    positive_int = lambda text: values.parse_int(text, 1, None)  # noqa: E731
    config = PullAPIConfig(
        listen=listen,
        prefix=read_prefix(block),
        tokens=compile_tokens(block.all("auth"), problems, "pull_api"),
        max_batch=block.parsed("max_batch", positive_int, 100),
        max_lease_batch=block.parsed("max_lease_batch", positive_int, 100),
        default_lease_ttl=block.parsed(
            "default_lease_ttl", values.parse_positive_duration, timedelta(seconds=30)
        ),
        max_lease_ttl=block.parsed("max_lease_ttl", values.parse_optional_duration),
        default_max_wait=block.parsed("default_max_wait", values.parse_duration, timedelta(0)),
        max_wait=block.parsed("max_wait", values.parse_optional_duration),
        sse_keepalive=block.parsed("sse_keepalive", values.parse_optional_duration)
        or timedelta(seconds=15),
        sse_max_connection=block.parsed("sse_max_connection", values.parse_optional_duration),
        grpc_listen=_read_grpc_listen(block),
        tls=compile_tls(block.one("tls"), problems, "pull_api") if block.has("tls") else None,
        present=True,
    )
    # A cap below the 30s default only matters once default_lease_ttl is written too.
    written_ttl = block.one("default_lease_ttl")
    if written_ttl and config.max_lease_ttl and config.default_lease_ttl > config.max_lease_ttl:
        problems.error(
            written_ttl,
            "pull_api: default_lease_ttl must not exceed max_lease_ttl",
        )
    written_wait = block.one("default_max_wait")
    if written_wait and config.max_wait and config.default_max_wait > config.max_wait:
        problems.error(
            written_wait,
            "pull_api: default_max_wait must not exceed max_wait",
        )
    return config


def _read_grpc_listen(block: Block) -> str | None:
    value = block.value("grpc_listen")
    if value is None:
        return None
    parse_value(block.problems, value, values.parse_listen, "pull_api.grpc_listen")
    return value.text


def compile_admin_api(directive: Directive | None, problems: Problems) -> AdminAPIConfig:
    if directive is None:
        return AdminAPIConfig()
    block = Block(directive.block, problems, "admin_api", known={"listen", "prefix", "auth", "tls"})
    listen, _ = read_listen(block, "127.0.0.1:2019")
    tls = block.one("tls")
    return AdminAPIConfig(
        listen=listen,
        prefix=read_prefix(block),
        tokens=compile_tokens(block.all("auth"), problems, "admin_api"),
        tls=compile_tls(tls, problems, "admin_api") if tls else None,
    )


# --------------------------------------------------------------------------------------
# Retention and queue limits
# --------------------------------------------------------------------------------------


def compile_retention(blocks: dict[str, Directive], problems: Problems) -> Retention:
    def read(name: str, known: set[str]) -> Block:
        directive = blocks.get(name)
        return Block(directive.block if directive else [], problems, name, known=known)

    queue = read("queue_retention", {"max_age", "prune_interval"})
    delivered = read("delivered_retention", {"max_age"})
    dlq = read("dlq_retention", {"max_age", "max_depth"})
    attempts = read("attempts_retention", {"max_age", "max_rows"})
    defaults = Retention()
    age = values.parse_optional_duration
    count = values.parse_optional_int
    retention = Retention(
        queue_max_age=_optional(queue, "max_age", age, defaults.queue_max_age),
        prune_interval=_optional(queue, "prune_interval", age, defaults.prune_interval),
        delivered_max_age=_optional(delivered, "max_age", age, None),
        dlq_max_age=_optional(dlq, "max_age", age, defaults.dlq_max_age),
        dlq_max_depth=_optional(dlq, "max_depth", count, defaults.dlq_max_depth),
        attempts_max_age=_optional(attempts, "max_age", age, defaults.attempts_max_age),
        attempts_max_rows=_optional(attempts, "max_rows", count, defaults.attempts_max_rows),
    )
    enabled = any(
        rule is not None
        for rule in (
            retention.queue_max_age,
            retention.delivered_max_age,
            retention.dlq_max_age,
            retention.dlq_max_depth,
            retention.attempts_max_age,
            retention.attempts_max_rows,
        )
    )
    if retention.prune_interval is None and enabled and queue.has("prune_interval"):
        problems.error(
            queue.one("prune_interval"),
            "queue_retention.prune_interval must not be off while a retention rule is enabled",
        )
    return retention


def _optional(block: Block, name: str, parser, default):
    """An off-able setting: absent → ``default``; ``off``/``0`` → ``None``."""
    if not block.has(name):
        return default
    marker = object()
    parsed = block.parsed(name, parser, marker)
    return default if parsed is marker else parsed


def compile_queue_limits(directive: Directive | None, problems: Problems) -> QueueLimits:
    if directive is None:
        return QueueLimits()
    block = Block(directive.block, problems, "queue_limits", known={"max_depth", "drop_policy"})
    max_depth = block.parsed("max_depth", lambda text: values.parse_int(text, 0, None), 10000)
    policy = "reject"
    policy_value = block.value("drop_policy")
    if policy_value is not None:
        policy = policy_value.text.lower()
        if policy not in ("reject", "drop_oldest"):
            problems.error(
                policy_value,
                f"queue_limits.drop_policy: unknown policy {quote(policy_value.text)}"
                " (expected reject or drop_oldest)",
            )
            policy = "reject"
    return QueueLimits(max_depth, policy)


# --------------------------------------------------------------------------------------
# vars { ... } and secrets { ... }
# --------------------------------------------------------------------------------------


def check_vars(directive: Directive, problems: Problems) -> None:
    """Names and duplicates; substitution itself happens before compilation."""
    seen: set[str] = set()
    for entry in directive.block or []:
        if not values.is_env_name(entry.name):
            problems.error(
                entry, f"vars: invalid name {quote(entry.name)} (expected [A-Za-z_][A-Za-z0-9_]*)"
            )
        elif entry.name in seen:
            problems.error(entry, f"vars: duplicate name {quote(entry.name)}")
        seen.add(entry.name)
        if len(entry.args) != 1 or entry.block is not None:
            problems.error(entry, f"vars.{entry.name}: expects exactly one value")


def compile_secrets(directive: Directive | None, problems: Problems) -> tuple[SecretVersion, ...]:
    if directive is None:
        return ()
    versions: list[SecretVersion] = []
    seen: set[str] = set()
    Block(directive.block, problems, "secrets", known={"secret"})
    for entry in directive.block or []:
        if entry.name != "secret":
            continue
        if len(entry.args) != 1 or not entry.args[0].text.strip():
            problems.error(entry, "secrets: each secret needs one non-empty ID")
            continue
        secret_id = entry.args[0].text
        where = f"secrets.secret {quote(secret_id)}"
        if secret_id in seen:
            problems.error(entry.args[0], f"secrets: duplicate secret ID {quote(secret_id)}")
        seen.add(secret_id)
        version = _compile_secret(entry, problems, where, secret_id)
        if version is not None:
            versions.append(version)
    return tuple(versions)


def declared_secret_ids(directive: Directive | None) -> set[str]:
    """Every ID the ``secrets`` block declares, also those whose version has a mistake: a
    ``secret_ref`` to them is then not "undeclared", the mistake is reported at the secret."""
    if directive is None:
        return set()
    return {
        entry.args[0].text
        for entry in directive.block or []
        if entry.name == "secret" and len(entry.args) == 1 and entry.args[0].text.strip()
    }


def _compile_secret(entry: Directive, problems: Problems, where: str, secret_id: str):
    block = Block(
        entry.block,
        problems,
        where,
        known={"value", "valid_from", "valid_until", "runtime", "max_versions"},
    )
    value = block.value("value")
    ref = None
    if value is None:
        problems.error(entry, f"{where}: value is required")
    else:
        ref = parse_secret_ref(problems, value, where)
    valid_from = block.parsed("valid_from", values.parse_timestamp)
    if valid_from is None and not block.has("valid_from"):
        problems.error(entry, f"{where}: valid_from is required")
    valid_until = block.parsed("valid_until", values.parse_timestamp)
    if valid_from and valid_until and valid_until <= valid_from:
        problems.error(block.one("valid_until"), f"{where}: valid_until must be after valid_from")
    runtime = block.parsed("runtime", values.parse_bool, False)
    if runtime:
        problems.error(
            block.one("runtime"), f"{where}: runtime secrets (runtime true) are not supported"
        )
    if block.has("max_versions"):
        block.parsed("max_versions", lambda text: values.parse_int(text, 1, None))
        if not runtime:
            problems.error(block.one("max_versions"), f"{where}: max_versions needs runtime true")
    if ref is None or valid_from is None:
        return None
    return SecretVersion(secret_id, ref, valid_from, valid_until)
