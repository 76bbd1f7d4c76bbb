"""Client-side limits for the course's nodes: pace requests and tokens, back off, read what a server announces.

- :class:`Backoff` (:mod:`.retry`): how long to wait before a retry, the server's ``retry-after`` first;
- :class:`RateLimiter` and :func:`busiest_window` (:mod:`.ratelimit`): requests per minute, evenly paced;
- :class:`TokenBudget` (:mod:`.tokens`): tokens per minute, with :func:`estimate_tokens` as a
  per-item estimate;
- :class:`AnnouncedLimits` (:mod:`.announced`): node settings from a response's rate-limit headers
  (OpenAI's ``x-ratelimit-*`` and Anthropic's ``anthropic-ratelimit-*``).

Server-side limits, the ones a provider enforces, are in :mod:`pocket_parallel.service`.
"""

from ..service.model import estimate_tokens
from .announced import AnnouncedLimits, PerMinute, parse_duration, parse_rfc3339
from .ratelimit import RateLimiter, Window, busiest_window
from .retry import Backoff, retry_after_of
from .tokens import TokenBudget

__all__ = [
    "AnnouncedLimits",
    "Backoff",
    "PerMinute",
    "RateLimiter",
    "TokenBudget",
    "Window",
    "busiest_window",
    "estimate_tokens",
    "parse_duration",
    "parse_rfc3339",
    "retry_after_of",
]
