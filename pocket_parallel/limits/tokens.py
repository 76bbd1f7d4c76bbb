"""Client-side pacing of tokens per minute: spend no more than the provider's token budget.

Providers limit tokens per minute as well as requests, and count a request's tokens when it
arrives: its prompt plus the answer it may produce. :class:`TokenBudget` keeps the same kind
of bucket on the client side as the provider keeps on its own
(:mod:`pocket_parallel.service.bucket`, the very same rules): it refills continuously and,
before each request, the client takes that request's estimated tokens from it, waiting when
the bucket is short. As long as the estimates are not below what the server counts, and
nobody else spends from the same budget, the server's bucket is never emptier than the
client's, so no request is refused for tokens.

How much the client's bucket holds is its ``quantum`` (seconds of refill), as on the server:

- ``quantum=60`` (the default): a whole minute's budget, starting full, so the first minute
  may spend it at once. That matches a server that allows a minute's burst (the simulated
  service without a profile) and no other;
- ``quantum=0``: nothing held, so each request waits until the ones before it are paid for at
  the budget's rate: **even pacing**, never a burst. A client cannot learn a server's quantum
  (no header announces it), and even pacing is never refused by a bucket of any quantum. It is
  what the node's input and output token budgets use.

**Refunds.** An Anthropic-style output budget reserves ``max_tokens`` at admission and returns
the unused part when the answer ends; :meth:`TokenBudget.refund` does the same on the client,
never beyond what the bucket holds. A bucket that holds nothing can only use a refund to pay
off the debt of the requests before it, and loses whatever exceeds that debt. So a budget that
is handed refunds keeps a little: :data:`REFUND_QUANTUM` (one second of refill, the shorter
interval both OpenAI and Anthropic name as one they may enforce a per-minute limit over),
starting empty (``start_full=False``) so that its first requests are still evenly paced. The
server's bucket then never holds less than the client's, as long as its quantum is at least
that second.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Sequence

from .._validate import check_bool, check_int, check_real
from ..service.bucket import MINUTE, TICKS_PER_SECOND, Bucket, ticks

#: Seconds of refill a budget that is handed refunds keeps (see the module's docstring).
REFUND_QUANTUM = 1.0


class _LoopBucket(Bucket):
    """One loop's bucket, with a turn so that requests are served first come, first served."""

    def __init__(self, per_minute: int, quantum_ticks: int, full: bool) -> None:
        super().__init__(per_minute, quantum_ticks)
        if not full:
            self.level = 0
        self.turn = asyncio.Lock()  # first come, first served: a large request is not starved
        self.waking: asyncio.Future[None] | None = None  # the waiting request's alarm; a refund rings it early

    def ring(self) -> None:
        """Wake the request waiting on this bucket, if any."""
        if self.waking is not None:
            _ring(self.waking)


def _ring(waking: asyncio.Future[None]) -> None:
    if not waking.done():
        waking.set_result(None)


async def _sleep(loop: asyncio.AbstractEventLoop, buckets: Sequence[_LoopBucket], seconds: float) -> None:
    """Sleep ``seconds``, or until a refund comes to one of ``buckets`` (the request may then fit sooner)."""
    waking = loop.create_future()
    alarm = loop.call_later(seconds, _ring, waking)
    for bucket in buckets:
        bucket.waking = waking
    try:
        await waking
    finally:
        alarm.cancel()
        for bucket in buckets:
            bucket.waking = None


async def acquire_together(wanted: Sequence[tuple[TokenBudget, int]],
                           then: Callable[[], Awaitable[None]] | None = None) -> None:
    """Wait until every budget in ``wanted`` holds its tokens at the same moment, then spend them all at once.

    One request is counted by several budgets (input and output tokens, say) and sent at one
    moment: waiting on one budget after another would spend the first ones early, and the
    server would see two requests closer together than the client paced them. ``then`` (a
    request limiter's ``acquire``, say) is awaited once every budget holds enough; the tokens
    are spent after it, at the moment the request goes. Budgets are served first come, first
    served, and taken in one order, so requests sharing budgets never wait on each other in a
    circle.
    """
    entries = [(budget._loop_bucket(tokens), tokens) for budget, tokens in wanted]
    loop = asyncio.get_running_loop()
    buckets = sorted({id(bucket): bucket for bucket, _ in entries}.values(), key=id)
    async with contextlib.AsyncExitStack() as turns:
        for bucket in buckets:
            await turns.enter_async_context(bucket.turn)
        while True:
            now = ticks(loop.time())
            for bucket in buckets:
                bucket.refill(now)
            wait = max((bucket.wait(tokens) for bucket, tokens in entries), default=0)
            if wait > 0:
                await _sleep(loop, buckets, wait / TICKS_PER_SECOND)
            elif then is not None:  # the buckets only fill up meanwhile: they will still hold enough
                await then()
                then = None
            else:
                for bucket, tokens in entries:
                    bucket.take(tokens)
                return


