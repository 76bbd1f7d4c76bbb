"""Quota: server-side limits as providers enforce them, exact to the microsecond."""

from __future__ import annotations

import math
import random

import pytest

from pocket_parallel.limits.announced import parse_duration
from pocket_parallel.service.quota import Quota, Refusal, duration_text


def admitted_at(quota: Quota, times: list[float], tokens: int = 0) -> list[float]:
    accepted = []
    for t in times:
        ticket = quota.try_admit(t, tokens, t + 0.001)
        if not isinstance(ticket, Refusal):
            accepted.append(t)
            quota.release(ticket)
    return accepted


def test_a_token_bucket_admits_a_full_minute_at_once_then_refills_continuously():
    quota = Quota(requests_per_minute=60)
    burst = admitted_at(quota, [0.0] * 100)
    assert len(burst) == 60  # starts full: a whole minute's requests pass at once
    refusal = quota.try_admit(0.0)
    assert refusal == Refusal("requests_per_minute", 1.0)  # one request refills every second
    assert isinstance(quota.try_admit(0.999999), Refusal)
    assert not isinstance(quota.try_admit(1.0), Refusal)
    assert admitted_at(quota, [1.5, 1.9, 2.0, 2.0]) == [2.0]


@pytest.mark.parametrize("seed", range(5))
def test_a_token_bucket_never_admits_more_than_capacity_plus_rate_times_elapsed(seed):
    rng = random.Random(seed)
    quota = Quota(requests_per_minute=30, tokens_per_minute=900)
    times = sorted(round(rng.uniform(0, 300), 6) for _ in range(3000))
    accepted: list[tuple[float, int]] = []
    for t in times:
        tokens = rng.randint(1, 60)
        ticket = quota.try_admit(t, tokens, t + 0.5)
        if not isinstance(ticket, Refusal):
            accepted.append((t, tokens))
            quota.release(ticket)
    assert len(accepted) > 100
    for i, (start, _) in enumerate(accepted):  # every stretch [start, end] of admitted requests
        count = tokens = 0
        for end, used in accepted[i:]:
            count, tokens = count + 1, tokens + used
            elapsed = end - start
            assert count <= 30 + 30 * elapsed / 60 + 1e-9
            assert tokens <= 900 + 900 * elapsed / 60 + 1e-9


def test_a_sliding_window_admits_at_most_the_limit_in_any_60_s():
    quota = Quota(requests_per_minute=3, algorithm="sliding_window")
    assert admitted_at(quota, [0.0, 10.0, 20.0, 30.0, 59.999999, 60.0, 70.0, 80.0]) == [0.0, 10.0, 20.0, 60.0, 70.0, 80.0]
    refusal = quota.try_admit(85.0)
    assert refusal == Refusal("requests_per_minute", 35.0)  # until the request of 60 s leaves the window


def test_the_in_flight_cap_refuses_until_the_first_call_ends():
    quota = Quota(max_concurrent=2)
    first = quota.try_admit(0.0, ends_at=3.0)
    quota.try_admit(0.0, ends_at=2.0)
    assert quota.try_admit(1.0) == Refusal("max_concurrent", 1.0)
    assert quota.try_admit(2.0) == Refusal("max_concurrent", 1e-6)  # ending this tick is not free yet
    assert isinstance(first, int)
    quota.release(first)
    assert not isinstance(quota.try_admit(2.0), Refusal)
    stalled = Quota(max_concurrent=1)
    stalled.try_admit(0.0)  # never ends: nobody knows when a slot frees
    assert stalled.try_admit(5.0) == Refusal("max_concurrent", 1.0)


def test_a_request_larger_than_the_token_budget_can_never_be_admitted():
    for algorithm in ("token_bucket", "sliding_window"):
        refusal = Quota(tokens_per_minute=100, algorithm=algorithm).try_admit(0.0, 101)
        assert isinstance(refusal, Refusal) and math.isinf(refusal.retry_after)


def test_the_longest_wait_names_the_limit():
    quota = Quota(requests_per_minute=60, tokens_per_minute=100)
    quota.try_admit(0.0, 100)
    assert quota.try_admit(0.0, 50) == Refusal("tokens_per_minute", 30.0)


def test_headers_announce_limit_remaining_and_reset_like_openai():
    quota = Quota(requests_per_minute=60, tokens_per_minute=40_000)
    assert quota.headers(0.0) == {
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "60",
        "x-ratelimit-reset-requests": "0ms",
        "x-ratelimit-limit-tokens": "40000", "x-ratelimit-remaining-tokens": "40000",
        "x-ratelimit-reset-tokens": "0ms",
    }
    quota.try_admit(0.0, 1000)
    quota.try_admit(0.0, 1000)
    headers = quota.headers(0.5)
    assert headers["x-ratelimit-remaining-requests"] == "58"
    assert headers["x-ratelimit-reset-requests"] == "1.5s"  # 2 requests at 1 per second, half a second in
    assert headers["x-ratelimit-remaining-tokens"] == str(40_000 - 2000 + 333)
    assert parse_duration(headers["x-ratelimit-reset-tokens"]) == pytest.approx(2.5)
    assert Quota(max_concurrent=3).headers(0.0) == {}


@pytest.mark.parametrize("seconds, text", [(0.0, "0ms"), (0.02, "20ms"), (1.0, "1s"), (1.5, "1.5s"),
                                           (360.0, "6m0s"), (3723.0, "1h2m3s")])
def test_durations_read_as_openai_writes_them(seconds, text):
    assert duration_text(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("kwargs, name", [
    ({"max_concurrent": 0}, "max_concurrent"), ({"requests_per_minute": -1}, "requests_per_minute"),
    ({"tokens_per_minute": 2.5}, "tokens_per_minute"), ({"algorithm": "leaky"}, "algorithm"),
])
def test_bad_limits_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Quota(**kwargs)
    with pytest.raises(ValueError, match="tokens"):
        Quota().try_admit(0.0, -1)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")
