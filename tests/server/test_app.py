"""The HTTP routes over real loopback sockets: OpenAI's shapes, limits with their headers, 400s, and a server that lives on."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.server import LocalServer
from tests.http_support import NO_LEAKED_RESOURCES, chat_body

pytestmark = NO_LEAKED_RESOURCES

RATE_HEADERS = {f"x-ratelimit-{what}-{kind}" for what in ("limit", "remaining", "reset") for kind in ("requests", "tokens")}


@pytest.fixture(scope="module")
def server():
    with LocalServer(latency=0.02, jitter=0.3, seed=5, requests_per_minute=10_000, tokens_per_minute=10_000_000) as running:
        yield running


def test_a_chat_completion_has_openais_shape_and_simulated_llms_answer(http):
    prompt = "Translate to German: good morning"
    response = http.post("/v1/chat/completions", json=chat_body(prompt))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "pocket-parallel-sim"
    assert isinstance(body["id"], str) and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "[German] good morning", "refusal": None}
    assert choice["finish_reason"] == "stop"
    llm = SimulatedLLM(latency=0.02, jitter=0.3, seed=5)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] == llm.tokens_for(prompt)
    assert RATE_HEADERS <= set(response.headers)


def test_the_official_client_reads_answers_and_streams(server):
    async def ask():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="unused") as client:
            completion = await client.chat.completions.create(
                model="any-name", messages=[{"role": "user", "content": "Summarize: one two three"}])
            stream = await client.chat.completions.create(
                model="any-name", messages=[{"role": "user", "content": "Summarize: one two three"}],
                stream=True, stream_options={"include_usage": True})
            pieces, usage = [], None
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                usage = chunk.usage or usage
            return completion, "".join(pieces), usage

    completion, streamed, usage = run(ask())
    assert completion.choices[0].message.content == streamed == "Summary (3 words): one two three"
    assert usage.total_tokens == completion.usage.total_tokens
    models = httpx.get(server.base_url + "/models").json()
    assert [m["id"] for m in models["data"]] == ["pocket-parallel-sim"]


@pytest.mark.parametrize("content, param", [
    (b"{not json", None),
    (json.dumps({"model": "m", "messages": "hi"}).encode(), "messages"),
    (json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "colour": 1}).encode(), "colour"),
    (json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "9"}).encode(), "max_tokens"),
])
def test_malformed_bodies_get_a_400_and_the_server_lives_on(http, content, param):
    response = http.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]
    assert RATE_HEADERS <= set(response.headers)
    assert http.post("/v1/chat/completions", json=chat_body()).status_code == 200
    stats = http.get("/stats").json()
    assert (stats["bad_requests"], stats["requests"], stats["ok"]) == (1, 1, 1)


def test_unknown_routes_methods_and_huge_bodies_get_json_errors(http):
    missing = http.get("/v2/everything")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_url"
    wrong = http.get("/v1/chat/completions")
    assert wrong.status_code == 405 and "GET" in wrong.json()["error"]["message"]
    huge = http.post("/v1/chat/completions", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"
    assert http.post("/v1/chat/completions", json=chat_body()).status_code == 200


def test_stats_can_be_read_and_reset(http):
    for i in range(3):
        http.post("/v1/chat/completions", json=chat_body(f"Summarize: {i}"))
    stats = http.get("/stats").json()
    assert (stats["requests"], stats["ok"], stats["in_flight"], stats["peak_in_flight"]) == (3, 3, 0, 1)
    assert stats["limits"]["algorithm"] == "token_bucket" and stats["settings"]["seed"] == 5
    reset = http.post("/stats/reset")
    assert reset.status_code == 200 and reset.json()["requests"] == 0
    assert http.get("/stats").json()["requests"] == 0


def test_a_refused_request_carries_every_header_and_a_burst_never_beats_the_cap():
    # The client's retries are off, so every 429 reaches us: 20 calls at once against a cap of 3.
    with LocalServer(latency=0.2, max_concurrent=3, requests_per_minute=6000, tokens_per_minute=600_000) as server:

        async def burst():
            async with openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client:
                async def one(i):
                    try:
                        return await client.chat.completions.with_raw_response.create(
                            model="m", messages=[{"role": "user", "content": f"Summarize: {i}"}])
                    except openai.RateLimitError as error:
                        return error
                return await asyncio.gather(*(one(i) for i in range(20)))

        results = run(burst())
        stats = server.stats()
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    answered = [r for r in results if not isinstance(r, openai.RateLimitError)]
    assert len(answered) <= 3 and len(refused) >= 17
    assert (stats.ok, stats.rate_limited, stats.peak_in_flight) == (len(answered), len(refused), len(answered))
    for error in refused:
        headers = error.response.headers
        assert RATE_HEADERS <= set(headers)
        milliseconds = int(headers["retry-after-ms"])
        assert 1 <= milliseconds <= 200 and int(headers["retry-after"]) == 1
        assert error.body["code"] == "rate_limit_exceeded"
    for response in answered:
        assert RATE_HEADERS <= set(response.headers)


@pytest.mark.parametrize("algorithm", ["token_bucket", "sliding_window"])
def test_measured_at_the_server_the_per_minute_budget_is_never_exceeded(algorithm):
    # 60 requests per minute: a bucket of 60 refilled at one per second, or at most 60 in any
    # 60 s. 100 requests over about a second: a bucket admits at most 60 + 1 per second elapsed,
    # a window at most 60.
    with LocalServer(latency=0.01, requests_per_minute=60, algorithm=algorithm) as server:

        async def waves():
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                start = time.monotonic()
                for wave in range(5):
                    await asyncio.gather(*(client.post("/v1/chat/completions", json=chat_body(f"Summarize: {wave}-{i}"))
                                           for i in range(20)))
                    await asyncio.sleep(0.2)
                return time.monotonic() - start

        elapsed = run(waves())
        stats = server.stats()
    admitted = stats.requests - stats.rate_limited
    assert stats.requests == 100 and admitted == stats.ok
    assert admitted <= (60 + 1.0 * elapsed if algorithm == "token_bucket" else 60)
    assert admitted >= 60  # the first 60 fit the budget, however slow the machine
