"""Backoff: exponential, capped, jittered, repeatable, and it honours a server's retry-after."""


from __future__ import annotations

import math

import pytest

from pocket_parallel import (
    Backoff,
    RateLimitError,
)


def test_backoff_is_exponential_capped_jittered_and_repeatable():
    backoff = Backoff(base=1.0, cap=10.0, factor=2.0, seed=7)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4, 5, 50, 10_000)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    delays = [backoff.delay(n, key="item") for n in range(1, 8)]
    assert all(0 <= d <= backoff.ceiling(n) for n, d in zip(range(1, 8), delays))
    assert delays == [Backoff(base=1.0, cap=10.0, factor=2.0, seed=7).delay(n, key="item") for n in range(1, 8)]
    assert delays != [Backoff(seed=8, cap=10.0).delay(n, key="item") for n in range(1, 8)]
    assert len({backoff.delay(3, key=k) for k in range(50)}) > 40  # items spread out, not in lockstep
    samples = [backoff.delay(1, key=k) for k in range(4000)]
    assert sum(samples) / len(samples) == pytest.approx(0.5, abs=0.03)  # uniform on [0, 1]


def test_backoff_honours_retry_after():
    backoff = Backoff(base=0.1, cap=1.0, spread=0.0)
    refused = RateLimitError("Summarize: x", 1, 5.0, "max_concurrent")
    assert backoff.delay(1, refused) == 5.0
    assert backoff.delay(7, refused) == 5.0  # the server's time, not a growing guess
    assert backoff.delay(1, RateLimitError("p", 1, 0.01, "max_concurrent"), key=3) == 0.01
    assert math.isinf(backoff.delay(1, RateLimitError("p", 1, math.inf, "tokens_per_minute")))
    assert backoff.delay(2, ValueError("no retry_after")) == backoff.delay(2)


def test_backoff_spreads_refused_callers_a_little_past_the_servers_time():
    backoff = Backoff(spread=0.1)
    refused = RateLimitError("p", 1, 2.0, "requests_per_minute")
    waits = [backoff.delay(3, refused, key=k) for k in range(200)]
    assert all(2.0 <= w <= 2.2 for w in waits) and len(set(waits)) > 150


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"base": 0}, "base"),
        ({"base": -1}, "base"),
        ({"base": math.nan}, "base"),
        ({"base": 2.0, "cap": 1.0}, "cap"),
        ({"cap": math.inf}, "cap"),
        ({"factor": 0.5}, "factor"),
        ({"factor": "2"}, "factor"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"spread": 1.5}, "spread"),
        ({"spread": -0.1}, "spread"),
    ],
)
def test_bad_backoff_settings_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Backoff(**kwargs)
    with pytest.raises(ValueError, match="failures"):
        Backoff().delay(0)
