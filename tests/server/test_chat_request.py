"""Reading a chat completion body: the prompt is the last user message; everything else OpenAI refuses gets a 400."""

from __future__ import annotations

import json

import pytest

from pocket_parallel.server.chat_request import parse_chat_request
from pocket_parallel.server.errors import ApiError


def _parse(body: object) -> object:
    return parse_chat_request(json.dumps(body).encode())


def test_the_prompt_is_the_last_user_message():
    request = _parse({
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "an earlier answer"},
            {"role": "user", "content": "Translate to French: hello"},
        ],
    })
    assert request.prompt == "Translate to French: hello"
    assert (request.model, request.stream, request.max_tokens) == ("m", False, None)


def test_text_parts_are_joined_with_newlines_and_options_are_read():
    request = _parse({
        "model": "m", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 5,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
        "temperature": 0.2, "n": 1, "user": "someone",
    })
    assert (request.prompt, request.stream, request.include_usage, request.max_tokens) == ("a\nb", True, True, 5)


MALFORMED = [
    (b"{not json", None, "invalid_json"),
    (b"[1, 2]", None, "invalid_json"),
    (b"\xff\xfe", None, "invalid_json"),
    ({"messages": [{"role": "user", "content": "x"}]}, "model", "missing_required_parameter"),
    ({"model": 7, "messages": [{"role": "user", "content": "x"}]}, "model", "invalid_type"),
    ({"model": "m"}, "messages", "missing_required_parameter"),
    ({"model": "m", "messages": "hello"}, "messages", "invalid_type"),
    ({"model": "m", "messages": []}, "messages", "empty_array"),
    ({"model": "m", "messages": ["hello"]}, "messages[0]", "invalid_type"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"model": "m", "messages": [{"role": "system", "content": "x"}]}, "messages", "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": 42}]}, "messages[0].content", "invalid_type"),
    ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content", "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]",
     "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "colour": "blue"}, "colour", "unknown_parameter"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream", "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {}}, "stream_options",
     "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "10"}, "max_tokens", "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens",
     "integer_out_of_range"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n", "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature",
     "decimal_out_of_range"),
]


@pytest.mark.parametrize("body, param, code", MALFORMED, ids=lambda v: str(v)[:30] if not isinstance(v, (str, type(None))) else str(v))
def test_malformed_bodies_get_a_400_naming_the_parameter(body, param, code):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ApiError) as caught:
        parse_chat_request(raw)
    error = caught.value
    assert (error.status, error.param, error.code, error.type) == (400, param, code, "invalid_request_error")
    if param is not None:
        assert param.split("[")[0].split(".")[0] in error.message  # the message names the parameter too
    assert set(error.body()["error"]) == {"message", "type", "param", "code"}
