"""Loads secret references (``env:``, ``file:``, ``raw:``, ``vault:``) to their bytes.

Compilation only checks a reference's syntax; this module reads the values, at start-up and
at reload, and reports every reference that cannot be loaded in one ``ConfigError``.
"""

import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta

import urllib3

from hookaido.config.model import Config, SecretRef
from hookaido.errors import ConfigError

VAULT_DEFAULT_TIMEOUT = timedelta(seconds=5)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_TRUE = {"1", "t", "true", "on", "yes", "y"}
_FALSE = {"0", "f", "false", "off", "no", "n", ""}


class SecretError(ConfigError):
    """A secret reference whose value cannot be loaded."""

    def __init__(self, ref: SecretRef, reason: str):
        self.ref = ref
        self.reason = reason
        super().__init__(f"secret {_describe(ref)}: {reason}", ref.location)


def _describe(ref: SecretRef) -> str:
    # raw: values are the secret itself, so never echo them.
    return "raw:<redacted>" if ref.scheme == "raw" else str(ref)


def resolve(ref: SecretRef, environ: Mapping[str, str] | None = None) -> bytes:
    """Load one reference. Raises ``SecretError`` (a ``ConfigError``) saying why it failed."""
    env = os.environ if environ is None else environ
    if ref.scheme == "env":
        return _from_env(ref, env)
    if ref.scheme == "file":
        return _from_file(ref)
    if ref.scheme == "raw":
        if not ref.value:
            raise SecretError(ref, "raw value is empty")
        return ref.value.encode()
    if ref.scheme == "vault":
        return _from_vault(ref, env)
    raise SecretError(ref, "unknown scheme; use env:, file:, raw: or vault:")


def _from_env(ref: SecretRef, env: Mapping[str, str]) -> bytes:
    if not ref.value:
        raise SecretError(ref, "environment variable name is empty")
    value = env.get(ref.value)
    if value is None:
        raise SecretError(ref, f"environment variable {ref.value} is not set")
    if value == "":
        raise SecretError(ref, f"environment variable {ref.value} is empty")
    return value.encode()


