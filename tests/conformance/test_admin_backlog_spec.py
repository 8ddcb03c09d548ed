"""The backlog views of the Admin API as an operator reads them from a real ``hookaido run`` on
each queue backend: every count key is present, zero when nothing was seen."""

import pytest

from ..support.configs import jobs_config
from ..support.loopback import Ports, http

TOKEN = "admin-token"
COUNTED = ("queued", "leased", "dead", "total")


class Admin:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.auth = {"Authorization": f"Bearer {TOKEN}"}

    def get(self, path: str) -> dict:
        reply = http("GET", self.base + path, headers=self.auth)
        assert reply.status == 200, reply.body
        return reply.json()

    def publish(self, *ids: str) -> None:
        items = [{"id": i, "route": "/jobs/deploy"} for i in ids]
        headers = {**self.auth, "X-Hookaido-Audit-Reason": "conformance"}
        reply = http(
            "POST", self.base + "/messages/publish", json_body={"items": items}, headers=headers
        )
        assert reply.status == 200, reply.body


@pytest.fixture(scope="module", params=["sqlite", "memory"])
def admin(request, module_hookaido_process):
    ports = Ports.allocate()
    config = jobs_config(ports, request.param, TOKEN)
    module_hookaido_process(config, name=f"backlog-{request.param}").start()
    server = Admin(ports.admin)
    server.publish("aging-1", "aging-2", "aging-3")
    return server


def test_trends_of_a_window_without_samples_report_zero_totals(admin):
    body = admin.get("/backlog/trends?window=10m&step=5m&until=2026-01-01T00:10:00Z")

    assert (body["sample_count"], body["latest_total"], body["max_total"]) == (0, 0, 0)
    assert "latest_captured_at" not in body
    assert body["items"] == [
        {
            "bucket_start": start,
            "bucket_end": end,
            "sample_count": 0,
            **{f"{state}_{kind}": 0 for kind in ("last", "max") for state in COUNTED},
        }
        for start, end in (
            ("2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"),
            ("2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"),
        )
    ]


def test_aging_state_counts_name_every_scanned_state(admin):
    body = admin.get("/backlog/aging_summary?route=/jobs/deploy")

    [bucket] = body["items"]
    assert bucket["state_counts"] == {"queued": 3, "leased": 0, "dead": 0}
    assert (bucket["queued_observed"], bucket["leased_observed"]) == (3, 0)


def test_a_truncated_aging_scan_is_source_bounded_even_with_a_route(admin):
    body = admin.get("/backlog/aging_summary?route=/jobs/deploy&states=queued&limit=2")

    assert body["state_scan"] == {"queued": {"scanned": 2, "truncated": True}}
    assert (body["scanned"], body["truncated"], body["source_bounded"]) == (2, True, True)


def test_a_complete_aging_scan_is_not_source_bounded(admin):
    body = admin.get("/backlog/aging_summary?route=/jobs/deploy&states=queued")

    assert (body["scanned"], body["truncated"], body["source_bounded"]) == (3, False, False)
