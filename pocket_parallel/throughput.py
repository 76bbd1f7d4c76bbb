"""Throughput against concurrency for a service with limits: where more parallel calls stop helping.

Against a service that serves at most ``max_concurrent`` calls at once, raising the client's
concurrency ``C`` first raises the throughput (completed calls per second) in proportion.
Past the service's limit the extra calls are refused (429s), wait, retry, and are refused
again: the throughput flattens or falls, and with too few retries items start to fail.
The *knee* is where the curve stops rising; :func:`find_knee` defines it precisely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _format
from ._validate import check_clock, check_int, check_real
from .backends.workload import Workload, as_workload
from .clock import Clock, is_virtual, run
from .experiment import AskEach
from .limits.retry import Backoff
from .limits.settings import check_backoff
from .service.quota import Algorithm

_DEFAULT_BACKOFF = Backoff()
_DEFAULT_ITEMS = 200


@dataclass(frozen=True)
class ThroughputPoint:
    """One run of ``items`` calls with at most ``concurrency`` in flight, against a limited service.

    ``makespan`` runs from the first call to the end of the last item (success or failure);
    ``requests`` counts every call sent, refused ones (``rate_limited``) included.
    ``latency``, ``max_concurrent`` and ``requests_per_minute`` describe the service.
    """

    concurrency: int
    items: int
    completed: int
    failed: int
    makespan: float
    requests: int
    rate_limited: int
    transient_errors: int
    latency: float
    max_concurrent: int | None
    requests_per_minute: int | None

    @property
    def throughput(self) -> float:
        """Completed calls per second: ``completed / makespan``."""
        return self.completed / self.makespan if self.makespan > 0 else 0.0

    @property
    def max_throughput(self) -> float:
        """A bound: no client with C calls in flight sustains more calls per second from this service.

        ``min(C, max_concurrent) / latency`` (Little's law: calls in flight over seconds per
        call), and no more than ``requests_per_minute / 60``.
        """
        slots = self.concurrency if self.max_concurrent is None else min(self.concurrency, self.max_concurrent)
        best = slots / self.latency
        return best if self.requests_per_minute is None else min(best, self.requests_per_minute / 60)

    @property
    def refused_share(self) -> float:
        """The fraction of the requests sent that the service refused (429s)."""
        return self.rate_limited / self.requests if self.requests else 0.0

    def summary(self) -> str:
        """One line: C, throughput, makespan, and what was refused or lost."""
        return (
            f"C = {self.concurrency:>3}: {self.throughput:6.2f} calls/s, makespan {self.makespan:7.2f} s, "
            f"{self.rate_limited:>4} refused (429), {self.failed:>3} failed"
        )

    def __repr__(self) -> str:
        return f"<ThroughputPoint {' '.join(self.summary().split())}>"

    def _repr_markdown_(self) -> str:
        """The point as a small table in a notebook."""
        return _format.markdown_record(
            f"Throughput at C = {self.concurrency}",
            [
                ("completed", f"{self.completed} of {self.items} calls"),
                ("throughput", f"{self.throughput:.2f} calls/s (at most {self.max_throughput:.2f})"),
                ("makespan", _format.seconds(self.makespan)),
                ("requests sent", f"{self.requests}, of which {self.rate_limited} refused (429)"),
                ("failed", f"{self.failed}"),
            ],
        )


async def measure_throughput_async(
    concurrency: Iterable[int],
    workload: Workload | int | None = None,
    *,
    max_concurrent: int | None = 8,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    algorithm: Algorithm = "token_bucket",
    max_retries: int = 30,
    backoff: Backoff | None = _DEFAULT_BACKOFF,
    **settings: Any,
) -> list[ThroughputPoint]:
    """:func:`measure_throughput` for code already inside an event loop (times on its clock)."""
    values = check_concurrency_values(concurrency)
    chosen = as_workload(workload, **{"items": _DEFAULT_ITEMS, **settings} if workload is None else settings)
    max_retries = check_int("max_retries", max_retries, low=1, high=1_000)
    backoff = check_backoff(backoff)
    prompts = chosen.prompts()
    loop = asyncio.get_running_loop()
    virtual = is_virtual(loop)
    points = []
    for c in values:
        llm = chosen.llm(max_concurrent=max_concurrent, requests_per_minute=requests_per_minute,
                         tokens_per_minute=tokens_per_minute, algorithm=algorithm)
        node = AskEach(llm, max_retries=max_retries, max_concurrency=c, backoff=backoff, collect_failures=True)
        start = loop.time()
        await node.run_async({"prompts": prompts})
        makespan = loop.time() - start
        outcomes, stats = node.outcomes, llm.stats
        assert outcomes is not None
        points.append(ThroughputPoint(
            concurrency=c,
            items=chosen.items,
            completed=len(outcomes.results),
            failed=len(outcomes.failures),
            makespan=round(makespan, 6) if virtual else makespan,
            requests=stats.calls,
            rate_limited=stats.rate_limited,
            transient_errors=stats.transient_errors,
            latency=llm.latency,
            max_concurrent=llm.max_concurrent,
            requests_per_minute=llm.requests_per_minute,
        ))
    return points


def measure_throughput(
    concurrency: Iterable[int],
    workload: Workload | int | None = None,
    *,
    max_concurrent: int | None = 8,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    algorithm: Algorithm = "token_bucket",
    max_retries: int = 30,
    backoff: Backoff | None = _DEFAULT_BACKOFF,
    clock: Clock = "virtual",
    **settings: Any,
) -> list[ThroughputPoint]:
    """Measure completed calls per second for each client concurrency ``C`` in ``concurrency``.

    Each run sends the workload's calls (by default 200 of 1 s; ``workload`` and ``settings``
    as for :func:`~pocket_parallel.compare`) through a
    :class:`~pocket_parallel.BoundedParallelBatchNode` with ``max_concurrency=C``,
    ``max_retries`` attempts per item and ``backoff`` between them (``None``: retry at
    once), against a fresh simulated LLM with the given server limits (by default at most 8
    calls in flight). Failed items are counted, never dropped. ``clock="virtual"`` (the
    default) gives exact, repeatable numbers at once.
    """
    check_clock(clock)
    return run(
        measure_throughput_async(
            concurrency, workload, max_concurrent=max_concurrent, requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute, algorithm=algorithm, max_retries=max_retries, backoff=backoff,
            **settings,
        ),
        clock=clock,
    )


def check_concurrency_values(concurrency: Iterable[int]) -> list[int]:
    """The limits C a throughput curve is measured at: a non-empty list of integers >= 1."""
    if isinstance(concurrency, (str, bytes)) or not isinstance(concurrency, Iterable):
        raise TypeError(f"concurrency must be a list of integers >= 1, such as [1, 2, 4, 8, 16]; got {concurrency!r}")
    values = [check_int("concurrency", value, low=1, high=1_000_000) for value in concurrency]
    if not values:
        raise ValueError("concurrency must hold at least one value, such as [1, 2, 4, 8, 16]")
    if len(set(values)) != len(values):
        raise ValueError(f"concurrency values must differ from each other; got {values}")
    return sorted(values)


def find_knee(points: Sequence[ThroughputPoint], fraction: float = 0.95) -> ThroughputPoint:
    """The knee of a throughput curve: the smallest C whose throughput reaches ``fraction`` of the best.

    With ``fraction=0.95`` it is the least concurrency that gets within 5% of the best
    throughput measured; going beyond it buys at most 5% more, and past the service's
    limit it usually buys refusals and retries instead. ``fraction`` is in ``(0, 1]``.
    """
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    if not points or not all(isinstance(p, ThroughputPoint) for p in points):
        raise ValueError("points must hold at least one ThroughputPoint (from measure_throughput)")
    best = max(p.throughput for p in points)
    return min((p for p in points if p.throughput >= fraction * best), key=lambda p: p.concurrency)
