"""Certificates made by trustme, a TLS listener factory and an HTTPS client for the TLS tests;
``hookaido run`` processes come from tests/conftest.py."""

import http.client
import json
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from hookaido.config.model import TLSConfig
from hookaido.server.tls import make_tls_server

from ..support.loopback import free_port


@dataclass
class Certificates:
    ca: trustme.CA
    other_ca: trustme.CA
    cert_file: str
    key_file: str
    client_ca: str
    good_client: trustme.LeafCert
    foreign_client: trustme.LeafCert
    directory: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certificates:
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA(organization_name="Hookaido Test CA")
    other_ca = trustme.CA(organization_name="Somebody Else CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    with open(directory / "server.pem", "wb") as handle:
        for blob in server.cert_chain_pems:
            handle.write(blob.bytes())
    ca.cert_pem.write_to_path(str(directory / "client-ca.pem"))
    return Certificates(
        ca=ca,
        other_ca=other_ca,
        cert_file=str(directory / "server.pem"),
        key_file=str(directory / "server.key"),
        client_ca=str(directory / "client-ca.pem"),
        good_client=ca.issue_cert("worker-1.example.test", common_name="worker-1"),
        foreign_client=other_ca.issue_cert("intruder.example.test", common_name="intruder"),
        directory=directory,
    )


def echo_tls_app(environ, start_response):
    """Answers with what the listener told the app about the connection."""
    body = json.dumps(
        {
            "scheme": environ["wsgi.url_scheme"],
            "client_verify": environ.get("SSL_CLIENT_VERIFY"),
            "client_subject": environ.get("SSL_CLIENT_S_DN"),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture
def tls_listener(certs):
    """Start a TLS listener on 127.0.0.1:<free port> with a client_auth mode; stopped after."""
    started = []

    def start(client_auth: str, app=echo_tls_app, client_ca: bool = True):
        tls = TLSConfig(
            cert_file=certs.cert_file,
            key_file=certs.key_file,
            client_ca=certs.client_ca if client_ca else None,
            client_auth=client_auth,
        )
        server = make_tls_server(app, "127.0.0.1", 0, tls, name="test")
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(timeout=2)


class Client:
    """HTTPS and plain HTTP clients aimed at 127.0.0.1, trusting the test CA."""

    def __init__(self, certs: Certificates):
        self.certs = certs

    def get(self, port: int, client_cert=None, path: str = "/"):
        """GET over TLS, optionally presenting a client certificate; (status, JSON body)."""
        status, body = self.request(port, "GET", path, client_cert=client_cert)
        return status, json.loads(body or b"null")

    def request(self, port, method, path, body=None, headers=None, client_cert=None):
        """Any request over TLS; (status, body bytes)."""
        context = ssl.create_default_context()
        self.certs.ca.configure_trust(context)
        if client_cert is not None:
            client_cert.configure_cert(context)
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def plain_get(self, port: int, path: str = "/"):
        """GET in clear text; (status, body bytes)."""
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture
def client(certs) -> Client:
    return Client(certs)


@pytest.fixture
def tls_hookaido(hookaido_process, certs):
    """``tls_hookaido(config_text)``: a ``HookaidoProcess`` (not started) whose folder holds
    ``server.pem``, ``server.key`` and ``client-ca.pem``."""

    def make(config_text: str):
        process = hookaido_process(config_text)
        for name in ("server.pem", "server.key", "client-ca.pem"):
            shutil.copy(certs.directory / name, process.workdir / name)
        return process

    return make


@pytest.fixture(name="free_port")
def one_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (here a number, not a factory)."""
    return free_port()
