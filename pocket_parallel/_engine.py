"""The one bounded-batch engine under the node, the flow and ``gather_outcomes``.

It runs a per-item coroutine over a batch with at most ``limit`` items in flight and settles
each item into an :class:`~pocket_parallel.outcomes.Outcomes` as it ends.

- **With a limit C**, it runs C workers that pull items lazily, in input order: an item
  starts the moment any slot frees, exactly as with a FIFO semaphore that every item waits
  on from the start, but only C tasks exist at any time. (One task per item, each waiting on
  a semaphore, makes scheduling cost grow with N: the cyclic garbage collector walks every
  live task.)
- **With no limit**, every item starts at once, each in its own task, as PocketFlow does.

An item may lend its slot while it sleeps (a backoff between attempts, see :class:`Slot`):
another item starts meanwhile, and the sleeper gets the next free slot before any new item.

Guarantees, whatever happens: results in input order; every item ends ``ok``, ``failed`` or
``cancelled`` (never left ``pending``); an error (unless the caller keeps going), a
cancellation, a kernel interrupt or the batch deadline stops every item in flight, and no
task is left behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar

from .outcomes import DeadlineExceeded, Failure, Outcomes

T = TypeVar("T")
R = TypeVar("R")


class ItemFailed(Exception):
    """Raised by a per-item coroutine to hand the engine its item's :class:`Failure` record."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


class Recorder(Protocol):
    """Told of every item that ends, the moment it ends (a journal, say)."""

    def succeeded(self, index: int, value: Any) -> None:
        """Item ``index`` ended with ``value``."""

    def failed(self, index: int, failure: Failure) -> None:
        """Item ``index`` failed for good."""


class Slot:
    """The concurrency slot of one running item.

    ``async with slot.lent():`` gives the slot up for the block's duration (a backoff
    sleep): another item may start meanwhile. On leaving the block the item waits for a
    free slot again, ahead of any item that has not started yet.
    """

    __slots__ = ("_run",)

    def __init__(self, run: _Run[Any, Any]) -> None:
        self._run = run

    @property
    def deadline_passed(self) -> bool:
        """Whether the batch's deadline has passed (items in flight are then being stopped)."""
        return self._run.expired

    @asynccontextmanager
    async def lent(self) -> Any:
        """Give the slot up while the block runs, and take one back afterwards."""
        run = self._run
        if run.limit is None:
            yield
            return
        run.give_back_slot()
        try:
            yield
        finally:
            await run.take_slot_back()


