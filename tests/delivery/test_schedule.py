"""The dispatcher's arithmetic: backoff with jitter and cap, Retry-After, batches, leases, drain."""

from datetime import timedelta

from hookaido.config.model import Config, DeliverTarget, RetryPolicy, Route
from hookaido.dispatcher import backoff, batch_size, drain_budget, lease_ttl, retry_delay

DEFAULT = RetryPolicy()


def seconds(delay: timedelta) -> float:
    return round(delay.total_seconds(), 6)


def test_default_schedule_doubles_from_2s_and_caps_at_2m():
    no_jitter = RetryPolicy(jitter=0)

    delays = [seconds(backoff(no_jitter, n)) for n in range(1, 9)]

    assert delays == [2, 4, 8, 16, 32, 64, 120, 120]


def test_jitter_spreads_the_delay_by_plus_or_minus_the_factor():
    assert seconds(backoff(DEFAULT, 3, uniform=lambda: 0.0)) == 8 * 0.8
    assert seconds(backoff(DEFAULT, 3, uniform=lambda: 0.5)) == 8
    assert 8 * 1.2 - 1e-6 < seconds(backoff(DEFAULT, 3, uniform=lambda: 0.999999999)) <= 8 * 1.2


def test_full_jitter_never_makes_a_negative_delay():
    policy = RetryPolicy(jitter=1.0)

    assert seconds(backoff(policy, 1, uniform=lambda: 0.0)) == 0


def test_huge_attempt_numbers_stay_at_the_cap():
    assert seconds(backoff(RetryPolicy(jitter=0), 10_000)) == 120


def test_retry_after_only_lengthens_the_wait_and_is_capped_at_one_hour():
    policy = RetryPolicy(jitter=0)

    shorter = retry_delay(policy, 3, timedelta(seconds=1))
    longer = retry_delay(policy, 3, timedelta(seconds=90))
    huge = retry_delay(policy, 3, timedelta(days=2))

    assert (seconds(shorter), seconds(longer), seconds(huge)) == (8, 90, 3600)


def route(concurrency: int, *timeouts: float) -> Route:
    targets = tuple(
        DeliverTarget(
            target=f"https://t{i}.example.com/", kind="https", timeout=timedelta(seconds=t)
        )
        for i, t in enumerate(timeouts)
    )
    return Route(path="/r", deliver_concurrency=concurrency, targets=targets)


def test_batch_size_depends_on_concurrency_and_target_count():
    assert batch_size(route(1, 10)) == 1
    assert batch_size(route(1, 10, 10)) == 1
    assert batch_size(route(20, 10, 10)) == 2
    assert batch_size(route(3, 10)) == 3
    assert batch_size(route(20, 10)) == 4


def test_lease_covers_the_whole_batch_at_the_longest_timeout_plus_30s():
    assert lease_ttl(route(20, 10, 25), 2) == timedelta(seconds=80)
    assert lease_ttl(route(1, 0.5), 1) == timedelta(seconds=30.5)


def test_drain_budget_is_the_longest_timeout_plus_5s_within_15s_and_60s():
    assert drain_budget(Config(routes=(route(1, 1),))) == timedelta(seconds=15)
    assert drain_budget(Config(routes=(route(1, 10), route(1, 20)))) == timedelta(seconds=25)
    assert drain_budget(Config(routes=(route(1, 300),))) == timedelta(seconds=60)
    assert drain_budget(Config(routes=())) == timedelta(seconds=15)
