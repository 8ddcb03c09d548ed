"""Hot reload of a running ``hookaido run``: SIGHUP and ``--watch`` apply live changes
atomically and refuse changes that need a restart, keeping the running config."""

import signal
import time

BASE = """
ingress {{ listen 127.0.0.1:{ingress} }}
admin_api {{ listen 127.0.0.1:{admin} }}
pull_api {{
  listen 127.0.0.1:{pull}
  {prefix}
  auth token raw:worker
}}
/webhooks/a {{ pull {{ path /a }} }}
"""

WITH_ROUTE_B = BASE + "/webhooks/b {{ pull {{ path /b }} }}\n"


def render(template: str, ports, prefix: str = "") -> str:
    return template.format(ingress=ports.ingress, admin=ports.admin, pull=ports.pull, prefix=prefix)


def test_sighup_adds_a_route_live(hookaido_process, ports, http):
    node = hookaido_process(render(BASE, ports)).start()
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/b"
    before = http("POST", url)

    node.write_config(render(WITH_ROUTE_B, ports))
    node.send_signal(signal.SIGHUP)
    [reloaded] = node.wait_for_event("config_reloaded_ok")
    after = http("POST", url)

    assert before.status == 404
    assert reloaded["trigger"] == "signal_sighup"
    assert reloaded["generation"] == 2
    assert after.status == 202
    dequeued = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}/b/dequeue",
        json_body={},
        headers={"Authorization": "Bearer worker"},
    )
    assert len(dequeued.json()["items"]) == 1


def test_restart_required_change_is_refused_and_the_old_config_stays(hookaido_process, ports, http):
    node = hookaido_process(render(BASE, ports)).start()

    node.write_config(render(WITH_ROUTE_B, ports, prefix="prefix /workers"))
    node.send_signal(signal.SIGHUP)
    [refused] = node.wait_for_event("config_reloaded_restart_required")
    new_route = http("POST", f"http://127.0.0.1:{ports.ingress}/webhooks/b")
    old_pull_url = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}/a/dequeue",
        json_body={},
        headers={"Authorization": "Bearer worker"},
    )

    assert refused["trigger"] == "signal_sighup"
    assert any("prefix" in area for area in refused["areas"])
    assert new_route.status == 404
    assert old_pull_url.status == 200
    assert not node.events("config_reloaded_ok")


def test_broken_config_is_refused_and_the_old_config_stays(hookaido_process, ports, http):
    node = hookaido_process(render(BASE, ports)).start()

    node.write_config(render(BASE, ports) + "/webhooks/c { pull { path /a } \n")
    node.send_signal(signal.SIGHUP)
    [failed] = node.wait_for_event("config_reload_failed")
    still = http("POST", f"http://127.0.0.1:{ports.ingress}/webhooks/a")

    assert failed["level"] == "ERROR"
    assert failed["error"]
    assert still.status == 202


def test_watch_reloads_when_the_file_changes(hookaido_process, ports, http):
    node = hookaido_process(render(BASE, ports), args=["--watch"]).start()
    node.wait_for_event("watching_config")
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/b"

    time.sleep(0.05)  # a new mtime even on coarse file-system clocks
    node.write_config(render(WITH_ROUTE_B, ports))
    [reloaded] = node.wait_for_event("config_reloaded_ok")

    assert reloaded["trigger"] == "watch"
    assert http("POST", url).status == 202


def test_reload_swaps_auth_atomically(hookaido_process, ports, http):
    protected = BASE.replace(
        "/webhooks/a {{ pull {{ path /a }} }}",
        "/webhooks/a {{\n  auth basic user {password}\n  pull {{ path /a }}\n}}",
    )
    node = hookaido_process(render(protected.replace("{password}", "old-pass"), ports)).start()
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/a"
    old = {"Authorization": "Basic dXNlcjpvbGQtcGFzcw=="}  # user:old-pass
    new = {"Authorization": "Basic dXNlcjpuZXctcGFzcw=="}  # user:new-pass

    node.write_config(render(protected.replace("{password}", "new-pass"), ports))
    node.send_signal(signal.SIGHUP)
    node.wait_for_event("config_reloaded_ok")

    assert http("POST", url, headers=old).status == 401
    assert http("POST", url, headers=new).status == 202
