"""Anthropic's Messages API on the course's server, through the official ``anthropic`` client.

The server and the client share one event loop on the virtual clock (``async with LocalServer``
inside ``run(..., clock="virtual")``): requests still go over loopback sockets, while every
latency, pause and ``retry-after`` wait is exact and takes no real time. The virtual clock jumps
only when no socket is ready; both ends are in this thread, and the kernel hands loopback bytes
to the peer's socket within the ``send`` itself, so no request is ever in transit at a jump.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx
import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.server import LocalServer
from pocket_parallel.service.headers import VIRTUAL_EPOCH, rfc3339
from pocket_parallel.service.model import ServiceModel, estimate_tokens
from tests.http_support import NO_LEAKED_RESOURCES, chat_body

pytestmark = NO_LEAKED_RESOURCES

COOKBOOK = {"model": "claude-3-7-sonnet-20250219", "max_tokens": 20_000,
            "thinking": {"type": "enabled", "budget_tokens": 16_000}}
PROMPT = "Translate to German: good morning"


def user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def on_virtual_clock(scenario: Any, *, max_retries: int = 0, **settings: Any) -> Any:
    """Run ``scenario(server, client)`` with a LocalServer and an AsyncAnthropic on one virtual-clock loop."""

    async def main() -> Any:
        async with LocalServer(**settings) as server:
            async with anthropic.AsyncAnthropic(base_url=server.url, api_key="unused", max_retries=max_retries) as client:
                return await scenario(server, client)

    return run(main(), clock="virtual")


def test_the_cookbooks_call_answers_the_text_after_a_thinking_block_as_simulated_llm_does():
    settings = {"ttft": 0.5, "tpot": 0.001, "seed": 4, "answer_tokens": (100, 400)}

    async def ask(server, client):
        loop = asyncio.get_running_loop()
        start = loop.time()
        raw = await client.messages.with_raw_response.create(**COOKBOOK, messages=user(PROMPT))
        return loop.time() - start, raw.headers, await raw.parse(), server.stats()

    seconds, headers, message, stats = on_virtual_clock(ask, output_tokens_per_minute=400_000, **settings)
    expected = run(SimulatedLLM(**settings).complete(PROMPT, max_tokens=20_000, thinking_budget=16_000),
                   clock="virtual")
    thinking, text = message.content
    assert (thinking.type, text.type) == ("thinking", "text")
    assert thinking.thinking == expected.thinking and thinking.thinking.startswith("Thinking about: Translate")
    assert message.content[1].text == expected.text and text.text.startswith("[German] good morning")
    assert (message.stop_reason, message.usage.input_tokens) == ("end_turn", estimate_tokens(PROMPT))
    assert message.usage.output_tokens == expected.output_tokens == expected.thinking_tokens + expected.text_tokens
    assert 4_000 <= expected.thinking_tokens <= 16_000
    assert seconds == pytest.approx(0.5 + 0.001 * expected.output_tokens)  # ttft + output tokens × tpot
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "400000"
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == str(400_000 - 20_000)  # max_tokens reserved
    assert headers["anthropic-ratelimit-output-tokens-reset"] == rfc3339(VIRTUAL_EPOCH.replace(second=3))
    assert headers["request-id"] == "req_1" and message.id == "msg_000000000000000000000001"
    assert (stats.requests, stats.ok, stats.completion_tokens) == (1, 1, expected.output_tokens)


def test_a_stream_sends_each_token_at_its_time_and_rebuilds_the_same_message():
    request = {"model": "m", "max_tokens": 3_000, "thinking": {"type": "enabled", "budget_tokens": 1_024},
               "messages": user(PROMPT)}

    async def both(server, client):
        loop = asyncio.get_running_loop()
        whole = await client.messages.create(**request)
        start, arrivals, texts = loop.time(), [], []
        async with client.messages.stream(**request) as stream:
            async for event in stream:
                arrivals.append((event.type, round(loop.time() - start, 6)))
                if event.type == "text":
                    texts.append(event.text)
            streamed = await stream.get_final_message()
        return whole, streamed, arrivals, texts

    whole, streamed, arrivals, texts = on_virtual_clock(both, ttft=0.25, tpot=0.01, answer_tokens=(30, 30))
    assert streamed.model_dump(exclude={"id"}) == whole.model_dump(exclude={"id"})
    assert "".join(texts) == whole.content[1].text and len(texts) == 30  # one text event per output token
    deltas = [at for kind, at in arrivals if kind == "content_block_delta"]
    tokens = whole.usage.output_tokens
    assert len(deltas) == tokens + 1  # a delta per token, and the thinking block's signature
    assert arrivals[0] == ("message_start", 0.25)  # with the first token
    token_times = sorted(set(deltas))
    assert token_times == pytest.approx([0.25 + 0.01 * i for i in range(tokens)])
    assert arrivals[-1] == ("message_stop", pytest.approx(0.25 + 0.01 * tokens))


def test_input_counts_the_system_prompt_and_every_turn_and_output_is_reserved_then_what_is_unused_returned():
    system = "You translate carefully. " * 16  # 100 tokens
    turns = [{"role": "user", "content": "Translate to French: good night"}, {"role": "assistant", "content": "bonne nuit"},
             {"role": "user", "content": PROMPT}]
    input_tokens = estimate_tokens("\n".join([system, *(turn["content"] for turn in turns)]))

    async def two(server, client):
        first = await client.messages.with_raw_response.create(model="m", max_tokens=20_000, system=system,
                                                               messages=turns)
        second = await client.messages.with_raw_response.create(model="m", max_tokens=10, messages=user("hi"))
        return first.headers, await first.parse(), second.headers

    first, message, second = on_virtual_clock(two, latency=0.06, answer_tokens=(150, 150), input_tokens_per_minute=30_000,
                                              output_tokens_per_minute=25_000)
    assert message.usage.input_tokens == input_tokens > 100
    assert first["anthropic-ratelimit-input-tokens-remaining"] == str(30_000 - input_tokens)
    assert first["anthropic-ratelimit-output-tokens-remaining"] == "5000"  # 25,000 - max_tokens
    assert message.usage.output_tokens == 150
    # 0.06 s later: 25 tokens refilled, the 19,850 unused returned, and 10 reserved for the second request.
    assert second["anthropic-ratelimit-output-tokens-remaining"] == str(5_000 + 25 + 19_850 - 10)


def test_each_refusal_and_fault_is_the_clients_error_in_anthropics_shape_with_its_headers():
    model = ServiceModel(latency=0.5, seed=3, failure_rate=0.3, overload_rate=0.3)
    prompts = [f"Summarize: {i}" for i in range(40)]
    overloaded = next(p for p in prompts if model.overloaded(p))
    failing = {model.error_status(p, 1): p for p in prompts if model.fails(p)}

    async def refusals(server, client):
        async def error_of(**request):
            try:
                await client.messages.create(model="m", **request)
            except anthropic.APIStatusError as error:
                return error
            raise AssertionError("the request was answered")

        busy = await error_of(max_tokens=10, messages=user(failing[500]))  # the faults spend no budget
        rate = await error_of(max_tokens=10, messages=user(prompts[0]))  # one request a second: refused for 1 s
        large = await error_of(max_tokens=6_001, messages=user("hi"))
        await asyncio.sleep(1.0)
        return (busy, rate, large, await error_of(max_tokens=10, messages=user(overloaded)),
                await error_of(max_tokens=10, messages=user(failing[503])), server.stats())

    busy, rate, large, turned_away, unavailable, stats = on_virtual_clock(
        refusals, latency=0.5, seed=3, failure_rate=0.3, overload_rate=0.3, requests_per_minute=60,
        output_tokens_per_minute=6_000, quantum=1.0)
    assert isinstance(busy, anthropic.InternalServerError) and busy.status_code == 500
    assert isinstance(rate, anthropic.RateLimitError) and rate.type == "rate_limit_error"
    assert rate.response.headers["retry-after"] == "1" and "retry-after-ms" not in rate.response.headers
    assert rate.api_message == ("Rate limit reached for requests per minute (RPM): limit 60, requested 1. Please "
                                "retry after 1 s (the retry-after header).")
    assert rate.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert isinstance(large, anthropic.RateLimitError) and large.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in large.response.headers
    assert large.api_message.startswith("Request too large for output tokens per minute (OTPM): limit 6000, "
                                        "requested 6001.")
    assert isinstance(turned_away, anthropic.OverloadedError) and turned_away.type == "overloaded_error"
    assert isinstance(unavailable, anthropic.ServiceUnavailableError) and unavailable.type == "api_error"
    for error in (busy, rate, large, turned_away, unavailable):
        assert error.request_id == error.body["request_id"] == error.response.headers["request-id"]
        assert {"anthropic-ratelimit-requests-limit", "anthropic-ratelimit-output-tokens-reset"} <= set(
            error.response.headers)
    assert (stats.requests, stats.errors, stats.rate_limited, stats.overloaded) == (5, 2, 2, 1)


def test_the_client_retries_refusals_after_retry_after_and_every_call_is_answered():
    async def burst(server, client):
        loop = asyncio.get_running_loop()
        messages = await asyncio.gather(*(client.messages.create(model="m", max_tokens=100, messages=user(f"Summarize: {i}"))
                                          for i in range(3)))
        return loop.time(), messages, server.stats()

    seconds, messages, stats = on_virtual_clock(burst, max_retries=2, latency=0.5, requests_per_minute=60, quantum=1.0)
    assert [m.content[0].text for m in messages] == [f"Summary (1 words): {i}" for i in range(3)]
    # One request a second: 3 at 0 s (1 admitted), 2 at 1 s (1 admitted), 1 at 2 s.
    assert (stats.requests, stats.rate_limited, stats.retries, stats.ok) == (6, 3, 3, 3)
    assert seconds == pytest.approx(2.5)


def test_stop_sequences_max_tokens_and_omitted_thinking():
    async def three(server, client):
        stopped = await client.messages.create(model="m", max_tokens=300, stop_sequences=["morning", "zzz"],
                                               messages=user(PROMPT))
        cut = await client.messages.create(model="m", max_tokens=3, messages=user(PROMPT))
        omitted = await client.messages.create(
            model="m", max_tokens=2_000, thinking={"type": "enabled", "budget_tokens": 1_024, "display": "omitted"},
            messages=user(PROMPT))
        return stopped, cut, omitted

    stopped, cut, omitted = on_virtual_clock(three, latency=0.1)
    assert (stopped.content[0].text, stopped.stop_reason, stopped.stop_sequence) == ("[German] good ", "stop_sequence",
                                                                                      "morning")
    assert stopped.usage.output_tokens == estimate_tokens("[German] good ")
    assert (cut.content[0].text, cut.stop_reason, cut.usage.output_tokens) == ("[German] goo", "max_tokens", 3)
    thinking, text = omitted.content
    assert thinking.thinking == "" and text.text == "[German] good morning"
    assert omitted.usage.output_tokens > 256 + estimate_tokens(text.text)  # the hidden thinking is charged


JSON_TYPE = {"Content-Type": "application/json"}


def test_bad_requests_get_anthropics_400_counted_and_every_error_takes_its_routes_shape():
    with LocalServer(latency=0.01, requests_per_minute=600) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        malformed = http.post("/v1/messages", content=b"{\"model\": ", headers=JSON_TYPE)
        missing = http.post("/v1/messages", json={"model": "m", "messages": user("hi")})
        no_route = http.post("/v1/messages/batches", json={})
        wrong_method = http.get("/v1/messages")
        huge = http.post("/v1/messages", content=b"x" * (1024 * 1024 + 1), headers=JSON_TYPE)
        openai_malformed = http.post("/v1/chat/completions", content=b"{\"model\": ", headers=JSON_TYPE)
        openai_no_route = http.post("/v1/messagesx", json=chat_body())  # not under /v1/messages: OpenAI's shape
        stats = server.stats()
    for response, status, kind in ((malformed, 400, "invalid_request_error"), (missing, 400, "invalid_request_error"),
                                   (no_route, 404, "not_found_error"), (wrong_method, 405, "invalid_request_error"),
                                   (huge, 413, "request_too_large")):
        body = response.json()
        assert response.status_code == status and body["type"] == "error" and body["error"]["type"] == kind
        assert body["request_id"] == response.headers["request-id"] if status in (400, 413) else "request_id" not in body
    assert missing.json()["error"]["message"] == "max_tokens: Field required"
    assert malformed.headers["anthropic-ratelimit-requests-limit"] == "600"
    for response in (openai_malformed, openai_no_route):
        assert set(response.json()) == {"error"} and response.json()["error"]["type"] == "invalid_request_error"
    assert (stats.bad_requests, stats.requests) == (3, 0)  # the two 400s here and OpenAI's
