"""The five ``client_auth`` modes of a TLS listener, each shown with real handshakes."""

import ssl

import pytest

# A refused TLS handshake reaches the client as an alert, or as the peer hanging up.
HANDSHAKE_REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError)

VERIFYING_MODES = ["require", "require_and_verify"]


# -- require / require_and_verify ------------------------------------------------------------


@pytest.mark.parametrize("mode", VERIFYING_MODES)
def test_require_and_verify_accepts_a_client_certificate_from_client_ca(
    mode, tls_listener, client, certs
):
    server = tls_listener(mode)

    status, body = client.get(server.port, client_cert=certs.good_client)

    assert status == 200
    assert body["scheme"] == "https"
    assert body["client_verify"] == "SUCCESS"
    assert body["client_subject"].startswith("CN=worker-1,")


@pytest.mark.parametrize("mode", VERIFYING_MODES)
def test_require_and_verify_refuses_a_certificate_from_another_ca(
    mode, tls_listener, client, certs
):
    server = tls_listener(mode)

    with pytest.raises(HANDSHAKE_REFUSED):
        client.get(server.port, client_cert=certs.foreign_client)


@pytest.mark.parametrize("mode", VERIFYING_MODES)
def test_require_and_verify_refuses_a_client_without_certificate(mode, tls_listener, client):
    server = tls_listener(mode)

    with pytest.raises(HANDSHAKE_REFUSED):
        client.get(server.port)


def test_require_and_verify_refuses_a_plain_http_client(tls_listener, client):
    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"served"]

    server = tls_listener("require_and_verify", app=app)

    status, body = client.plain_get(server.port)

    assert status == 400
    assert b"HTTPS" in body
    assert calls == []


# -- verify_if_given ---------------------------------------------------------------------------


def test_verify_if_given_accepts_a_client_without_certificate(tls_listener, client):
    server = tls_listener("verify_if_given")

    status, body = client.get(server.port)

    assert status == 200
    assert body["client_verify"] == "NONE"


def test_verify_if_given_accepts_a_certificate_from_client_ca(tls_listener, client, certs):
    server = tls_listener("verify_if_given")

    status, body = client.get(server.port, client_cert=certs.good_client)

    assert status == 200
    assert body["client_verify"] == "SUCCESS"


def test_verify_if_given_refuses_a_certificate_from_another_ca(tls_listener, client, certs):
    server = tls_listener("verify_if_given")

    with pytest.raises(HANDSHAKE_REFUSED):
        client.get(server.port, client_cert=certs.foreign_client)


# -- request / require_any: asked for, never verified -----------------------------------------


def test_request_asks_for_a_certificate_without_verifying_it(tls_listener, client, certs):
    server = tls_listener("request")

    status, body = client.get(server.port, client_cert=certs.foreign_client)

    assert status == 200
    assert body["client_verify"] == "GENEROUS"
    assert body["client_subject"].startswith("CN=intruder,")


def test_request_accepts_a_client_without_certificate(tls_listener, client):
    server = tls_listener("request")

    status, body = client.get(server.port)

    assert status == 200
    assert body["client_verify"] == "NONE"


def test_require_any_accepts_a_certificate_from_any_ca(tls_listener, client, certs):
    server = tls_listener("require_any")

    status, body = client.get(server.port, client_cert=certs.foreign_client)

    assert status == 200
    assert body["client_verify"] == "GENEROUS"


def test_require_any_refuses_a_client_without_certificate(tls_listener, client):
    server = tls_listener("require_any")

    with pytest.raises(HANDSHAKE_REFUSED):
        client.get(server.port)


def test_require_any_works_without_client_ca(tls_listener, client, certs):
    server = tls_listener("require_any", client_ca=False)

    status, body = client.get(server.port, client_cert=certs.good_client)

    assert status == 200
    assert body["client_verify"] == "GENEROUS"


# -- none / off --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["none", "off"])
def test_none_never_asks_for_a_client_certificate(mode, tls_listener, client, certs):
    server = tls_listener(mode, client_ca=False)

    status, body = client.get(server.port, client_cert=certs.good_client)

    assert status == 200
    assert body == {"scheme": "https", "client_verify": "NONE", "client_subject": None}


def test_a_stopped_listener_refuses_connections(tls_listener, client):
    server = tls_listener("none", client_ca=False)
    port = server.port

    server.stop(timeout=2)

    with pytest.raises(ConnectionRefusedError):
        client.get(port)
