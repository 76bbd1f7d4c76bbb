"""AnnouncedLimits: client settings sized from a provider's x-ratelimit-* headers."""

from __future__ import annotations

import datetime

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.limits import estimate_tokens
from pocket_parallel.limits.announced import AnnouncedLimits, PerMinute, parse_duration, parse_rfc3339
from pocket_parallel.service.bucket import LimitState
from pocket_parallel.service.headers import anthropic_rate_headers
from pocket_parallel.service.provider import DEFAULT_MAX_TOKENS
from tests.support import AskNode, prompts


def test_headers_are_read_and_little_s_law_sizes_the_concurrency():
    limits = AnnouncedLimits.from_headers({
        "X-RateLimit-Limit-Requests": "60", "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "40000",
        "x-ratelimit-remaining-tokens": "39980", "x-ratelimit-reset-tokens": "30ms",
    })
    assert limits == AnnouncedLimits(60, 40_000, 59, 39_980, 1.0, 0.03)
    assert limits.concurrency_for(0.5) == 1 and limits.concurrency_for(5.0) == 5
    settings = limits.node_settings(2.0)
    budget = settings.pop("max_tokens_per_minute")
    assert settings == {"max_concurrency": 2, "max_per_minute": 60}
    assert repr(budget) == "TokenBudget(tokens_per_minute=40000, quantum=0)"  # evenly paced: the quantum is unknown
    assert AnnouncedLimits.from_headers({}) == AnnouncedLimits(None, None)


def test_a_node_sized_from_the_announced_limits_gets_no_429s_and_a_semaphore_alone_does():
    server = SimulatedLLM(latency=2.0, requests_per_minute=30, tokens_per_minute=1_500)
    limits = AnnouncedLimits.from_headers(server.quota.headers(0.0))
    items = prompts(60)
    paced = AskNode(server, tokens_for=server.tokens_for, collect_failures=True, **limits.node_settings(2.0))
    run(paced.run_async({"prompts": items}), clock="virtual")
    assert server.stats.rate_limited == 0 and server.stats.ok == 60
    server.reset()
    alone = AskNode(server, max_concurrency=5, collect_failures=True)  # the chapter's answer: a semaphore
    run(alone.run_async({"prompts": items}), clock="virtual")
    assert server.stats.rate_limited > 0 and len(alone.outcomes.failures) > 0


@pytest.mark.parametrize("headers, name", [({"x-ratelimit-limit-requests": "many"}, "x-ratelimit-limit-requests"),
                                           ({"x-ratelimit-reset-tokens": "soon"}, "duration")])
def test_bad_headers_are_named(headers, name):
    with pytest.raises(ValueError, match=name):
        AnnouncedLimits.from_headers(headers)
    with pytest.raises(ValueError, match="latency"):
        AnnouncedLimits(60, None).concurrency_for(0)


# -- Anthropic's family -------------------------------------------------------------------------

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def anthropic_headers(**families):
    """``anthropic-ratelimit-*`` headers as the course's server writes them: family -> (limit, remaining, reset s)."""
    return anthropic_rate_headers({f"{name}_per_minute": LimitState(*state) for name, state in families.items()}, NOW)


def test_anthropics_headers_are_read_with_resets_counted_from_now():
    headers = {
        "Anthropic-RateLimit-Requests-Limit": "50", "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-03-01T12:00:02Z",
        "anthropic-ratelimit-input-tokens-limit": "30000", "anthropic-ratelimit-input-tokens-remaining": "29000",
        "anthropic-ratelimit-input-tokens-reset": "2026-03-01T13:00:02.5+01:00",
        "anthropic-ratelimit-output-tokens-limit": "8000", "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "2026-03-01T11:59:00Z",  # already past: whole now
        "anthropic-ratelimit-tokens-limit": "8000",  # the tighter of the two again: not read
    }
    limits = AnnouncedLimits.from_headers(headers, now=NOW)
    assert limits == AnnouncedLimits(
        50, None, 49, None, 2.0, None,
        input_tokens_per_minute=30_000, output_tokens_per_minute=8_000, remaining_input_tokens=29_000,
        remaining_output_tokens=0, reset_input_tokens=2.5, reset_output_tokens=0.0)
    assert limits.per_minute() == PerMinute(requests=50, tokens=None, input_tokens=30_000, output_tokens=8_000)
    assert limits.node_settings(6.0) == {"max_concurrency": 5, "max_per_minute": 50, "max_tokens_per_minute": None,
                                         "max_input_tokens_per_minute": 30_000, "max_output_tokens_per_minute": 8_000}


