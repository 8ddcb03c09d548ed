"""Push delivery throughput: one route with concurrency 20 against the same local receiver
driven directly by a urllib3 pool with 20 threads. Run by hand; finishes within two minutes.

    .venv/bin/python bench/deliver_bench.py [--messages 5000] [--seconds 5] [--backend sqlite]
"""

import argparse
import http.server
import multiprocessing
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta

import urllib3

from hookaido import plugins
from hookaido.config.model import Config, Defaults, DeliverTarget, EgressPolicy, RetryPolicy, Route
from hookaido.dispatcher import Dispatcher
from hookaido.observability import log
from hookaido.queue import BackendSettings, Envelope, new_event_id
from hookaido.runtime import Generation, Runtime

CONCURRENCY = 20
PAYLOAD = b'{"event":"order.created","id":12345,"amount":4200,"currency":"EUR"}'
LIMIT_SECONDS = 60.0


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 20 clients reconnecting at once overflow the default of 5


def _serve(port_out) -> None:
    server = _Server(("127.0.0.1", 0), _Answer)
    port_out.put(server.server_address[1])
    server.serve_forever(poll_interval=0.2)


def start_receiver():
    """The receiver runs in its own process so that it does not share a GIL with the client."""
    ports = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    process.start()
    return process, ports.get(timeout=10)


def direct_rate(url: str, seconds: float) -> float:
    pool = urllib3.PoolManager(maxsize=CONCURRENCY, retries=False, timeout=10.0)
    deadline = time.monotonic() + seconds
    counts = [0] * CONCURRENCY

    def client(index: int) -> None:
        while time.monotonic() < deadline:
            try:
                response = pool.request("POST", url, body=PAYLOAD, headers={"X-Bench": "1"})
            except urllib3.exceptions.HTTPError:
                continue  # counted as not delivered, like a failed attempt
            if 200 <= response.status < 300:
                counts[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 15)
    return sum(counts) / (time.monotonic() - started)


def dispatcher_rate(url: str, messages: int, backend_name: str, workdir: str) -> float:
    settings = BackendSettings(db_path=f"{workdir}/bench.db", max_depth=messages + 1)
    backend = plugins.registry().get("backend", backend_name).factory(settings)
    backend.open()
    target = DeliverTarget(
        target=url, kind="http", retry=RetryPolicy(), timeout=timedelta(seconds=10)
    )
    route = Route(
        path="/bench", backend="memory", deliver_concurrency=CONCURRENCY, targets=(target,)
    )
    egress = EgressPolicy(allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False)
    config = Config(routes=(route,), defaults=Defaults(egress=egress), backend="memory")
    now = datetime.now(UTC)
    backend.enqueue(
        Envelope(new_event_id(), "/bench", url, PAYLOAD, now, now, headers={"X-Bench": "1"})
        for _ in range(messages)
    )
    dispatcher = Dispatcher(Runtime(Generation(config), backend, plugins.registry()))

    started = time.monotonic()
    dispatcher.start()
    while backend.stats().total and time.monotonic() - started < LIMIT_SECONDS:
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    left = backend.stats().total
    dispatcher.stop(timeout=15)
    backend.close()
    return (messages - left) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backend", choices=("memory", "sqlite"), default="memory")
    args = parser.parse_args()
    log.configure(level="warn")  # one delivery_ok line per message would measure the log sink

    receiver, port = start_receiver()
    url = f"http://127.0.0.1:{port}/hook"
    try:
        direct_rate(url, 1.0)  # warm-up
        direct = direct_rate(url, args.seconds)
        with tempfile.TemporaryDirectory() as workdir:
            pushed = dispatcher_rate(url, args.messages, args.backend, workdir)
    finally:
        receiver.terminate()
        receiver.join(5)
    print(f"direct urllib3 pool, {CONCURRENCY} threads: {direct:8.0f} requests/s")
    print(
        f"hookaido dispatcher, concurrency {CONCURRENCY}, {args.backend}: "
        f"{pushed:8.0f} deliveries/s"
    )
    print(f"ratio: {pushed / direct:.0%} of the direct rate")


if __name__ == "__main__":
    main()
