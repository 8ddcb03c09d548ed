"""The replay store: provisional claims, commit and release, expiry, and its size bound."""

import threading
from datetime import timedelta

from hookaido.nonces import NonceStore, process_store

T = 1_000_000.0


def test_claimed_nonce_cannot_be_claimed_again_until_it_expires():
    store = NonceStore()
    store.claim("/r", "n", ttl=60, now=T).commit()

    assert store.claim("/r", "n", ttl=60, now=T + 60) is None
    assert store.claim("/r", "n", ttl=60, now=T + 61) is not None


def test_ttl_may_be_a_timedelta():
    store = NonceStore()
    store.claim("/r", "n", ttl=timedelta(minutes=1), now=T)

    assert store.claim("/r", "n", ttl=1, now=T + 59) is None


def test_released_claim_frees_the_nonce():
    store = NonceStore()
    store.claim("/r", "n", ttl=60, now=T).release()

    assert store.claim("/r", "n", ttl=60, now=T + 1) is not None


def test_releasing_an_expired_claim_leaves_its_successor_alone():
    store = NonceStore()
    stale = store.claim("/r", "n", ttl=1, now=T)
    successor = store.claim("/r", "n", ttl=60, now=T + 5)

    stale.release()

    assert successor is not None
    assert store.claim("/r", "n", ttl=60, now=T + 6) is None


def test_routes_have_separate_caches():
    store = NonceStore()
    store.claim("/a", "n", ttl=60, now=T)

    assert store.claim("/b", "n", ttl=60, now=T) is not None
    assert (store.count("/a"), store.count("/b"), len(store)) == (1, 1, 2)


def test_full_cache_sweeps_every_expired_entry_first():
    store = NonceStore(max_entries=4, sweep_interval=30)
    for index, ttl in enumerate((5, 10, 100, 100)):
        store.claim("/r", f"n{index}", ttl=ttl, now=T).commit()

    store.claim("/r", "new", ttl=100, now=T + 50)

    assert store.count("/r") == 3
    held = [store.held("/r", nonce, now=T + 50) for nonce in ("n2", "n3", "new")]
    assert held == [True, True, True]


def test_full_cache_evicts_the_entry_closest_to_expiry():
    store = NonceStore(max_entries=3)
    for index, ttl in enumerate((300, 100, 200)):
        store.claim("/r", f"n{index}", ttl=ttl, now=T).commit()

    store.claim("/r", "new", ttl=300, now=T + 1)

    held = [store.held("/r", nonce, now=T + 2) for nonce in ("n0", "n1", "n2", "new")]
    assert held == [True, False, True, True]


def test_cache_never_grows_past_its_bound():
    store = NonceStore(max_entries=100)

    for index in range(1000):
        claim = store.claim("/r", f"n{index}", ttl=300, now=T + index * 0.01)
        if index % 3:
            claim.commit()
        else:
            claim.release()

    assert store.count("/r") <= 100


def test_concurrent_duplicates_get_exactly_one_claim():
    store = NonceStore()
    results = []
    barrier = threading.Barrier(8)

    def race():
        barrier.wait(timeout=5)
        results.append(store.claim("/r", "same", ttl=60, now=T))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert sum(result is not None for result in results) == 1


def test_process_store_is_one_per_process():
    assert process_store() is process_store()
