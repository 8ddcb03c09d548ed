"""Bearer-token checks for the Pull and Admin APIs: header parsing and constant-time matching.

Only answers "is this token allowed"; which allowlist applies is the caller's decision.
"""

import hmac


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when absent/malformed.

    The scheme is compared case-insensitively and the token is trimmed.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def token_allowed(token: str | None, allowlist: list[bytes]) -> bool:
    """Whether ``token`` equals one entry of ``allowlist``.

    Every entry is compared, in constant time each, so timing does not reveal which entry
    (or how much of one) matched. An empty allowlist allows nothing.
    """
    if token is None:
        return False
    presented = token.encode("utf-8", "surrogateescape")
    allowed = False
    for candidate in allowlist:
        if hmac.compare_digest(presented, candidate.strip()):
            allowed = True
    return allowed


def load_allowlist(generation, refs) -> list[bytes]:
    """The loaded bytes of each secret reference; unloadable references allow nothing."""
    values = []
    for ref in refs:
        try:
            values.append(generation.secret(ref))
        except KeyError:
            continue
    return values
