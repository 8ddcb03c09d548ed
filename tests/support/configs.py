"""Hookaidofile pieces that several end-to-end test modules start ``hookaido run`` with."""

from .loopback import Ports

# Push targets in tests listen on plain HTTP at 127.0.0.1, which the default egress refuses.
OPEN_EGRESS = "defaults { egress { https_only off; dns_rebind_protection off } }"


def jobs_config(ports: Ports, backend: str, admin_token: str, more_routes: str = "") -> str:
    """All three listeners on ``ports`` (Admin API behind ``admin_token``) and a pull route
    ``/jobs/deploy`` served at ``/jobs`` on ``backend``, then ``more_routes``."""
    return f"""
ingress {{
  listen 127.0.0.1:{ports.ingress}
}}
pull_api {{
  listen 127.0.0.1:{ports.pull}
  auth token raw:pull-token
}}
admin_api {{
  listen 127.0.0.1:{ports.admin}
  auth token raw:{admin_token}
}}
/jobs/deploy {{
  queue {backend}
  pull {{
    path /jobs
  }}
}}
{more_routes}"""
