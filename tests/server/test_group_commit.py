"""Group commit: concurrent webhooks share transactions, and each still gets its own outcome."""

import threading
import time

from hookaido.queue import QueueFull
from hookaido.server.group_commit import GroupCommitter


class SlowQueue:
    """Takes 20 ms per commit (like a sync to disk) and holds at most ``capacity`` items."""

    def __init__(self, capacity: int = 10**9):
        self.capacity = capacity
        self.items: list = []
        self.commits = 0
        self.lock = threading.Lock()

    def enqueue(self, envelopes) -> None:
        batch = list(envelopes)
        time.sleep(0.02)
        with self.lock:
            if len(self.items) + len(batch) > self.capacity:
                raise QueueFull()
            self.items.extend(batch)
            self.commits += 1


def enqueue_concurrently(committer, count: int) -> dict:
    outcomes: dict = {}
    start = threading.Barrier(count)

    def one(number: int) -> None:
        start.wait(timeout=10)
        try:
            committer.enqueue([f"envelope-{number}"])
            outcomes[number] = "stored"
        except QueueFull:
            outcomes[number] = "full"

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return outcomes


def test_concurrent_requests_share_commits_and_all_are_stored():
    queue = SlowQueue()

    outcomes = enqueue_concurrently(GroupCommitter(queue), 40)

    assert set(outcomes.values()) == {"stored"}
    assert sorted(queue.items) == sorted(f"envelope-{n}" for n in range(40))
    assert queue.commits < 20


def test_a_full_queue_refuses_only_the_requests_that_do_not_fit():
    queue = SlowQueue(capacity=25)

    outcomes = enqueue_concurrently(GroupCommitter(queue), 40)

    assert list(outcomes.values()).count("stored") == 25
    assert list(outcomes.values()).count("full") == 15
    stored = {f"envelope-{n}" for n, outcome in outcomes.items() if outcome == "stored"}
    assert set(queue.items) == stored


def test_a_lone_request_with_two_targets_keeps_the_first_when_the_second_fails():
    queue = SlowQueue(capacity=1)

    try:
        GroupCommitter(queue).enqueue(["first-target", "second-target"])
        raised = False
    except QueueFull:
        raised = True

    assert raised
    assert queue.items == ["first-target"]
