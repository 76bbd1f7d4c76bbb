"""Write an answer as Anthropic's Messages API does: a ``Message``, or its stream of server-sent events.

A :class:`MessageReply` is what the simulated service answered, in words that belong to no
API: the text, the thinking (or None without extended thinking), the tokens and why it
stopped. :func:`render_message` makes the ``Message`` body of a plain request;
:func:`message_events` the events of a streamed one, in the order Anthropic's streaming
guide gives and its recorded streams show:

1. ``message_start``: the ``Message`` with empty ``content`` and ``stop_reason`` null;
2. per content block (the thinking block first, when there is one, then the text block):
   ``content_block_start``, then ``content_block_delta`` events (``thinking_delta`` and a
   final ``signature_delta`` for the thinking block, ``text_delta`` for the text), then
   ``content_block_stop``; a ``ping`` follows the first block's start;
3. ``message_delta`` with ``stop_reason``, ``stop_sequence`` and the cumulative
   ``usage.output_tokens``;
4. ``message_stop``.

Each :class:`StreamEvent` says which generated text it carries, so a route can pace the
events at the time per output token. :func:`error_event` is the ``error`` event Anthropic may
send mid-stream (an ``overloaded_error``, say). :func:`ratelimit_headers` writes the
``anthropic-ratelimit-*`` headers, their ``reset`` as an RFC 3339 time.

The official ``anthropic`` client reads all of these as its own types (``Message``,
``RawMessageStreamEvent``), and its ``messages.stream(...)`` rebuilds the same ``Message`` from
the events (tests/server/test_anthropic_response.py checks both with the client's own code).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]
STOP_REASONS: tuple[StopReason, ...] = ("end_turn", "max_tokens", "stop_sequence")
#: The limits an Anthropic response announces, as they are named in its headers.
RATE_LIMIT_FAMILIES = ("requests", "tokens", "input-tokens", "output-tokens")


@dataclass(frozen=True)
class MessageReply:
    """What the service answered a Messages API request with.

    ``thinking`` is the thinking block's text ("" when its display is omitted), or None
    without extended thinking. ``output_tokens`` counts the thinking and the text, as
    Anthropic bills them. ``stop_sequence`` is the stop sequence met when ``stop_reason`` is
    ``"stop_sequence"``.
    """

    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: StopReason = "end_turn"
    thinking: str | None = None
    stop_sequence: str | None = None

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason must be one of {', '.join(map(repr, STOP_REASONS))}; got {self.stop_reason!r}")
        if (self.stop_reason == "stop_sequence") != (self.stop_sequence is not None):
            raise ValueError("stop_sequence is the sequence met when, and only when, stop_reason is 'stop_sequence'")
        if self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError(f"token counts must be >= 0; got {self.input_tokens} in, {self.output_tokens} out")


def thinking_signature(thinking: str) -> str:
    """The opaque ``signature`` of a thinking block: here, a digest of its text (Anthropic's is its own secret)."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def message_id(number: int) -> str:
    """The id of the ``number``-th message a server answers (``msg_`` and digits; Anthropic's format may vary)."""
    return f"msg_{number:024d}"


def render_message(reply: MessageReply, *, model: str, id: str) -> dict[str, Any]:
    """The ``Message`` body of a plain (not streamed) request."""
    content = [] if reply.thinking is None else [_thinking_block(reply.thinking, signed=True)]
    content.append({"type": "text", "text": reply.text})
    return {**_message(model, id, content), "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence, "usage": _usage(reply.input_tokens, reply.output_tokens)}


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event: its name, its JSON data, and the generated text it carries ("" for none)."""

    name: str
    data: dict[str, Any]
    generated: str = field(default="", compare=False)

    def encode(self) -> bytes:
        """The event on the wire: ``event: NAME``, ``data: JSON`` and a blank line."""
        return f"event: {self.name}\ndata: {json.dumps(self.data)}\n\n".encode()


def message_events(reply: MessageReply, *, model: str, id: str) -> Iterator[StreamEvent]:
    """The events of a streamed answer, in Anthropic's order; the text goes out a word at a time."""
    start = {**_message(model, id, []), "stop_reason": None, "stop_sequence": None,
             "usage": _usage(reply.input_tokens, min(1, reply.output_tokens))}
    yield StreamEvent("message_start", {"type": "message_start", "message": start})
    blocks: list[tuple[dict[str, Any], Iterator[dict[str, Any]]]] = []
    if reply.thinking is not None:
        blocks.append((_thinking_block("", signed=False), _thinking_deltas(reply.thinking)))
    blocks.append(({"type": "text", "text": ""}, ({"type": "text_delta", "text": w} for w in _words(reply.text))))
    for index, (opening, deltas) in enumerate(blocks):
        yield StreamEvent("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": opening})
        if index == 0:
            yield StreamEvent("ping", {"type": "ping"})
        for delta in deltas:
            yield StreamEvent("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta},
                              delta.get("text", delta.get("thinking", "")))
        yield StreamEvent("content_block_stop", {"type": "content_block_stop", "index": index})
    yield StreamEvent("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
        "usage": {"output_tokens": reply.output_tokens},
    })
    yield StreamEvent("message_stop", {"type": "message_stop"})


