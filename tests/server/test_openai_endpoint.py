"""The OpenAI endpoint over real loopback sockets: each limit's refusal in OpenAI's format, max_tokens, streaming."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from pocket_parallel import run
from pocket_parallel.server import LocalServer
from tests.http_support import NO_LEAKED_RESOURCES, chat_body

pytestmark = NO_LEAKED_RESOURCES

REQUEST_HEADERS = {f"x-ratelimit-{what}-requests" for what in ("limit", "remaining", "reset")}
TOKEN_HEADERS = {f"x-ratelimit-{what}-tokens" for what in ("limit", "remaining", "reset")}


def _post(server: LocalServer, body: dict) -> httpx.Response:
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=10)


def test_a_burst_past_a_per_second_quantum_is_refused_as_openai_refuses_it():
    with LocalServer(latency=0.01, requests_per_minute=60, quantum=1.0) as server:
        first, second = _post(server, chat_body("Summarize: a")), _post(server, chat_body("Summarize: b"))
    assert first.status_code == 200 and REQUEST_HEADERS <= set(first.headers)
    assert not TOKEN_HEADERS & set(first.headers)  # only the limits that are set are announced
    assert second.status_code == 429
    error = second.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("requests", "rate_limit_exceeded", None)
    assert error["message"].startswith("Rate limit reached for requests per minute (RPM): limit 60, requested 1.")
    assert 1 <= int(second.headers["retry-after-ms"]) <= 1000 and second.headers["retry-after"] == "1"
    assert second.headers["x-ratelimit-limit-requests"] == "60" and second.headers["x-ratelimit-remaining-requests"] == "0"


def test_openai_style_tokens_per_minute_counts_every_message_and_max_tokens_and_refuses_what_can_never_fit():
    system = {"role": "system", "content": "Be brief. " * 400}  # 1,000 tokens
    with LocalServer(profile="openai", latency=0.01, requests_per_minute=None, tokens_per_minute=6_000) as server:
        first = _post(server, chat_body("Summarize: a"))  # 3 + 4,096 (no max_tokens): admitted on a full bucket
        second = _post(server, chat_body("Summarize: b", max_tokens=10))
        too_large = _post(server, {**chat_body("Summarize: c", max_tokens=5_000), "messages": [
            system, *chat_body("Summarize: c")["messages"]]})
    assert first.status_code == 200 and TOKEN_HEADERS <= set(first.headers)
    assert second.status_code == 429 and second.json()["error"]["type"] == "tokens"
    assert second.json()["error"]["message"].startswith(
        "Rate limit reached for tokens per minute (TPM): limit 6000, requested 13.")
    assert int(second.headers["retry-after-ms"]) > 30_000  # the first left the bucket ~4,000 in debt
    assert too_large.status_code == 429 and too_large.headers["x-should-retry"] == "false"
    assert "retry-after" not in too_large.headers
    body = too_large.json()["error"]
    assert body["message"].startswith("Request too large for tokens per minute (TPM): limit 6000, requested 6003.")
    assert body["code"] == "rate_limit_exceeded"


def test_input_and_output_budgets_refuse_with_their_names():
    with LocalServer(latency=0.5, input_tokens_per_minute=1_000, output_tokens_per_minute=600) as server:

        async def two_at_once() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                return list(await asyncio.gather(*(
                    client.post("/v1/chat/completions", json=chat_body(f"Summarize: {i}", max_tokens=500))
                    for i in range(2))))

        first, second = sorted(run(two_at_once()), key=lambda response: response.status_code)
        inputs = _post(server, chat_body("Summarize: " + "x" * 4_100, max_tokens=10))  # 1,028 input tokens
    assert first.status_code == 200
    assert second.status_code == 429 and second.json()["error"]["type"] == "tokens"
    assert "output tokens per minute (OTPM): limit 600, requested 500" in second.json()["error"]["message"]
    assert inputs.status_code == 429 and inputs.headers["x-should-retry"] == "false"
    assert "input tokens per minute (ITPM): limit 1000, requested 1028" in inputs.json()["error"]["message"]


@pytest.fixture(scope="module")
def long_answers():
    with LocalServer(ttft=0.005, tpot=0.0005, answer_tokens=(40, 40), seed=3) as server:
        yield server


def test_max_tokens_and_max_completion_tokens_cut_the_answer(long_answers):
    whole = _post(long_answers, chat_body("Summarize: one two three")).json()
    assert (whole["choices"][0]["finish_reason"], whole["usage"]["completion_tokens"]) == ("stop", 40)
    for limits in ({"max_tokens": 7}, {"max_completion_tokens": 7}, {"max_tokens": 30, "max_completion_tokens": 7}):
        cut = _post(long_answers, chat_body("Summarize: one two three", **limits)).json()
        assert cut["choices"][0]["finish_reason"] == "length" and cut["usage"]["completion_tokens"] == 7
        assert cut["choices"][0]["message"]["content"] == whole["choices"][0]["message"]["content"][:28]


def test_usage_counts_every_message_as_input(long_answers):
    messages = [{"role": "system", "content": "x" * 400}, {"role": "assistant", "content": "y" * 40},
                {"role": "user", "content": "Summarize: a"}]
    usage = _post(long_answers, {"model": "m", "messages": messages}).json()["usage"]
    assert usage["prompt_tokens"] == 100 + 10 + 3 and usage["total_tokens"] == usage["prompt_tokens"] + 40


@pytest.mark.parametrize("include_usage", [True, False])
def test_a_stream_sends_one_chunk_per_token_and_the_usage_when_asked(long_answers, include_usage):
    body = chat_body("Summarize: one two three", stream=True, stream_options={"include_usage": include_usage})
    with httpx.stream("POST", long_answers.url + "/v1/chat/completions", json=body, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    events = [json.loads(line) for line in lines[:-1]]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [e["choices"][0]["delta"].get("content") for e in events[1:] if e["choices"]]
    text_chunks = [c for c in contents if c]
    assert len(text_chunks) == 40  # one per output token
    whole = _post(long_answers, chat_body("Summarize: one two three")).json()
    assert "".join(text_chunks) == whole["choices"][0]["message"]["content"]
    finish = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert [e["choices"][0]["finish_reason"] for e in finish] == ["stop"]
    if include_usage:
        assert all(e["usage"] is None for e in events[:-1]) and events[-1]["choices"] == []
        assert events[-1]["usage"] == whole["usage"]
    else:
        assert all("usage" not in e for e in events)
