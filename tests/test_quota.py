"""Quota: server-side limits as providers enforce them, exact to the microsecond."""

from __future__ import annotations

import math
import random

import pytest

from pocket_parallel.limits.announced import parse_duration
from pocket_parallel.service.bucket import LimitState
from pocket_parallel.service.quota import PER_MINUTE, Charge, Quota, Refusal, duration_text


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


# -- quantum, debt, and the four per-minute limits -------------------------------------------


def test_a_quantum_of_one_second_holds_one_seconds_share_so_a_burst_is_refused_under_the_minutes_budget():
    second = Quota(requests_per_minute=600, quantum=1.0)
    minute = Quota(requests_per_minute=600)
    assert len(admitted_at(second, [0.0] * 100)) == 10  # 600 per minute as 10 per second, as OpenAI documents
    assert len(admitted_at(minute, [0.0] * 100)) == 100  # without a profile: a minute's burst, as always
    assert second.try_admit(0.0) == Refusal("requests_per_minute", 0.1)
    # Evenly paced at the limit's rate, every request passes: 600 in a minute.
    assert len(admitted_at(Quota(requests_per_minute=600, quantum=1.0), [i * 0.1 for i in range(600)])) == 600


def test_a_request_above_one_quantums_share_waits_for_a_full_bucket_and_goes_into_debt():
    quota = Quota(tokens_per_minute=6_000, quantum=1.0)  # the bucket holds 100 tokens, refills 100 a second
    assert not isinstance(quota.try_admit(0.0, 400), Refusal)  # full: admitted, 300 in debt
    assert quota.snapshot(0.0)["tokens_per_minute"] == LimitState(6_000, 0, 4.0)
    refusal = quota.try_admit(0.0, 50)
    assert refusal == Refusal("tokens_per_minute", 3.5) and (refusal.requested, refusal.allowed) == (50, 6_000)
    assert isinstance(quota.try_admit(3.499999, 50), Refusal)
    assert not isinstance(quota.try_admit(3.5, 50), Refusal)
    assert quota.try_admit(3.5, 400) == Refusal("tokens_per_minute", 1.0)  # a large one waits until full again
    assert not isinstance(quota.try_admit(4.5, 400), Refusal)


def test_a_request_above_the_per_minute_limit_itself_is_refused_for_good_with_openais_words():
    refusal = Quota(tokens_per_minute=6_000, quantum=1.0).try_admit(0.0, 6_001)
    assert isinstance(refusal, Refusal) and refusal.too_large and math.isinf(refusal.retry_after)
    assert refusal.message.startswith("Request too large for tokens per minute (TPM): limit 6000, requested 6001.")
    assert not isinstance(Quota(tokens_per_minute=6_000, quantum=1.0).try_admit(0.0, 6_000), Refusal)


def test_input_tokens_are_charged_at_admission_and_output_tokens_reserved_then_the_unused_part_returned():
    quota = Quota(input_tokens_per_minute=1_000, output_tokens_per_minute=600)
    ticket = quota.try_admit(0.0, input_tokens=300, output_tokens=500)
    assert isinstance(ticket, int)
    states = quota.snapshot(0.0)
    assert (states["input_tokens_per_minute"].remaining, states["output_tokens_per_minute"].remaining) == (700, 100)
    assert quota.try_admit(0.0, input_tokens=10, output_tokens=200) == Refusal("output_tokens_per_minute", 10.0)
    quota.release(ticket, 1.0, output_tokens=120)  # 380 of the 500 reserved were not used: they come back
    assert quota.snapshot(1.0)["output_tokens_per_minute"].remaining == 100 + 10 + 380
    assert not isinstance(quota.try_admit(1.0, input_tokens=10, output_tokens=200), Refusal)


def test_a_refund_never_fills_a_bucket_beyond_full_and_a_window_counts_it_while_the_request_is_in_it():
    bucket = Quota(output_tokens_per_minute=600)
    ticket = bucket.try_admit(0.0, output_tokens=60)
    bucket.release(ticket, 120.0, output_tokens=0)
    assert bucket.snapshot(120.0)["output_tokens_per_minute"].remaining == 600
    window = Quota(output_tokens_per_minute=600, algorithm="sliding_window")
    ticket = window.try_admit(0.0, output_tokens=500)
    assert window.try_admit(1.0, output_tokens=200) == Refusal("output_tokens_per_minute", 59.0)
    window.release(ticket, 2.0, output_tokens=100)
    assert not isinstance(window.try_admit(2.0, output_tokens=200), Refusal)  # 100 + 200 in the window


def test_each_limit_charges_its_own_amount():
    assert [Charge(7, 8, 9).amount(name) for name in PER_MINUTE] == [1, 7, 8, 9]


@pytest.mark.parametrize("kwargs, name", [
    ({"quantum": 0}, "quantum"), ({"quantum": 61}, "quantum"), ({"quantum": "1"}, "quantum"),
    ({"quantum": 1.0, "algorithm": "sliding_window"}, "quantum"),
    ({"input_tokens_per_minute": 0}, "input_tokens_per_minute"), ({"output_tokens_per_minute": 1.5}, "output_tokens_per_minute"),
])
def test_bad_new_limits_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Quota(**kwargs)
