"""Exponential backoff with full jitter that honours a server's ``retry_after``.

PocketFlow's own retry loop waits a constant ``wait`` between attempts. When many items
are refused at once (a burst of 429s), a constant wait brings them all back at the same
moment, to be refused again together. :class:`Backoff` spreads them: after the n-th failed
attempt it waits a random time in ``[0, min(cap, base * factor ** (n - 1))]`` ("full
jitter"), and never less than the ``retry_after`` the server asked for.

The randomness is drawn from a hash of ``(seed, key, n)``, where ``key`` names the item,
so a run on the virtual clock prints the same numbers every time and an item's delays do
not depend on the order in which items happen to fail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ._validate import check_int, check_real

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

    Give it to :class:`~pocket_parallel.BoundedParallelBatchNode` as ``backoff=`` (with
    ``max_retries`` attempts in all), or call :meth:`delay` yourself.
    """

    base: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
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

        A uniform draw in ``[0, ceiling(failures)]``, raised to the error's ``retry_after``
        when the error has one (a :class:`~pocket_parallel.RateLimitError`), and rounded to
        the microsecond. ``math.inf`` means the server said waiting never helps.
        """
        jittered = round(self._uniform(key, failures) * self.ceiling(failures), 6)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool) and retry_after >= 0:
            return max(float(retry_after), jittered)  # retry_after may be math.inf
        return jittered

    def _uniform(self, key: Any, failures: int) -> float:
        digest = hashlib.blake2b(f"{self.seed}\x1f{key}\x1f{failures}".encode(), digest_size=8).digest()
        return (int.from_bytes(digest, "big") + 0.5) / 2**64


def check_backoff(value: Any) -> Backoff | None:
    """Return ``value`` if it is a :class:`Backoff` or None, else raise TypeError naming ``backoff``."""
    if value is None or isinstance(value, Backoff):
        return value
    raise TypeError(f"backoff must be a Backoff (e.g. Backoff(base=1.0, cap=60.0)) or None; got {value!r}")
