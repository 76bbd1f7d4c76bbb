"""The contenders: one workload, N waits of L seconds with at most C in flight, written each way.

Every async contender waits with ``asyncio.sleep(latency)`` (so the comparison measures the
scheduling machinery, nothing else), except :func:`bounded_node_llm`, which sends the same
items to a :class:`~pocket_parallel.SimulatedLLM` with jitter 0 to show what the simulated
service's own bookkeeping (call trace, counters, answers) adds. The thread pool waits with a
blocking ``time.sleep``. Each contender returns its results in input order, so a run that
lost or reordered an item is caught (see :func:`check_results`).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import aiometer
from pocketflow import AsyncBatchNode, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode

from pocket_parallel import BoundedParallelBatchFlow, BoundedParallelBatchNode, SimulatedLLM, Workload
from pocket_parallel.experiment import AskEach

THREAD_CAP = 1_000
"""Most worker threads the thread pool gets when C is unlimited (one per item would mean 100,000 threads)."""


# -- the floor: what anyone would write by hand -----------------------------------------------


async def gather_floor(n: int, limit: int | None, latency: float) -> list[int]:
    """Plain ``asyncio.gather`` over one coroutine per item, behind a ``Semaphore(limit)`` if limited."""
    if limit is None:

        async def one(item: int) -> int:
            await asyncio.sleep(latency)
            return item

    else:
        gate = asyncio.Semaphore(limit)

        async def one(item: int) -> int:
            async with gate:
                await asyncio.sleep(latency)
                return item

    return await asyncio.gather(*(one(i) for i in range(n)))


async def gather_floor_gc_paused(n: int, limit: int | None, latency: float) -> list[int]:
    """:func:`gather_floor` with Python's cyclic garbage collector paused: how much of its cost is GC."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return await gather_floor(n, limit, latency)
    finally:
        if was_enabled:
            gc.enable()


# -- PocketFlow nodes and flows ----------------------------------------------------------------


class _SleepEach:
    """Batch-node steps: items from ``shared["items"]``, each waits ``latency``, results to ``shared["results"]``."""

    latency: float

    async def prep_async(self, shared: dict[str, Any]) -> list[int]:
        return shared["items"]

    async def exec_async(self, item: int) -> int:
        await asyncio.sleep(self.latency)
        return item

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: list[int]) -> str:
        shared["results"] = exec_res
        return "default"


class SleepBoundedNode(_SleepEach, BoundedParallelBatchNode):
    """Our bounded node over the sleep workload."""

    def __init__(self, latency: float, max_concurrency: int | None) -> None:
        super().__init__(max_concurrency=max_concurrency)
        self.latency = latency


class SleepParallelNode(_SleepEach, AsyncParallelBatchNode):
    """PocketFlow's own (unbounded) parallel node over the sleep workload."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency


class SleepSequentialNode(_SleepEach, AsyncBatchNode):
    """PocketFlow's sequential batch node over the sleep workload."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency


class SleepOne(AsyncNode):
    """The single node of each sub-flow: waits ``latency`` for the item named in its params."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency

    async def prep_async(self, shared: dict[str, Any]) -> int:
        return self.params["item"]

    async def exec_async(self, item: int) -> int:
        await asyncio.sleep(self.latency)
        return item

    async def post_async(self, shared: dict[str, Any], item: int, result: int) -> None:
        shared["results"][item] = result  # a per-item slot: sub-flows share `shared`


class _ItemsAsParams:
    async def prep_async(self, shared: dict[str, Any]) -> list[dict[str, int]]:
        return [{"item": i} for i in shared["items"]]


class SleepBoundedFlow(_ItemsAsParams, BoundedParallelBatchFlow):
    """Our bounded flow: one :class:`SleepOne` sub-flow per item."""


class SleepParallelFlow(_ItemsAsParams, AsyncParallelBatchFlow):
    """PocketFlow's own (unbounded) parallel flow: one :class:`SleepOne` sub-flow per item."""


def _no_limit_only(name: str, limit: int | None) -> None:
    if limit is not None:
        raise ValueError(f"{name} has no concurrency limit: run it with limit=None; got {limit!r}")


async def bounded_node(n: int, limit: int | None, latency: float) -> list[int]:
    """:class:`~pocket_parallel.BoundedParallelBatchNode` run directly (``run_async``)."""
    shared: dict[str, Any] = {"items": list(range(n))}
    await SleepBoundedNode(latency, limit).run_async(shared)
    return shared["results"]


async def bounded_node_in_flow(n: int, limit: int | None, latency: float) -> list[int]:
    """The same node as the start of an ``AsyncFlow`` (the path the chapter's version gets wrong)."""
    shared: dict[str, Any] = {"items": list(range(n))}
    await AsyncFlow(start=SleepBoundedNode(latency, limit)).run_async(shared)
    return shared["results"]


async def bounded_flow(n: int, limit: int | None, latency: float) -> list[int]:
    """:class:`~pocket_parallel.BoundedParallelBatchFlow`, one sub-flow per item."""
    shared: dict[str, Any] = {"items": list(range(n)), "results": [None] * n}
    await SleepBoundedFlow(start=SleepOne(latency), max_concurrency=limit).run_async(shared)
    return shared["results"]


async def bounded_node_llm(n: int, limit: int | None, latency: float) -> list[str]:
    """Our bounded node calling a ``SimulatedLLM(latency, jitter=0)`` instead of sleeping."""
    shared: dict[str, Any] = {"prompts": Workload(n).prompts()}
    await AskEach(SimulatedLLM(latency=latency), max_concurrency=limit).run_async(shared)
    return shared["answers"]


