"""The deployment-modes examples run as written (listeners moved to loopback ports) and are
driven the way a worker or an operator would drive them with curl."""

import hashlib
import hmac
import time

PULL_TOKEN = "pull-token"
ADMIN_TOKEN = "admin-token"
INGRESS_SECRET = "ingress-secret"
ENV = {
    "HOOKAIDO_PULL_TOKEN": PULL_TOKEN,
    "HOOKAIDO_ADMIN_TOKEN": ADMIN_TOKEN,
    "HOOKAIDO_INGRESS_SECRET": INGRESS_SECRET,
}
# What `curl -d` sends when the caller does not name a type.
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def signed(path: str, body: bytes, nonce: str) -> dict:
    timestamp = str(int(time.time()))
    digest = hashlib.sha256(body).hexdigest()
    message = f"{timestamp}\nPOST\n{path}\n{digest}".encode()
    signature = hmac.new(INGRESS_SECRET.encode(), message, hashlib.sha256).hexdigest()
    return {"X-Timestamp": timestamp, "X-Nonce": nonce, "X-Signature": signature}


def test_pull_mode_worker_leases_and_acks_with_curl_style_bodies(hookaido_process, ports, http):
    run = hookaido_process(
        f"""
ingress {{ listen 127.0.0.1:{ports.ingress} }}
admin_api {{ listen 127.0.0.1:{ports.admin} }}
pull_api {{
  listen 127.0.0.1:{ports.pull}
  auth token env:HOOKAIDO_PULL_TOKEN
}}

/webhooks/github {{
  auth hmac env:HOOKAIDO_INGRESS_SECRET
  pull {{ path /pull/github }}
}}
""",
        env=ENV,
    ).start()
    pull = f"http://127.0.0.1:{ports.pull}/pull/github"
    worker = {"Authorization": f"Bearer {PULL_TOKEN}", **FORM}
    body = b'{"action":"push"}'

    accepted = http(
        "POST",
        f"http://127.0.0.1:{ports.ingress}/webhooks/github",
        body=body,
        headers={"Content-Type": "application/json", **signed("/webhooks/github", body, "n-1")},
    )
    leased = http("POST", pull + "/dequeue", body=b'{"batch":10,"lease_ttl":"30s"}', headers=worker)
    item = leased.json()["items"][0]
    extended = http(
        "POST",
        pull + "/extend",
        body=f'{{"lease_id":"{item["lease_id"]}","extend_by":"30s"}}'.encode(),
        headers=worker,
    )
    acked = http(
        "POST", pull + "/ack", body=f'{{"lease_id":"{item["lease_id"]}"}}'.encode(), headers=worker
    )
    run.stop()

    assert (accepted.status, accepted.json()) == (202, {"status": "queued"})
    assert leased.status == 200
    assert (item["route"], item["target"], item["attempt"]) == ("/webhooks/github", "pull", 1)
    assert item["payload_b64"] == "eyJhY3Rpb24iOiJwdXNoIn0="
    assert (extended.status, acked.status) == (204, 204)


def test_shared_listener_serves_pull_and_admin_and_internal_jobs_come_from_publish(
    hookaido_process, ports, http
):
    shared = f"127.0.0.1:{ports.pull}"
    hookaido_process(
        f"""
ingress {{ listen 127.0.0.1:{ports.ingress} }}
pull_api {{
  listen {shared}
  prefix /pull
  auth token env:HOOKAIDO_PULL_TOKEN
}}

admin_api {{
  listen {shared}
  prefix /admin
  auth token env:HOOKAIDO_ADMIN_TOKEN
}}

internal {{
  /jobs/nightly-report {{
    pull {{ path /nightly }}
  }}
  /jobs/cleanup {{
    pull {{ path /cleanup }}
  }}
}}
""",
        env=ENV,
    ).start()
    base = f"http://{shared}"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Hookaido-Audit-Reason": "nightly run"}
    worker = {"Authorization": f"Bearer {PULL_TOKEN}"}
    job = {"items": [{"id": "job-1", "route": "/jobs/cleanup", "payload_b64": "e30="}]}

    health = http("GET", base + "/admin/healthz")
    outside = http("GET", base + "/healthz")
    from_ingress = http("POST", f"http://127.0.0.1:{ports.ingress}/jobs/cleanup", body=b"{}")
    published = http("POST", base + "/admin/messages/publish", json_body=job, headers=admin)
    wrong_token = http("POST", base + "/pull/cleanup/dequeue", headers={**admin, **FORM})
    leased = http("POST", base + "/pull/cleanup/dequeue", body=b"{}", headers={**worker, **FORM})
    other_queue = http("POST", base + "/pull/nightly/dequeue", headers=worker)

    assert (health.status, health.body) == (200, b"ok\n")
    assert (outside.status, outside.body) == (404, b"")
    assert (from_ingress.status, from_ingress.json()["code"]) == (404, "not_found")
    assert (published.status, published.json()) == (
        200,
        {"published": 1, "audit": {"reason": "nightly run"}},
    )
    assert (wrong_token.status, wrong_token.json()["code"]) == (401, "unauthorized")
    assert leased.status == 200
    assert [(i["id"], i["route"], i["payload_b64"]) for i in leased.json()["items"]] == [
        ("job-1", "/jobs/cleanup", "e30=")
    ]
    assert (other_queue.status, other_queue.json()) == (200, {"items": []})
