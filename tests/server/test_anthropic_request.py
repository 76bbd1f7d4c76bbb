"""Reading a Messages API body: what Anthropic accepts is read, what it refuses gets a 400 in its shape, hostile bodies too."""

from __future__ import annotations

import json
import re

import pytest
from anthropic.types import MessageCreateParams
from anthropic.types.shared import ErrorResponse

from pocket_parallel.server.anthropic_errors import AnthropicApiError
from pocket_parallel.server.anthropic_request import (
    KNOWN_PARAMETERS,
    MessagesRequest,
    ThinkingSettings,
    parse_messages_request,
)


def body(**fields):
    base = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello"}]}
    return json.dumps({**base, **fields}).encode()


def refusal(raw: bytes) -> AnthropicApiError:
    with pytest.raises(AnthropicApiError) as caught:
        parse_messages_request(raw)
    error = caught.value
    assert error.status == 400
    checked = ErrorResponse.model_validate(error.body())  # the official client's own type for an error body
    assert checked.type == "error" and checked.error.type == "invalid_request_error"
    return error


def test_the_cookbooks_request_is_read_with_its_thinking_budget():
    # PocketFlow's parallel-batch cookbook: max_tokens=20000, thinking enabled with 16000, one user message.
    raw = body(model="claude-3-7-sonnet-20250219", max_tokens=20_000,
               thinking={"type": "enabled", "budget_tokens": 16_000},
               messages=[{"role": "user", "content": "Please translate the following markdown file into German."}])
    assert parse_messages_request(raw) == MessagesRequest(
        model="claude-3-7-sonnet-20250219", prompt="Please translate the following markdown file into German.",
        max_tokens=20_000, input_text="Please translate the following markdown file into German.",
        thinking=ThinkingSettings(16_000), stream=False)


def test_blocks_system_prompts_and_turns_all_count_as_input_and_the_last_user_turn_is_the_prompt():
    raw = body(system=[{"type": "text", "text": "You translate.", "cache_control": {"type": "ephemeral"}}],
               stream=True, stop_sequences=["\n\nHuman:"], temperature=0.2, top_p=0.9, top_k=40,
               metadata={"user_id": "learner-7"},
               messages=[{"role": "user", "content": [{"type": "text", "text": "Translate to French:"},
                                                      {"type": "text", "text": "good night"}]},
                         {"role": "assistant", "content": [
                             {"type": "thinking", "thinking": "easy", "signature": "c2ln"},
                             {"type": "redacted_thinking", "data": "b3BhcXVl"},
                             {"type": "text", "text": "bonne nuit"}]},
                         {"role": "user", "content": "Translate to Italian: good night"},
                         {"role": "assistant", "content": ""}])  # an empty final assistant turn is allowed
    request = parse_messages_request(raw)
    assert request.prompt == "Translate to Italian: good night"
    assert request.input_text == "You translate.\nTranslate to French:\ngood night\nbonne nuit\n" \
                                 "Translate to Italian: good night\n"
    assert (request.stream, request.stop_sequences, request.thinking) == (True, ("\n\nHuman:",), None)


def test_adaptive_omitted_and_disabled_thinking():
    adaptive = parse_messages_request(body(thinking={"type": "adaptive", "display": "omitted"}))
    assert adaptive.thinking == ThinkingSettings(None, omitted=True)
    assert parse_messages_request(body(thinking={"type": "disabled"})).thinking is None
    summarized = parse_messages_request(body(max_tokens=2_000, temperature=1, top_p=0.95,
                                             thinking={"type": "enabled", "budget_tokens": 1_024,
                                                       "display": "summarized"}))
    assert summarized.thinking == ThinkingSettings(1_024)


def test_the_service_is_asked_for_every_input_text_max_tokens_the_thinking_budget_and_the_stop_sequences():
    request = parse_messages_request(body(system="Be brief.", max_tokens=20_000, stop_sequences=["END"], stream=True,
                                          thinking={"type": "enabled", "budget_tokens": 16_000}))
    asked = request.service_request()
    assert (asked.prompt, asked.messages, asked.max_tokens, asked.thinking_budget, asked.stream,
            asked.stop_sequences) == ("Hello", ("Be brief.\nHello",), 20_000, 16_000, True, ("END",))
    assert asked.input_tokens == 4  # "Be brief.\nHello": 15 characters, 4 to a token
    adaptive = parse_messages_request(body(max_tokens=3_000, thinking={"type": "adaptive"}))
    assert adaptive.service_request().thinking_budget == 1_500  # the model decides: half of max_tokens, simulated
    assert parse_messages_request(body()).service_request().thinking_budget is None


def test_every_parameter_of_the_official_clients_create_is_known():
    sent_by_the_client = set().union(*(kind.__required_keys__ | kind.__optional_keys__
                                       for kind in MessageCreateParams.__args__))
    assert sent_by_the_client <= KNOWN_PARAMETERS
    assert parse_messages_request(body(service_tier="auto", tools=[], tool_choice={"type": "auto"})).prompt == "Hello"


