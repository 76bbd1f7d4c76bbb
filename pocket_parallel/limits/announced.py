"""Size a client from the limits a provider announces in its response headers: OpenAI's and Anthropic's.

Every response carries the limits in force, with what remains and when the budget is whole
again. Two header families say it:

- **OpenAI** (and the course's server): ``x-ratelimit-limit-requests`` and
  ``x-ratelimit-limit-tokens`` per minute, ``x-ratelimit-remaining-*``, and
  ``x-ratelimit-reset-*`` as a duration (``"1s"``, ``"6m0s"``);
- **Anthropic**: ``anthropic-ratelimit-requests-*``, ``-input-tokens-*`` and
  ``-output-tokens-*``, each with ``limit``, ``remaining`` and ``reset``, the last an RFC 3339
  time (``"2026-01-01T12:00:00Z"``). Input and output tokens are limited apart (ITPM, OTPM);
  the combined ``anthropic-ratelimit-tokens-*`` restates the tighter of the two and is not read.

Two rules turn them into client settings:

- **pace** requests and tokens evenly at the announced budgets (``max_per_minute``,
  ``max_tokens_per_minute``, and from Anthropic's headers ``max_input_tokens_per_minute``
  and ``max_output_tokens_per_minute``; :meth:`AnnouncedLimits.per_minute` gives every
  budget), with no initial burst: no header says how short a burst the server's bucket takes;
- **cap calls in flight** by Little's law: a client with C calls in flight, each taking L
  seconds, sends C / L requests a second, so C ≈ requests per minute × L / 60 uses the
  budget fully without running into it.

Each header value is at most :data:`MAX_HEADER_VALUE` characters and read once, so reading
is linear however hostile the headers; a malformed one is a ValueError naming it.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .._validate import check_real
from .tokens import TokenBudget

#: The longest value a rate-limit header may have (characters); a longer one is refused unread.
MAX_HEADER_VALUE = 64
_OPENAI = "x-ratelimit-{}-{}"  # what (limit, remaining, reset), then kind (requests, tokens)
_ANTHROPIC = "anthropic-ratelimit-{}-{}"  # kind (requests, input-tokens, output-tokens), then what
_WHOLE = re.compile(r"[0-9]{1,20}")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")
T = TypeVar("T")
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)")


@dataclass(frozen=True)
class PerMinute:
    """The per-minute budgets announced, by what they count (None where none was announced)."""

    requests: int | None
    tokens: int | None
    input_tokens: int | None
    output_tokens: int | None


@dataclass(frozen=True)
class AnnouncedLimits:
    """The per-minute limits a response announced (None where a header was absent).

    ``tokens_per_minute`` is OpenAI's token budget (input plus ``max_tokens``);
    ``input_tokens_per_minute`` and ``output_tokens_per_minute`` are Anthropic's ITPM and
    OTPM. ``remaining_*`` is what could be spent now, and ``reset_*`` the seconds until the
    budget is whole again.
    """

    requests_per_minute: int | None
    tokens_per_minute: int | None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    remaining_input_tokens: int | None = None
    remaining_output_tokens: int | None = None
    reset_input_tokens: float | None = None
    reset_output_tokens: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: datetime.datetime | None = None) -> AnnouncedLimits:
        """Read OpenAI's ``x-ratelimit-*`` and Anthropic's ``anthropic-ratelimit-*`` headers (names case-insensitive).

        ``now`` (an aware datetime; default: the current UTC time) is what an Anthropic
        ``reset`` time is counted from: on the virtual clock, pass the server's idea of now.
        Where both families announce the request budget, OpenAI's header is read.
        """
        lower = {str(name).lower(): str(value) for name, value in headers.items()}
        if now is None:
            now = datetime.datetime.now(datetime.timezone.utc)
        elif now.tzinfo is None:
            raise ValueError("now must be an aware datetime, such as datetime.now(timezone.utc)")

        def whole(name: str) -> int | None:
            text = _value(lower, name)
            if text is None:
                return None
            if _WHOLE.fullmatch(text.strip()) is None:
                raise ValueError(f"header {name} must be a whole number; got {text!r}")
            return int(text)

        def duration(name: str) -> float | None:
            text = _value(lower, name)
            return None if text is None else _named(name, parse_duration, text)

        def until(name: str) -> float | None:
            text = _value(lower, name)
            return None if text is None else max(0.0, (_named(name, parse_rfc3339, text) - now).total_seconds())

        def family(kind: str) -> tuple[int | None, int | None, float | None]:
            return (whole(_ANTHROPIC.format(kind, "limit")), whole(_ANTHROPIC.format(kind, "remaining")),
                    until(_ANTHROPIC.format(kind, "reset")))

        requests = (whole(_OPENAI.format("limit", "requests")), whole(_OPENAI.format("remaining", "requests")),
                    duration(_OPENAI.format("reset", "requests")))
        if requests == (None, None, None):
            requests = family("requests")
        input_tokens, output_tokens = family("input-tokens"), family("output-tokens")
        return cls(
            requests_per_minute=requests[0],
            tokens_per_minute=whole(_OPENAI.format("limit", "tokens")),
            remaining_requests=requests[1],
            remaining_tokens=whole(_OPENAI.format("remaining", "tokens")),
            reset_requests=requests[2],
            reset_tokens=duration(_OPENAI.format("reset", "tokens")),
            input_tokens_per_minute=input_tokens[0],
            output_tokens_per_minute=output_tokens[0],
            remaining_input_tokens=input_tokens[1],
            remaining_output_tokens=output_tokens[1],
            reset_input_tokens=input_tokens[2],
            reset_output_tokens=output_tokens[2],
        )

    def per_minute(self) -> PerMinute:
        """Every announced budget per minute: requests, tokens (OpenAI's), input and output tokens (Anthropic's)."""
        return PerMinute(self.requests_per_minute, self.tokens_per_minute, self.input_tokens_per_minute,
                         self.output_tokens_per_minute)

    def concurrency_for(self, latency: float) -> int | None:
        """Calls in flight that use the request budget without exceeding it: ``floor(RPM × L / 60)``, at least 1."""
        latency = check_real("latency", latency, low=0.0, high=86_400.0, low_open=True)
        if self.requests_per_minute is None:
            return None
        return max(1, math.floor(self.requests_per_minute * latency / 60))

    def node_settings(
        self,
        latency: float,
        *,
        tokens_for: Callable[[Any], int] | None = None,
        input_tokens_for: Callable[[Any], int] | None = None,
        output_tokens_for: Callable[[Any], int] | int | None = None,
        output_tokens_used: Callable[[Any], int] | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments for :class:`~pocket_parallel.BoundedParallelBatchNode` from these limits.

        ``max_concurrency`` from Little's law, ``max_per_minute`` and ``max_tokens_per_minute``
        at the announced budgets, always; ``max_input_tokens_per_minute`` and
        ``max_output_tokens_per_minute`` too when Anthropic's headers announce them. Every
        budget is paced evenly, with no initial burst, since no header says over how short an
        interval the server enforces its limits: the token budget is a
        ``TokenBudget(tokens_per_minute, quantum=0)``, and the node paces requests and the
        input and output budgets evenly itself.

        Each token budget needs its estimate of an item's tokens: give ``tokens_for`` (input
        plus ``max_tokens``), ``input_tokens_for`` (every message) and ``output_tokens_for``
        (the ``max_tokens`` each request reserves: a function of the item, or one number) here,
        and each is passed on where its budget was announced (the node names any that is
        missing). ``output_tokens_used`` (a function from an answer to the output tokens it
        used) goes with the output budget, so the node hands back what each answer did not use,
        as the server does.
        """
        tokens = None if self.tokens_per_minute is None else TokenBudget(self.tokens_per_minute, quantum=0)
        settings: dict[str, Any] = {
            "max_concurrency": self.concurrency_for(latency),
            "max_per_minute": self.requests_per_minute,
            "max_tokens_per_minute": tokens,
        }
        budgets: tuple[tuple[str, int | TokenBudget | None, dict[str, Any]], ...] = (
            ("max_tokens_per_minute", tokens, {"tokens_for": tokens_for}),
            ("max_input_tokens_per_minute", self.input_tokens_per_minute, {"input_tokens_for": input_tokens_for}),
            ("max_output_tokens_per_minute", self.output_tokens_per_minute,
             {"output_tokens_for": output_tokens_for, "output_tokens_used": output_tokens_used}),
        )
        for setting, budget, names in budgets:
            if budget is not None:
                settings[setting] = budget
                settings.update((name, estimate) for name, estimate in names.items() if estimate is not None)
        return settings


