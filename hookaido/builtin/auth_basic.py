"""Built-in ``auth basic USER PASS``: HTTP Basic credentials checked in constant time.

Runs before the body is read (``needs_body = False``). Unknown users are compared against a
decoy so a miss takes as long as a wrong password.
"""

import base64
import binascii
import hmac
import secrets

from hookaido.auth import Verdict
from hookaido.errors import ConfigError
from hookaido.hookspecs import hookimpl

SCHEMA = {
    "type": "object",
    "properties": {
        "users": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 2,
                "maxItems": 2,
            },
        }
    },
}


class BasicVerifier:
    needs_body = False

    def __init__(self, users: dict[bytes, bytes]):
        self._users = users
        self._decoy = secrets.token_bytes(32)

    def verify(self, request) -> Verdict:
        credentials = _credentials(request.header("Authorization"))
        if credentials is None:
            return Verdict.deny("missing or malformed basic credentials")
        user, password = credentials
        expected = self._users.get(user)
        matched = hmac.compare_digest(password, expected if expected is not None else self._decoy)
        if expected is None or not matched:
            return Verdict.deny("invalid basic credentials")
        return Verdict.allow()


def _credentials(header: str | None) -> tuple[bytes, bytes] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user, password


def make_basic_verifier(options, context) -> BasicVerifier:
    pairs = options.get("users") or []
    users: dict[bytes, bytes] = {}
    for pair in pairs:
        if len(pair) != 2 or not pair[0] or not pair[1]:
            raise ConfigError(f"route {context.route!r}: auth basic needs a user and a password")
        users[str(pair[0]).encode()] = str(pair[1]).encode()
    if not users:
        raise ConfigError(f"route {context.route!r}: auth basic needs at least one user")
    return BasicVerifier(users)


@hookimpl
def register_auth(register):
    register("basic", make_basic_verifier, SCHEMA)
