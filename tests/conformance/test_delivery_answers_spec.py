"""How a push target's answer is classified, for answers a friendly receiver never sends:
``hookaido run`` in a subprocess and a loopback receiver that writes raw HTTP bytes."""

import socket
import threading

import pytest

from ..support.configs import OPEN_EGRESS
from ..support.scrape import wait_for

# What the raw receiver writes back, by request path, after reading the request head.
ANSWERS = {
    # Two informational answers, then the real one.
    "/early-hints": (
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    ),
    # An informational answer and no final one: the target never answered.
    "/processing-only": b"HTTP/1.1 102 Processing\r\n\r\n",
    # 101 is final: a status that is neither success nor retryable.
    "/switching": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\n\r\n",
}


class RawReceiver:
    """Answers each connection's first request with ``ANSWERS[path]`` and closes it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            # One thread per connection: the targets are delivered to at the same time.
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    @staticmethod
    def _answer(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                head += chunk
            path = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else ""
            connection.sendall(ANSWERS.get(path, b"HTTP/1.1 500 Nope\r\n\r\n"))

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def raw_receiver():
    receiver = RawReceiver()
    yield receiver
    receiver.close()


def test_informational_answers_are_skipped_and_the_final_answer_classifies_the_attempt(
    hookaido_process, free_ports, http, raw_receiver
):
    ingress, admin = free_ports(2)
    targets = "\n".join(
        f'deliver "{raw_receiver.url(path)}" {{ retry exponential max 3 base 1m }}'
        for path in ANSWERS
    )
    run = hookaido_process(
        f"""
        ingress {{ listen 127.0.0.1:{ingress} }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        {OPEN_EGRESS}
        /hook {{
          {targets}
        }}
        """
    )
    run.start()

    accepted = http("POST", f"http://127.0.0.1:{ingress}/hook", body=b"{}")
    attempts = wait_for(
        lambda: [
            items
            for items in [http("GET", f"http://127.0.0.1:{admin}/attempts").json()["items"]]
            if len(items) == 3
        ],
        timeout=30,
    )[0]
    by_path = {item["target"].rsplit("/", 1)[1]: item for item in attempts}

    assert accepted.status == 202
    early = by_path["early-hints"]
    assert (early["outcome"], early["status_code"], early["attempt"]) == ("acked", 200, 1)
    assert "dead_reason" not in early
    processing = by_path["processing-only"]
    assert (processing["outcome"], processing.get("status_code", 0)) == ("retry", 0)
    assert "closed connection" in processing["error"]
    switching = by_path["switching"]
    assert (switching["outcome"], switching["status_code"]) == ("dead", 101)
    assert switching["dead_reason"] == "no_retry"
    ok = run.wait_for_event("delivery_ok")[0]
    assert (ok["status"], ok["target"]) == (200, raw_receiver.url("/early-hints"))
