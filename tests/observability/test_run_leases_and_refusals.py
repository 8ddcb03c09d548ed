"""``hookaido run`` end to end: series that change with time alone (a lease passing its
deadline) and refusal log lines, read the way an operator reads them."""

import time

from ..support.scrape import samples

ROUTE = "/webhooks/jobs"
WORKER = {"Authorization": "Bearer worker-token"}


def pull_config(ingress: int, pull: int, admin: int, metrics: int) -> str:
    return f"""
    ingress {{ listen 127.0.0.1:{ingress} }}
    pull_api {{
      listen 127.0.0.1:{pull}
      auth token raw:worker-token
    }}
    admin_api {{ listen 127.0.0.1:{admin} }}
    observability {{ metrics {{ listen 127.0.0.1:{metrics}; prefix /metrics }} }}
    {ROUTE} {{ pull {{ path /pull/jobs }} }}
    """


def test_a_lease_past_its_deadline_is_no_longer_active_when_scraped(
    hookaido_process, free_ports, http
):
    ingress, pull, admin, metrics = free_ports(4)
    run = hookaido_process(pull_config(ingress, pull, admin, metrics))
    run.start()
    http("POST", f"http://127.0.0.1:{ingress}{ROUTE}", body=b"{}")
    dequeued = http(
        "POST",
        f"http://127.0.0.1:{pull}/pull/jobs/dequeue",
        json_body={"batch": 1, "lease_ttl": "1s"},
        headers=WORKER,
    ).json()
    active = ("hookaido_pull_lease_active", (("route", ROUTE),))

    before = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())
    time.sleep(1.5)  # no request reaches the Pull API while the lease runs out
    after = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())
    health = http("GET", f"http://127.0.0.1:{admin}/healthz?details=1").json()

    assert len(dequeued["items"]) == 1
    assert before[active] == 1
    assert after[active] == 0
    assert health["diagnostics"]["pull"]["by_route"][ROUTE]["lease_active"] == 0
    assert health["diagnostics"]["pull"]["total"]["lease_active"] == 0


def test_a_settled_lease_leaves_the_gauge_once_and_only_once(hookaido_process, free_ports, http):
    ingress, pull, admin, metrics = free_ports(4)
    run = hookaido_process(pull_config(ingress, pull, admin, metrics))
    run.start()
    for _ in range(2):
        http("POST", f"http://127.0.0.1:{ingress}{ROUTE}", body=b"{}")
    dequeued = http(
        "POST",
        f"http://127.0.0.1:{pull}/pull/jobs/dequeue",
        json_body={"batch": 2, "lease_ttl": "1s"},
        headers=WORKER,
    ).json()
    first, second = (item["lease_id"] for item in dequeued["items"])

    acked = http(
        "POST",
        f"http://127.0.0.1:{pull}/pull/jobs/ack",
        json_body={"lease_id": first},
        headers=WORKER,
    )
    time.sleep(1.5)
    values = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())
    late = http(
        "POST",
        f"http://127.0.0.1:{pull}/pull/jobs/ack",
        json_body={"lease_id": second},
        headers=WORKER,
    )
    after = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())

    assert acked.status == 204
    assert values[("hookaido_pull_lease_active", (("route", ROUTE),))] == 0
    assert late.status == 409
    assert after[("hookaido_pull_lease_active", (("route", ROUTE),))] == 0
    assert after[("hookaido_pull_acked_total", (("route", ROUTE),))] == 1
    assert after[("hookaido_pull_ack_conflict_total", (("route", ROUTE),))] == 1
    assert after[("hookaido_pull_lease_expired_total", (("route", ROUTE),))] == 1


def test_a_refused_stripe_signature_is_logged_with_its_reason_and_header(
    hookaido_process, free_ports, http
):
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        f"""
        ingress {{ listen 127.0.0.1:{ingress} }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        observability {{ metrics {{ listen 127.0.0.1:{metrics}; prefix /metrics }} }}
        /stripe {{
          auth hmac {{ provider stripe; secret raw:s3cr3t-value }}
          pull {{ path /pull/stripe }}
        }}
        pull_api {{ listen 127.0.0.1:{free_ports(1)[0]}; auth token raw:worker-token }}
        """
    )
    run.start()
    url = f"http://127.0.0.1:{ingress}/stripe"

    missing = http("POST", url, body=b"{}")
    stale = http("POST", url, body=b"{}", headers={"Stripe-Signature": "t=1,v1=" + "00" * 32})
    logged = run.wait_for_event("hmac_stripe_failed", count=2)
    values = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())

    assert (missing.status, stale.status) == (401, 401)
    assert [line["reason"] for line in logged] == ["header_missing", "ts_out_of_tolerance"]
    for line in logged:
        assert line["level"] == "WARN"
        assert line["header"] == "Stripe-Signature"
        assert line["route"] == "/stripe"
    assert "s3cr3t-value" not in run.output()
    reason = "hookaido_ingress_rejected_by_reason_total"
    assert values[(reason, (("reason", "auth"), ("status", "401")))] == 2
