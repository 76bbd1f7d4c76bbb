"""Malformed and unrepresentable JSON gets a 400 in its route's error shape, never a 500 or a logged traceback."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from pocket_parallel import run
from pocket_parallel.server import LocalServer
from pocket_parallel.server.app import MAX_BODY, make_app
from pocket_parallel.server.chat_request import parse_chat_request
from pocket_parallel.server.anthropic_errors import AnthropicApiError
from pocket_parallel.server.errors import ApiError
from pocket_parallel.server.service import ChatService
from pocket_parallel.server.settings import ServerSettings
from tests.http_support import NO_LEAKED_RESOURCES, chat_body

pytestmark = NO_LEAKED_RESOURCES

NESTED = b"[" * 100_000 + b"]" * 100_000
ATTACKS = {
    "100,000 nested arrays": NESTED,
    "100,000 nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "nested arrays as the model": b'{"model": ' + b"[" * 900 + b"]" * 900 + b', "messages": []}',
    "a 5,000-digit integer": b'{"model": "m", "messages": [], "max_tokens": ' + b"9" * 5000 + b"}",
    "a 5,000-digit integer at the top": b"9" * 5000,
    "NaN": b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    "-Infinity": b"-Infinity",
    "not UTF-8": b'{"model": "\xff\xfe"}',
    "a lone surrogate escape": b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}], "n": 2}',
    "an unclosed string": b'{"model": "' + b"x" * 500_000,
}


@pytest.fixture(scope="module")
def server():
    with LocalServer(latency=0.01) as running:
        yield running


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_attack_gets_a_400_counted_as_a_bad_request_and_logs_nothing(server, attack, caplog):
    server.reset()
    with caplog.at_level(logging.DEBUG, logger="pocket_parallel"), httpx.Client(base_url=server.url) as http:
        response = http.post("/v1/chat/completions", content=ATTACKS[attack],
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]
        assert http.post("/v1/chat/completions", json=chat_body()).status_code == 200  # it lives on
    stats = server.stats()
    assert (stats.bad_requests, stats.requests, stats.ok) == (1, 1, 1)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_messages_say_what_is_wrong():
    def message(raw):
        with pytest.raises(ApiError) as refused:
            parse_chat_request(raw)
        assert refused.value.status == 400
        return refused.value.message

    assert "nested too deeply" in message(NESTED)
    assert "more digits" in message(ATTACKS["a 5,000-digit integer"])
    assert "NaN is not a JSON value" in message(ATTACKS["NaN"])
    assert "not UTF-8" in message(ATTACKS["not UTF-8"])
    assert "Invalid type for 'model'" in message(ATTACKS["nested arrays as the model"])


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_any_bytes_give_a_request_or_a_400(raw):
    try:
        parse_chat_request(raw)
    except ApiError as error:
        assert error.status == 400


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=30)


@given(st.dictionaries(st.sampled_from(["model", "messages", "stream", "stream_options", "n", "max_tokens",
                                        "temperature", "top_p", "colour"]), _JSON, max_size=6))
@settings(max_examples=400, deadline=None)
def test_any_json_object_gives_a_request_or_a_400(body):
    try:
        parse_chat_request(json.dumps(body).encode())
    except ApiError as error:
        assert error.status == 400


# A megabyte body costs one pass: about 10 ms. The budget only tells linear from quadratic.
@pytest.mark.parametrize("raw", [
    NESTED * 5 + b" ",
    json.dumps(chat_body("x " * 400_000)).encode(),
    json.dumps({"model": "m", "messages": [{"role": "user", "content": "a"}] * 30_000}).encode(),
    json.dumps({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}] * 30_000}]}).encode(),
    json.dumps({f"k{i}": 1 for i in range(80_000)}).encode(),
], ids=["nested", "long prompt", "many messages", "many parts", "many unknown keys"])
def test_a_megabyte_body_is_read_in_linear_time(raw):
    assert len(raw) <= MAX_BODY
    start = time.process_time()
    try:
        parse_chat_request(raw)
    except ApiError:
        pass
    assert time.process_time() - start < 0.5


def test_the_messages_route_answers_every_error_in_anthropics_shape(server):
    with httpx.Client(base_url=server.url) as http:
        missing = http.post("/v1/messages/nowhere", json={})
        nested = http.post("/v1/messages", content=NESTED, headers={"Content-Type": "application/json"})
        foreign = http.post("/v1/messages", json={}, headers={"Origin": "https://evil.example"})
        openai_style = http.post("/v1/chat/completions", content=NESTED, headers={"Content-Type": "application/json"})
    assert missing.status_code == 404 and missing.json()["type"] == "error"
    assert missing.json()["error"]["type"] == "not_found_error" and missing.json()["error"]["message"]
    assert nested.status_code == 400 and nested.json()["error"]["type"] == "invalid_request_error"
    assert "nested" in nested.json()["error"]["message"]
    assert foreign.status_code == 403 and foreign.json()["error"]["type"] == "permission_error"
    assert openai_style.status_code == 400 and openai_style.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (401, "authentication_error"),
                                              (403, "permission_error"), (404, "not_found_error"),
                                              (405, "invalid_request_error"), (413, "request_too_large"),
                                              (415, "invalid_request_error"), (429, "rate_limit_error"),
                                              (500, "api_error"), (503, "api_error"), (529, "overloaded_error")])
def test_anthropics_error_types_follow_its_documentation(status, kind):
    body = AnthropicApiError.from_error(ApiError(status, "what went wrong")).body()
    assert body == {"type": "error", "error": {"type": kind, "message": "what went wrong"}}
    assert ApiError(status, "m", code="c").body()["error"]["code"] == "c"