def _from_file(ref: SecretRef) -> bytes:
    if not ref.value:
        raise SecretError(ref, "file path is empty")
    try:
        with open(ref.value, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise SecretError(ref, f"cannot read file: {exc.strerror or exc}") from None
    content = content.strip()
    if not content:
        raise SecretError(ref, "file is empty")
    return content


# --------------------------------------------------------------------------------------
# Vault
# --------------------------------------------------------------------------------------


def _from_vault(ref: SecretRef, env: Mapping[str, str]) -> bytes:
    path, _, field = ref.value.partition("#")
    field = field or "value"
    path = _vault_path(ref, path)
    settings = _vault_settings(ref, env)

    url = settings["addr"].rstrip("/") + "/v1/" + path
    headers = {"X-Vault-Token": settings["token"]}
    if settings["namespace"]:
        headers["X-Vault-Namespace"] = settings["namespace"]
    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(total=settings["timeout"]),
        retries=False,
        **settings["tls"],
    )
    try:
        response = pool.request("GET", url, headers=headers, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        raise SecretError(ref, f"vault request failed: {type(exc).__name__}") from None
    finally:
        pool.clear()

    if response.status != 200:
        raise SecretError(ref, f"vault answered HTTP {response.status}")
    try:
        document = json.loads(response.data)
    except ValueError:
        raise SecretError(ref, "vault answer is not JSON") from None
    return _vault_field(ref, document, field)


def _vault_path(ref: SecretRef, path: str) -> str:
    if "://" in path:
        raise SecretError(ref, "vault path must be a path, not a URL")
    path = path.strip("/")
    if path.startswith("v1/"):
        path = path[len("v1/") :]
    segments = path.split("/")
    if not path or any(segment in ("", ".", "..") for segment in segments):
        raise SecretError(ref, "vault path is empty or has empty or dot segments")
    return path


def _vault_settings(ref: SecretRef, env: Mapping[str, str]) -> dict:
    addr = env.get("HOOKAIDO_VAULT_ADDR") or env.get("VAULT_ADDR")
    token = env.get("HOOKAIDO_VAULT_TOKEN") or env.get("VAULT_TOKEN")
    if not addr:
        raise SecretError(ref, "HOOKAIDO_VAULT_ADDR is not set")
    if not addr.startswith(("http://", "https://")) or len(addr.split("://", 1)[1]) == 0:
        raise SecretError(ref, "HOOKAIDO_VAULT_ADDR must be an http:// or https:// URL")
    if not token:
        raise SecretError(ref, "HOOKAIDO_VAULT_TOKEN is not set")

    timeout_text = env.get("HOOKAIDO_VAULT_TIMEOUT", "")
    timeout = VAULT_DEFAULT_TIMEOUT
    if timeout_text:
        timeout = parse_duration(timeout_text)
        if timeout is None or timeout <= timedelta(0):
            raise SecretError(ref, "HOOKAIDO_VAULT_TIMEOUT must be a positive duration like 5s")

    return {
        "addr": addr,
        "token": token,
        "namespace": env.get("HOOKAIDO_VAULT_NAMESPACE", ""),
        "timeout": timeout.total_seconds(),
        "tls": _vault_tls(ref, env),
    }


def _vault_tls(ref: SecretRef, env: Mapping[str, str]) -> dict:
    tls: dict = {}
    insecure = env.get("HOOKAIDO_VAULT_INSECURE_SKIP_VERIFY", "").strip().lower()
    if insecure not in _TRUE | _FALSE:
        raise SecretError(ref, "HOOKAIDO_VAULT_INSECURE_SKIP_VERIFY must be true or false")
    if insecure in _TRUE:
        tls["cert_reqs"] = "CERT_NONE"
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    elif env.get("HOOKAIDO_VAULT_CACERT"):
        tls["ca_certs"] = env["HOOKAIDO_VAULT_CACERT"]

    cert = env.get("HOOKAIDO_VAULT_CLIENT_CERT", "")
    key = env.get("HOOKAIDO_VAULT_CLIENT_KEY", "")
    if bool(cert) != bool(key):
        raise SecretError(
            ref, "HOOKAIDO_VAULT_CLIENT_CERT and HOOKAIDO_VAULT_CLIENT_KEY must be set together"
        )
    if cert:
        tls["cert_file"] = cert
        tls["key_file"] = key
    return tls


def _vault_field(ref: SecretRef, document, field: str) -> bytes:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise SecretError(ref, "vault answer has no data object")
    inner = data.get("data")
    levels = [inner, data] if isinstance(inner, dict) else [data]

    value = _MISSING
    for level in levels:
        if field in level:
            value = level[field]
            break
    if value is _MISSING and field == "value":
        keys = [key for key in levels[0] if key != "metadata"]
        if len(keys) == 1:
            value = levels[0][keys[0]]
    if value is _MISSING:
        raise SecretError(ref, f"vault secret has no field {field!r}")

    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise SecretError(ref, f"vault field {field!r} is not a scalar")
    if not text:
        raise SecretError(ref, f"vault field {field!r} is empty")
    return text.encode()


_MISSING = object()


def parse_duration(text: str) -> timedelta | None:
    """Parse ``500ms``, ``5s``, ``1m30s``; ``None`` when the text is not such a duration."""
    text = text.strip()
    if not text:
        return None
    sign = -1 if text[0] == "-" else 1
    body = text[1:] if text[0] in "+-" else text
    if body == "0":
        return timedelta(0)
    position, seconds = 0, 0.0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            return None
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return timedelta(seconds=sign * seconds) if position else None


# --------------------------------------------------------------------------------------
# Every reference of a config
# --------------------------------------------------------------------------------------


def refs_of(config: Config) -> Iterator[SecretRef]:
    """Every secret reference the config uses, each once, in file order where known."""
    seen: set[SecretRef] = set()
    for ref in _all_refs(config):
        if isinstance(ref, SecretRef) and ref not in seen:
            seen.add(ref)
            yield ref


def _all_refs(config: Config) -> Iterator[SecretRef]:
    yield from config.pull_api.tokens
    yield from config.admin_api.tokens
    for version in config.secrets:
        yield version.value
    for route in config.routes:
        if route.pull is not None:
            yield from route.pull.tokens
        if route.auth is not None:
            yield from route.auth.options.get("secrets") or ()
            yield from route.auth.options.get("tokens") or ()
        for target in route.targets:
            if target.sign is not None:
                yield from target.sign.secrets


def load_all(config: Config, environ: Mapping[str, str] | None = None) -> dict[SecretRef, bytes]:
    """Load every reference of ``config``; one ``ConfigError`` lists each that failed."""
    loaded: dict[SecretRef, bytes] = {}
    by_source: dict[tuple[str, str], bytes] = {}  # one read per distinct reference text
    problems: list[str] = []
    for ref in refs_of(config):
        source = (ref.scheme, ref.value)
        try:
            if source not in by_source:
                by_source[source] = resolve(ref, environ)
            loaded[ref] = by_source[source]
        except SecretError as exc:
            problems.extend(exc.problems)
    if problems:
        summary = f"{len(problems)} secret reference(s) could not be loaded"
        raise ConfigError(summary, problems=problems)
    return loaded
