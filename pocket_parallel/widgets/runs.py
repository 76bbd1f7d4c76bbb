"""The explorer's run cache: every race it ran, kept per workload, each equal to what compare() returns.

A workload (a :class:`~pocket_parallel.Workload` and ``max_retries``) has one sequential run
and one parallel run per concurrency limit C. The sequential run does not depend on C, so it
runs once per workload; each parallel run starts at the very virtual moment compare() would
start it, so a cached result equals ``compare(...)`` bit for bit and can be shown again
without running again. The measured points of the makespan-against-C curve are the parallel
runs at :data:`CURVE_LIMITS` (those below N) and with no limit.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field

from .._validate import check_int, check_limit
from ..backends.workload import Workload
from ..clock import run
from ..experiment import Comparison, compare_async

#: C values measured for the curve of every workload (those below N), plus no limit.
CURVE_LIMITS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100)

#: Workloads kept (their sequential run and every parallel run); the least recently used goes first.
WORKLOADS_KEPT = 4


@dataclass(frozen=True)
class RunKey:
    """What a run depends on besides C: the workload and the attempts each item gets."""

    workload: Workload
    max_retries: int


@dataclass
class WorkloadRuns:
    """The runs of one workload: ``by_limit[C]`` is the comparison at C (``None``: no limit)."""

    by_limit: dict[int | None, Comparison] = field(default_factory=dict)

    @property
    def sequential(self) -> Comparison | None:
        """A comparison holding the workload's sequential run (any of them: they share it)."""
        return next(iter(self.by_limit.values()), None)


def curve_limits(items: int) -> list[int | None]:
    """The limits of a workload's measured curve: :data:`CURVE_LIMITS` below ``items``, then no limit."""
    return [*(c for c in CURVE_LIMITS if c < items), None]


class RunCache:
    """Comparisons by workload and C, run on the virtual clock when first asked for.

    ``result(key, C)`` returns the cached comparison or runs it (reusing the workload's
    sequential run); :meth:`missing` and :meth:`measure` fill in the curve's points.
    """

    def __init__(self, kept: int = WORKLOADS_KEPT) -> None:
        self._kept = check_int("kept", kept, low=1)
        self._runs: collections.OrderedDict[RunKey, WorkloadRuns] = collections.OrderedDict()
        self.runs_made = 0

    def __len__(self) -> int:
        return len(self._runs)

    def runs(self, key: RunKey) -> WorkloadRuns:
        """The runs kept for ``key`` (made empty if new); marks it as the most recently used."""
        runs = self._runs.get(key)
        if runs is None:
            runs = self._runs[key] = WorkloadRuns()
            while len(self._runs) > self._kept:
                self._runs.popitem(last=False)
        self._runs.move_to_end(key)
        return runs

    def cached(self, key: RunKey, limit: int | None) -> Comparison | None:
        """The comparison at ``limit`` if it has been run, else None (runs nothing)."""
        runs = self._runs.get(key)
        return None if runs is None else runs.by_limit.get(limit)

    def result(self, key: RunKey, limit: int | None) -> Comparison:
        """The comparison of ``key``'s workload at ``limit``: from the cache, or run now and kept."""
        limit = check_limit("max_concurrency", limit)
        runs = self.runs(key)
        found = runs.by_limit.get(limit)
        if found is None:
            found = run(_parallel_after(runs.sequential, key, limit), clock="virtual")
            self.runs_made += 1
            runs.by_limit[limit] = found
        return found

    def missing(self, key: RunKey) -> list[int | None]:
        """The curve's limits not yet run for ``key``, in the order they would be measured."""
        runs = self._runs.get(key, WorkloadRuns())
        return [c for c in curve_limits(key.workload.items) if c not in runs.by_limit]

    def measure(self, key: RunKey, limits: list[int | None]) -> None:
        """Run ``key``'s workload at each of ``limits`` not yet run."""
        for limit in limits:
            self.result(key, limit)

    def curve(self, key: RunKey) -> list[Comparison]:
        """Every comparison run so far for ``key``, by increasing C (no limit last)."""
        runs = self.runs(key).by_limit
        return [runs[c] for c in sorted(runs, key=lambda c: float("inf") if c is None else c)]


async def _parallel_after(sequential: Comparison | None, key: RunKey, limit: int | None) -> Comparison:
    """``compare_async`` of ``key`` at ``limit``, reusing the sequential run of ``sequential`` when given.

    compare() starts its parallel run when its sequential run ends, and a trace's times are
    differences of virtual loop times, whose last bits can depend on where they start. Waiting
    the sequential time first starts the parallel run at that same virtual moment, so the
    result equals compare()'s bit for bit, not just to the microsecond.
    """
    if sequential is not None:
        await asyncio.sleep(sequential.sequential_time)
    return await compare_async(
        workload=key.workload, max_concurrency=limit, max_retries=key.max_retries, sequential=sequential
    )
