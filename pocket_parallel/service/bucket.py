"""One per-minute limit as a token bucket refilled continuously, with a quantum, debt and refunds.

A limit of R per minute refills at R / 60 a second. Its bucket holds ``R × quantum / 60``:
with a quantum of 60 s, a whole minute's budget, so a burst of R passes at once (what this
package always did without a profile); with a quantum of 1 s, one second's share, as OpenAI
documents ("60,000 requests per minute may be enforced as 1,000 requests per second").

Admission follows three rules, the same on the server and in a client that paces itself:

- a request that fits in one quantum's share is admitted when the bucket holds what it needs;
- a larger request, still within the per-minute limit, is admitted once the bucket is full,
  and the bucket goes into debt: it takes that much longer to refill;
- a request above the per-minute limit itself is never admitted: waiting cannot help.

A quantum of 0 makes a bucket that holds nothing: each request waits until the ones before it
are paid off, which is even pacing with no burst at all (what a client should do when it
cannot know the server's quantum). A refund (output tokens reserved and not used) goes back
into the bucket, never beyond full.

Everything is in integer units so no float rounding ever decides an admission: times are
whole microseconds ("ticks"), and one request or token is 60,000,000 units, a minute of ticks,
so that a limit of R per minute refills exactly R units per tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TICKS_PER_SECOND = 1_000_000
#: Seconds in the "minute" of a per-minute limit.
MINUTE = 60.0
MINUTE_TICKS = round(MINUTE * TICKS_PER_SECOND)


def ticks(seconds: float) -> int:
    """Seconds as whole microseconds."""
    return round(seconds * TICKS_PER_SECOND)


@dataclass(frozen=True)
class LimitState:
    """One per-minute limit as a response header announces it.

    ``limit`` is the budget per minute, ``remaining`` what the bucket holds now (0 while it is
    in debt), and ``reset`` the seconds until the bucket is full again.
    """

    limit: int
    remaining: int
    reset: float


class Bucket:
    """A continuously refilled bucket for ``per_minute`` units a minute, holding ``quantum_ticks`` of refill.

    It starts full at the first time it is shown (:meth:`refill`). ``wait``, ``take`` and
    ``refund`` count whole units (requests or tokens); ``level`` may go below 0 (debt).
    """

    def __init__(self, per_minute: int, quantum_ticks: int = MINUTE_TICKS) -> None:
        self.per_minute = per_minute
        self.rate = per_minute  # units gained per tick
        self.capacity = per_minute * quantum_ticks
        self.level = self.capacity
        self.at = 0  # tick of the last refill
        self.started = False

    def refill(self, now: int) -> None:
        """Bring the level up to tick ``now``."""
        if not self.started:
            self.at, self.started = now, True
        elif now > self.at:
            self.level = min(self.capacity, self.level + self.rate * (now - self.at))
            self.at = now

    def wait(self, amount: int) -> float:
        """Ticks until ``amount`` may be taken (0: now; ``math.inf``: never, it exceeds the per-minute limit)."""
        if amount > self.per_minute:
            return math.inf
        needed = min(amount * MINUTE_TICKS, self.capacity)  # a request larger than the bucket waits until it is full
        return max(0, -(-(needed - self.level) // self.rate))

    def take(self, amount: int) -> None:
        """Spend ``amount`` (the level may go into debt)."""
        self.level -= amount * MINUTE_TICKS

    def refund(self, amount: int) -> None:
        """Give back ``amount`` that was taken and not used, never beyond full."""
        self.level = min(self.capacity, self.level + amount * MINUTE_TICKS)

    def state(self) -> LimitState:
        """The limit, what the bucket holds now and the seconds until it is full."""
        reset = -(-(self.capacity - self.level) // self.rate)
        return LimitState(self.per_minute, max(0, self.level) // MINUTE_TICKS, reset / TICKS_PER_SECOND)
