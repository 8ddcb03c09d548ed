"""``hookaido run`` with TLS: mutual TLS on a listener shared by the Pull and Admin APIs, and
certificate problems that stop start-up before any socket is opened."""

import json
import socket
import ssl
import urllib.request

import pytest
import trustme

HANDSHAKE_REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError)
TOKEN = "worker-token"


def config(ingress: int, shared: int, tls: str) -> str:
    return f"""
    ingress {{ listen 127.0.0.1:{ingress} }}
    pull_api {{
      listen 127.0.0.1:{shared}
      prefix /pull
      auth token raw:{TOKEN}
      {tls}
    }}
    admin_api {{
      listen 127.0.0.1:{shared}
      prefix /admin
      auth token raw:admin-token
      {tls}
    }}
    /webhooks/github {{ pull {{ path /github }} }}
    """


MUTUAL_TLS = """tls {
        cert_file server.pem
        key_file server.key
        client_ca client-ca.pem
        client_auth require_and_verify
      }"""


def test_workers_and_operators_with_a_client_certificate_use_the_shared_tls_listener(
    tls_hookaido, free_ports, certs, client
):
    ingress, shared = free_ports(2)
    tls_hookaido(config(ingress, shared, MUTUAL_TLS)).start(wait=False).wait_listening(shared)
    urllib.request.urlopen(
        urllib.request.Request(
            f"http://127.0.0.1:{ingress}/webhooks/github", data=b'{"zen":"tls"}', method="POST"
        ),
        timeout=5,
    ).close()
    worker = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    status, body = client.request(
        shared, "POST", "/pull/github/dequeue", b"{}", worker, client_cert=certs.good_client
    )
    health_status, health = client.request(
        shared,
        "GET",
        "/admin/healthz?details=1",
        headers={"Authorization": "Bearer admin-token"},
        client_cert=certs.good_client,
    )

    assert status == 200
    (item,) = json.loads(body)["items"]
    assert item["route"] == "/webhooks/github"
    assert health_status == 200
    assert json.loads(health)["diagnostics"]["queue"]["by_state"]["leased"] == 1


def test_the_shared_tls_listener_refuses_clients_without_the_right_certificate(
    tls_hookaido, free_ports, certs, client
):
    ingress, shared = free_ports(2)
    tls_hookaido(config(ingress, shared, MUTUAL_TLS)).start(wait=False).wait_listening(shared)
    worker = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    with pytest.raises(HANDSHAKE_REFUSED):
        client.request(shared, "POST", "/pull/github/dequeue", b"{}", worker)
    with pytest.raises(HANDSHAKE_REFUSED):
        client.request(
            shared, "POST", "/pull/github/dequeue", b"{}", worker, client_cert=certs.foreign_client
        )
    plain_status, _ = client.plain_get(shared, "/admin/healthz")

    assert plain_status == 400


def test_a_key_that_does_not_match_stops_start_up_before_anything_listens(tls_hookaido, free_ports):
    ingress, shared = free_ports(2)
    run = tls_hookaido(config(ingress, shared, MUTUAL_TLS))
    other_key = trustme.CA().issue_cert("127.0.0.1").private_key_pem
    other_key.write_to_path(str(run.workdir / "server.key"))
    # The ingress port is taken: had Hookaido tried to listen anywhere before checking the
    # certificate files, it would complain about this address instead.
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", ingress))
        occupant.listen()
        run.start(wait=False)

        code = run.wait_exit()

    assert code == 1
    assert "config invalid:" in run.output()
    assert "server.key" in run.output()
    assert "does not match" in run.output()
    assert "in use" not in run.output()


def test_a_missing_certificate_file_stops_start_up_naming_the_file(tls_hookaido, free_ports):
    ingress, shared = free_ports(2)
    run = tls_hookaido(config(ingress, shared, MUTUAL_TLS))
    (run.workdir / "server.pem").unlink()
    run.start(wait=False)

    code = run.wait_exit()

    assert code == 1
    assert "server.pem" in run.output()
    assert "cannot read" in run.output()


def test_ingress_and_pull_api_share_a_verify_if_given_listener(
    tls_hookaido, free_ports, certs, client
):
    shared, admin = free_ports(2)
    tls = """tls {
        cert_file server.pem
        key_file server.key
        client_ca client-ca.pem
        client_auth verify_if_given
      }"""
    run = tls_hookaido(
        f"""
        ingress {{
          listen 127.0.0.1:{shared}
          {tls}
        }}
        pull_api {{
          listen 127.0.0.1:{shared}
          prefix /pull
          auth token raw:{TOKEN}
          {tls}
        }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        /webhooks/github {{ pull {{ path /github }} }}
        """
    )
    run.start(wait=False).wait_listening(shared)
    worker = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    provider_status, _ = client.request(shared, "POST", "/webhooks/github", b'{"zen":"hi"}')
    worker_status, body = client.request(
        shared, "POST", "/pull/github/dequeue", b"{}", worker, client_cert=certs.good_client
    )
    with pytest.raises(HANDSHAKE_REFUSED):
        client.request(shared, "POST", "/webhooks/github", b"{}", client_cert=certs.foreign_client)

    assert provider_status == 202
    assert worker_status == 200
    assert len(json.loads(body)["items"]) == 1
