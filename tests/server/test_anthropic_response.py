"""Answers in Anthropic's shapes, checked by the official client itself: its types, its decoder, its errors, over HTTP."""

from __future__ import annotations

import asyncio
import datetime

import anthropic
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse

from pocket_parallel import run
from pocket_parallel.server.anthropic_errors import AnthropicApiError, error_type_for, overloaded, rate_limited
from pocket_parallel.server.anthropic_response import (
    MessageReply,
    cut_at_stop_sequence,
    message_events,
    message_id,
    ratelimit_headers,
    render_message,
    thinking_signature,
)
from tests.anthropic_support import MessagesServer
from tests.http_support import NO_LEAKED_RESOURCES

pytestmark = NO_LEAKED_RESOURCES
STREAM_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
THINKING = {"type": "enabled", "budget_tokens": 16_000}
REPLY = MessageReply("Hallo Welt", input_tokens=12, output_tokens=9, thinking="Short and friendly")


def test_a_message_with_thinking_is_the_clients_message_with_the_text_second():
    body = render_message(REPLY, model="claude-sonnet-4-5", id=message_id(7))
    message = Message.model_validate(body)
    thinking, text = message.content
    assert (thinking.type, thinking.thinking, thinking.signature) == ("thinking", "Short and friendly",
                                                                      thinking_signature("Short and friendly"))
    assert (text.type, text.text) == ("text", "Hallo Welt")
    assert (message.id, message.model, message.role, message.stop_reason, message.stop_sequence) == \
        ("msg_000000000000000000000007", "claude-sonnet-4-5", "assistant", "end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 9)
    plain = Message.model_validate(render_message(MessageReply("x", 1, 1, "max_tokens"), model="m", id="msg_1"))
    assert [block.type for block in plain.content] == ["text"] and plain.stop_reason == "max_tokens"


def test_the_events_are_the_clients_events_in_anthropics_order():
    events = list(message_events(REPLY, model="m", id="msg_1"))
    names = [event.name for event in events]
    thinking_deltas = len(REPLY.thinking.split(" "))
    text_deltas = len(REPLY.text.split(" "))
    assert names == (["message_start", "content_block_start", "ping"] + ["content_block_delta"] * (thinking_deltas + 1)
                     + ["content_block_stop", "content_block_start"] + ["content_block_delta"] * text_deltas
                     + ["content_block_stop", "message_delta", "message_stop"])
    for event in events:
        assert event.data["type"] == event.name
        if event.name != "ping":
            assert STREAM_EVENT.validate_python(event.data).type == event.name
    assert "".join(e.generated for e in events) == REPLY.thinking + REPLY.text  # what a route paces by
    assert events[1].data["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[-2].data["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2].data["usage"] == {"output_tokens": 9}
    assert events[0].encode().startswith(b"event: message_start\ndata: {") and events[0].encode().endswith(b"}\n\n")


def test_error_bodies_are_the_clients_error_response_and_a_429_says_when_to_retry():
    for status, kind in ((400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
                         (404, "not_found_error"), (429, "rate_limit_error"), (500, "api_error"),
                         (529, "overloaded_error"), (503, "api_error"), (418, "invalid_request_error")):
        body = AnthropicApiError(status, "no", request_id="req_9").body()
        assert error_type_for(status) == kind and ErrorResponse.model_validate(body).error.type == kind
        assert body["request_id"] == "req_9"
    assert AnthropicApiError(413, "too big").body()["error"]["type"] == "request_too_large"
    assert rate_limited("slow down", 0.2).headers == {"retry-after": "1"}
    assert rate_limited("slow down", 2.5, {"anthropic-ratelimit-requests-limit": "5"}).headers == \
        {"anthropic-ratelimit-requests-limit": "5", "retry-after": "3"}
    assert rate_limited("never fits", None).headers == {"x-should-retry": "false"}
    assert overloaded().status == 529 and overloaded().message == "Overloaded"
    generic = AnthropicApiError.from_error(rate_limited("x", 1.0), "req_1")
    assert generic.body()["error"]["type"] == "rate_limit_error"


def test_a_stop_sequence_ends_the_text_where_generation_would_meet_it():
    assert cut_at_stop_sequence("one two three", ("three", "two")) == ("one ", "two")
    assert cut_at_stop_sequence("abcdef", ("bcdef", "cd")) == ("ab", "cd")  # "cd" is complete first
    assert cut_at_stop_sequence("abcdef", ("ef", "def")) == ("abc", "def")  # complete together: the longer
    assert cut_at_stop_sequence("abc", ("x",)) == ("abc", None)
    with pytest.raises(ValueError, match="stop_sequence"):
        MessageReply("x", 1, 1, "stop_sequence")


def test_ratelimit_headers_say_when_each_budget_is_whole_again():
    now = datetime.datetime(2026, 3, 1, 23, 59, 59, 250_000, tzinfo=datetime.timezone.utc)
    headers = ratelimit_headers({"input-tokens": (40_000, -3, 0.5)}, now)
    assert headers == {"anthropic-ratelimit-input-tokens-limit": "40000",
                       "anthropic-ratelimit-input-tokens-remaining": "0",
                       "anthropic-ratelimit-input-tokens-reset": "2026-03-02T00:00:00Z"}
    with pytest.raises(ValueError, match="families"):
        ratelimit_headers({"tokens-per-day": (1, 1, 0.0)}, now)
    with pytest.raises(ValueError, match="aware"):
        ratelimit_headers({}, datetime.datetime(2026, 1, 1))


# -- the official client over HTTP --------------------------------------------------------------


def test_the_cookbooks_call_reads_content_1_text_and_a_stream_rebuilds_the_same_message():
    prompt = "Please translate into German: Hello"

    async def cookbook(url):
        async with anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0) as client:
            response = await client.messages.create(
                model="claude-3-7-sonnet-20250219", max_tokens=20000, thinking=THINKING,
                messages=[{"role": "user", "content": prompt}])
            async with client.messages.stream(model="claude-3-7-sonnet-20250219", max_tokens=20000,
                                              thinking=THINKING, messages=[{"role": "user", "content": prompt}]) as s:
                texts = [text async for text in s.text_stream]
                streamed = await s.get_final_message()
            raw = await client.messages.create(model="m", max_tokens=100, stream=True,
                                               messages=[{"role": "user", "content": prompt}])
            kinds = [event.type async for event in raw]
            return response, texts, streamed, kinds

    with MessagesServer() as server:
        response, texts, streamed, kinds = run(cookbook(server.url))
    assert response.content[1].text == "echo: " + prompt  # what the cookbook's call_llm returns
    assert response.content[0].thinking == "thinking about: " + prompt
    assert streamed.model_dump(exclude={"id"}) == response.model_dump(exclude={"id"})
    assert "".join(texts) == "echo: " + prompt
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]  # the ping is the client's to skip


