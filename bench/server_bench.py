"""Load-test the real server with wrk on 127.0.0.1: durable ingress vs a bare 202 handler, and
Pull API drain with batch 100. Run by hand: ``.venv/bin/python bench/server_bench.py``.

Needs ``wrk`` (Debian: ``apt-get install -y wrk``). Nothing listens beyond loopback.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import urllib3

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"
BODY = '{"event":"bench","payload":"' + "x" * 200 + '"}'

POST_SCRIPT = """
wrk.method = "POST"
wrk.body = 'BODY'
wrk.headers["Content-Type"] = "application/json"
""".replace("BODY", BODY)

DRAIN_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  pending = {}
  acked = 0
  dequeue_path = args[1]
  ack_path = args[2]
end

function request()
  if #pending > 0 then
    local ids = {}
    for i = 1, math.min(#pending, 100) do ids[i] = '"' .. table.remove(pending) .. '"' end
    return wrk.format("POST", ack_path,
      {["Authorization"] = "Bearer TOKEN", ["Content-Type"] = "application/json"},
      '{"lease_ids":[' .. table.concat(ids, ",") .. ']}')
  end
  return wrk.format("POST", dequeue_path,
    {["Authorization"] = "Bearer TOKEN", ["Content-Type"] = "application/json"},
    '{"batch":100,"lease_ttl":"2m"}')
end

function response(status, headers, body)
  for id in string.gmatch(body, '"lease_id"%s*:%s*"(lease_%x+)"') do
    table.insert(pending, id)
  end
  local n = string.match(body, '"acked"%s*:%s*(%d+)')
  if n then acked = acked + tonumber(n) end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("acked") end
  io.write(string.format("ACKED %d\\n", total))
end
""".replace("TOKEN", TOKEN)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def bare_server(port: int, threads: int) -> None:
    """The ceiling of falcon + waitress here: accept, read the body, answer 202."""
    import falcon
    import waitress

    class Accept:
        def __call__(self, req, resp, **_):
            req.bounded_stream.read()
            resp.status = 202
            resp.content_type = falcon.MEDIA_JSON
            resp.data = b'{"status":"queued"}\n'

    app = falcon.App()
    app.add_sink(Accept(), prefix="/")
    waitress.serve(app, host="127.0.0.1", port=port, threads=threads, ident="bare", _quiet=True)


def parse_wrk(output: str) -> dict:
    def seconds(text: str) -> float:
        value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for label, key in (("50%", "p50"), ("99%", "p99")):
        match = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", output, re.MULTILINE)
        result[key] = seconds(match.group(1)) if match else None
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    acked = re.search(r"ACKED (\d+)", output)
    if acked:
        result["acked"] = int(acked.group(1))
    took = re.search(r"requests in ([\d.]+\w+),", output)
    result["seconds"] = seconds(took.group(1)) if took else None
    return result


def wrk(url: str, script: Path, seconds: int, connections: int, args=()) -> tuple[dict, float]:
    command = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
        "-s", str(script), url, *args,
    ]  # fmt: skip
    started = time.monotonic()
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    return parse_wrk(output), time.monotonic() - started


def hookaidofile(ports: dict, backend: str = "sqlite") -> str:
    return f"""
ingress {{
  listen 127.0.0.1:{ports["ingress"]}
}}
pull_api {{
  listen 127.0.0.1:{ports["pull"]}
  auth token raw:{TOKEN}
}}
admin_api {{
  listen 127.0.0.1:{ports["admin"]}
}}
observability {{
  access_log off
}}
queue_limits {{
  max_depth 0
}}
/webhooks/bench {{
  queue {backend}
  pull {{ path /pull/bench }}
}}
"""


def prefill(db_path: Path, count: int) -> None:
    """Put ``count`` envelopes straight into the SQLite file before the server starts."""
    from hookaido.plugins import registry
    from hookaido.queue import BackendSettings, Envelope, new_event_id

    backend = (
        registry()
        .get("backend", "sqlite")
        .factory(BackendSettings(db_path=str(db_path), max_depth=0))
    )
    backend.open()
    try:
        # One microsecond apart, as webhooks arrive one after another (with equal times the
        # queue order would fall back to the random ids).
        first = datetime.now(UTC) - timedelta(seconds=1)
        for start in range(0, count, 1000):
            backend.enqueue(
                Envelope(
                    id=new_event_id(),
                    route="/webhooks/bench",
                    target="pull",
                    payload=BODY.encode(),
                    received_at=first + timedelta(microseconds=index),
                    next_run_at=first + timedelta(microseconds=index),
                    headers={"Content-Type": "application/json"},
                )
                for index in range(start, min(start + 1000, count))
            )
    finally:
        backend.close()


