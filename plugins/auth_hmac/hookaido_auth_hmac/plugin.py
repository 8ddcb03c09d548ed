"""Hook implementations of the auth_hmac plugin: ``auth hmac`` and ``sign hmac``."""

from datetime import timedelta

from hookaido.errors import ConfigError
from hookaido.hookspecs import hookimpl
from hookaido.secrets import SecretError, parse_duration
from hookaido_auth_hmac.inbound import (
    DEFAULT_NONCE_HEADER,
    DEFAULT_SIGNATURE_HEADER,
    DEFAULT_TIMESTAMP_HEADER,
    DEFAULT_TOLERANCE,
    CanonicalVerifier,
)
from hookaido_auth_hmac.keyring import Keyring
from hookaido_auth_hmac.outbound import HmacSigner
from hookaido_auth_hmac.providers import KEY_TRANSFORMS, PROVIDERS

HTTP_TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
SECRET_REF = r"^(env|file|raw|vault):"

AUTH_SCHEMA = {
    "type": "object",
    "description": "auth hmac <ref> | auth hmac secret_ref <id> | auth hmac { ... }",
    "properties": {
        "args": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "secret": {"type": "array", "items": {"type": "string", "pattern": SECRET_REF}},
        "secret_ref": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "signature_header": {"type": "string", "pattern": HTTP_TOKEN},
        "timestamp_header": {"type": "string", "pattern": HTTP_TOKEN},
        "nonce_header": {"type": "string", "pattern": HTTP_TOKEN},
        "tolerance": {"type": "string", "minLength": 1},
        "provider": {"enum": sorted(PROVIDERS)},
    },
    "additionalProperties": False,
}

SIGN_SCHEMA = {
    "type": "object",
    "description": "sign hmac <ref> | sign hmac secret_ref <id>...",
    "properties": {"args": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "additionalProperties": False,
}


@hookimpl
def register_auth(register):
    register("hmac", build_verifier, schema=AUTH_SCHEMA)


@hookimpl
def register_signers(register):
    register("hmac", HmacSigner, schema=SIGN_SCHEMA)


def build_verifier(options: dict, context):
    """The verifier for one route's ``auth hmac``: canonical mode or one provider's format."""
    provider = options.get("provider")
    if provider is not None and provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"auth hmac provider {provider!r} is unknown; use one of {known}")
    keyring = Keyring(
        options.get("secrets") or (),
        options.get("secret_refs") or (),
        context.secret_versions or (),
        context.resolve_secret,
        KEY_TRANSFORMS.get(provider, bytes),
    )
    if not keyring:
        raise ConfigError("auth hmac needs at least one secret or secret_ref")
    _preload(keyring, context.route, provider)

    if provider is not None:
        return PROVIDERS[provider](context.route, keyring)
    return CanonicalVerifier(
        context.route,
        keyring,
        context.nonces,
        signature_header=options.get("signature_header") or DEFAULT_SIGNATURE_HEADER,
        timestamp_header=options.get("timestamp_header") or DEFAULT_TIMESTAMP_HEADER,
        nonce_header=options.get("nonce_header") or DEFAULT_NONCE_HEADER,
        tolerance=_tolerance(options.get("tolerance")),
    )


def _preload(keyring: Keyring, route: str, provider: str | None) -> None:
    try:
        keyring.preload()
    except SecretError:
        pass  # not loadable here; the request that needs it answers 503
    except ConfigError as exc:
        where = f"route {route}: auth hmac" + (f" provider {provider}" if provider else "")
        raise ConfigError(f"{where}: {exc.message}", exc.location) from None
    except Exception:
        # Secrets are not loaded yet (e.g. validating a config without --strict-secrets);
        # they are loaded on first use instead.
        pass


def _tolerance(value) -> timedelta:
    if value is None:
        return DEFAULT_TOLERANCE
    if isinstance(value, timedelta):
        tolerance = value
    else:
        tolerance = parse_duration(str(value))
    if tolerance is None or tolerance <= timedelta(0):
        raise ConfigError(f"auth hmac tolerance {value!r} must be a positive duration like 5m")
    return tolerance
