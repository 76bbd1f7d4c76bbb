"""One chunk of a batch, run on a worker: the node's batch step over the chunk's items, behind the chosen cap.

Each chunk is one async Dask task. On the worker it builds the node from the run's recipe,
puts the run's cap in front of every call (the node's ``shared_gate``), skips the items the journal
already holds, records every answer in the journal the moment it arrives, and sends back one
value per item: its answer, or a :class:`~pocket_parallel.Failure`. If the worker dies half-way,
Dask runs the chunk again elsewhere, and the journal keeps the answers already paid for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, ExitStack
from dataclasses import dataclass
from typing import Any, Literal

from .._format import error_type_name
from ..journal import Journal
from ..nodes import BoundedParallelBatchNode
from ..outcomes import Failure

#: How the calls of a run are capped across the cluster:
#:
#: - ``"cluster"``: one cap of C for the whole cluster, leases moved between workers (the design);
#: - ``"per_worker"``: each worker process caps itself at C (the mistake: W × C in flight);
#: - ``"static_split"``: each worker caps itself at C // W (holds the cap, never rebalances);
#: - ``"dask_semaphore"``: one ``distributed.Semaphore(C)`` acquired and released around every call;
#: - ``"none"``: no cap beyond the node's own ``max_concurrency`` on each worker.
CapMode = Literal["cluster", "per_worker", "static_split", "dask_semaphore", "none"]
CAP_MODES: tuple[CapMode, ...] = ("cluster", "per_worker", "static_split", "dask_semaphore", "none")


class RemoteError(Exception):
    """An item's error, carried back from a worker: its type's name and its message.

    The original exception may hold things that cannot travel between processes (a live
    HTTP response, say); this keeps what a reader needs and always pickles.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemoteError, (self.kind, self.message))

    @classmethod
    def of(cls, error: BaseException) -> RemoteError:
        """The carried form of ``error``."""
        if isinstance(error, RemoteError):
            return error
        return cls(error_type_name(error), str(error))


@dataclass(frozen=True)
class ChunkPlan:
    """What every chunk of one run shares: the node recipe, the cap, the journal."""

    run: str
    recipe: Callable[[], BoundedParallelBatchNode]
    cap: CapMode
    max_in_flight: int | None
    max_per_minute: int | None
    lease_timeout: float
    workers: int
    journal: str | None
    journal_identity: str


@dataclass(frozen=True)
class ChunkReport:
    """What one chunk sent back: a value per item (answer or Failure) and what it cost on its worker."""

    start: int
    values: list[Any]
    from_journal: int
    calls: int
    worker: str
    pid: int
    cpu_seconds: float
    wall_seconds: float


async def run_chunk(plan: ChunkPlan, start: int, items: Sequence[Any]) -> ChunkReport:
    """Run ``items`` (positions ``start``... of the batch) through the plan's node on this worker."""
    from distributed import get_worker

    from .worker_plugin import this_workers_pools

    worker = get_worker()
    cpu, wall = time.process_time(), time.perf_counter()
    node = _build(plan)
    pools = this_workers_pools()
    gate, local_limit = _gate(plan, pools)
    if gate is not None:
        node.shared_gate = gate
    if plan.cap != "none":
        node.max_concurrency = local_limit
    node.max_per_minute = _local_per_minute(plan)
    node.collect_failures = True
    calls = 0
    inner = node.exec_async

    async def counted(item: Any) -> Any:
        nonlocal calls
        calls += 1
        return await inner(item)

    node.exec_async = counted  # every attempt, retries included, passes here
    with ExitStack() as stack:
        journal = stack.enter_context(Journal(plan.journal, plan.journal_identity)) if plan.journal else None
        # The node skips what the journal holds and records each item the moment it ends.
        node.journal = journal
        from_journal = 0 if journal is None else len(journal.answered_items(items))
        try:
            results = await node._exec(list(items))
        finally:
            held: Any = gate
            if plan.cap == "cluster":
                held.settle()
            elif plan.cap == "dask_semaphore":
                # Its lease-refresh timer holds it alive and would fire for the worker's whole life;
                # close() would close the semaphore for every chunk, so only the timer stops here.
                held.refresh_callback.stop()
    values = [Failure(value.item, RemoteError.of(value.error), value.attempts) if isinstance(value, Failure) else value
              for value in results]
    return ChunkReport(
        start=start, values=values, from_journal=from_journal, calls=calls, worker=worker.address,
        pid=os.getpid(), cpu_seconds=time.process_time() - cpu, wall_seconds=time.perf_counter() - wall,
    )


def _build(plan: ChunkPlan) -> BoundedParallelBatchNode:
    node = plan.recipe()
    if not isinstance(node, BoundedParallelBatchNode):
        raise TypeError(
            f"the recipe must build a BoundedParallelBatchNode (such as AskOverHTTP(...)); "
            f"it built {type(node).__name__}"
        )
    return node


def _gate(plan: ChunkPlan, pools: Any) -> tuple[AbstractAsyncContextManager[Any] | None, int | None]:
    """The gate in front of every call on this worker, and the node's local limit on items in progress."""
    cap = plan.max_in_flight
    if plan.cap == "cluster":
        gate = pools.pool(plan.run, leases=cap is not None, tokens=plan.max_per_minute is not None,
                          lease_timeout=plan.lease_timeout)
        return gate, cap
    if plan.cap == "dask_semaphore":
        from distributed import Semaphore

        assert cap is not None
        return Semaphore(max_leases=cap, name=plan.run), cap  # type: ignore[no-untyped-call]
    if plan.cap == "static_split":
        assert cap is not None
        share = cap // plan.workers
        return pools.semaphore(plan.run, share), share
    return None, cap  # per_worker: the node's own limit of C, in each process; none: no cap


def _local_per_minute(plan: ChunkPlan) -> int | None:
    """The node's own per-minute pacing on this worker (the cluster mode paces in its gate instead)."""
    if plan.max_per_minute is None or plan.cap == "cluster":
        return None
    if plan.cap == "static_split":
        return max(1, plan.max_per_minute // plan.workers)
    return plan.max_per_minute
