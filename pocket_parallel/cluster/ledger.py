"""The scheduler's book of one cluster-wide limit: leases of the in-flight cap and a per-minute bucket.

Pure bookkeeping, no Dask and no clock of its own: the scheduler plugin
(:mod:`.scheduler_plugin`) feeds it what the workers say and sends the messages it returns.

**Leases.** At most ``max_in_flight`` leases exist; each lets one call be in flight. A worker
says how many more it wants (its attempts waiting at the gate); the ledger grants from the
free leases at once, in blocks (one message may carry many). While every lease is out and a
worker still waits, each active worker's fair share is ``C / active workers``: a worker
holding more gets a *quota*, and hands leases back as its calls end until it is down to it.
So capacity moves to where the work is without any worker losing a call it already started.
A worker that leaves has its leases reclaimed at once (:meth:`LeaseLedger.forget_worker`).

**Per-minute budget.** A token bucket on the scheduler holds a minute's budget less what one
second refills, and refills continuously, as the providers' buckets do. Workers take tokens
in blocks into a local cache and must spend each within :data:`TOKEN_TTL` seconds of its
grant or hand it back. Spending late by at most a second is why the bucket holds a second's
refill less than the provider's: any spending the ledger allows, the provider's bucket
(full at the start, the same rate) allows too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

#: Seconds a worker may keep a granted per-minute token before it must spend it or hand it back.
TOKEN_TTL = 1.0

Message = tuple[str, dict[str, Any]]  # (worker address, what to send it)


@dataclass
class _WorkerBook:
    """What one worker holds and wants, as far as the scheduler knows."""

    held: int = 0
    wants: int = 0
    granted: int = 0  # leases ever granted to it: lets a late 'wants' be read correctly
    quota: int | None = None  # the most it may hold; None: no quota
    tokens_wanted: int = 0
    tokens_granted: int = 0
    changed: bool = False  # something to tell it


@dataclass
class LedgerCounts:
    """Counters of one ledger: how often it granted, how much, and the most leases out at once."""

    messages_in: int = 0
    grants: int = 0
    leases_granted: int = 0
    leases_returned: int = 0
    leases_reclaimed: int = 0
    tokens_granted: int = 0
    tokens_returned: int = 0
    peak_leases_out: int = 0
    workers_expired: int = 0
    quota_changes: int = 0


class LeaseLedger:
    """Leases of a cluster-wide cap and a cluster-wide per-minute token bucket, for one named limit.

    ``max_in_flight`` (an integer >= 1, or None) caps the calls in flight across every
    worker; ``max_per_minute`` (an integer >= 2, or None) the requests started in any minute;
    ``now`` is the scheduler's clock in seconds.
    """

    def __init__(self, max_in_flight: int | None, max_per_minute: int | None, now: float) -> None:
        self.max_in_flight = max_in_flight
        self.max_per_minute = max_per_minute
        self.books: dict[str, _WorkerBook] = {}
        self.counts = LedgerCounts()
        if max_per_minute is not None:
            self.rate = max_per_minute / 60.0
            self.capacity = max_per_minute - self.rate * TOKEN_TTL
            self.level = self.capacity
            self.refilled_at = now

    # -- what workers say -----------------------------------------------------------------------

    def update(
        self, worker: str, now: float, *, wants: int = 0, seen: int = 0, returned: int = 0,
        tokens_wanted: int = 0, tokens_seen: int = 0, tokens_returned: int = 0,
    ) -> list[Message]:
        """A worker's news: leases and tokens it wants (having seen ``seen`` / ``tokens_seen`` grants) and hands back.

        Returns the messages to send (grants and quotas), to this worker and to others.
        """
        book = self.books.setdefault(worker, _WorkerBook())
        self.counts.messages_in += 1
        returned = min(max(returned, 0), book.held)
        book.held -= returned
        self.counts.leases_returned += returned
        # Grants already on their way were not counted in `wants`: leave them out.
        book.wants = max(0, wants - (book.granted - seen))
        book.tokens_wanted = max(0, tokens_wanted - (book.tokens_granted - tokens_seen))
        if self.max_per_minute is not None and tokens_returned > 0:
            self._refill(now)
            self.level = min(self.capacity, self.level + tokens_returned)
            self.counts.tokens_returned += tokens_returned
        return self.distribute(now)

    def forget_worker(self, worker: str, now: float) -> list[Message]:
        """The worker left the cluster: its leases are free again at once."""
        book = self.books.pop(worker, None)
        if book is not None:
            self.counts.leases_reclaimed += book.held
        return self.distribute(now)

    # -- what the ledger decides ------------------------------------------------------------------

    @property
    def leases_out(self) -> int:
        """Leases held by workers now."""
        return sum(book.held for book in self.books.values())

    def holders(self) -> list[str]:
        """Workers holding leases now."""
        return [worker for worker, book in self.books.items() if book.held > 0]

    def distribute(self, now: float) -> list[Message]:
        """Grant free leases and tokens to the workers that want them; set quotas; the messages to send."""
        if self.max_in_flight is not None:
            self._grant_leases()
        if self.max_per_minute is not None:
            self._grant_tokens(now)
        messages: list[Message] = []
        for worker, book in self.books.items():
            if book.changed:
                book.changed = False
                messages.append((worker, {"leases": book.granted, "tokens": book.tokens_granted, "quota": book.quota}))
        return messages

    def _grant_leases(self) -> None:
        cap = self.max_in_flight
        assert cap is not None
        books = self.books
        free = cap - self.leases_out
        active = [book for book in books.values() if book.held > 0 or book.wants > 0]
        share = -(-cap // len(active)) if active else cap  # ceil: the shares cover every lease
        # First up to the fair share, then whatever is left to anyone still waiting.
        for limit in (share, cap):
            for book in active:
                if free <= 0:
                    break
                give = min(book.wants, free, limit - book.held)
                if give > 0:
                    self._give(book, give)
                    free -= give
        starved = any(book.wants > 0 and book.held < share for book in active)
        for book in books.values():
            quota = share if starved and book.held > share else None
            if quota != book.quota:
                book.quota = quota
                book.changed = True
                self.counts.quota_changes += 1
        self.counts.peak_leases_out = max(self.counts.peak_leases_out, self.leases_out)

    def _give(self, book: _WorkerBook, leases: int) -> None:
        book.held += leases
        book.wants -= leases
        book.granted += leases
        book.changed = True
        self.counts.grants += 1
        self.counts.leases_granted += leases

    def _grant_tokens(self, now: float) -> None:
        self._refill(now)
        wanting = [book for book in self.books.values() if book.tokens_wanted > 0]
        while wanting and self.level >= 1.0:
            share = max(1, int(self.level) // len(wanting))
            for book in list(wanting):
                give = min(book.tokens_wanted, share, int(self.level))
                if give <= 0:
                    break
                self.level -= give
                book.tokens_wanted -= give
                book.tokens_granted += give
                book.changed = True
                self.counts.tokens_granted += give
                if book.tokens_wanted == 0:
                    wanting.remove(book)

    def _refill(self, now: float) -> None:
        if now > self.refilled_at:
            self.level = min(self.capacity, self.level + self.rate * (now - self.refilled_at))
            self.refilled_at = now

    def next_token_at(self, now: float) -> float | None:
        """When a waiting worker can next be given a token (None: nobody waits for one)."""
        if self.max_per_minute is None or not any(book.tokens_wanted > 0 for book in self.books.values()):
            return None
        self._refill(now)
        return now + max(0.0, (1.0 - self.level) / self.rate)

    def snapshot(self) -> dict[str, Any]:
        """The ledger's state and counters, as plain data."""
        return {
            "max_in_flight": self.max_in_flight,
            "max_per_minute": self.max_per_minute,
            "leases_out": self.leases_out,
            "held": {worker: book.held for worker, book in self.books.items()},
            "tokens_available": math.floor(self.level) if self.max_per_minute is not None else None,
            **asdict(self.counts),
        }
