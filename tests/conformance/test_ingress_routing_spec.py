"""Ingress routing, matchers, limits and backpressure against spec/ingress.md §1-§8, over real
HTTP to a ``hookaido run`` on loopback: what a webhook sender is answered and what is stored."""

import time

TOKEN = {"Authorization": "Bearer routing-token"}


def node_config(ports, routes: str, globals_: str = "") -> str:
    return f"""
ingress {{
  listen 127.0.0.1:{ports.ingress}
}}
pull_api {{
  listen 127.0.0.1:{ports.pull}
  auth token raw:routing-token
}}
admin_api {{
  listen 127.0.0.1:{ports.admin}
}}
observability {{
  access_log off
}}
{globals_}
{routes}
"""


def stored(http, ports) -> list[dict]:
    """Every message the Admin API lists, newest first."""
    reply = http("GET", f"http://127.0.0.1:{ports.admin}/messages?limit=1000")
    assert reply.status == 200, reply.body
    return reply.json()["items"]


def lease(http, ports, pull_path: str, count: int) -> None:
    reply = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}{pull_path}/dequeue",
        json_body={"batch": count, "lease_ttl": "1h"},
        headers=TOKEN,
    )
    assert reply.status == 200, reply.body
    assert len(reply.json()["items"]) == count


def health(http, ports) -> dict:
    reply = http("GET", f"http://127.0.0.1:{ports.admin}/healthz?details=1")
    assert reply.status == 200, reply.body
    return reply.json()["diagnostics"]


# -- §8 adaptive backpressure -------------------------------------------------------------


def test_queued_share_rounds_half_up_against_queued_percent(hookaido_process, ports, http):
    pressure = """
defaults {
  adaptive_backpressure {
    enabled on
    min_total 8
    queued_percent 13
    ready_lag 1h
    oldest_queued_age 1h
    sustained_growth off
  }
}"""
    hookaido_process(node_config(ports, "/hooks { pull { path /hooks } }", pressure)).start()
    ingress = f"http://127.0.0.1:{ports.ingress}/hooks"
    for _ in range(8):
        assert http("POST", ingress, body=b"{}").status == 202
    lease(http, ports, "/hooks", 7)  # 1 queued of 8 active: 12.5 %, which rounds to 13 %
    time.sleep(0.3)  # queue stats are cached for 250 ms

    reply = http("POST", ingress, body=b"{}")

    assert (reply.status, reply.json()["code"]) == (503, "adaptive_backpressure")
    assert len(stored(http, ports)) == 8
    by_reason = health(http, ports)["ingress"]["adaptive_backpressure_by_reason"]
    assert by_reason["queued_pressure"] == 1


def test_sustained_growth_follows_the_backlog_snapshots(hookaido_process, ports, http):
    growth = """
defaults {
  trend_signals { sustained_growth_consecutive 1 }
  adaptive_backpressure {
    enabled on
    min_total 1
    queued_percent 100
    ready_lag 1h
    oldest_queued_age 1h
  }
}"""
    node = hookaido_process(node_config(ports, "/hooks { pull { path /hooks } }", growth))
    node.start()  # the start-up snapshot sees an empty queue
    ingress = f"http://127.0.0.1:{ports.ingress}/hooks"
    for _ in range(20):
        assert http("POST", ingress, body=b"{}").status == 202
    lease(http, ports, "/hooks", 1)  # 19 of 20 queued stays below queued_percent 100
    node.stop()
    node.start()  # this start-up snapshot sees 20: the backlog grew

    reply = http("POST", ingress, body=b"{}")

    assert (reply.status, reply.json()["code"]) == (503, "adaptive_backpressure")
    diagnostics = health(http, ports)
    assert diagnostics["queue"]["trend_signals"]["sustained_growth"] is True
    assert diagnostics["ingress"]["adaptive_backpressure_by_reason"]["sustained_growth"] == 1
    assert len(stored(http, ports)) == 20
