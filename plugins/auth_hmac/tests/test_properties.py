"""Properties over many inputs: whatever a sender signs by the documented recipe is accepted,
and any change to the signed body is refused."""

import hashlib
import hmac
from datetime import UTC, datetime

from hookaido_auth_hmac.plugin import build_verifier
from hypothesis import given, settings
from hypothesis import strategies as st

from hookaido.auth import AuthContext, InboundRequest
from hookaido.config.model import SecretRef
from hookaido.nonces import NonceStore
from hookaido.secrets import resolve

NOW = 1767225600
secrets_text = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
)
bodies = st.binary(max_size=512)
segments = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8),
    min_size=1,
    max_size=4,
)
methods = st.sampled_from(["POST", "PUT", "PATCH", "DELETE"])


def canonical_request(secret: str, method: str, path: str, body: bytes, nonce: str):
    body_hash = hashlib.sha256(body).hexdigest()
    message = f"{NOW}\n{method}\n{path}\n{body_hash}".encode()
    headers = {
        "X-Timestamp": str(NOW),
        "X-Nonce": nonce,
        "X-Signature": hmac.new(secret.encode(), message, hashlib.sha256).hexdigest(),
    }
    return headers


def verifier_for(secret: str, route: str):
    context = AuthContext(route=route, resolve_secret=resolve, nonces=NonceStore())
    return build_verifier({"secrets": [SecretRef("raw", secret)]}, context)


@settings(max_examples=60, deadline=None)
@given(secret=secrets_text, method=methods, parts=segments, body=bodies, flip=st.integers(0))
def test_recipe_signature_is_accepted_and_any_body_change_refused(
    secret, method, parts, body, flip
):
    path = "/" + "/".join(parts)
    verifier = verifier_for(secret, path)
    headers = canonical_request(secret, method, path, body, "n1")
    when = datetime.fromtimestamp(NOW, UTC)

    accepted = verifier.verify(InboundRequest(method, path, "", headers, body, "", when))
    changed = bytearray(body or b"\x00")
    changed[flip % len(changed)] ^= 0x01
    tampered = {**headers, "X-Nonce": "n2"}
    refused = verifier.verify(InboundRequest(method, path, "", tampered, bytes(changed), "", when))

    assert accepted.allowed
    assert (refused.allowed, refused.status) == (False, 401)