class _Run(Generic[T, R]):
    """One batch run: its workers, its items, and how each ended."""

    def __init__(
        self,
        items: Sequence[T],
        process: Callable[[int, T, Slot], Awaitable[R]],
        outcomes: Outcomes,
        limit: int | None,
        keep_going: bool,
        answered: Mapping[int, R],
        recorder: Recorder | None,
    ) -> None:
        self.items, self.process, self.outcomes = items, process, outcomes
        self.limit, self.keep_going, self.answered, self.recorder = limit, keep_going, answered, recorder
        self.results: list[Any] = [None] * len(items)
        self.next_index = 0
        self.stopping = False
        self.expired = False  # the batch deadline passed
        self.errors: list[BaseException] = []  # failures that stop the batch, in the order they happened
        self.tasks: set[asyncio.Task[None]] = set()
        self.holding = 0  # workers holding a slot (with a limit: never more than it)
        self.returning: deque[asyncio.Future[None]] = deque()  # lenders waiting to get a slot back
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.slot = Slot(self)

    # -- handing out items ----------------------------------------------------------------------

    def take_item(self) -> int | None:
        """The index of the next item to start, or None when none is left (or the batch stops)."""
        while not self.stopping and self.next_index < len(self.items):
            index = self.next_index
            self.next_index += 1
            if index in self.answered:  # done in an earlier run: settle it without a call
                value = self.answered[index]
                self.outcomes._record(index, "ok", value)
                self.results[index] = value
                continue
            return index
        return None

    def start_worker(self) -> None:
        self.holding += 1
        task = asyncio.ensure_future(self.work())
        self.tasks.add(task)
        task.add_done_callback(self.worker_ended)

    def worker_ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a bug in the engine itself
            self.stop(task.exception())  # type: ignore[arg-type]
        if not self.tasks and not self.finished.done():
            self.finished.set_result(None)

    async def work(self) -> None:
        """A worker: run items one after another until none is left, then give the slot up."""
        while True:
            index = self.take_item()
            if index is None:
                self.holding -= 1
                self.hand_slot_on()
                return
            await self.run_item(index)
            if self.returning and self.limit is not None:
                # A lender is waiting for a slot: hand it this one, and retire.
                self.returning.popleft().set_result(None)
                return

    async def run_item(self, index: int) -> None:
        item = self.items[index]
        try:
            value = await self.process(index, item, self.slot)
        except ItemFailed as failed:
            self.fail(index, failed.failure)
        except asyncio.CancelledError:
            if self.expired:  # stopped by the deadline: an explicit failure (it had started: one attempt at least)
                self.fail(index, Failure(item, DeadlineExceeded(), 1))
                raise
            self.outcomes._record(index, "cancelled")
            raise
        except Exception as error:
            self.fail(index, Failure(item, error, 1))
        except BaseException:
            self.outcomes._record(index, "cancelled")
            raise
        else:
            self.outcomes._record(index, "ok", value)
            self.results[index] = value
            if self.recorder is not None:
                self.recorder.succeeded(index, value)

    def fail(self, index: int, failure: Failure) -> None:
        self.outcomes._record(index, "failed", failure)
        self.results[index] = failure
        if self.recorder is not None and not isinstance(failure.error, DeadlineExceeded):
            self.recorder.failed(index, failure)
        if not self.keep_going and not self.expired:
            self.stop(failure.error)

    def stop(self, error: BaseException) -> None:
        """Stop the batch because of ``error``: no new item starts, every item in flight is cancelled."""
        self.errors.append(error)
        self.cancel_all()

    def cancel_all(self) -> None:
        self.stopping = True
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        for waiter in self.returning:
            waiter.cancel()

    # -- lending slots (with a limit only) --------------------------------------------------------

    def give_back_slot(self) -> None:
        self.holding -= 1
        self.hand_slot_on()

    def hand_slot_on(self) -> None:
        """A slot is free: a waiting lender gets it first, else a new worker starts on the next item."""
        assert self.limit is not None or not self.returning
        if self.returning:
            self.holding += 1
            self.returning.popleft().set_result(None)
        elif (
            self.limit is not None
            and not self.stopping
            and self.holding < self.limit
            and self.next_index < len(self.items)
        ):
            self.start_worker()

    async def take_slot_back(self) -> None:
        assert self.limit is not None
        if self.holding < self.limit and not self.returning:
            self.holding += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.returning.append(waiter)
        await waiter  # hand_slot_on() counted this worker as holding when it handed the slot over

    # -- the run as a whole --------------------------------------------------------------------

    async def run(self, deadline: float | None) -> list[Any]:
        loop = asyncio.get_running_loop()
        timer = loop.call_at(deadline, self.expire) if deadline is not None else None
        first = len(self.items) if self.limit is None else min(self.limit, len(self.items))
        try:
            for _ in range(first):
                if self.next_index >= len(self.items):
                    break
                self.start_worker()
            if self.tasks:
                await asyncio.shield(self.finished)
        except BaseException:  # the caller was cancelled or interrupted: stop and wait for every item
            self.cancel_all()
            await self.wait_for_workers()
            self.settle_unstarted("cancelled")
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if self.expired:
            self.settle_unstarted("deadline")
            if not self.keep_going:
                raise DeadlineExceeded(self.outcomes.summary())
        elif self.errors:
            self.settle_unstarted("cancelled")
            raise self.errors[0]
        return self.results

    def expire(self) -> None:
        """The batch deadline passed: items in flight or not started become failures."""
        if not self.finished.done():
            self.expired = True
            self.cancel_all()

    async def wait_for_workers(self) -> None:
        while self.tasks:
            await asyncio.wait(list(self.tasks))

    def settle_unstarted(self, how: str) -> None:
        for index in range(self.next_index, len(self.items)):
            if how == "deadline":
                self.fail(index, Failure(self.items[index], DeadlineExceeded(), 0))
            else:
                self.outcomes._record(index, "cancelled")
        self.next_index = len(self.items)


async def run_batch(
    items: Sequence[T],
    process: Callable[[int, T, Slot], Awaitable[R]],
    outcomes: Outcomes,
    *,
    limit: int | None,
    keep_going: bool,
    deadline: float | None = None,
    answered: Mapping[int, R] | None = None,
    recorder: Recorder | None = None,
) -> list[R | Failure]:
    """Run ``process(index, item, slot)`` for every item, at most ``limit`` at once; results in input order.

    ``process`` returns the item's result, or raises :class:`ItemFailed` (or any exception,
    taken as one failed attempt). With ``keep_going`` a failed item's :class:`Failure` takes
    its place in the results and the batch goes on; without it the first failure stops the
    batch and its error is raised. ``deadline`` (a time on the running loop's clock) ends the
    batch: items not finished by then become failures with :class:`DeadlineExceeded`, which
    is raised unless ``keep_going``. ``answered`` maps indices already done (by an earlier
    run) to their results; those items are settled without running. ``recorder`` hears of
    each item that ends. ``outcomes`` is filled in as items end.
    """
    return await _Run(items, process, outcomes, limit, keep_going, answered or {}, recorder).run(deadline)
