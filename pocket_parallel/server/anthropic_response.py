"""Write an answer as Anthropic's Messages API does: a ``Message``, or its stream of server-sent events.

A :class:`MessageReply` is what the simulated service answered, in the words of this API:
the text, the thinking (or None without extended thinking), the tokens and why it stopped
(:meth:`MessageReply.of` makes one from the service's
:class:`~pocket_parallel.service.answers.Reply`). :func:`render_message` makes the ``Message``
body of a plain request; :func:`message_events` the events of a streamed one, in the order
Anthropic's streaming guide gives and its recorded streams show:

1. ``message_start``: the ``Message`` with empty ``content`` and ``stop_reason`` null;
2. per content block (the thinking block first, when there is one, then the text block):
   ``content_block_start``, then ``content_block_delta`` events (``thinking_delta`` and a
   final ``signature_delta`` for the thinking block, ``text_delta`` for the text), then
   ``content_block_stop``; a ``ping`` follows the first block's start;
3. ``message_delta`` with ``stop_reason``, ``stop_sequence`` and the cumulative
   ``usage.output_tokens``;
4. ``message_stop``.

Each ``thinking_delta`` and ``text_delta`` carries one output token, and its
:class:`StreamEvent` says so (``token``), so a route sends each token's event at that
token's time: the events before it go with it, the events after the last token at the end.

The official ``anthropic`` client reads all of these as its own types (``Message``,
``RawMessageStreamEvent``: tests/server/test_anthropic_response.py), and its
``messages.stream(...)`` rebuilds from the events the ``Message`` a plain request gets
(tests/server/test_anthropic_endpoint.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ..service.answers import Reply
from ..service.model import token_pieces

StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]
STOP_REASONS: tuple[StopReason, ...] = ("end_turn", "max_tokens", "stop_sequence")
# The service's stop reasons in this API's words.
_STOP_REASON: dict[str, StopReason] = {"end": "end_turn", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence"}


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

    @classmethod
    def of(cls, reply: Reply, input_tokens: int, *, show_thinking: bool = True) -> MessageReply:
        """The service's ``reply`` to a request of ``input_tokens``; ``show_thinking=False`` omits the thinking's text."""
        thinking = reply.thinking if reply.thinking is None or show_thinking else ""
        return cls(reply.text, input_tokens, reply.output_tokens, _STOP_REASON[reply.stop_reason], thinking,
                   reply.stop_sequence)


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
    """One server-sent event: its name, its JSON data, and whether it carries one output token."""

    name: str
    data: dict[str, Any]
    token: bool = field(default=False, compare=False)

    def encode(self) -> bytes:
        """The event on the wire: ``event: NAME``, ``data: JSON`` and a blank line."""
        return f"event: {self.name}\ndata: {json.dumps(self.data)}\n\n".encode()


def message_events(reply: MessageReply, *, model: str, id: str) -> Iterator[StreamEvent]:
    """The events of a streamed answer, in Anthropic's order, one delta per output token shown."""
    start = {**_message(model, id, []), "stop_reason": None, "stop_sequence": None,
             "usage": _usage(reply.input_tokens, min(1, reply.output_tokens))}
    yield StreamEvent("message_start", {"type": "message_start", "message": start})
    blocks: list[tuple[dict[str, Any], Iterator[dict[str, Any]]]] = []
    if reply.thinking is not None:
        blocks.append((_thinking_block("", signed=False), _thinking_deltas(reply.thinking)))
    blocks.append(({"type": "text", "text": ""},
                   ({"type": "text_delta", "text": token} for token in token_pieces(reply.text))))
    for index, (opening, deltas) in enumerate(blocks):
        yield StreamEvent("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": opening})
        if index == 0:
            yield StreamEvent("ping", {"type": "ping"})
        for delta in deltas:
            yield StreamEvent("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta},
                              token=delta["type"] != "signature_delta")
        yield StreamEvent("content_block_stop", {"type": "content_block_stop", "index": index})
    yield StreamEvent("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
        "usage": {"output_tokens": reply.output_tokens},
    })
    yield StreamEvent("message_stop", {"type": "message_stop"})


def _message(model: str, id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": id, "type": "message", "role": "assistant", "model": model, "content": content}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            "output_tokens": output_tokens, "service_tier": "standard"}


def _thinking_block(thinking: str, *, signed: bool) -> dict[str, Any]:
    # In a stream the block opens with an empty signature; a signature_delta fills it before it closes.
    return {"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking) if signed else ""}


def _thinking_deltas(thinking: str) -> Iterator[dict[str, Any]]:
    for token in token_pieces(thinking):
        yield {"type": "thinking_delta", "thinking": token}
    yield {"type": "signature_delta", "signature": thinking_signature(thinking)}


__all__ = [
    "MessageReply",
    "STOP_REASONS",
    "StreamEvent",
    "message_events",
    "message_id",
    "render_message",
    "thinking_signature",
]