def _value(lower: Mapping[str, str], name: str) -> str | None:
    text = lower.get(name)
    if text is not None and len(text) > MAX_HEADER_VALUE:
        raise ValueError(f"header {name} is {len(text)} characters long; a rate-limit header holds at most "
                         f"{MAX_HEADER_VALUE}")
    return text


def _named(name: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError as error:
        raise ValueError(f"header {name}: {error}") from None


def parse_duration(text: str) -> float:
    """Seconds in a reset header's duration (``"20ms"``, ``"1.5s"``, ``"6m0s"``, ``"1h2m3s"``)."""
    match = _DURATION.fullmatch(text.strip()) if len(text) <= MAX_HEADER_VALUE else None
    if not text.strip() or match is None:
        raise ValueError(f"text must be a duration such as '20ms', '1.5s' or '6m0s'; got {text[:MAX_HEADER_VALUE]!r}")
    hours, minutes, secs, millis = match.groups()
    return (int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0) + float(millis or 0) / 1000)


def parse_rfc3339(text: str) -> datetime.datetime:
    """The aware datetime an RFC 3339 time names (``"2026-01-01T12:00:00Z"``, ``"...T12:00:00.5+02:00"``)."""
    match = _RFC3339.fullmatch(text.strip()) if len(text) <= MAX_HEADER_VALUE else None
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        zone = datetime.timezone.utc
        if offset not in ("Z", "z"):
            sign = 1 if offset[0] == "+" else -1
            zone = datetime.timezone(sign * datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
        micro = int((fraction or "").ljust(6, "0")[:6])
        return datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone)
    except ValueError:
        raise ValueError(f"text must be an RFC 3339 time such as '2026-01-01T12:00:00Z'; "
                         f"got {text[:MAX_HEADER_VALUE]!r}") from None
