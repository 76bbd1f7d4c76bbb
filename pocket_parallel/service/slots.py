"""A self-hosted server's slots: K sequences decoded together, the rest waiting their turn, never refused.

vLLM batches at most ``max_num_seqs`` sequences, llama.cpp's server has ``--parallel`` slots
and Ollama ``OLLAMA_NUM_PARALLEL``: a request beyond them waits in a queue until a sequence
ends, first come, first served, where a hosted API would answer with a 429. :class:`Slots`
is that queue. Waiting costs the caller time, which is the knee of the throughput curve: past
K calls in flight, more calls only wait longer.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .._arguments import MAX_IN_FLIGHT
from .._validate import check_int


class Slots:
    """``count`` slots taken first come, first served: :meth:`take` waits for one, :meth:`give` frees it."""

    def __init__(self, count: int) -> None:
        self.count = check_int("slots", count, low=1, high=MAX_IN_FLIGHT)
        self.busy = 0
        self._queue: deque[asyncio.Future[int]] = deque()

    def __repr__(self) -> str:
        return f"Slots({self.count}: {self.busy} busy, {self.waiting} waiting)"

    @property
    def waiting(self) -> int:
        """Requests in the queue now."""
        return sum(not future.done() for future in self._queue)

    async def take(self) -> int:
        """Wait for a slot, in arrival order; returns how many sequences its batch holds, this one included."""
        if self.busy < self.count and not self._queue:
            self.busy += 1
            return self.busy
        turn: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a slot in the same instant it was cancelled
                self.give()
            raise

    def give(self) -> None:
        """Free a slot: the longest-waiting request takes it over, or it stays free."""
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():  # a request that gave up waiting left a cancelled future behind
                turn.set_result(self.busy)
                return
        self.busy -= 1

    def clear(self) -> None:
        """Forget every slot and waiting request (between experiments, with nothing in flight)."""
        self.busy = 0
        self._queue.clear()
