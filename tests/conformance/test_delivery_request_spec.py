"""The request a push target receives, as a user meets it: ``hookaido run`` in a subprocess and
a recording receiver on loopback."""

import pytest

from ..delivery.conftest import Receiver
from ..support.configs import OPEN_EGRESS


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_configured_framing_headers_are_left_to_the_http_client(
    hookaido_process, free_ports, http, receiver
):
    ingress, admin = free_ports(2)
    run = hookaido_process(
        f"""
        ingress {{ listen 127.0.0.1:{ingress} }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        {OPEN_EGRESS}
        /hook {{
          deliver "{receiver.url("/in")}" {{
            header Content-Length "999"
            header Transfer-Encoding "chunked"
            header Host "elsewhere.example"
            header X-Source "edge"
          }}
        }}
        """
    )
    run.start()

    http("POST", f"http://127.0.0.1:{ingress}/hook", body=b'{"n":1}')
    request = receiver.wait_for(1)[0]
    ok = run.wait_for_event("delivery_ok")[0]

    assert (request.method, request.path, request.body) == ("POST", "/in", b'{"n":1}')
    assert request.headers["Content-Length"] == "7"
    assert "Transfer-Encoding" not in request.headers
    assert request.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["X-Source"] == "edge"
    assert (ok["status"], ok["attempt"]) == (200, 1)
