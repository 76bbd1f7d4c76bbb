"""AnthropicLLM on the official anthropic client over loopback: the text after the thinking, refusals, the key, its settings.

What it shares with OpenAILLM (one client per loop, the blocking twin) is tested on both in test_official_client.py.
"""

from __future__ import annotations

import anthropic
import pytest

from pocket_parallel import AnthropicLLM, Backoff, run
from pocket_parallel.backends.anthropic_llm import environment_endpoint
from pocket_parallel.backends.official_client import Endpoint
from pocket_parallel.limits.retry import retry_after_of
from pocket_parallel.server.anthropic_request import ThinkingSettings
from pocket_parallel.service.model import estimate_tokens
from tests.anthropic_support import MessagesServer
from tests.http_support import NO_LEAKED_RESOURCES

pytestmark = NO_LEAKED_RESOURCES
SECRET = "sk-ant-test-do-not-show-0123456789"


@pytest.fixture
def server():
    with MessagesServer() as running:
        yield running


def test_the_answer_is_the_text_block_after_the_thinking_block(server):
    llm = AnthropicLLM(server.url, max_tokens=20_000, thinking_budget=16_000)
    assert run(llm("Translate to Spanish: Hello")) == "echo: Translate to Spanish: Hello"
    (request,) = server.received
    assert (request.max_tokens, request.thinking, request.model) == (20_000, ThinkingSettings(16_000),
                                                                     "pocket-parallel-sim")
    assert llm.last_stop_reason == "end_turn"
    text, thinking = "echo: Translate to Spanish: Hello", "thinking about: Translate to Spanish: Hello"
    assert llm.last_usage == {"input_tokens": estimate_tokens("Translate to Spanish: Hello"),
                              "output_tokens": estimate_tokens(text) + estimate_tokens(thinking)}
    assert llm.stats.ok == 1 and llm.trace[0].outcome == "ok"
    plain = AnthropicLLM(server.url, max_tokens=3)
    assert run(plain("Summarize: a long text")) == "echo: Summarize: a long text"
    assert server.received[-1].thinking is None and plain.last_stop_reason == "max_tokens"


def test_refusals_are_the_clients_errors_counted_as_refusals_with_retry_after_read(server):
    llm = AnthropicLLM(server.url, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as refused:
        run(llm("status 429"))
    assert retry_after_of(refused.value) == 1.0 and Backoff(spread=0.0).delay(1, refused.value) == 1.0
    with pytest.raises(anthropic.OverloadedError):
        llm.call("status 529")
    llm.close()
    with pytest.raises(anthropic.InternalServerError):
        run(llm("status 500"))
    assert [record.outcome for record in llm.trace] == ["rate_limited", "overloaded", "error"]
    stats = llm.stats
    assert (stats.calls, stats.rate_limited, stats.overloaded, stats.transient_errors, stats.in_flight) == (3, 1, 1, 1, 0)
    assert [record.attempt for record in llm.trace] == [1, 1, 1]


def test_an_answer_that_is_no_message_is_a_clear_error(server):
    with pytest.raises(ValueError, match="the endpoint's answer is not a Message"):
        run(AnthropicLLM(server.url)("answer garbage"))


def test_the_key_goes_to_the_server_and_nowhere_else(server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
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
