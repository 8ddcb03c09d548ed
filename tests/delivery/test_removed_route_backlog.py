"""A reload that removes a push route while its messages are still queued says so: the
dispatcher logs ``dispatcher_target_config_missing`` with route, target and count."""

import signal

from ..support.loopback import Ports, http
from .conftest import Receiver, Reply


def hookaidofile(ports: Ports, receiver: Receiver, with_tmp_route: bool) -> str:
    tmp_route = f"""
/hooks/tmp {{
  queue memory
  deliver "{receiver.url("/fail-tmp")}" {{ retry exponential max 5 base 1m cap 2m jitter 0 }}
}}
"""
    return f"""
ingress {{ listen 127.0.0.1:{ports.ingress} }}
pull_api {{ listen 127.0.0.1:{ports.pull}; auth token raw:pull-token }}
admin_api {{ listen 127.0.0.1:{ports.admin} }}
defaults {{
  egress {{
    allow 127.0.0.1
    https_only off
    dns_rebind_protection off
  }}
}}
/hooks/kept {{
  queue memory
  deliver "{receiver.url("/kept")}" {{}}
}}
{tmp_route if with_tmp_route else ""}
"""


def test_a_removed_route_with_queued_messages_is_reported_after_sighup(
    ports, receiver, hookaido_process
):
    receiver.replies_for["/fail-tmp"] = [Reply(503)]
    node = hookaido_process(hookaidofile(ports, receiver, with_tmp_route=True)).start()
    accepted = http("POST", f"http://127.0.0.1:{ports.ingress}/hooks/tmp", b"tmp")
    node.wait_for_event("delivery_retry")  # first attempt failed; the retry is a minute away

    node.write_config(hookaidofile(ports, receiver, with_tmp_route=False))
    node.send_signal(signal.SIGHUP)
    node.wait_for_event("dispatcher_reloaded")
    missing = node.events("dispatcher_target_config_missing", since_start=True)
    listed = http("GET", f"http://127.0.0.1:{ports.admin}/messages?route=/hooks/tmp").json()

    assert accepted.status == 202
    assert [(e["level"], e["route"], e["target"], e["count"]) for e in missing] == [
        ("WARN", "/hooks/tmp", receiver.url("/fail-tmp"), 1)
    ]
    assert [item["state"] for item in listed["items"]] == ["queued"]
    assert node.stop() == 0
