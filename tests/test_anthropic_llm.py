"""AnthropicLLM on the official anthropic client against the course's server: the text after the thinking,
max_tokens, refusals the client retries, the key, its settings.

What it shares with OpenAILLM (one client per loop, the blocking twin) is tested on both in test_official_client.py.
AnthropicLLM runs on the real clock only, so these tests count requests, never time.
"""

from __future__ import annotations

import asyncio

import anthropic
import pytest

from pocket_parallel import AnthropicLLM, Backoff, SimulatedLLM, run
from pocket_parallel.backends.anthropic_llm import environment_endpoint
from pocket_parallel.backends.official_client import Endpoint
from pocket_parallel.limits.retry import retry_after_of
from pocket_parallel.server import LocalServer
from pocket_parallel.service.model import ServiceModel, estimate_tokens
from tests.anthropic_support import MessagesServer
from tests.http_support import NO_LEAKED_RESOURCES

pytestmark = NO_LEAKED_RESOURCES
SECRET = "sk-ant-test-do-not-show-0123456789"
PROMPT = "Translate to Spanish: Hello"


def test_the_answer_is_the_text_block_after_the_thinking_block_and_a_cut_is_reported():
    settings = {"ttft": 0.01, "tpot": 0.00001, "seed": 2, "answer_tokens": (50, 80)}
    expected = run(SimulatedLLM(**settings).complete(PROMPT, max_tokens=20_000, thinking_budget=16_000),
                   clock="virtual")
    with LocalServer(**settings) as server:
        llm = AnthropicLLM(server.url, max_tokens=20_000, thinking_budget=16_000)
        answer = run(llm(PROMPT))
        plain = AnthropicLLM(server.url, max_tokens=3)
        cut = run(plain(PROMPT))
        stats = server.stats()
    assert answer == expected.text and answer.startswith("[Spanish] Hello")
    assert expected.thinking_tokens >= 4_000  # a thinking block came first, and was not returned
    assert llm.last_stop_reason == "end_turn"
    assert llm.last_usage == {"input_tokens": estimate_tokens(PROMPT), "output_tokens": expected.output_tokens}
    assert llm.stats.ok == 1 and llm.trace[0].outcome == "ok"
    assert (cut, plain.last_stop_reason, plain.last_usage["output_tokens"]) == ("[Spanish] He", "max_tokens", 3)
    assert (stats.requests, stats.ok, stats.completion_tokens) == (2, 2, expected.output_tokens + 3)


def test_the_client_retries_refusals_and_each_call_is_one_record():
    # One request a second: three at once draw 429s, which the client retries after retry-after.
    with LocalServer(latency=0.01, requests_per_minute=60, quantum=1.0) as server:
        llm = AnthropicLLM(server.url, max_retries=2)

        async def three():
            return await asyncio.gather(*(llm(f"Summarize: {i}") for i in range(3)))

        answers = run(three())
        stats = server.stats()
    assert answers == [f"Summary (1 words): {i}" for i in range(3)]
    assert stats.rate_limited >= 1 and stats.requests == 3 + stats.rate_limited == 3 + stats.retries
    assert stats.ok == 3 and [record.outcome for record in llm.trace] == ["ok"] * 3


def test_refusals_and_faults_are_the_clients_errors_counted_as_refusals_with_retry_after_read():
    model = ServiceModel(latency=0.01, seed=3, failure_rate=0.3, overload_rate=0.3)
    prompts = [f"Summarize: {i}" for i in range(40)]
    fine = next(p for p in prompts if not model.fails(p) and not model.overloaded(p))
    overloaded = next(p for p in prompts if model.overloaded(p))
    failing = next(p for p in prompts if model.fails(p) and model.error_status(p, 1) == 500)
    # Two requests a minute: the third within the minute is refused, until a request's worth refills (30 s).
    with LocalServer(latency=0.01, seed=3, failure_rate=0.3, overload_rate=0.3, requests_per_minute=2) as server:
        llm = AnthropicLLM(server.url, max_retries=0)
        assert run(llm(fine))
        with pytest.raises(anthropic.InternalServerError):
            run(llm(failing))
        with pytest.raises(anthropic.RateLimitError) as refused:
            run(llm(fine))
        with pytest.raises(anthropic.OverloadedError):
            llm.call(overloaded)
        llm.close()
        stats = server.stats()
    waited = float(refused.value.response.headers["retry-after"])
    assert retry_after_of(refused.value) == waited and 1 <= waited <= 30
    assert Backoff(spread=0.0).delay(1, refused.value) == waited
    assert [record.outcome for record in llm.trace] == ["ok", "error", "rate_limited", "overloaded"]
    seen = llm.stats
    assert (seen.calls, seen.rate_limited, seen.overloaded, seen.transient_errors, seen.in_flight) == (4, 1, 1, 1, 0)
    assert [record.attempt for record in llm.trace] == [1, 1, 1, 1]
    assert (stats.requests, stats.ok, stats.errors, stats.rate_limited, stats.overloaded) == (4, 1, 1, 1, 1)