def error_event(error_type: str, message: str) -> StreamEvent:
    """An ``error`` event, as Anthropic sends one mid-stream (the client raises it as that status's error)."""
    return StreamEvent("error", {"type": "error", "error": {"type": error_type, "message": message}})


def cut_at_stop_sequence(text: str, stop_sequences: tuple[str, ...]) -> tuple[str, str | None]:
    """``text`` as generation would leave it with ``stop_sequences``, and the sequence met (None if none).

    Text is generated from the start, so the sequence that is complete first ends it: the
    one whose first occurrence ends soonest (of two ending together, the longer). The
    answer stops before it: Anthropic leaves the stop sequence out of the text.
    """
    end, met = len(text) + 1, None
    for stop in stop_sequences:
        at = text.find(stop, 0, end)  # only an occurrence that ends no later than the best so far
        if at != -1 and (at + len(stop) < end or met is None or len(stop) > len(met)):
            end, met = at + len(stop), stop
    return (text, None) if met is None else (text[: end - len(met)], met)


def ratelimit_headers(limits: Mapping[str, tuple[int, int, float]], now: datetime.datetime) -> dict[str, str]:
    """The ``anthropic-ratelimit-*`` headers for ``limits``: family -> (limit, remaining, seconds until full).

    Families are those of :data:`RATE_LIMIT_FAMILIES`. ``reset`` is the RFC 3339 time, in UTC
    to the second (rounded up), at which the family's budget is whole again, counted from
    ``now`` (an aware datetime).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (e.g. datetime.now(timezone.utc)), so reset times are UTC")
    headers = {}
    for family, (limit, remaining, reset) in limits.items():
        if family not in RATE_LIMIT_FAMILIES:
            raise ValueError(f"limits must name families among {', '.join(RATE_LIMIT_FAMILIES)}; got {family!r}")
        at = now + datetime.timedelta(seconds=max(0.0, reset))
        if at.microsecond:
            at = at.replace(microsecond=0) + datetime.timedelta(seconds=1)
        prefix = f"anthropic-ratelimit-{family}"
        headers[f"{prefix}-limit"] = str(limit)
        headers[f"{prefix}-remaining"] = str(max(0, remaining))
        headers[f"{prefix}-reset"] = at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return headers


def _message(model: str, id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": id, "type": "message", "role": "assistant", "model": model, "content": content}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            "output_tokens": output_tokens, "service_tier": "standard"}


def _thinking_block(thinking: str, *, signed: bool) -> dict[str, Any]:
    # In a stream the block opens with an empty signature; a signature_delta fills it before it closes.
    return {"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking) if signed else ""}


def _thinking_deltas(thinking: str) -> Iterator[dict[str, Any]]:
    for word in _words(thinking):
        yield {"type": "thinking_delta", "thinking": word}
    yield {"type": "signature_delta", "signature": thinking_signature(thinking)}


def _words(text: str) -> Iterator[str]:
    """``text`` in pieces of one word and the space before it; nothing for an empty text."""
    start = 0
    while start < len(text):
        end = text.find(" ", start + 1)
        end = len(text) if end == -1 else end
        yield text[start:end]
        start = end


__all__ = [
    "MessageReply",
    "RATE_LIMIT_FAMILIES",
    "STOP_REASONS",
    "StreamEvent",
    "cut_at_stop_sequence",
    "error_event",
    "message_events",
    "message_id",
    "ratelimit_headers",
    "render_message",
    "thinking_signature",
]
