"""Read and check a ``POST /v1/messages`` body, as Anthropic's Messages API does.

The **prompt** is the text of the last message whose role is ``"user"``: its ``content``
string, or the ``text`` of its text blocks joined with newlines, so ``messages.create`` with
one user message is answered as :class:`~pocket_parallel.SimulatedLLM` answers that text.
The ``system`` prompt and earlier turns do not change the answer, but they are input: their
text is in :attr:`MessagesRequest.input_text`, which an input-token budget counts whole, as
Anthropic counts every input token.

What the request may hold follows Anthropic's API reference and its guide to extended
thinking; the rest is this server's, and its messages say so:

- ``model`` (a name; any name is answered), ``max_tokens`` (an integer >= 1) and ``messages``
  (1 to 100,000 turns, role ``"user"`` or ``"assistant"``, content a non-empty string or list
  of content blocks) are required;
- ``thinking`` is ``{"type": "enabled", "budget_tokens": N}`` with N >= 1,024 and below
  ``max_tokens``, ``{"type": "adaptive"}`` or ``{"type": "disabled"}``; with thinking on,
  ``temperature`` may only be 1, ``top_k`` must be unset and ``top_p`` lies in [0.95, 1];
- ``system`` is a string or a list of text blocks; ``stop_sequences`` a list of strings;
  ``stream`` a boolean; ``temperature`` and ``top_p`` numbers in [0, 1]; ``top_k`` an integer
  >= 0; ``metadata`` ``{"user_id": ...}``;
- any other parameter of the official client's ``messages.create`` is accepted and has no
  effect; a parameter it does not know is refused.

This server reads text: an image, a document or a tool block in ``messages`` is refused
(400) rather than silently ignored. A thinking block handed back in an assistant turn, as
multi-turn programs with extended thinking do, is accepted.

Every refusal is an :class:`~pocket_parallel.server.anthropic_errors.AnthropicApiError`
(400) naming the parameter by its path (``messages.0.content``) and what it accepts. The
parser reads each part of the body once: linear in its size.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from .anthropic_errors import AnthropicApiError, invalid_request
from .json_body import MalformedBody, clip, describe, read_json_object
from .service import ServiceRequest

#: Every key of the official client's ``MessageCreateParams`` (what ``messages.create`` takes),
#: and the sampling parameters Anthropic's API reference lists beside them.
KNOWN_PARAMETERS = frozenset({
    "max_tokens", "messages", "model", "cache_control", "container", "context_management", "diagnostics",
    "inference_geo", "mcp_servers", "metadata", "output_config", "service_tier", "speed", "stop_sequences",
    "stream", "system", "temperature", "thinking", "tool_choice", "tools", "top_k", "top_p", "user_profile_id",
    "workspace_id",
})
ROLES = ("user", "assistant")
#: Anthropic's limit on the turns in one request.
MAX_MESSAGES = 100_000
#: Anthropic's smallest thinking budget.
MIN_THINKING_BUDGET = 1_024
#: The largest ``max_tokens`` this server takes (above any model's output limit).
MAX_TOKENS = 1_000_000
#: This server's bounds: a model name is echoed in every answer, and each stop sequence is looked for in it.
MAX_MODEL_NAME = 256
MAX_STOP_SEQUENCES = 100
#: Anthropic's bound on ``metadata.user_id``.
MAX_USER_ID = 256
# Block types: the ones read for their text, and the ones an assistant turn may hand back and are skipped.
_TEXT_BLOCK_KEYS = frozenset({"type", "text", "cache_control", "citations"})
_HANDED_BACK = {"thinking": ("thinking", "signature"), "redacted_thinking": ("data",)}


@dataclass(frozen=True)
class ThinkingSettings:
    """Extended thinking as the request asks for it.

    ``budget_tokens`` is the most the thinking block may take (``{"type": "enabled"}``), or
    None when the model decides (``{"type": "adaptive"}``; it still ends within
    ``max_tokens``). ``omitted`` is True when ``display`` is ``"omitted"``: the thinking is
    charged but its text is not returned, only its signature.
    """

    budget_tokens: int | None
    omitted: bool = False


@dataclass(frozen=True)
class MessagesRequest:
    """A checked Messages API request: what the service needs from it.

    ``prompt`` is the text of the last user turn (what the answer depends on), ``input_text``
    every input text (the system prompt, then each turn) joined with newlines, as counted
    against input tokens. ``thinking`` is None without extended thinking.
    """

    model: str
    prompt: str
    max_tokens: int
    input_text: str
    thinking: ThinkingSettings | None = None
    stream: bool = False
    stop_sequences: tuple[str, ...] = ()

    @property
    def thinking_budget(self) -> int | None:
        """The thinking budget the service simulates: ``budget_tokens``; adaptive thinking, half of
        ``max_tokens`` (the model decides how much to think within it); None without thinking."""
        if self.thinking is None:
            return None
        return self.thinking.budget_tokens or max(1, self.max_tokens // 2)

    def service_request(self) -> ServiceRequest:
        """The API-neutral request the service runs: every input text counts as input tokens."""
        return ServiceRequest(self.prompt, (self.input_text,), self.max_tokens, self.thinking_budget, self.stream,
                              self.stop_sequences)


def parse_messages_request(raw: bytes) -> MessagesRequest:
    """The :class:`MessagesRequest` in a raw body, or an :class:`AnthropicApiError` (400) saying what is wrong."""
    try:
        body = read_json_object(raw)
    except MalformedBody as error:
        raise invalid_request(f"{error}. The body must be a JSON object such as {{\"model\": \"...\", "
                              "\"max_tokens\": 1024, \"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}.") from None
    _no_extra(body, KNOWN_PARAMETERS, "")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise invalid_request(f"{name}: Field required")
    model = body["model"]
    if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL_NAME:
        raise invalid_request(f"model: expected a non-empty string of at most {MAX_MODEL_NAME} characters, "
                              f"got {describe(model)}")
    max_tokens = _integer(body["max_tokens"], "max_tokens", 1, MAX_TOKENS)
    thinking = _thinking(body, max_tokens)
    _sampling(body, thinking)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_request(f"stream: expected a boolean, got {describe(stream)}")
    _metadata(body.get("metadata"))
    system = list(_system(body.get("system")))
    prompt, turns = _messages(body["messages"])
    return MessagesRequest(model, prompt, max_tokens, "\n".join(system + turns), thinking, bool(stream),
                           _stop_sequences(body.get("stop_sequences")))


def _thinking(body: dict[str, Any], max_tokens: int) -> ThinkingSettings | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "adaptive", "disabled"):
        raise invalid_request("thinking: expected {\"type\": \"enabled\", \"budget_tokens\": N} with N >= "
                              f"{MIN_THINKING_BUDGET}, {{\"type\": \"adaptive\"}} or {{\"type\": \"disabled\"}}; "
                              f"got {describe(thinking)}")
    assert isinstance(thinking, dict)
    allowed = {"enabled": {"type", "budget_tokens", "display"}, "adaptive": {"type", "display"}}.get(kind, {"type"})
    _no_extra(thinking, allowed, f"thinking.{kind}.")
    if kind == "disabled":
        return None
    display = thinking.get("display")
    if display not in (None, "summarized", "omitted"):
        raise invalid_request(f"thinking.{kind}.display: expected \"summarized\" or \"omitted\", got {describe(display)}")
    if kind == "adaptive":
        return ThinkingSettings(None, display == "omitted")
    if "budget_tokens" not in thinking:
        raise invalid_request("thinking.enabled.budget_tokens: Field required")
    budget = _integer(thinking["budget_tokens"], "thinking.enabled.budget_tokens", MIN_THINKING_BUDGET, MAX_TOKENS)
    if budget >= max_tokens:
        raise invalid_request(f"`max_tokens` must be greater than `thinking.budget_tokens` (thinking tokens count "
                              f"toward max_tokens): got max_tokens {max_tokens} and budget_tokens {budget}")
    return ThinkingSettings(budget, display == "omitted")


def _sampling(body: dict[str, Any], thinking: ThinkingSettings | None) -> None:
    temperature = _number(body.get("temperature"), "temperature", 0.0, 1.0)
    top_p = _number(body.get("top_p"), "top_p", 0.0, 1.0)
    top_k = body.get("top_k")
    if top_k is not None:
        _integer(top_k, "top_k", 0, MAX_TOKENS)
    if thinking is None:
        return
    # Anthropic's guide to extended thinking: thinking is not compatible with changing these.
    if temperature is not None and temperature != 1.0:
        raise invalid_request(f"temperature: may only be set to 1 when thinking is enabled; got {temperature!r}")
    if top_k is not None:
        raise invalid_request("top_k: must be unset when thinking is enabled")
    if top_p is not None and top_p < 0.95:
        raise invalid_request(f"top_p: must be between 0.95 and 1 when thinking is enabled; got {top_p!r}")


def _metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise invalid_request(f"metadata: expected an object such as {{\"user_id\": \"...\"}}, got {describe(metadata)}")
    _no_extra(metadata, ("user_id",), "metadata.")
    user_id = metadata.get("user_id")
    if user_id is not None and (not isinstance(user_id, str) or len(user_id) > MAX_USER_ID):
        raise invalid_request(f"metadata.user_id: expected a string of at most {MAX_USER_ID} characters, "
                              f"got {describe(user_id)}")


def _system(system: Any) -> Iterator[str]:
    if system is None:
        return
    if isinstance(system, str):
        yield system
        return
    if not isinstance(system, list):
        raise invalid_request(f"system: expected a string or a list of text blocks, got {describe(system)}")
    for index, block in enumerate(system):
        yield _text_block(block, f"system.{index}")


def _messages(messages: Any) -> tuple[str, list[str]]:
    """The last user turn's text, and every turn's text in order."""
    if not isinstance(messages, list):
        raise invalid_request(f"messages: expected a list of messages, got {describe(messages)}")
    if not 1 <= len(messages) <= MAX_MESSAGES:
        raise invalid_request(f"messages: expected between 1 and {MAX_MESSAGES} messages, got {len(messages)}")
    prompt: str | None = None
    turns = []
    last = len(messages) - 1
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise invalid_request(f"{where}: expected an object with \"role\" and \"content\", got {describe(message)}")
        _no_extra(message, ("role", "content"), f"{where}.")
        role = message.get("role")
        if role not in ROLES:
            raise invalid_request(f"{where}.role: expected \"user\" or \"assistant\", got {describe(role)}")
        if "content" not in message:
            raise invalid_request(f"{where}.content: Field required")
        text, empty = _content(message["content"], f"{where}.content", role)
        if empty and not (role == "assistant" and index == last):
            raise invalid_request(f"{where}: all messages must have non-empty content except for the optional "
                                  "final assistant message")
        turns.append(text)
        if role == "user":
            prompt = text
    if prompt is None:
        raise invalid_request("messages: at least one message must have the role \"user\" (its text is the prompt)")
    return prompt, turns


def _content(content: Any, where: str, role: str) -> tuple[str, bool]:
    """A turn's text, and whether the turn is empty."""
    if isinstance(content, str):
        return content, content == ""
    if not isinstance(content, list):
        raise invalid_request(f"{where}: expected a string or a list of content blocks, got {describe(content)}")
    pieces = []
    for index, block in enumerate(content):
        at = f"{where}.{index}"
        kind = block.get("type") if isinstance(block, dict) else None
        if role == "assistant" and isinstance(kind, str) and kind in _HANDED_BACK:
            assert isinstance(block, dict)
            _handed_back(block, kind, at)
        else:
            pieces.append(_text_block(block, at))
    return "\n".join(pieces), not content