def test_an_answer_that_is_no_message_is_a_clear_error():
    with MessagesServer() as server, pytest.raises(ValueError, match="the endpoint's answer is not a Message"):
        run(AnthropicLLM(server.url)("answer garbage"))


def test_the_key_goes_to_the_server_and_nowhere_else(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with MessagesServer() as server:
        llm = AnthropicLLM(server.url, api_key=SECRET, max_retries=0)
        assert run(llm("Summarize: a")) == "echo: Summarize: a"
        assert SECRET in server.credentials[0]  # used, as the client sends it
        with pytest.raises(anthropic.AuthenticationError) as caught:
            run(llm("status 401"))
    unreachable = AnthropicLLM("http://127.0.0.1:9", api_key=SECRET, max_retries=0)  # nothing listens on port 9
    with pytest.raises(anthropic.APIConnectionError) as failed:
        unreachable.call("Summarize: a")
    unreachable.close()
    for shown in (repr(llm), str(llm), str(caught.value), repr(caught.value), str(failed.value), repr(failed.value)):
        assert SECRET not in shown
    assert "api_key set" in repr(llm) and "api_key not set" in repr(AnthropicLLM(server.url))


def test_the_environment_chooses_the_endpoint_or_none(monkeypatch):
    assert environment_endpoint({}) is None
    assert environment_endpoint({"ANTHROPIC_API_KEY": SECRET}) is None  # a key alone never sends calls anywhere
    with pytest.raises(ValueError, match="ANTHROPIC_MODEL"):
        environment_endpoint({"ANTHROPIC_BASE_URL": "https://api.anthropic.com"})
    endpoint = environment_endpoint({"ANTHROPIC_BASE_URL": "https://api.anthropic.com", "ANTHROPIC_API_KEY": SECRET,
                                     "ANTHROPIC_MODEL": "claude-sonnet-4-5"})
    assert endpoint == Endpoint("https://api.anthropic.com", "claude-sonnet-4-5", SECRET)
    assert SECRET not in repr(endpoint)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    assert AnthropicLLM.from_environment() is None
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("ANTHROPIC_MODEL", "local-model")
    llm = AnthropicLLM.from_environment(max_retries=0, thinking_budget=2_000, max_tokens=4_000)
    assert (llm.base_url, llm.model, llm.max_retries, llm.thinking_budget) == ("http://127.0.0.1:1", "local-model", 0,
                                                                               2_000)
    assert "api_key set" in repr(llm) and SECRET not in repr(llm)
    assert repr(llm) == ("AnthropicLLM(base_url='http://127.0.0.1:1', model='local-model', max_tokens=4000, "
                         "thinking_budget=2000, max_retries=0; api_key set)")


@pytest.mark.parametrize("kwargs, says", [
    ({"base_url": "127.0.0.1:8000"}, "base_url must be an http"),
    ({"base_url": "http://127.0.0.1:8000/v1"}, "without /v1"),
    ({"model": ""}, "model"),
    ({"max_tokens": 0}, r"max_tokens must be an integer in \[1, 128000\]"),
    ({"max_tokens": 200_000}, "max_tokens"),
    ({"max_tokens": 1024.0}, "max_tokens"),
    ({"thinking_budget": 1_000, "max_tokens": 4_000}, "thinking_budget must be an integer >= 1024 and below max_tokens"),
    ({"thinking_budget": 1_024}, r"below max_tokens \(1024"),  # the default max_tokens leaves no room
    ({"thinking_budget": True, "max_tokens": 4_000}, "thinking_budget"),
    ({"timeout": 0}, "timeout"),
    ({"max_retries": -1}, "max_retries"),
    ({"transport": "carrier pigeon"}, "transport"),
    ({"api_key": ""}, "ANTHROPIC_API_KEY"),
])
def test_bad_settings_are_named(kwargs, says):
    settings = {"base_url": "http://127.0.0.1:8000", **kwargs}
    with pytest.raises(ValueError, match=says):
        AnthropicLLM(**settings)
