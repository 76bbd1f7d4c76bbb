"""Read and check a ``POST /v1/chat/completions`` body, as OpenAI's API does.

The **prompt** is the text of the last message whose role is ``"user"``: its ``content``
string, or, when ``content`` is a list of parts, the ``text`` of its text parts joined with
newlines. Earlier messages (a system prompt, the conversation so far) are accepted and do
not change the answer, but every message counts as input tokens (``usage.prompt_tokens``, and
what the limits are charged). So ``call_llm_async(prompt)`` over HTTP, which sends
``[{"role": "user", "content": prompt}]``, is answered as :class:`~pocket_parallel.SimulatedLLM`
answers ``prompt``.

Anything OpenAI would refuse is refused with a 400 naming the parameter: a body that is not
a JSON object, a missing or ill-typed ``model`` or ``messages``, a parameter the API does not
know, or a known one of the wrong type or out of range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request
from .json_body import MalformedBody, describe, read_json_object
from .service import ServiceRequest

#: Every parameter of OpenAI's Chat Completions request (openai-python's ``CompletionCreateParams``).
KNOWN_PARAMETERS = frozenset({
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias",
    "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options",
    "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier", "seed",
    "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
    "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_TOKENS = 1_000_000


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat completion request: what the service needs from it.

    ``messages`` holds the text of every message, system included (their tokens are the
    request's input tokens); ``max_tokens`` is the smaller of ``max_tokens`` and
    ``max_completion_tokens`` when both are given.
    """

    model: str
    prompt: str
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    messages: tuple[str, ...] = ()

    def service_request(self) -> ServiceRequest:
        """The API-neutral request the service runs."""
        return ServiceRequest(self.prompt, self.messages or (self.prompt,), self.max_tokens, None, self.stream)


def parse_chat_request(raw: bytes) -> ChatRequest:
    """The :class:`ChatRequest` in a raw body, or an :class:`ApiError` (400) saying what is wrong."""
    try:
        body = read_json_object(raw)
    except MalformedBody as error:
        raise bad_request(
            f"We could not parse the JSON body of your request: {error}. The body must be a JSON object such as "
            "{\"model\": \"...\", \"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}.",
            code="invalid_json",
        ) from None
    unknown = sorted(set(body) - KNOWN_PARAMETERS)
    if unknown:
        raise bad_request(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0],
                          code="unknown_parameter")
    model = body.get("model")
    if "model" not in body:
        raise bad_request("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise bad_request(f"Invalid type for 'model': expected a non-empty string, but got {describe(model)}.",
                          param="model", code="invalid_type")
    stream = _optional_bool(body, "stream")
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise bad_request(f"Invalid type for 'stream_options': expected an object, but got {describe(options)}.",
                              param="stream_options", code="invalid_type")
        if not stream:
            raise bad_request("The 'stream_options' parameter is only allowed when 'stream' is true.",
                              param="stream_options")
        include_usage = _optional_bool(options, "include_usage", "stream_options.include_usage")
    max_tokens = _token_limit(body)
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n != 1):
        raise bad_request(f"Invalid 'n': this server returns one choice per request, so n must be 1; got {describe(n)}.",
                          param="n")
    for name, high in (("temperature", 2.0), ("top_p", 1.0)):
        _optional_number(body, name, 0.0, high)
    prompt, texts = _prompt(body)
    return ChatRequest(model, prompt, stream, include_usage, max_tokens, texts)


def _prompt(body: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The prompt (the last user message) and the text of every message."""
    if "messages" not in body:
        raise bad_request("Missing required parameter: 'messages'.", param="messages",
                          code="missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise bad_request(f"Invalid type for 'messages': expected an array of message objects, but got "
                          f"{describe(messages)}.", param="messages", code="invalid_type")
    if not messages:
        raise bad_request("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                          "empty array instead.", param="messages", code="empty_array")
    prompt: str | None = None
    texts: list[str] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"Invalid type for '{where}': expected an object, but got {describe(message)}.",
                              param=where, code="invalid_type")
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(f"Invalid value for '{where}.role': expected one of {', '.join(map(repr, ROLES))}, "
                              f"but got {describe(role)}.", param=f"{where}.role")
        text = _text(message.get("content"), f"{where}.content", required=role == "user")
        texts.append(text)
        if role == "user":
            prompt = text
    if prompt is None:
        raise bad_request("Invalid 'messages': at least one message must have the role 'user' (its content is the "
                          "prompt).", param="messages")
    return prompt, tuple(texts)


def _text(content: Any, where: str, *, required: bool) -> str:
    if isinstance(content, str):
        return content
    if content is None and not required:
        return ""
    if not isinstance(content, list):
        raise bad_request(f"Invalid type for '{where}': expected a string or an array of content parts, but got "
                          f"{describe(content)}.", param=where, code="invalid_type")
    pieces = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise bad_request(f"Invalid '{at}': this server reads text parts only, "
                              "{\"type\": \"text\", \"text\": \"...\"}; " f"got {describe(part)}.", param=at)
        pieces.append(part["text"])
    return "\n".join(pieces)


def _optional_bool(body: dict[str, Any], name: str, param: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"Invalid type for '{param or name}': expected a boolean, but got {describe(value)}.",
                          param=param or name, code="invalid_type")
    return value


def _token_limit(body: dict[str, Any]) -> int | None:
    limit = None
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"Invalid type for '{name}': expected an integer, but got {describe(value)}.",
                              param=name, code="invalid_type")
        if not 1 <= value <= MAX_TOKENS:
            raise bad_request(f"Invalid '{name}': integer below minimum value or above maximum value. Expected a "
                              f"value in [1, {MAX_TOKENS}], but got {value} instead.", param=name,
                              code="integer_out_of_range")
        limit = value if limit is None else min(limit, value)
    return limit


def _optional_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(f"Invalid type for '{name}': expected a number, but got {describe(value)}.",
                          param=name, code="invalid_type")
    if not low <= value <= high:
        raise bad_request(f"Invalid '{name}': expected a number in [{low:g}, {high:g}], but got {value!r}.",
                          param=name, code="decimal_out_of_range")


__all__ = ["ApiError", "ChatRequest", "KNOWN_PARAMETERS", "parse_chat_request"]
