"""Size a client from the limits a provider announces in its ``x-ratelimit-*`` headers.

Every response from OpenAI (and from the course's server) carries the limits in force:
``x-ratelimit-limit-requests`` and ``x-ratelimit-limit-tokens`` per minute, with what
remains and when the budget is whole again. Two rules turn them into client settings:

- **pace** requests and tokens at the announced budgets (``max_per_minute`` and
  ``max_tokens_per_minute``);
- **cap calls in flight** by Little's law: a client with C calls in flight, each taking L
  seconds, sends C / L requests a second, so C ≈ requests per minute × L / 60 uses the
  budget fully without running into it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._validate import check_real


@dataclass(frozen=True)
class AnnouncedLimits:
    """The per-minute limits a response announced (None where a header was absent)."""

    requests_per_minute: int | None
    tokens_per_minute: int | None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> AnnouncedLimits:
        """Read the six ``x-ratelimit-*`` headers (any mapping; names are case-insensitive)."""
        lower = {str(name).lower(): str(value) for name, value in headers.items()}

        def whole(name: str) -> int | None:
            text = lower.get(name)
            if text is None:
                return None
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"header {name} must be a whole number; got {text!r}") from None

        def seconds(name: str) -> float | None:
            text = lower.get(name)
            return None if text is None else parse_duration(text)

        return cls(
            requests_per_minute=whole("x-ratelimit-limit-requests"),
            tokens_per_minute=whole("x-ratelimit-limit-tokens"),
            remaining_requests=whole("x-ratelimit-remaining-requests"),
            remaining_tokens=whole("x-ratelimit-remaining-tokens"),
            reset_requests=seconds("x-ratelimit-reset-requests"),
            reset_tokens=seconds("x-ratelimit-reset-tokens"),
        )

    def concurrency_for(self, latency: float) -> int | None:
        """Calls in flight that use the request budget without exceeding it: ``floor(RPM × L / 60)``, at least 1."""
        latency = check_real("latency", latency, low=0.0, high=86_400.0, low_open=True)
        if self.requests_per_minute is None:
            return None
        return max(1, math.floor(self.requests_per_minute * latency / 60))

    def node_settings(self, latency: float) -> dict[str, Any]:
        """Keyword arguments for :class:`~pocket_parallel.BoundedParallelBatchNode` from these limits.

        ``max_concurrency`` from Little's law, ``max_per_minute`` and ``max_tokens_per_minute``
        at the announced budgets (add ``tokens_for``, your estimate of each item's tokens,
        when there is a token budget).
        """
        return {
            "max_concurrency": self.concurrency_for(latency),
            "max_per_minute": self.requests_per_minute,
            "max_tokens_per_minute": self.tokens_per_minute,
        }


def parse_duration(text: str) -> float:
    """Seconds in a reset header's duration (``"20ms"``, ``"1.5s"``, ``"6m0s"``, ``"1h2m3s"``)."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:([\d.]+)s)?(?:([\d.]+)ms)?", text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"text must be a duration such as '20ms', '1.5s' or '6m0s'; got {text!r}")
    hours, minutes, secs, millis = match.groups()
    return (int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0) + float(millis or 0) / 1000)