def test_the_blocking_client_reads_stop_sequences_and_omitted_thinking():
    with MessagesServer() as server, anthropic.Anthropic(base_url=server.url, api_key="unused") as client:
        stopped = client.messages.create(model="m", max_tokens=50, stop_sequences=["Hello"],
                                         messages=[{"role": "user", "content": "Say Hello world"}])
        omitted = client.messages.create(model="m", max_tokens=2_000,
                                         thinking={"type": "enabled", "budget_tokens": 1_024, "display": "omitted"},
                                         messages=[{"role": "user", "content": "hi"}])
    assert (stopped.content[0].text, stopped.stop_reason, stopped.stop_sequence) == \
        ("echo: Say ", "stop_sequence", "Hello")
    assert omitted.content[0].thinking == "" and omitted.content[0].signature == thinking_signature("")


@pytest.mark.parametrize("status, error_class", [
    (400, anthropic.BadRequestError), (401, anthropic.AuthenticationError), (403, anthropic.PermissionDeniedError),
    (404, anthropic.NotFoundError), (429, anthropic.RateLimitError), (500, anthropic.InternalServerError),
    (529, anthropic.OverloadedError),
])
def test_each_error_is_the_clients_own_exception_with_the_message_and_request_id(status, error_class):
    prompt = f"status {status}" if status != 400 else "x"
    extra = {"extra_body": {"temperature": 3}} if status == 400 else {}
    with MessagesServer() as server, anthropic.Anthropic(base_url=server.url, api_key="unused",
                                                         max_retries=0) as client:
        with pytest.raises(error_class) as caught:
            client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": prompt}], **extra)
    error = caught.value
    assert error.status_code == status and error.type == error_type_for(status)
    assert error.request_id == "req_1" and error.api_message
    if status == 429:
        assert error.response.headers["retry-after"] == "1"


def test_the_client_retries_a_429_after_its_retry_after_and_a_mid_stream_error_is_raised():
    with MessagesServer() as server, anthropic.Anthropic(base_url=server.url, api_key="unused",
                                                         max_retries=1) as client:
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "status 429"}])
        with pytest.raises(anthropic.APIStatusError) as caught:
            with client.messages.stream(model="m", max_tokens=10,
                                        messages=[{"role": "user", "content": "fail mid-stream"}]) as stream:
                stream.get_final_message()
    assert server.hits == 3 and len(server.received) == 1  # a 429, its one retry (another 429), the failed stream
    assert caught.value.type == "overloaded_error"


def test_a_request_that_fails_to_parse_never_reaches_the_reply():
    async def bad(url):
        async with anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0) as client:
            return await asyncio.gather(
                client.messages.create(model="m", max_tokens=3_000, thinking={"type": "enabled", "budget_tokens": 512},
                                       messages=[{"role": "user", "content": "hi"}]),
                return_exceptions=True)

    with MessagesServer() as server:
        (error,) = run(bad(server.url))
        assert server.received == []
    assert isinstance(error, anthropic.BadRequestError) and "budget_tokens" in error.api_message
