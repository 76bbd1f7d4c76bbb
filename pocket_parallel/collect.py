"""Nothing lost in plain asyncio code: :func:`gather_outcomes`, ``asyncio.gather`` that keeps every item.

Each item ends as a result or a :class:`~pocket_parallel.Failure` in an
:class:`~pocket_parallel.outcomes.Outcomes`, as it does under the course's nodes: the same engine runs both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._engine import run_batch
from ._validate import check_iterable, check_limit
from .outcomes import Outcomes


async def gather_outcomes(
    function: Callable[[Any], Awaitable[Any]],
    items: Iterable[Any],
    *,
    max_concurrency: int | None = None,
) -> Outcomes:
    """Call ``await function(item)`` for every item concurrently; keep every result and every failure.

    Returns an :class:`Outcomes` in which each item is either ``"ok"`` with its result or
    ``"failed"`` with a :class:`Failure` (one attempt each: retry inside ``function`` if you
    want retries). One item failing never stops or hides the others, unlike
    ``asyncio.gather``'s default; unlike ``return_exceptions=True`` the failures are
    records that name their item, apart from the results. At most ``max_concurrency``
    calls run at once (``None``: no limit). Cancelling the caller cancels every call.
    """
    if not callable(function):
        raise TypeError(f"function must be an async callable such as llm; got {type(function).__name__}")
    outcomes = Outcomes(check_iterable("items", items, "items"))
    limit = check_limit("max_concurrency", max_concurrency)

    async def one(index: int, item: Any, slot: Any) -> Any:
        return await function(item)

    await run_batch(outcomes.items, one, outcomes, limit=limit, keep_going=True)
    return outcomes
