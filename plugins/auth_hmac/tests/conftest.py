"""Fixtures for the auth_hmac tests: requests at a fixed time and verifiers built as ingress
builds them (factory, options, AuthContext)."""

from datetime import UTC, datetime

import pytest
from hookaido_auth_hmac.plugin import build_verifier

from hookaido.auth import AuthContext, InboundRequest
from hookaido.nonces import NonceStore
from hookaido.secrets import resolve

NOW = 1767225600  # 2026-01-01T00:00:00Z


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture
def request_at():
    """``request_at(headers, body=b"{}", when=NOW, method="POST", path=...)``."""

    def make(headers, body=b"{}", when=NOW, method="POST", path="/webhooks/github"):
        return InboundRequest(method, path, "", dict(headers), body, "127.0.0.1:4000", at(when))

    return make


@pytest.fixture
def store():
    return NonceStore()


@pytest.fixture
def make_verifier(store):
    """``make_verifier(options, route=..., versions=(), nonces=store)`` via the factory."""

    def make(options, route="/webhooks/github", versions=(), nonces=None):
        context = AuthContext(
            route=route,
            resolve_secret=resolve,
            secret_versions=tuple(versions),
            nonces=nonces if nonces is not None else store,
        )
        return build_verifier(options, context)

    return make
