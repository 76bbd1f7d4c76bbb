"""The worker side of the cluster-wide limits: a local pool of leases and tokens, used as a node's ``shared_gate``.

Each attempt enters the pool (``async with pool:``) and holds it for its call, as
:class:`~pocket_parallel.BoundedParallelBatchNode` does with any ``shared_gate``. Entering takes a
lease (one call in flight) and, with a per-minute budget, a token. Both come from the
scheduler's ledger (:mod:`.ledger`) in blocks and are then reused locally: a lease freed by
one call goes straight to the next attempt waiting on this worker, with no message at all.
Only what the worker lacks or does not need travels:

- the attempts waiting here are reported as this worker's ``wants`` (one message per event
  loop turn, however many attempts started waiting in it);
- a lease left idle for :data:`LINGER` seconds, or one above the quota the scheduler set
  because another worker is starved, is handed back;
- a token not spent within :data:`~.ledger.TOKEN_TTL` seconds of its grant is handed back.

**Fencing.** The scheduler renews this worker's leases several times per lease timeout. If
no word came for half the lease timeout (this worker was frozen, or cut off), the pool lends
no lease to a new attempt until word comes again: by the time the scheduler gives up on this
worker and hands its leases to others, this worker has long stopped starting calls with them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .ledger import TOKEN_TTL

#: Seconds an idle lease stays on a worker before it goes back (the next attempt usually takes it first).
LINGER = 0.05


class LeasePool:
    """This worker's share of one cluster-wide limit, as an async context manager each call holds.

    ``send`` hands a message to the scheduler (the worker's batched stream); ``leases`` and
    ``tokens`` say whether the limit caps calls in flight and whether it has a per-minute
    budget; ``lease_timeout`` is the scheduler's (seconds). Use only on the worker's event loop.
    """

    def __init__(self, name: str, send: Callable[[dict[str, Any]], None], *, leases: bool, tokens: bool,
                 lease_timeout: float) -> None:
        self.name = name
        self._send = send
        self._uses_leases, self._uses_tokens = leases, tokens
        self._fence_after = lease_timeout / 2
        self._loop = asyncio.get_running_loop()
        self.held = 0  # leases granted to this worker
        self.in_use = 0  # leases lent to a call now
        self.quota: int | None = None
        self._seen = 0  # grants received, cumulative (the scheduler counts the same way)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tokens: deque[float] = deque()  # when each cached token must be spent by (or handed back)
        self._tokens_seen = 0
        self._token_waiters: deque[asyncio.Future[None]] = deque()
        self._returned = self._tokens_returned = 0
        self._sent_wants = self._sent_token_wants = 0
        self._sent_at_seen = self._sent_at_tokens_seen = 0
        self._flush_pending = False
        self._linger: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._heard_at = self._loop.time()
        self._fence_check: asyncio.TimerHandle | None = None
        self.closed = False

    def __repr__(self) -> str:
        return (f"<LeasePool {self.name}: {self.in_use} of {self.held} leases in use, {len(self._waiters)} waiting, "
                f"{len(self._tokens)} tokens>")

    # -- the gate ---------------------------------------------------------------------------------

    async def __aenter__(self) -> LeasePool:
        if self._uses_leases:
            await self._take_lease()
        if self._uses_tokens:
            try:
                await self._take_token()
            except BaseException:
                if self._uses_leases:
                    self._free_lease()
                raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._uses_leases:
            self._free_lease()

    # -- leases ---------------------------------------------------------------------------------

    def _fenced(self) -> bool:
        return self._loop.time() - self._heard_at > self._fence_after

    async def _take_lease(self) -> None:
        if not self._waiters and self.in_use < self.held and not self._fenced():
            self.in_use += 1
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        self._changed()
        try:
            await waiter  # whoever completes it has counted this call in in_use
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._free_lease()
            else:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._changed()
            raise

    def _free_lease(self) -> None:
        self.in_use -= 1
        if self.closed or (self.quota is not None and self.held > self.quota):
            self._hand_back(1)
            self._changed()
        else:
            self._lend_idle()

    def _hand_back(self, leases: int) -> None:
        """Stop holding ``leases`` leases; the next message to the scheduler returns them."""
        self.held -= leases
        self._returned += leases

    def _lend_idle(self) -> None:
        """Lend idle leases to waiting attempts, in order; keep the rest a moment, then give them back."""
        if self._fenced():
            self._check_fence_later()
            return
        while self._waiters and self.in_use < self.held:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)
        if self.in_use < self.held and self._linger is None:
            self._linger = self._loop.call_later(LINGER, self._give_back_idle)
        self._changed()

    def _give_back_idle(self) -> None:
        self._linger = None
        if self._waiters:
            return
        if self.held > self.in_use:
            self._hand_back(self.held - self.in_use)
            self._changed()

    def _check_fence_later(self) -> None:
        if self._fence_check is None:
            def check() -> None:
                self._fence_check = None
                self._lend_idle()
            self._fence_check = self._loop.call_later(self._fence_after / 4, check)

    # -- tokens ---------------------------------------------------------------------------------

    async def _take_token(self) -> None:
        self._drop_stale_tokens()
        if not self._token_waiters and self._tokens:
            self._tokens.popleft()
            return
        waiter = self._loop.create_future()
        self._token_waiters.append(waiter)
        self._changed()
        try:
            await waiter  # whoever completes it took a token for this call
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._tokens_returned += 1
            elif waiter in self._token_waiters:
                self._token_waiters.remove(waiter)
            self._changed()
            raise

    def _hand_out_tokens(self) -> None:
        while self._token_waiters and self._tokens:
            waiter = self._token_waiters.popleft()
            if not waiter.done():
                self._tokens.popleft()
                waiter.set_result(None)
        self._drop_stale_tokens()

    def _drop_stale_tokens(self) -> None:
        """Hand back tokens near the end of their time to live; plan the next check."""
        now = self._loop.time()
        while self._tokens and self._tokens[0] <= now + 1e-6:  # a microsecond of slack: no re-check at one instant
            self._tokens.popleft()
            self._tokens_returned += 1
        if self._tokens_returned:
            self._changed()
        if self._tokens and self._expiry is None:
            def expire() -> None:
                self._expiry = None
                self._drop_stale_tokens()
            self._expiry = self._loop.call_at(self._tokens[0], expire)

    # -- talking to the scheduler -----------------------------------------------------------------

    def on_grant(self, leases: int, tokens: int, quota: int | None) -> None:
        """The scheduler's ``pp-cap-grant``: cumulative grants, and the quota (None: none); also a renewal."""
        self._heard_at = self._loop.time()
        new_leases, self._seen = leases - self._seen, max(self._seen, leases)
        new_tokens, self._tokens_seen = tokens - self._tokens_seen, max(self._tokens_seen, tokens)
        self.quota = quota
        if new_leases > 0:
            self.held += new_leases
        if new_tokens > 0:
            # Spent by 0.9 of their time to live: the rest is slack for the message that hands them back.
            self._tokens.extend([self._heard_at + TOKEN_TTL * 0.9] * new_tokens)
            self._hand_out_tokens()
        if self.closed:
            self._give_back_everything()
            return
        if quota is not None and self.held > quota:
            self._hand_back(min(self.held - quota, self.held - self.in_use))
        self._lend_idle()

    def settle(self) -> None:
        """A chunk ended here: if no attempt waits, hand back idle leases and cached tokens now."""
        if self._waiters or self._token_waiters:
            return
        if self.held > self.in_use:
            self._hand_back(self.held - self.in_use)
        self._tokens_returned += len(self._tokens)
        self._tokens.clear()
        self._changed()

    def close(self) -> None:
        """No more calls here: hand back every idle lease and token now, and the others as they end."""
        self.closed = True
        self._give_back_everything()

    def _give_back_everything(self) -> None:
        for waiter in (*self._waiters, *self._token_waiters):
            waiter.cancel()
        self._waiters.clear()
        self._token_waiters.clear()
        self._hand_back(self.held - self.in_use)
        self._tokens_returned += len(self._tokens)
        self._tokens.clear()
        for handle in (self._linger, self._expiry, self._fence_check):
            if handle is not None:
                handle.cancel()
        self._linger = self._expiry = self._fence_check = None
        self._changed()

    def _changed(self) -> None:
        """Something to tell the scheduler, maybe: say it once, at the end of this loop turn."""
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        wants = 0 if self.closed else sum(1 for waiter in self._waiters if not waiter.done())
        token_wants = 0 if self.closed else sum(1 for waiter in self._token_waiters if not waiter.done())
        # What the scheduler believes we still want: what we said, less what it granted since.
        believed = max(0, self._sent_wants - (self._seen - self._sent_at_seen))
        believed_tokens = max(0, self._sent_token_wants - (self._tokens_seen - self._sent_at_tokens_seen))
        # Say when it believes too little (we would starve) or that we want nothing more; a belief
        # a little too high costs only a lease that comes back after LINGER.
        news = (wants > believed or (wants == 0 and believed > 0)
                or token_wants > believed_tokens or (token_wants == 0 and believed_tokens > 0)
                or self._returned or self._tokens_returned)
        if not news:
            return
        self._send({
            "name": self.name, "wants": wants, "seen": self._seen, "returned": self._returned,
            "tokens_wanted": token_wants, "tokens_seen": self._tokens_seen, "tokens_returned": self._tokens_returned,
        })
        self._sent_wants, self._sent_token_wants = wants, token_wants
        self._sent_at_seen, self._sent_at_tokens_seen = self._seen, self._tokens_seen
        self._returned = self._tokens_returned = 0
