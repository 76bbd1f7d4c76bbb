"""Concurrency limits for PocketFlow's parallel node and flow that hold wherever they run.

The chapter's ``RateLimitedParallelNode`` overrides ``run_async``. An ``AsyncFlow`` never
calls ``run_async`` on its nodes: it calls ``_run_async``, which calls ``_exec``. So inside a
flow the override is skipped and every item starts at once. The classes here put the
semaphore around each item's ``_exec`` instead, the one step both paths go through, and keep
PocketFlow's own retry loop (``max_retries``, ``wait``, ``exec_fallback_async``) inside it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pocketflow import AsyncParallelBatchFlow, AsyncParallelBatchNode, BaseNode

from ._validate import check_int, check_max_concurrency, check_real

_FROM_CLASS: Any = object()  # "not given": use the value in the class body


def _limit_from(obj: Any, given: Any) -> int | None:
    """The validated limit: the argument if given, else the class attribute."""
    value = getattr(type(obj), "max_concurrency", None) if given is _FROM_CLASS else given
    return check_max_concurrency(value)


class BoundedParallelBatchNode(AsyncParallelBatchNode):
    """PocketFlow's ``AsyncParallelBatchNode`` with at most ``max_concurrency`` items in flight.

    Use it exactly like ``AsyncParallelBatchNode`` (``prep_async`` returns the items,
    ``exec_async`` handles one, ``post_async`` gets the results in input order), and give
    the limit at construction or in the class body::

        class Summarize(BoundedParallelBatchNode):
            max_concurrency = 5
            async def exec_async(self, text): ...

        Summarize(max_retries=3, wait=1)            # 5 from the class
        Summarize(max_concurrency=None)             # no limit

    The limit holds whether the node runs alone (``run_async``) or inside an ``AsyncFlow``.
    Each item keeps its slot through its retries and their ``wait``, so a retrying item
    never lets a new item overtake it. ``max_concurrency`` is an integer >= 1, or None
    for no limit.
    """

    max_concurrency: int | None = None

    def __init__(self, max_retries: int = 1, wait: float = 0, *, max_concurrency: Any = _FROM_CLASS) -> None:
        super().__init__(
            max_retries=check_int("max_retries", max_retries, low=1),
            wait=check_real("wait", wait, low=0.0),
        )
        self.max_concurrency = _limit_from(self, max_concurrency)

    async def _exec(self, items: Any) -> list[Any]:
        limit = check_max_concurrency(self.max_concurrency)  # it may have been reassigned
        if limit is None:
            return await super()._exec(items)
        gate = asyncio.Semaphore(limit)
        # AsyncNode._exec is PocketFlow's per-item step: exec_async with retries and fallback.
        run_item = super(AsyncParallelBatchNode, self)._exec

        async def bounded(item: Any) -> Any:
            async with gate:
                return await run_item(item)

        return list(await asyncio.gather(*(bounded(item) for item in items or [])))


class BoundedParallelBatchFlow(AsyncParallelBatchFlow):
    """PocketFlow's ``AsyncParallelBatchFlow`` running at most ``max_concurrency`` sub-flows at once.

    ``prep_async`` returns one parameter dict per sub-flow, as in PocketFlow. All sub-flows
    share the one ``shared`` dict: keep per-item data under per-item keys (taken from
    ``self.params``), never under a fixed key that another sub-flow can overwrite.
    """

    max_concurrency: int | None = None

    def __init__(self, start: BaseNode | None = None, *, max_concurrency: Any = _FROM_CLASS) -> None:
        super().__init__(start=start)
        self.max_concurrency = _limit_from(self, max_concurrency)

    async def _run_async(self, shared: Any) -> Any:
        limit = check_max_concurrency(self.max_concurrency)  # it may have been reassigned
        if limit is None:
            return await super()._run_async(shared)
        batch = await self.prep_async(shared) or []
        gate = asyncio.Semaphore(limit)

        async def bounded(params: dict[str, Any]) -> None:
            async with gate:
                await self._orch_async(shared, {**self.params, **params})

        await asyncio.gather(*(bounded(params) for params in batch))
        return await self.post_async(shared, batch, None)