class TokenBudget:
    """At most ``tokens_per_minute`` tokens spent, paced as the provider's bucket refills.

    Use it around each request, with the request's estimated tokens::

        budget = TokenBudget(40_000)
        await budget.acquire(estimate)     # waits until the bucket holds that many
        answer = await llm(prompt)

    or give it to :class:`~pocket_parallel.BoundedParallelBatchNode` as
    ``max_tokens_per_minute`` (with ``tokens_for``, the estimate per item). One budget can
    be shared by several nodes. It keeps a separate bucket per event loop, so it works across
    :func:`~pocket_parallel.run` calls. ``quantum`` is the seconds of refill its bucket holds,
    in ``[0, 60]``: 60 (the default) starts with a minute's budget, 0 paces evenly (see the
    module's docstring). ``start_full=False`` starts the bucket empty instead of full: no
    burst at the start, whatever the quantum.
    """

    def __init__(self, tokens_per_minute: int, quantum: float = MINUTE, *, start_full: bool = True) -> None:
        self.tokens_per_minute = check_int("tokens_per_minute", tokens_per_minute, low=1, high=1_000_000_000_000)
        self.quantum = check_real("quantum", quantum, low=0.0, high=MINUTE)
        self.start_full = check_bool("start_full", start_full)
        self._buckets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBucket] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        quantum = "" if self.quantum == MINUTE else f", quantum={self.quantum:g}"
        empty = "" if self.start_full else ", start_full=False"
        return f"TokenBudget(tokens_per_minute={self.tokens_per_minute}{quantum}{empty})"

    def _bucket(self) -> tuple[_LoopBucket, asyncio.AbstractEventLoop]:
        loop = asyncio.get_running_loop()
        bucket = self._buckets.get(loop)
        if bucket is None:
            bucket = self._buckets[loop] = _LoopBucket(self.tokens_per_minute, ticks(self.quantum), self.start_full)
        return bucket, loop

    def _loop_bucket(self, tokens: int) -> _LoopBucket:
        """The running loop's bucket, once ``tokens`` are checked to be a request it could ever admit."""
        tokens = check_int("tokens", tokens, low=0)
        if tokens > self.tokens_per_minute:
            raise ValueError(
                f"tokens must be at most tokens_per_minute ({self.tokens_per_minute}): a request of "
                f"{tokens} tokens could never be sent"
            )
        return self._bucket()[0]

    async def acquire(self, tokens: int) -> None:
        """Wait until ``tokens`` fit in the budget, then spend them."""
        await acquire_together([(self, tokens)])

    def refund(self, tokens: int) -> None:
        """Give back ``tokens`` that an earlier :meth:`acquire` took and the request did not use.

        Call it once the answer is in, with what was reserved minus what the answer used (an
        Anthropic-style output budget returns that much on the server when the answer ends).
        The bucket pays off its debt first and never fills beyond what its ``quantum`` holds,
        as the server's does; so a refund never lets the client spend faster than the server
        refills.
        """
        tokens = check_int("tokens", tokens, low=0, high=self.tokens_per_minute)
        bucket, loop = self._bucket()
        bucket.refill(ticks(loop.time()))
        bucket.refund(tokens)
        bucket.ring()

    def available(self) -> int:
        """Whole tokens in the running loop's bucket now (0 while it is paying off earlier requests)."""
        bucket, loop = self._bucket()
        bucket.refill(ticks(loop.time()))
        return bucket.state().remaining