def start_hookaido(folder: Path, ports: dict, backend: str, db_path: Path | None = None):
    """``hookaido run`` on ``ports`` (127.0.0.1 only); returns the process once it listens."""
    folder.mkdir(exist_ok=True)
    (folder / "Hookaidofile").write_text(hookaidofile(ports, backend=backend))
    command = [sys.executable, "-m", "hookaido", "run", "--config", str(folder / "Hookaidofile"),
               "--log-level", "warn"]  # fmt: skip
    if db_path is not None:
        command += ["--db", str(db_path)]
    server = subprocess.Popen(
        command, cwd=folder, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "wb")
    )
    for port in ports.values():
        wait_port(port)
    return server


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def queued(admin_port: int) -> int:
    http = urllib3.PoolManager(timeout=5.0)
    reply = http.request("GET", f"http://127.0.0.1:{admin_port}/healthz?details=1")
    return json.loads(reply.data)["diagnostics"]["queue"]["by_state"]["queued"]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=3, help="ingress runs of each server, and drain runs"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=64, help="bare server threads (Hookaido's ingress has 64)"
    )
    parser.add_argument("--prefill", type=int, default=250000)
    parser.add_argument("--drain-connections", type=int, default=8)
    parser.add_argument("--drain-seconds", type=int, default=4)
    parser.add_argument("--bare-server", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server, args.threads)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="hookaido-bench-"))
    (work / "post.lua").write_text(POST_SCRIPT)
    (work / "drain.lua").write_text(DRAIN_SCRIPT)
    processes = []
    runs: dict[str, list[dict]] = {"bare": [], "memory": [], "sqlite": []}
    drains: list[dict] = []
    try:
        # All three servers run side by side, idle but for the one under load; their runs
        # alternate, so a slow spell of this shared machine falls on each of them alike.
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, __file__, "--bare-server", str(bare_port), "--threads",
             str(args.threads)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(bare)
        wait_port(bare_port)
        memory_ports = {"ingress": free_port(), "pull": free_port(), "admin": free_port()}
        processes.append(start_hookaido(work / "memory", memory_ports, "memory"))
        ports = {"ingress": free_port(), "pull": free_port(), "admin": free_port()}
        db_path = work / "sqlite" / "bench.db"
        db_path.parent.mkdir()
        prefill(db_path, args.prefill)
        server = start_hookaido(work / "sqlite", ports, "sqlite", db_path)
        processes.append(server)

        targets = {
            "bare": bare_port,
            "memory": memory_ports["ingress"],
            "sqlite": ports["ingress"],
        }
        for _ in range(args.rounds):
            for name, port in targets.items():
                result, _ = wrk(
                    f"http://127.0.0.1:{port}/webhooks/bench",
                    work / "post.lua",
                    args.seconds,
                    args.connections,
                )
                runs[name].append(result)

        # The drain runs with the other two servers stopped: nothing else holds memory or
        # wakes up on the machine while it is measured.
        for process in processes:
            if process is not server:
                stop(process)
        backlog = queued(ports["admin"])
        for _ in range(args.rounds):
            result, _ = wrk(
                f"http://127.0.0.1:{ports['pull']}/",
                work / "drain.lua",
                args.drain_seconds,
                args.drain_connections,
                ("--", "/pull/bench/dequeue", "/pull/bench/ack"),
            )
            drains.append(result)
        left = queued(ports["admin"])
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)

    def ms(value):
        return f"{value * 1000:.2f} ms" if value is not None else "n/a"

    def rps(name):
        return [round(run["rps"]) for run in runs[name]]

    def ratios(name):
        pairs = zip(runs[name], runs["bare"], strict=True)
        return [run["rps"] / base["rps"] for run, base in pairs]

    ratio = median(ratios("sqlite"))
    drain_rates = [run.get("acked", 0) / run["seconds"] for run in drains]
    drain_rate = median(drain_rates)
    report = {
        "cpus": os.cpu_count(),
        "rounds": args.rounds,
        "bare_rps": rps("bare"),
        "memory_ingress_rps": rps("memory"),
        "ingress_rps": rps("sqlite"),
        "ingress_non_2xx": sum(run["non_2xx"] for run in runs["sqlite"]),
        "bare_p50_p99": [f"{ms(run['p50'])} / {ms(run['p99'])}" for run in runs["bare"]],
        "ingress_p50_p99": [f"{ms(run['p50'])} / {ms(run['p99'])}" for run in runs["sqlite"]],
        "memory_vs_bare": [f"{value:.0%}" for value in ratios("memory")],
        "ingress_vs_bare": [f"{value:.0%}" for value in ratios("sqlite")],
        "ingress_vs_bare_median": f"{ratio:.0%}",
        "drain_backlog": backlog,
        "drained": sum(run.get("acked", 0) for run in drains),
        "left_queued": left,
        "drain_msgs_per_s": [round(rate) for rate in drain_rates],
        "drain_msgs_per_s_median": round(drain_rate)
        if left
        else f">= {round(drain_rate)} (ran dry)",
        "drain_call_p50_p99": [f"{ms(run['p50'])} / {ms(run['p99'])}" for run in drains],
    }
    width = max(len(key) for key in report)
    for key, value in report.items():
        shown = ", ".join(str(item) for item in value) if isinstance(value, list) else value
        print(f"{key:<{width}}  {shown}")
    print(f"goal ingress >= 60% of bare (median of rounds): {'met' if ratio >= 0.6 else 'missed'}")
    drain_goal = "met" if drain_rate >= 20000 else "missed"
    print(f"goal drain >= 20000 msgs/s (median of rounds): {drain_goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
