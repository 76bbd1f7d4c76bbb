"""Both rate-limit header families, written from the state of the limits; RFC 3339 times on both clocks."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from pocket_parallel import run
from pocket_parallel.limits.announced import AnnouncedLimits
from pocket_parallel.service.bucket import LimitState
from pocket_parallel.service.headers import (
    DO_NOT_RETRY,
    VIRTUAL_EPOCH,
    anthropic_rate_headers,
    moment_of,
    openai_rate_headers,
    retry_after_headers,
    rfc3339,
)
from pocket_parallel.service.quota import Quota

STATES = {
    "requests_per_minute": LimitState(50, 49, 1.2),
    "tokens_per_minute": LimitState(90_000, 80_000, 6.5),
    "input_tokens_per_minute": LimitState(30_000, 29_000, 2.0),
    "output_tokens_per_minute": LimitState(8_000, 7_500, 3.75),
}


def test_openai_headers_announce_requests_and_tokens_with_durations_and_a_client_reads_them_back():
    headers = openai_rate_headers(STATES)
    assert headers == {
        "x-ratelimit-limit-requests": "50", "x-ratelimit-remaining-requests": "49", "x-ratelimit-reset-requests": "1.2s",
        "x-ratelimit-limit-tokens": "90000", "x-ratelimit-remaining-tokens": "80000", "x-ratelimit-reset-tokens": "6.5s",
    }
    announced = AnnouncedLimits.from_headers(headers)
    assert (announced.requests_per_minute, announced.tokens_per_minute, announced.reset_tokens) == (50, 90_000, 6.5)


def test_anthropic_headers_announce_each_limit_with_rfc3339_resets():
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
    headers = anthropic_rate_headers(STATES, now)
    assert headers["anthropic-ratelimit-requests-limit"] == "50"
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert headers["anthropic-ratelimit-requests-reset"] == "2025-03-01T12:00:01.200Z"
    assert headers["anthropic-ratelimit-input-tokens-reset"] == "2025-03-01T12:00:02.000Z"
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "8000"
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == "7500"
    assert headers["anthropic-ratelimit-output-tokens-reset"] == "2025-03-01T12:00:03.750Z"
    assert headers["anthropic-ratelimit-tokens-limit"] == "90000"  # the combined budget, when one is set
    for name, value in headers.items():
        if name.endswith("-reset"):
            assert datetime.fromisoformat(value) >= now  # what a client parses back
    assert anthropic_rate_headers({}, now) == {} and openai_rate_headers({}) == {}


def test_only_the_limits_that_are_set_are_announced():
    quota = Quota(requests_per_minute=60, output_tokens_per_minute=1_000)
    assert set(openai_rate_headers(quota.snapshot(0.0))) == {f"x-ratelimit-{what}-requests"
                                                             for what in ("limit", "remaining", "reset")}
    assert {name.rsplit("-", 1)[0] for name in anthropic_rate_headers(quota.snapshot(0.0), VIRTUAL_EPOCH)} == {
        "anthropic-ratelimit-requests", "anthropic-ratelimit-output-tokens"}


def test_remaining_is_what_the_bucket_holds_and_reset_the_time_until_it_is_full():
    quota = Quota(requests_per_minute=600, tokens_per_minute=60_000, quantum=1.0)  # buckets of 10 and 1,000
    quota.try_admit(0.0, 400)
    quota.try_admit(0.0, 400)
    headers = openai_rate_headers(quota.snapshot(0.1))
    assert headers["x-ratelimit-limit-requests"] == "600"  # the limit per minute, whatever the quantum
    assert headers["x-ratelimit-remaining-requests"] == "9"  # 10 - 2 + 1 refilled in 0.1 s
    assert headers["x-ratelimit-reset-requests"] == "100ms"
    assert headers["x-ratelimit-remaining-tokens"] == "300"  # 1,000 - 800 + 100
    assert headers["x-ratelimit-reset-tokens"] == "700ms"
    assert openai_rate_headers(quota.snapshot(5.0))["x-ratelimit-remaining-tokens"] == "1000"


def test_a_refusal_says_when_to_come_back_or_not_to_retry():
    assert retry_after_headers(0.25) == {"retry-after": "1", "retry-after-ms": "250"}
    assert retry_after_headers(2.0001) == {"retry-after": "3", "retry-after-ms": "2001"}
    assert DO_NOT_RETRY == {"x-should-retry": "false"}
    with pytest.raises(ValueError, match="seconds"):
        retry_after_headers(0)


def test_rfc3339_rounds_up_to_the_millisecond_and_refuses_a_naive_time():
    moment = datetime(2025, 1, 1, 0, 0, 59, 999_001, tzinfo=timezone.utc)
    assert rfc3339(moment) == "2025-01-01T00:01:00.000Z"
    assert rfc3339(datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == "2025-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="time zone"):
        rfc3339(datetime(2025, 1, 1))


def test_on_the_virtual_clock_times_count_from_the_fixed_epoch_and_on_the_real_clock_from_now():
    async def moments() -> tuple[datetime, datetime]:
        await asyncio.sleep(90.5)
        loop = asyncio.get_running_loop()
        return moment_of(loop.time()), moment_of(loop.time() + 2)

    now, later = run(moments(), clock="virtual")
    assert now == VIRTUAL_EPOCH + timedelta(seconds=90.5) and later - now == timedelta(seconds=2)
    assert rfc3339(now) == "2025-01-01T00:01:30.500Z"

    async def real() -> datetime:
        return moment_of(asyncio.get_running_loop().time() + 10)

    before = datetime.now(timezone.utc)
    moment = run(real())
    assert before + timedelta(seconds=9) <= moment <= datetime.now(timezone.utc) + timedelta(seconds=11)
