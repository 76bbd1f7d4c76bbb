"""Client-side pacing of tokens per minute: spend no more than the provider's token budget.

Providers limit tokens per minute as well as requests, and count a request's tokens when it
arrives: its prompt plus the answer it may produce. :class:`TokenBudget` keeps the same kind
of bucket on the client side as OpenAI and Anthropic describe on theirs: it holds one
minute's worth of tokens, starts full, and refills continuously. Before each request the
client takes that request's estimated tokens from it, waiting when the bucket is short. As
long as the estimates are not below what the server counts, and nobody else spends from the
same budget, the server's bucket is never emptier than the client's, so no request is
refused for tokens.
"""

from __future__ import annotations

import asyncio
import weakref

from .._validate import check_int

_TICKS_PER_SECOND = 1_000_000
_MINUTE_TICKS = 60 * _TICKS_PER_SECOND


class _Bucket:
    """One loop's bucket, in integer units (a token is a minute's worth of ticks) so nothing rounds."""

    def __init__(self, per_minute: int, now: int) -> None:
        self.rate = per_minute
        self.capacity = per_minute * _MINUTE_TICKS
        self.level = self.capacity
        self.at = now
        self.turn = asyncio.Lock()  # first come, first served: a large request is not starved

    def refill(self, now: int) -> None:
        if now > self.at:
            self.level = min(self.capacity, self.level + self.rate * (now - self.at))
            self.at = now


class TokenBudget:
    """At most ``tokens_per_minute`` tokens spent, paced as the provider's bucket refills.

    Use it around each request, with the request's estimated tokens::

        budget = TokenBudget(40_000)
        await budget.acquire(estimate)     # waits until the bucket holds that many
        answer = await llm(prompt)

    or give it to :class:`~pocket_parallel.BoundedParallelBatchNode` as
    ``max_tokens_per_minute`` (with ``tokens_for``, the estimate per item). One budget can
    be shared by several nodes. It keeps a separate bucket per event loop, so it works across
    :func:`~pocket_parallel.run` calls.
    """

    def __init__(self, tokens_per_minute: int) -> None:
        self.tokens_per_minute = check_int("tokens_per_minute", tokens_per_minute, low=1, high=1_000_000_000_000)
        self._buckets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bucket] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"TokenBudget(tokens_per_minute={self.tokens_per_minute})"

    def _bucket(self) -> tuple[_Bucket, asyncio.AbstractEventLoop]:
        loop = asyncio.get_running_loop()
        bucket = self._buckets.get(loop)
        if bucket is None:
            bucket = self._buckets[loop] = _Bucket(self.tokens_per_minute, _ticks(loop.time()))
        return bucket, loop

    async def acquire(self, tokens: int) -> None:
        """Wait until ``tokens`` fit in the budget, then spend them."""
        tokens = check_int("tokens", tokens, low=0)
        if tokens > self.tokens_per_minute:
            raise ValueError(
                f"tokens must be at most tokens_per_minute ({self.tokens_per_minute}): a request of "
                f"{tokens} tokens could never be sent"
            )
        bucket, loop = self._bucket()
        cost = tokens * _MINUTE_TICKS
        async with bucket.turn:
            while True:
                bucket.refill(_ticks(loop.time()))
                if bucket.level >= cost:
                    bucket.level -= cost
                    return
                await asyncio.sleep(-(-(cost - bucket.level) // bucket.rate) / _TICKS_PER_SECOND)

    def available(self) -> int:
        """Whole tokens in the running loop's bucket now."""
        bucket, loop = self._bucket()
        bucket.refill(_ticks(loop.time()))
        return bucket.level // _MINUTE_TICKS


def _ticks(seconds: float) -> int:
    return round(seconds * _TICKS_PER_SECOND)