THINKING = {"type": "enabled", "budget_tokens": 2_000}


@pytest.mark.parametrize("raw, says", [
    (b"", "not valid JSON"),
    (b'{"model": "\xff"}', "not UTF-8"),
    (b"[1, 2]", "must be a JSON object; got a JSON array"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"model": "m", "max_tokens": ' + b"9" * 5_000 + b', "messages": []}', "more than 4,300 digits"),
    (b'{"model": "m", "max_tokens": 100, "temperature": NaN, "messages": []}', "NaN is not a JSON value"),
    (body(max_tokens=10 ** 60), r"max_tokens: expected an integer in \[1, 1000000\], got number of more than 40"),
    (body(max_tokens=0), r"max_tokens: expected an integer in \[1, "),
    (body(max_tokens=True), "max_tokens: expected an integer"),
    (body(max_tokens=100.0), "max_tokens: expected an integer"),
    (json.dumps({"model": "m", "messages": []}).encode(), "max_tokens: Field required"),
    (json.dumps({"max_tokens": 5, "messages": []}).encode(), "model: Field required"),
    (body(model=""), "model: expected a non-empty string"),
    (body(model="m" * 300), "at most 256 characters"),
    (body(presence_penalty=1), "presence_penalty: Extra inputs are not permitted"),
    (body(thinking={"type": "enabled", "budget_tokens": 1_000}), r"budget_tokens: expected an integer in \[1024, "),
    (body(thinking={"type": "enabled"}), "thinking.enabled.budget_tokens: Field required"),
    (body(max_tokens=2_000, thinking=THINKING), "`max_tokens` must be greater than `thinking.budget_tokens`"),
    (body(thinking={"type": "sometimes"}), "thinking: expected"),
    (body(thinking={"type": "disabled", "budget_tokens": 2_000}), "thinking.disabled.budget_tokens: Extra inputs"),
    (body(thinking={"type": "adaptive", "display": "full"}), "thinking.adaptive.display"),
    (body(max_tokens=4_000, thinking=THINKING, temperature=0.5), "temperature: may only be set to 1"),
    (body(max_tokens=4_000, thinking=THINKING, top_k=5), "top_k: must be unset"),
    (body(max_tokens=4_000, thinking=THINKING, top_p=0.5), "top_p: must be between 0.95 and 1"),
    (body(temperature=1.5), r"temperature: expected a number in \[0, 1\]"),
    (body(top_k=-1), "top_k: expected an integer"),
    (body(stream="yes"), "stream: expected a boolean"),
    (body(metadata={"user_id": "x" * 300}), "metadata.user_id"),
    (body(metadata={"email": "a@b.c"}), "metadata.email: Extra inputs"),
    (body(stop_sequences=["END"] * 101), "stop_sequences: expected a list of at most 100"),
    (body(stop_sequences=[""]), "stop_sequences.0: expected a non-empty string"),
    (body(system=5), "system: expected a string or a list of text blocks"),
    (body(messages=[]), "messages: expected between 1 and 100000"),
    (body(messages="Hello"), "messages: expected a list"),
    (body(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
    (body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
    (body(messages=[{"role": "user", "content": "x", "name": "me"}]), "messages.0.name: Extra inputs"),
    (body(messages=[{"role": "user", "content": ""}]), "messages.0: all messages must have non-empty content"),
    (body(messages=[{"role": "user", "content": []}]), "messages.0: all messages must have non-empty content"),
    (body(messages=[{"role": "user", "content": 5}]), "messages.0.content: expected a string or a list"),
    (body(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}]),
     "messages.0.content.0: this server reads text blocks"),
    (body(messages=[{"role": "user", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]}]),
     "messages.0.content.0: this server reads text blocks"),  # only an assistant turn hands thinking back
    (body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]), "must be non-empty"),
    (body(messages=[{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}]),
     "messages.0.content.0.thinking.signature: expected a string, got null$"),
    (body(messages=[{"role": "assistant", "content": "Hi"}]), "at least one message must have the role \"user\""),
])
def test_bad_bodies_get_a_400_naming_the_parameter(raw, says):
    error = refusal(raw)
    assert re.search(says, error.message), error.message


def test_messages_stay_short_whatever_the_body_holds():
    huge = "x" * 500_000
    for raw in (body(model=[huge] * 50), body(stream=huge), body(messages=[{"role": huge, "content": "x"}]),
                body(**{huge: 1}), body(metadata={"user_id": {huge: [huge]}})):
        assert len(refusal(raw).message) < 400
    deep = "[" * 900 + "]" * 900  # parses, and must not be written back whole into the message
    assert len(refusal(b'{"model": ' + deep.encode() + b', "max_tokens": 5, "messages": []}').message) < 400


def test_a_large_body_of_many_turns_is_read_whole():
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": [{"type": "text", "text": f"turn {i}"}]}
             for i in range(20_001)]
    request = parse_messages_request(body(messages=turns))
    assert request.prompt == "turn 20000" and request.input_text.count("\n") == 20_000
