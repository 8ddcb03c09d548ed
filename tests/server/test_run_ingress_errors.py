"""Every ingress error row answered by a real ``hookaido run`` over HTTP, with its JSON code."""

import base64
import hashlib
import hmac
import time

import pytest

CONFIG = """
ingress {{ listen 127.0.0.1:{ingress} }}
admin_api {{ listen 127.0.0.1:{admin} }}
pull_api {{
  listen 127.0.0.1:{pull}
  auth token raw:worker
}}
queue_limits {{ max_depth 6 }}

/limited {{
  rate_limit {{ rps 0.01; burst 1 }}
  pull {{ path /limited }}
}}
/small {{
  max_body 16
  max_headers 256
  pull {{ path /small }}
}}
/basic {{
  auth basic hook-user hook-pass
  pull {{ path /basic }}
}}
/github {{
  auth hmac {{
    provider github
    secret raw:s3cr3t
  }}
  pull {{ path /github }}
}}
/signed {{
  auth hmac raw:s3cr3t
  pull {{ path /signed }}
}}
/put-only {{
  match {{ method PUT }}
  pull {{ path /put-only }}
}}
"""


@pytest.fixture(scope="module")
def server(module_hookaido_process, module_ports):
    ports = module_ports
    module_hookaido_process(
        CONFIG.format(ingress=ports.ingress, pull=ports.pull, admin=ports.admin)
    ).start()
    return f"http://127.0.0.1:{ports.ingress}"


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


GITHUB_VECTOR = "sha256=608b0c406f3dda19702d71a048483b8c331283106d80a208e3cf43dbde505286"


def signed(path: str, body: bytes, nonce: str) -> dict:
    timestamp = str(int(time.time()))
    text = f"{timestamp}\nPOST\n{path}\n{hashlib.sha256(body).hexdigest()}"
    signature = hmac.new(b"s3cr3t", text.encode(), hashlib.sha256).hexdigest()
    return {"X-Timestamp": timestamp, "X-Nonce": nonce, "X-Signature": signature}


def test_error_rows_in_order_until_the_queue_is_full(server, http):
    once = signed("/signed", b"{}", "nonce-1")
    rows = [
        (("POST", "/nowhere", b"{}", {}), 404, "not_found"),
        (("POST", "/limitedx", b"{}", {}), 404, "not_found"),
        (("GET", "/limited", None, {}), 405, "method_not_allowed"),
        (("POST", "/put-only", b"{}", {}), 405, "method_not_allowed"),
        (("POST", "/small", b"x" * 17, {}), 413, "payload_too_large"),
        (("POST", "/small", b"{}", {"X-Big": "v" * 300}), 413, "headers_too_large"),
        (("POST", "/basic", b"{}", {}), 401, "unauthorized"),
        (("POST", "/basic", b"{}", basic("hook-user", "wrong")), 401, "unauthorized"),
        (("POST", "/limited", b"{}", {}), 202, None),
        (("POST", "/limited", b"{}", {}), 429, "rate_limited"),
        (("POST", "/small", b"{}", {}), 202, None),
        (("POST", "/basic", b"{}", basic("hook-user", "hook-pass")), 202, None),
        (("PUT", "/put-only", b"{}", {}), 202, None),
        (("POST", "/github", b"{}", {"X-Hub-Signature-256": "sha256=00"}), 401, "unauthorized"),
        (("POST", "/github", b"{}", {"X-Hub-Signature-256": GITHUB_VECTOR}), 202, None),
        (("POST", "/signed", b"{}", once), 202, None),
        (("POST", "/signed", b"{}", once), 401, "unauthorized"),
        (("POST", "/small", b"{}", {}), 503, "queue_full"),
    ]

    for (method, path, body, headers), status, code in rows:
        reply = http(method, server + path, body=body, headers=headers)

        assert reply.status == status, (method, path, reply.body)
        assert reply.headers["Content-Type"] == "application/json"
        if code is None:
            assert reply.json() == {"status": "queued"}
            continue
        document = reply.json()
        assert document["code"] == code
        assert document["detail"]
        if status == 405:
            assert reply.headers["Allow"] in ("POST", "PUT")
        if status in (429, 503):
            assert int(reply.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", "/small", b"\xff\xfe\x00" * 5, {"Content-Type": "application/json"}),
        ("POST", "/%2e%2e/%2e%2e/etc", b"{}", {}),
        ("POST", "/small?%zz=%%", b"{}", {}),
        ("DELETE", "/", None, {}),
        ("POST", "/basic", b"{}", {"Authorization": "Basic " + "A" * 5000}),
        ("POST", "/basic", b"{}", {"Authorization": "Bearer x"}),
        ("OPTIONS", "/small", None, {"Host": "[::1"}),
    ],
)
def test_odd_requests_never_get_a_500(server, http, method, path, body, headers):
    reply = http(method, server + path, body=body, headers=headers)

    assert reply.status < 500 or reply.status == 503


def test_a_body_far_beyond_every_limit_is_refused_without_reading_it(server, http):
    reply = http("POST", server + "/small", body=b"x" * (20 * 1024 * 1024))

    assert reply.status == 413
