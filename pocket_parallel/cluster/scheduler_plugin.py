"""The scheduler side of the cluster-wide limits: a Dask ``SchedulerPlugin`` keeping one ledger per limit.

Built as ``distributed.Semaphore`` is (an extension that adds handlers to the scheduler),
but it grants leases in blocks and keeps no per-call round trip:

- the client opens and closes a limit with the RPC handlers ``pp_cap_open`` / ``pp_cap_close``
  and reads its counters with ``pp_cap_snapshot``;
- workers send what they want and hand back over their batched stream to the scheduler
  (``pp-cap-update``), and get grants, quotas and renewals over the scheduler's batched stream
  to them (``pp-cap-grant``): messages Dask already batches every few milliseconds, on
  connections it already has;
- when the scheduler removes a worker (its process died, its connection closed) the plugin's
  ``remove_worker`` hook frees its leases at once;
- a worker that stays connected but goes silent (no heartbeat for ``lease_timeout`` seconds:
  frozen, or its event loop blocked) has its leases reclaimed and is removed from the cluster,
  so it cannot come back and use them; its chunk is rescheduled as for a dead worker.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .ledger import LeaseLedger, Message

if TYPE_CHECKING:
    from distributed import Scheduler

PLUGIN_NAME = "pocket-parallel-capacity"
UPDATE_OP = "pp-cap-update"
GRANT_OP = "pp-cap-grant"


class _Limit:
    """One open limit on the scheduler: its ledger, its lease timeout, and its pending token wake-up."""

    def __init__(self, ledger: LeaseLedger, lease_timeout: float) -> None:
        self.ledger = ledger
        self.lease_timeout = lease_timeout
        self.wake: asyncio.TimerHandle | None = None


class CapacityPlugin(SchedulerPlugin):
    """Cluster-wide caps on calls in flight and per-minute budgets, kept on the scheduler.

    Registered once per cluster (``client.register_plugin(CapacityPlugin())``); every limit
    is then opened by name. See :mod:`pocket_parallel.cluster.ledger` for how leases and
    tokens are shared.
    """

    idempotent = True
    name = PLUGIN_NAME

    def __init__(self) -> None:
        self.limits: dict[str, _Limit] = {}
        self.scheduler: Scheduler | None = None
        self._checker: asyncio.Task[None] | None = None

    async def start(self, scheduler: Scheduler) -> None:
        """Add the handlers to the scheduler and start checking leases."""
        self.scheduler = scheduler
        scheduler.handlers.update({
            "pp_cap_open": self.open,
            "pp_cap_close": self.close_limit,
            "pp_cap_snapshot": self.snapshot,
        })
        scheduler.stream_handlers[UPDATE_OP] = self.update
        self._checker = asyncio.ensure_future(self._check_forever())

    async def close(self) -> None:
        """Stop checking leases (the scheduler is closing)."""
        if self._checker is not None:
            self._checker.cancel()
            await asyncio.gather(self._checker, return_exceptions=True)
            self._checker = None
        for limit in self.limits.values():
            if limit.wake is not None:
                limit.wake.cancel()
        self.limits.clear()

    # -- handlers --------------------------------------------------------------------------------

    def open(self, name: str, max_in_flight: int | None, max_per_minute: int | None, lease_timeout: float) -> None:
        """Open the limit ``name`` (the client checked the values)."""
        if name not in self.limits:
            self.limits[name] = _Limit(LeaseLedger(max_in_flight, max_per_minute, time.monotonic()), lease_timeout)

    def close_limit(self, name: str) -> dict[str, Any] | None:
        """Close the limit ``name``; returns its final counters."""
        limit = self.limits.pop(name, None)
        if limit is None:
            return None
        if limit.wake is not None:
            limit.wake.cancel()
        return limit.ledger.snapshot()

    def snapshot(self, name: str) -> dict[str, Any] | None:
        """The counters of the limit ``name`` (None if it is not open)."""
        limit = self.limits.get(name)
        return None if limit is None else limit.ledger.snapshot()

    def update(self, worker: str, name: str, **news: int) -> None:
        """A worker's ``pp-cap-update``: what it wants and hands back."""
        limit = self.limits.get(name)
        if limit is None:  # closed already: whatever it hands back is simply dropped
            return
        self._send(name, limit.ledger.update(worker, time.monotonic(), **news))
        self._wake_for_tokens(name, limit)

    def remove_worker(self, scheduler: Scheduler, worker: str, *, stimulus_id: str, **kwargs: Any) -> None:
        """A worker left: free its leases at once and hand them to whoever waits."""
        for name, limit in self.limits.items():
            self._send(name, limit.ledger.forget_worker(worker, time.monotonic()))

    # -- the clock's part -------------------------------------------------------------------------

    async def _check_forever(self) -> None:
        while True:
            interval = min((_check_interval(limit.lease_timeout) for limit in self.limits.values()), default=1.0)
            await asyncio.sleep(interval)
            await self._check()

    async def _check(self) -> None:
        """Renew the leases of workers still heard from; reclaim those of workers silent too long."""
        scheduler = self.scheduler
        assert scheduler is not None
        wall = time.time()  # the scheduler's heartbeat times are wall-clock
        silent: set[str] = set()
        for name, limit in list(self.limits.items()):
            ledger = limit.ledger
            allowed = limit.lease_timeout - _check_interval(limit.lease_timeout)
            renew: list[Message] = []
            for worker in ledger.holders():
                state = scheduler.workers.get(worker)
                if state is None or wall - state.last_seen > allowed:
                    silent.add(worker)
                    ledger.counts.workers_expired += 1
                    self._send(name, ledger.forget_worker(worker, time.monotonic()))
                else:
                    book = ledger.books[worker]
                    renew.append((worker, {"leases": book.granted, "tokens": book.tokens_granted, "quota": book.quota}))
            self._send(name, renew)
        for worker in silent:
            if worker in scheduler.workers:  # it may come back: it must not find its leases still good
                await scheduler.remove_worker(worker, stimulus_id=f"pocket-parallel-lease-expired-{wall}", close=True)

    def _wake_for_tokens(self, name: str, limit: _Limit) -> None:
        """If a worker waits for a token, hand it one the moment the bucket has one."""
        if limit.wake is not None:
            return
        when = limit.ledger.next_token_at(time.monotonic())
        if when is None:
            return

        def wake() -> None:
            limit.wake = None
            if self.limits.get(name) is limit:
                self._send(name, limit.ledger.distribute(time.monotonic()))
                self._wake_for_tokens(name, limit)

        limit.wake = asyncio.get_running_loop().call_later(max(0.0, when - time.monotonic()) + 0.001, wake)

    def _send(self, name: str, messages: list[Message]) -> None:
        scheduler = self.scheduler
        assert scheduler is not None
        for worker, message in messages:
            stream = scheduler.stream_comms.get(worker)
            if stream is not None:
                stream.send({"op": GRANT_OP, "name": name, **message})


def _check_interval(lease_timeout: float) -> float:
    """How often leases are checked and renewed: a quarter of the timeout, at most once a second."""
    return min(1.0, lease_timeout / 4)