async def pocketflow_parallel_node(n: int, limit: int | None, latency: float) -> list[int]:
    """PocketFlow's ``AsyncParallelBatchNode``: no limit at all."""
    _no_limit_only("AsyncParallelBatchNode", limit)
    shared: dict[str, Any] = {"items": list(range(n))}
    await SleepParallelNode(latency).run_async(shared)
    return shared["results"]


async def pocketflow_parallel_flow(n: int, limit: int | None, latency: float) -> list[int]:
    """PocketFlow's ``AsyncParallelBatchFlow``: no limit; the reference for our flow's cost."""
    _no_limit_only("AsyncParallelBatchFlow", limit)
    shared: dict[str, Any] = {"items": list(range(n)), "results": [None] * n}
    await SleepParallelFlow(start=SleepOne(latency)).run_async(shared)
    return shared["results"]


async def pocketflow_sequential_node(n: int, limit: int | None, latency: float) -> list[int]:
    """PocketFlow's ``AsyncBatchNode``: one item at a time, so ``limit`` must be 1."""
    if limit != 1:
        raise ValueError(f"AsyncBatchNode runs one item at a time: run it with limit=1; got {limit!r}")
    shared: dict[str, Any] = {"items": list(range(n))}
    await SleepSequentialNode(latency).run_async(shared)
    return shared["results"]


async def _wait_and_return(item: int, latency: float) -> int:
    await asyncio.sleep(latency)
    return item


async def aiometer_run_all(n: int, limit: int | None, latency: float) -> list[int]:
    """``aiometer.run_all(..., max_at_once=limit)`` (anyio task group under the hood)."""
    jobs = [functools.partial(_wait_and_return, i, latency) for i in range(n)]
    return await aiometer.run_all(jobs, max_at_once=limit)


def _blocking_wait(item: int, latency: float) -> int:
    time.sleep(latency)
    return item


def thread_workers(n: int, limit: int | None) -> int:
    """Threads the pool gets: ``limit``, or with no limit one per item up to :data:`THREAD_CAP`."""
    return limit if limit is not None else max(1, min(n, THREAD_CAP))


def thread_pool(n: int, limit: int | None, latency: float) -> list[int]:
    """A ``ThreadPoolExecutor`` with :func:`thread_workers` threads over a blocking ``time.sleep``."""
    with ThreadPoolExecutor(max_workers=thread_workers(n, limit)) as pool:
        return list(pool.map(_blocking_wait, range(n), itertools.repeat(latency)))


# -- the registry -------------------------------------------------------------------------------

Scope = Literal["every", "parallel", "unlimited", "sequential"]


@dataclass(frozen=True)
class Contender:
    """One way to run the workload, and the concurrency limits it makes sense at.

    ``run(n, limit, latency)`` is a coroutine function, or a blocking function if
    ``blocking``; it returns the results in input order. ``scope`` says where it runs:
    ``"every"`` limit, ``"parallel"`` (C >= 2 or unlimited), ``"unlimited"`` only, or
    ``"sequential"`` (C = 1) only. ``ours`` marks pocket_parallel's own helpers;
    ``reference`` marks contenders that explain another's cost rather than compete.
    """

    key: str
    label: str
    run: Callable[..., Any]
    scope: Scope = "parallel"
    blocking: bool = False
    ours: bool = False
    reference: bool = False

    def accepts(self, limit: int | None) -> bool:
        """Whether this contender runs at concurrency limit ``limit`` (None: unlimited)."""
        if self.scope == "every":
            return True
        if self.scope == "unlimited":
            return limit is None
        if self.scope == "sequential":
            return limit == 1
        return limit != 1


FLOOR = "floor"

CONTENDERS: tuple[Contender, ...] = (
    Contender(FLOOR, "asyncio.gather + Semaphore (floor)", gather_floor, scope="every"),
    Contender("node", "BoundedParallelBatchNode", bounded_node, ours=True),
    Contender("node_in_flow", "BoundedParallelBatchNode in AsyncFlow", bounded_node_in_flow, ours=True),
    Contender("flow", "BoundedParallelBatchFlow", bounded_flow, ours=True),
    Contender("node_llm", "BoundedParallelBatchNode + SimulatedLLM", bounded_node_llm, ours=True, reference=True),
    Contender("pf_node", "PocketFlow AsyncParallelBatchNode", pocketflow_parallel_node, scope="unlimited"),
    Contender("pf_flow", "PocketFlow AsyncParallelBatchFlow", pocketflow_parallel_flow, scope="unlimited", reference=True),
    Contender("pf_sequential", "PocketFlow AsyncBatchNode", pocketflow_sequential_node, scope="sequential"),
    Contender("aiometer", "aiometer.run_all(max_at_once=C)", aiometer_run_all),
    Contender("threads", "ThreadPoolExecutor(C) + time.sleep", thread_pool, blocking=True),
    Contender("floor_gc_paused", "asyncio.gather, cyclic GC paused", gather_floor_gc_paused, scope="unlimited", reference=True),
)

BY_KEY: dict[str, Contender] = {c.key: c for c in CONTENDERS}


def get(key: str) -> Contender:
    """The contender named ``key``; ValueError listing the names otherwise."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise ValueError(f"contender must be one of {', '.join(BY_KEY)}; got {key!r}") from None


@functools.lru_cache(maxsize=8)
def _expected_answers(n: int) -> tuple[str, ...]:
    llm = SimulatedLLM()
    return tuple(llm.answer_for(prompt) for prompt in Workload(n).prompts())


def check_results(contender: Contender, n: int, results: Any) -> None:
    """Raise RuntimeError unless ``results`` holds every item's result, in input order."""
    expected = _expected_answers(n) if contender.key == "node_llm" else range(n)
    if len(results) != n or any(a != b for a, b in zip(results, expected)):
        raise RuntimeError(f"{contender.label} returned wrong or missing results for N = {n}")