def _text_block(block: Any, at: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text":
        raise invalid_request(f"{at}: this server reads text blocks, {{\"type\": \"text\", \"text\": \"...\"}} "
                              f"(and thinking blocks handed back in assistant turns); got {describe(block)}")
    _no_extra(block, _TEXT_BLOCK_KEYS, f"{at}.text.")
    text = block.get("text")
    if not isinstance(text, str) or not text:
        raise invalid_request(f"{at}.text.text: expected a non-empty string (text content blocks must be "
                              f"non-empty), got {describe(text)}")
    return text


def _handed_back(block: dict[str, Any], kind: str, at: str) -> None:
    fields = _HANDED_BACK[kind]
    _no_extra(block, {"type", *fields}, f"{at}.{kind}.")
    for field in fields:
        if not isinstance(block.get(field), str):
            raise invalid_request(f"{at}.{kind}.{field}: expected a string, got {describe(block.get(field))}")


def _no_extra(value: dict[str, Any], allowed: Collection[str], prefix: str) -> None:
    """Refuse the first key (in sorted order) of ``value`` not in ``allowed``, as Anthropic does: by its path."""
    extra = min((key for key in value if key not in allowed), default=None)
    if extra is not None:
        raise invalid_request(f"{prefix}{clip(extra)}: Extra inputs are not permitted")


def _stop_sequences(stops: Any) -> tuple[str, ...]:
    if stops is None:
        return ()
    if not isinstance(stops, list) or len(stops) > MAX_STOP_SEQUENCES:
        raise invalid_request(f"stop_sequences: expected a list of at most {MAX_STOP_SEQUENCES} strings (this "
                              f"server's bound), got {describe(stops)}")
    for index, stop in enumerate(stops):
        if not isinstance(stop, str) or not stop:
            raise invalid_request(f"stop_sequences.{index}: expected a non-empty string, got {describe(stop)}")
    return tuple(stops)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"{name}: expected an integer in [{low}, {high}], got {describe(value)}")
    if not low <= value <= high:
        raise invalid_request(f"{name}: expected an integer in [{low}, {high}], got {describe(value)}")
    return value


def _number(value: Any, name: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise invalid_request(f"{name}: expected a number in [{low:g}, {high:g}], got {describe(value)}")
    return float(value)


__all__ = ["AnthropicApiError", "KNOWN_PARAMETERS", "MessagesRequest", "ThinkingSettings", "parse_messages_request"]
