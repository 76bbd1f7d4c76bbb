"""What a successful call produces: its text, its thinking, their tokens, and why it stopped.

Tokens are counted by the course's rule of thumb (:func:`~pocket_parallel.service.model.estimate_tokens`:
one per 4 characters), so text and usage always agree:

- :func:`lengthen` extends an answer with filler words to a drawn length (a profile draws
  answers longer than the service's short ones);
- :func:`fit` makes a text exactly so many tokens long (a thinking block of seeded length);
- :func:`cut` keeps a text's first tokens (``max_tokens``);
- :func:`stop_at` ends a text where generation would meet one of its stop sequences;
- :func:`reply` puts them together as a :class:`Reply`: a thinking block first when extended
  thinking is on, then the answer, both charged as output tokens, as Anthropic charges them.
  The answer ends at a stop sequence (stop reason ``"stop_sequence"``), or is cut to
  ``max_tokens`` (``"max_tokens"``, OpenAI's ``finish_reason: "length"``), whichever
  generation reaches first; otherwise the stop reason is ``"end"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .._validate import check_int
from .model import CHARS_PER_TOKEN, estimate_tokens

StopReason = Literal["end", "max_tokens", "stop_sequence"]
#: What fills an answer out to its drawn length: plain words, so a streamed answer reads as text.
FILLER = ("and the answer goes on with more words about the same point so that it runs as long as a "
          "real answer would while saying nothing new")


@dataclass(frozen=True)
class Reply:
    """A successful call's output: its text and thinking, their tokens, and why it stopped.

    ``thinking`` is None without extended thinking. ``stop_reason`` is ``"end"`` (the
    answer is whole), ``"max_tokens"`` (it was cut to the request's ``max_tokens``) or
    ``"stop_sequence"`` (it ended before ``stop_sequence``, one of the request's).
    """

    text: str
    thinking: str | None
    text_tokens: int
    thinking_tokens: int
    stop_reason: StopReason
    stop_sequence: str | None = None

    @property
    def output_tokens(self) -> int:
        """Every output token: the thinking's and the text's (what the output budget is charged)."""
        return self.text_tokens + self.thinking_tokens

    @property
    def finish_reason(self) -> str:
        """The stop reason as OpenAI's Chat Completions API says it: ``"stop"`` or ``"length"``."""
        return "length" if self.stop_reason == "max_tokens" else "stop"


def cut(text: str, tokens: int) -> str:
    """The first ``tokens`` tokens of ``text`` (all of it when it is shorter)."""
    return text[: check_int("tokens", tokens, low=0) * CHARS_PER_TOKEN]


def stop_at(text: str, stop_sequences: Sequence[str]) -> tuple[str, str | None]:
    """``text`` as generation leaves it with ``stop_sequences``, and the sequence met (None if none).

    Text is generated from the start, so the sequence that is complete first ends it: the
    one whose first occurrence ends soonest (of two ending together, the longer). The text
    stops before it, as Anthropic's API leaves the stop sequence out. Each sequence is looked
    for once, and only where it could still end first.
    """
    end, met = len(text) + 1, None
    for stop in stop_sequences:
        at = text.find(stop, 0, end)  # only an occurrence that ends no later than the best so far
        if at != -1 and (at + len(stop) < end or met is None or len(stop) > len(met)):
            end, met = at + len(stop), stop
    return (text, None) if met is None else (text[: end - len(met)], met)


def lengthen(text: str, tokens: int) -> str:
    """``text`` extended with filler words to exactly ``tokens`` tokens; unchanged when already that long."""
    tokens = check_int("tokens", tokens, low=0)
    missing = tokens * CHARS_PER_TOKEN - len(text)
    if estimate_tokens(text) >= tokens or missing <= 0:
        return text
    pad = (" " + FILLER) * (missing // (len(FILLER) + 1) + 1)
    longer = text + pad[:missing]
    return longer[:-1] + "." if longer.endswith(" ") else longer  # same length, so the same tokens


def fit(text: str, tokens: int) -> str:
    """``text`` cut or extended to exactly ``tokens`` tokens."""
    return cut(text, tokens) if estimate_tokens(text) > tokens else lengthen(text, tokens)


def reply(answer: str, thinking: str | None = None, max_tokens: int | None = None,
          stop_sequences: Sequence[str] = ()) -> Reply:
    """The :class:`Reply` of ``answer`` after an optional ``thinking`` block, within ``max_tokens`` output tokens.

    Thinking comes first: when it alone reaches ``max_tokens`` it is cut there and no text
    follows; otherwise the text ends at the first of ``stop_sequences`` it meets, if that
    sequence is complete within the tokens left, or else is cut to what is left.
    """
    if max_tokens is not None:
        check_int("max_tokens", max_tokens, low=1)
    thought = estimate_tokens(thinking) if thinking is not None else 0
    room = None if max_tokens is None else max_tokens - min(thought, max_tokens)
    stop: StopReason = "end"
    if thinking is not None and max_tokens is not None and thought > max_tokens:
        thinking, thought, stop = cut(thinking, max_tokens), max_tokens, "max_tokens"
    before, met = stop_at(answer, stop_sequences)
    if met is not None and (room is None or len(before) + len(met) <= room * CHARS_PER_TOKEN):
        return Reply(before, thinking, estimate_tokens(before), thought, "stop_sequence", met)
    if room is not None and estimate_tokens(answer) > room:
        answer, stop = cut(answer, room), "max_tokens"
    return Reply(answer, thinking, estimate_tokens(answer), thought, stop)
