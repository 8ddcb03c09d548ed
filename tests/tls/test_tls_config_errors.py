"""Unusable certificate files are config errors that name the file, raised before binding."""

import socket

import pytest
import trustme

from hookaido.config.model import TLSConfig
from hookaido.errors import ConfigError
from hookaido.server.tls import make_tls_server


def never_called(environ, start_response):
    raise AssertionError("no request may reach a listener that failed to build")


def assert_port_still_free(port: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def build(tls: TLSConfig, port: int):
    return make_tls_server(never_called, "127.0.0.1", port, tls, name="test")


def test_missing_certificate_file_is_a_config_error_naming_it(certs, tmp_path, free_port):
    missing = str(tmp_path / "nope.pem")

    with pytest.raises(ConfigError) as raised:
        build(TLSConfig(cert_file=missing, key_file=certs.key_file), free_port)

    assert missing in str(raised.value)
    assert "cert_file" in str(raised.value)
    assert "No such file" in str(raised.value)
    assert_port_still_free(free_port)


def test_missing_key_file_is_a_config_error_naming_it(certs, tmp_path, free_port):
    missing = str(tmp_path / "nope.key")

    with pytest.raises(ConfigError) as raised:
        build(TLSConfig(cert_file=certs.cert_file, key_file=missing), free_port)

    assert missing in str(raised.value)
    assert "key_file" in str(raised.value)
    assert_port_still_free(free_port)


def test_key_that_does_not_match_the_certificate_is_a_config_error(certs, tmp_path, free_port):
    stranger = trustme.CA().issue_cert("127.0.0.1")
    other_key = tmp_path / "other.key"
    stranger.private_key_pem.write_to_path(str(other_key))

    with pytest.raises(ConfigError) as raised:
        build(TLSConfig(cert_file=certs.cert_file, key_file=str(other_key)), free_port)

    assert "does not match" in str(raised.value)
    assert str(other_key) in str(raised.value)
    assert certs.cert_file in str(raised.value)
    assert_port_still_free(free_port)


def test_a_file_without_a_certificate_is_a_config_error(certs, tmp_path, free_port):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not PEM\n")

    with pytest.raises(ConfigError) as raised:
        build(TLSConfig(cert_file=str(garbage), key_file=certs.key_file), free_port)

    assert str(garbage) in str(raised.value)
    assert "no PEM certificate" in str(raised.value)


def test_a_certificate_given_as_key_is_a_config_error(certs, free_port):
    with pytest.raises(ConfigError) as raised:
        build(TLSConfig(cert_file=certs.cert_file, key_file=certs.cert_file), free_port)

    assert "no PEM private key" in str(raised.value)


def test_an_encrypted_key_is_a_config_error_that_says_so(tmp_path, free_port):
    from cryptography.hazmat.primitives import serialization

    leaf = trustme.CA().issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter2"),
        )
    )
    tls = TLSConfig(cert_file=str(tmp_path / "server.pem"), key_file=str(tmp_path / "server.key"))

    with pytest.raises(ConfigError) as raised:
        build(tls, free_port)

    assert "encrypted" in str(raised.value)


def test_missing_client_ca_is_a_config_error_naming_it(certs, tmp_path, free_port):
    missing = str(tmp_path / "ca.pem")
    tls = TLSConfig(certs.cert_file, certs.key_file, client_ca=missing, client_auth="require")

    with pytest.raises(ConfigError) as raised:
        build(tls, free_port)

    assert missing in str(raised.value)
    assert "client_ca" in str(raised.value)
    assert_port_still_free(free_port)


@pytest.mark.parametrize("mode", ["verify_if_given", "require", "require_and_verify"])
def test_verifying_modes_need_a_client_ca(mode, certs, free_port):
    tls = TLSConfig(certs.cert_file, certs.key_file, client_ca=None, client_auth=mode)

    with pytest.raises(ConfigError) as raised:
        build(tls, free_port)

    assert "needs client_ca" in str(raised.value)


def test_an_unknown_client_auth_mode_is_a_config_error(certs, free_port):
    tls = TLSConfig(certs.cert_file, certs.key_file, client_ca=None, client_auth="sometimes")

    with pytest.raises(ConfigError) as raised:
        build(tls, free_port)

    assert "sometimes" in str(raised.value)
    assert "require_and_verify" in str(raised.value)
