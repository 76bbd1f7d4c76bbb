"""The rate-limit headers of both APIs, written from the state of the limits (:meth:`Quota.snapshot`).

Both families say, for each per-minute limit that is set, the limit, what remains (what its
bucket holds now) and when it is whole again (the time until the bucket is full):

- **OpenAI** (:func:`openai_rate_headers`): ``x-ratelimit-limit-requests``,
  ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` and the same three for
  ``tokens``; resets are durations such as ``"1.5s"`` or ``"6m0s"``;
- **Anthropic** (:func:`anthropic_rate_headers`): ``anthropic-ratelimit-requests-limit``,
  ``-remaining`` and ``-reset``, the same for ``input-tokens`` and ``output-tokens`` (and for
  ``tokens``, when a combined token budget is set); resets are RFC 3339 times.

A refusal adds :func:`retry_after_headers` (``retry-after`` in whole seconds, rounded up, and
``retry-after-ms``), or, for a request that can never fit, :data:`DO_NOT_RETRY`
(``x-should-retry: false``, which both official clients obey).

RFC 3339 times need a calendar. On the real clock they are the wall-clock time of the moment
(:func:`moment_of`); on the virtual clock, which starts at 0 s, they count from the fixed
:data:`VIRTUAL_EPOCH` (2025-01-01T00:00:00Z), so a run prints the same headers every time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from .._validate import check_real
from ..clock import is_virtual
from .bucket import LimitState

#: Virtual time 0 s as a calendar time, for RFC 3339 headers on the virtual clock.
VIRTUAL_EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
#: The header that tells the official clients never to retry (a request that can never fit).
DO_NOT_RETRY = {"x-should-retry": "false"}

_OPENAI_FAMILIES = (("requests_per_minute", "requests"), ("tokens_per_minute", "tokens"))
_ANTHROPIC_FAMILIES = (("requests_per_minute", "requests"), ("tokens_per_minute", "tokens"),
                       ("input_tokens_per_minute", "input-tokens"), ("output_tokens_per_minute", "output-tokens"))


def openai_rate_headers(states: Mapping[str, LimitState]) -> dict[str, str]:
    """OpenAI's six ``x-ratelimit-*`` headers, for the request and token limits among ``states``."""
    return _rate_headers(states, _OPENAI_FAMILIES, "x-ratelimit-{what}-{family}", duration_text)


def anthropic_rate_headers(states: Mapping[str, LimitState], now: datetime) -> dict[str, str]:
    """Anthropic's ``anthropic-ratelimit-*`` headers for the limits among ``states``, resets as RFC 3339 from ``now``."""
    return _rate_headers(states, _ANTHROPIC_FAMILIES, "anthropic-ratelimit-{family}-{what}",
                         lambda reset: rfc3339(now + timedelta(seconds=reset)))


def _rate_headers(states: Mapping[str, LimitState], families: tuple[tuple[str, str], ...], name: str,
                  reset_text: Callable[[float], str]) -> dict[str, str]:
    """``limit``, ``remaining`` and ``reset`` of each limit among ``states``, under its family's header ``name``."""
    headers: dict[str, str] = {}
    for limit, family in families:
        state = states.get(limit)
        if state is not None:
            headers[name.format(what="limit", family=family)] = str(state.limit)
            headers[name.format(what="remaining", family=family)] = str(state.remaining)
            headers[name.format(what="reset", family=family)] = reset_text(state.reset)
    return headers


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``retry-after`` (whole seconds, rounded up) and ``retry-after-ms`` for a wait of ``seconds`` (> 0)."""
    milliseconds = max(1, math.ceil(check_real("seconds", seconds, low=0.0, low_open=True) * 1000))
    return {"retry-after": str(math.ceil(milliseconds / 1000)), "retry-after-ms": str(milliseconds)}


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as RFC 3339 with milliseconds, rounded up: ``"2025-01-01T00:00:01.250Z"``."""
    if moment.tzinfo is None:
        raise ValueError(f"moment must carry a time zone (a naive time is ambiguous); got {moment!r}")
    utc = moment.astimezone(timezone.utc)
    if utc.microsecond % 1000:  # round up: a client that waits until the reset is never early
        utc += timedelta(microseconds=1000 - utc.microsecond % 1000)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def moment_of(loop_time: float, loop: asyncio.AbstractEventLoop | None = None) -> datetime:
    """The calendar time of ``loop_time`` on ``loop`` (default: the running loop).

    On the virtual clock: :data:`VIRTUAL_EPOCH` plus ``loop_time`` seconds. On the real clock:
    the wall-clock time now, moved by how far ``loop_time`` is from the loop's time now.
    """
    loop = loop or asyncio.get_running_loop()
    if is_virtual(loop):
        return VIRTUAL_EPOCH + timedelta(seconds=loop_time)
    return datetime.now(timezone.utc) + timedelta(seconds=loop_time - loop.time())


def duration_text(seconds: float) -> str:
    """A duration the way OpenAI's reset headers write it: ``"20ms"``, ``"1s"``, ``"1.5s"``, ``"6m0s"``."""
    seconds = check_real("seconds", seconds, low=0.0)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text
