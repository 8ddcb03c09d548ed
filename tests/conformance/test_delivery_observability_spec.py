"""Push delivery and observability as a user meets them: ``hookaido run`` in a subprocess, a
recording receiver on loopback, the metrics listener, the Admin API and the runtime log."""

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..delivery.conftest import Receiver

OPEN_EGRESS = """
defaults {
  egress {
    https_only off
    dns_rebind_protection off
    allow 127.0.0.1
  }
}
"""


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def push_config(ingress: int, admin: int, metrics: int, routes: str, queue: str = "") -> str:
    return f"""
    ingress {{ listen 127.0.0.1:{ingress} }}
    admin_api {{ listen 127.0.0.1:{admin} }}
    observability {{ metrics {{ listen 127.0.0.1:{metrics}; prefix /metrics }} }}
    {OPEN_EGRESS}
    {queue}
    {routes}
    """


# --------------------------------------------------------------------------------------
# Delivery (delivery.md §3)
# --------------------------------------------------------------------------------------


def test_a_refused_connection_is_retried_and_recorded_as_refused_not_as_a_timeout(
    hookaido_process, free_ports, http
):
    ingress, admin, metrics, closed = free_ports(4)
    run = hookaido_process(
        push_config(
            ingress,
            admin,
            metrics,
            f"""
            /hook {{
              deliver "http://127.0.0.1:{closed}/in" {{
                retry exponential max 1 base 50ms cap 50ms jitter 0
                timeout 5s
              }}
            }}
            """,
        )
    )
    run.start()

    accepted = http("POST", f"http://127.0.0.1:{ingress}/hook", body=b"{}")
    dead = run.wait_for_event("delivery_dead")
    attempts = http("GET", f"http://127.0.0.1:{admin}/attempts").json()["items"]
    retry = run.events("delivery_retry")

    assert accepted.status == 202
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(2, "dead"), (1, "retry")]
    assert attempts[0]["dead_reason"] == "max_retries"
    for attempt in attempts:
        assert attempt.get("status_code", 0) == 0
        assert "refused" in attempt["error"].lower()
        assert "timeout" not in attempt["error"].lower()
    assert "refused" in retry[0]["error"].lower()
    assert dead[0]["reason"] == "max_retries"
