"""Exponential backoff with full jitter, and the server's own ``retry_after`` when it gives one.

PocketFlow's own retry loop waits a constant ``wait`` between attempts. When many items
fail at once, a constant wait brings them all back at the same moment, to fail again
together. :class:`Backoff` spreads them: after the n-th failed attempt it waits a random
time in ``[0, min(cap, base * factor ** (n - 1))]`` ("full jitter").

When the server says how long to wait (a 429's ``retry-after``), it knows better than any
guess: :class:`Backoff` then waits that long, plus up to ``spread`` of it at random so that
the refused callers do not all come back in the same instant, as the official ``openai``
client does (it waits exactly the server's time). Taking the larger of the server's time
and an exponential guess instead would, after a few refusals, sleep for tens of seconds
while the server sits idle: measured on the course's throughput curve, that halved the
throughput past the knee.

The randomness is drawn from a hash of ``(seed, key, n)``, where ``key`` names the item,
so a run on the virtual clock prints the same numbers every time and an item's delays do
not depend on the order in which items happen to fail.
"""

from __future__ import annotations

import email.utils
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

from .._validate import check_int, check_real

_ONE_DAY = 86_400.0


@dataclass(frozen=True)
class Backoff:
    """How long to wait before retrying an item, after its ``failures``-th failed attempt.

    Parameters
    ----------
    base:
        Upper end of the first wait's range, in seconds (> 0, at most a day).
    cap:
        The range never grows beyond this many seconds (at least ``base``, at most a day).
    factor:
        How much the range grows with each failure, in ``[1, 10]``; 2 doubles it.
    seed:
        Any integer >= 0: the same seed gives the same waits.
    spread:
        When the server gives a ``retry_after``, wait that long plus up to this share of
        it at random, in ``[0, 1]``; 0 waits exactly the server's time.

    Give it to :class:`~pocket_parallel.BoundedParallelBatchNode` as ``backoff=`` (with
    ``max_retries`` attempts in all), or call :meth:`delay` yourself.
    """

    base: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    seed: int = 0
    spread: float = 0.1

    def __post_init__(self) -> None:
        check_real("spread", self.spread, low=0.0, high=1.0)
        check_real("base", self.base, low=0.0, high=_ONE_DAY, low_open=True)
        check_real("cap", self.cap, low=float(self.base), high=_ONE_DAY)
        check_real("factor", self.factor, low=1.0, high=10.0)
        check_int("seed", self.seed, low=0)

    def ceiling(self, failures: int) -> float:
        """The upper end of the wait's range after ``failures`` failed attempts (>= 1)."""
        failures = check_int("failures", failures, low=1)
        ceiling = self.base
        if self.factor > 1:
            for _ in range(failures - 1):  # grows step by step so no power can overflow
                ceiling *= self.factor
                if ceiling >= self.cap:
                    break
        return min(self.cap, ceiling)

    def delay(self, failures: int, error: BaseException | None = None, key: Any = 0) -> float:
        """Seconds to wait after the ``failures``-th failed attempt of item ``key``.

        When the error carries the server's wait (see :func:`retry_after_of`): that wait
        plus a uniform draw in ``[0, spread × wait]``. Otherwise a uniform draw in
        ``[0, ceiling(failures)]``. Rounded to the microsecond; ``math.inf`` means the server
        said waiting never helps.
        """
        check_int("failures", failures, low=1)
        retry_after = retry_after_of(error)
        if retry_after is None:
            return round(self._uniform(key, failures) * self.ceiling(failures), 6)
        if math.isinf(retry_after):
            return retry_after
        return round(retry_after * (1 + self.spread * self._uniform(key, failures)), 6)

    def _uniform(self, key: Any, failures: int) -> float:
        digest = hashlib.blake2b(f"{self.seed}\x1f{key}\x1f{failures}".encode(), digest_size=8).digest()
        return (int.from_bytes(digest, "big") + 0.5) / 2**64


def retry_after_of(error: BaseException | None) -> float | None:
    """The seconds a server asked the caller to wait before retrying, if ``error`` says.

    Reads a :class:`~pocket_parallel.RateLimitError`'s ``retry_after``, or the headers of an
    HTTP error that carries its response (the ``openai`` client's ``APIStatusError``, an
    ``httpx.HTTPStatusError``): ``retry-after-ms`` first, then ``retry-after`` in seconds or
    as an HTTP date, as the official clients read them. None when the server said nothing.
    """
    if error is None:
        return None
    value = getattr(error, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    text = headers.get("retry-after")
    seconds = _number(text)
    if seconds is not None or text is None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None
