"""Answers in Anthropic's shapes, checked by the official client's own types: a Message, its events, its errors.

The same shapes over HTTP, from the course's server, are in test_anthropic_endpoint.py.
"""

from __future__ import annotations

import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse

from pocket_parallel.server.anthropic_errors import AnthropicApiError, error_type_for, overloaded, rate_limited
from pocket_parallel.server.anthropic_response import (
    MessageReply,
    message_events,
    message_id,
    render_message,
    thinking_signature,
)
from pocket_parallel.server.errors import ApiError
from pocket_parallel.service.answers import reply

STREAM_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
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


def test_the_services_reply_in_this_apis_words():
    stopped = MessageReply.of(reply("[German] good morning", "Thinking", max_tokens=50, stop_sequences=("morning",)),
                              input_tokens=9)
    assert (stopped.text, stopped.thinking, stopped.stop_reason, stopped.stop_sequence) == \
        ("[German] good ", "Thinking", "stop_sequence", "morning")
    assert stopped.output_tokens == 2 + 4
    hidden = MessageReply.of(reply("[German] gut", "Thinking"), input_tokens=9, show_thinking=False)
    assert (hidden.thinking, hidden.output_tokens, hidden.stop_reason) == ("", 2 + 3, "end_turn")
    assert MessageReply.of(reply("abcdefgh", max_tokens=1), 1).stop_reason == "max_tokens"
    assert MessageReply.of(reply("x"), 1).thinking is None
    with pytest.raises(ValueError, match="stop_sequence"):
        MessageReply("x", 1, 1, "stop_sequence")


def test_the_events_are_the_clients_events_in_anthropics_order_one_delta_per_token():
    events = list(message_events(REPLY, model="m", id="msg_1"))
    names = [event.name for event in events]
    thinking_tokens, text_tokens = 5, 3  # "Short and friendly" is 18 characters, "Hallo Welt" 10: 4 to a token
    assert names == (["message_start", "content_block_start", "ping"] + ["content_block_delta"] * (thinking_tokens + 1)
                     + ["content_block_stop", "content_block_start"] + ["content_block_delta"] * text_tokens
                     + ["content_block_stop", "message_delta", "message_stop"])
    for event in events:
        assert event.data["type"] == event.name
        if event.name != "ping":
            assert STREAM_EVENT.validate_python(event.data).type == event.name
    deltas = [event.data["delta"] for event in events if event.token]
    assert [d.get("thinking", d.get("text")) for d in deltas] == ["Shor", "t an", "d fr", "iend", "ly", "Hall",
                                                                 "o We", "lt"]
    assert events[1].data["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[8].data["delta"] == {"type": "signature_delta", "signature": thinking_signature(REPLY.thinking)}
    assert events[-2].data["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2].data["usage"] == {"output_tokens": 9}
    assert events[0].encode().startswith(b"event: message_start\ndata: {") and events[0].encode().endswith(b"}\n\n")
    omitted = list(message_events(MessageReply("ok", 1, 40, thinking=""), model="m", id="msg_2"))
    assert [e.data["delta"]["type"] for e in omitted if e.name == "content_block_delta"] == ["signature_delta",
                                                                                           "text_delta"]


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
    generic = AnthropicApiError.from_error(ApiError(404, "no such path", code="unknown_url"), "req_1")
    assert generic.body() == {"type": "error", "error": {"type": "not_found_error", "message": "no such path"},
                              "request_id": "req_1"}
    assert generic.headers == {"request-id": "req_1"}