def test_what_the_server_writes_reads_back():
    headers = anthropic_headers(requests=(1_000, 990, 0.6), input_tokens=(40_000, 39_000, 1.5),
                                output_tokens=(16_000, 0, 60.0))
    assert headers["anthropic-ratelimit-requests-reset"] == "2026-03-01T12:00:00.600Z"
    limits = AnnouncedLimits.from_headers(headers, now=NOW)
    assert limits.per_minute() == PerMinute(1_000, None, 40_000, 16_000)
    assert (limits.remaining_requests, limits.remaining_input_tokens, limits.remaining_output_tokens) == (990, 39_000, 0)
    assert (limits.reset_requests, limits.reset_input_tokens, limits.reset_output_tokens) == (0.6, 1.5, 60.0)
    assert limits.node_settings(6.0) == {"max_concurrency": 100, "max_per_minute": 1_000, "max_tokens_per_minute": None,
                                         "max_input_tokens_per_minute": 40_000,
                                         "max_output_tokens_per_minute": 16_000}
    assert limits.node_settings(6.0, tokens_for=len, input_tokens_for=estimate_tokens, output_tokens_for=500) == {
        "max_concurrency": 100, "max_per_minute": 1_000, "max_tokens_per_minute": None,
        "max_input_tokens_per_minute": 40_000, "input_tokens_for": estimate_tokens,
        "max_output_tokens_per_minute": 16_000, "output_tokens_for": 500}  # no tokens_for: no token budget
    assert limits.node_settings(6.0, output_tokens_for=500, output_tokens_used=estimate_tokens) == {
        "max_concurrency": 100, "max_per_minute": 1_000, "max_tokens_per_minute": None,
        "max_input_tokens_per_minute": 40_000, "max_output_tokens_per_minute": 16_000, "output_tokens_for": 500,
        "output_tokens_used": estimate_tokens}
    assert "output_tokens_used" not in AnnouncedLimits(60, None).node_settings(6.0, output_tokens_used=len)


def test_a_node_sized_from_openais_headers_paces_tokens_evenly_where_a_minute_s_burst_is_refused():
    # OpenAI's rules: every message plus max_tokens (4,096 when none is sent) at admission, enforced per second.
    def server() -> SimulatedLLM:
        return SimulatedLLM(profile="openai", seed=0)

    def counted(prompt: str) -> int:
        return estimate_tokens(prompt) + DEFAULT_MAX_TOKENS

    items = prompts(20)
    paced_llm = server()
    settings = AnnouncedLimits.from_headers(paced_llm.rate_limit_headers(0.0)).node_settings(2.0, tokens_for=counted)
    run(AskNode(paced_llm, collect_failures=True, **settings).run_async({"prompts": items}), clock="virtual")
    assert paced_llm.stats.rate_limited == 0 and paced_llm.stats.ok == 20
    starts = sorted(record.start for record in paced_llm.trace)
    assert starts[-1] == pytest.approx(19 * counted(items[0]) / (200_000 / 60), abs=0.01)  # one charge after another
    burst_llm = server()  # the same budget as a plain number: a minute's bucket, spent at once
    burst = AskNode(burst_llm, collect_failures=True, **{**settings, "max_tokens_per_minute": 200_000})
    run(burst.run_async({"prompts": items}), clock="virtual")
    assert burst_llm.stats.rate_limited > 0


def test_a_node_paced_from_anthropics_input_and_output_budgets_gets_no_429s_and_a_burst_does():
    # Output reserved per request: max_tokens, or 4,096 without one; 30 such a minute, enforced per second.
    def server() -> SimulatedLLM:
        return SimulatedLLM(latency=2.0, requests_per_minute=120, input_tokens_per_minute=600,
                            output_tokens_per_minute=30 * DEFAULT_MAX_TOKENS, quantum=1.0)

    paced_llm = server()
    limits = AnnouncedLimits.from_headers(anthropic_rate_headers(paced_llm.limit_states(0.0), NOW), now=NOW)
    assert limits.per_minute() == PerMinute(120, None, 600, 30 * DEFAULT_MAX_TOKENS)
    settings = limits.node_settings(2.0, input_tokens_for=estimate_tokens, output_tokens_for=DEFAULT_MAX_TOKENS)
    paced = AskNode(paced_llm, collect_failures=True, **settings)
    items = prompts(20)
    run(paced.run_async({"prompts": items}), clock="virtual")
    assert paced_llm.stats.rate_limited == 0 and paced_llm.stats.ok == 20
    starts = sorted(record.start for record in paced_llm.trace)
    assert starts[-1] == pytest.approx(38.0)  # one reservation of 4,096 every 2 s: output is the binding budget
    burst_llm = server()
    burst = AskNode(burst_llm, max_concurrency=settings["max_concurrency"] * 4, collect_failures=True)
    run(burst.run_async({"prompts": items}), clock="virtual")
    assert burst_llm.stats.rate_limited > 0 and len(burst.outcomes.failures) > 0
    with pytest.raises(ValueError, match="output_tokens_for must be given with max_output_tokens_per_minute"):
        AskNode(paced_llm, **limits.node_settings(2.0, input_tokens_for=estimate_tokens))


def test_openais_request_budget_wins_where_both_families_announce_one():
    headers = {"x-ratelimit-limit-requests": "60", "x-ratelimit-reset-requests": "1s",
               **anthropic_headers(requests=(50, 50, 0.0), output_tokens=(8_000, 8_000, 0.0))}
    limits = AnnouncedLimits.from_headers(headers, now=NOW)
    assert (limits.requests_per_minute, limits.reset_requests, limits.output_tokens_per_minute) == (60, 1.0, 8_000)


def test_a_node_sized_from_anthropics_headers_gets_no_429s():
    server = SimulatedLLM(latency=2.0, requests_per_minute=30)
    requests, _ = server.quota.state(0.0)
    limits = AnnouncedLimits.from_headers(anthropic_headers(requests=(requests.limit, requests.remaining,
                                                                      requests.reset)), now=NOW)
    paced = AskNode(server, collect_failures=True, **limits.node_settings(2.0))
    run(paced.run_async({"prompts": prompts(60)}), clock="virtual")
    assert server.stats.rate_limited == 0 and server.stats.ok == 60


@pytest.mark.parametrize("headers, name", [
    ({"anthropic-ratelimit-requests-limit": "-5"}, "anthropic-ratelimit-requests-limit"),
    ({"anthropic-ratelimit-input-tokens-reset": "tomorrow"}, "anthropic-ratelimit-input-tokens-reset.*RFC 3339"),
    ({"anthropic-ratelimit-output-tokens-reset": "2026-02-30T00:00:00Z"}, "RFC 3339"),  # no such day
    ({"anthropic-ratelimit-output-tokens-reset": "2026-03-01T00:00:00+25:00"}, "RFC 3339"),
    ({"x-ratelimit-reset-requests": "1.2.3s"}, "x-ratelimit-reset-requests.*duration"),
])
def test_bad_anthropic_headers_are_named(headers, name):
    with pytest.raises(ValueError, match=name):
        AnnouncedLimits.from_headers(headers, now=NOW)


def test_hostile_headers_are_refused_unread_and_many_headers_are_read_once():
    for value in ("9" * 1_000_000, "1" * 100_000 + "s", "2026-03-01T12:00:00" + "." + "0" * 100_000 + "Z"):
        for name in ("x-ratelimit-limit-requests", "x-ratelimit-reset-tokens", "anthropic-ratelimit-requests-reset"):
            with pytest.raises(ValueError, match=f"{name} is {len(value)} characters long"):
                AnnouncedLimits.from_headers({name: value}, now=NOW)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("1" * 1_000_000)
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339("2" * 1_000_000)
    noise = {f"x-noise-{i}": "1" for i in range(100_000)}
    assert AnnouncedLimits.from_headers({**noise, "x-ratelimit-limit-requests": "7"}).requests_per_minute == 7
    with pytest.raises(ValueError, match="aware"):
        AnnouncedLimits.from_headers({}, now=datetime.datetime(2026, 1, 1))
