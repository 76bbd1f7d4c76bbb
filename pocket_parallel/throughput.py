"""Throughput against concurrency for a service with a limit: where more parallel calls stop helping.

Raising the client's concurrency ``C`` (calls in flight) first raises the throughput
(completed calls per second) in proportion. Then the service's own limit takes over, and what
happens to the extra calls depends on who sets that limit:

- a **self-hosted server** (vLLM's ``max_num_seqs``, llama.cpp's ``--parallel``, Ollama's
  ``OLLAMA_NUM_PARALLEL``) decodes at most ``slots`` calls together and queues the rest, never
  refusing: past the slots the throughput stays flat and each call waits longer (this is the
  default here, 8 slots, as in the ``self-hosted`` profile);
- a **gateway** in front of a service may refuse calls beyond ``max_concurrent`` in flight
  (429s): the extra calls wait, retry, and are refused again.

Little's law ties the three numbers of a run together: calls in flight = throughput × latency,
so past the knee the latency grows in proportion to C. The *knee* is where the curve stops
rising; :func:`find_knee` defines it precisely.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _format
from ._validate import check_clock, check_int, check_real
from .backends.simulated import SimulatedLLM
from .backends.workload import Workload, as_workload
from .clock import Clock, is_virtual, run
from .experiment import AskEach
from .limits.retry import Backoff
from .limits.settings import check_backoff
from .service.quota import Algorithm
from .service.settings import FROM_PROFILE
from .trace import CallRecord

_DEFAULT_BACKOFF = Backoff()
_DEFAULT_ITEMS = 200
#: The slots of the service measured when neither a profile nor any limit is given: a small self-hosted server's.
DEFAULT_SLOTS = 8


@dataclass(frozen=True)
class ThroughputPoint:
    """One run of ``items`` calls with at most ``concurrency`` in flight, against a limited service.

    ``makespan`` runs from the first call to the end of the last item (success or failure);
    ``requests`` counts every call sent, refused ones (``rate_limited``) included.
    ``mean_latency`` is measured: the mean seconds from an item's first request to its answer,
    waits in a server's queue and between retries included (None when not measured).

    ``latency``, ``max_concurrent``, ``requests_per_minute`` and ``slots`` describe the
    service: ``latency`` is the mean seconds one of these calls takes when it is served at
    once, in a batch as full as C allows (at most ``slots``), with no queue and no retry.
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
    slots: int | None = None
    mean_latency: float | None = None

    @property
    def throughput(self) -> float:
        """Completed calls per second: ``completed / makespan``."""
        return self.completed / self.makespan if self.makespan > 0 else 0.0

    @property
    def served_at_once(self) -> int:
        """How many calls the service works on together at this C: C, capped by its slots and its cap in flight."""
        return served_at_once(self.concurrency, self.slots, self.max_concurrent)

    @property
    def max_throughput(self) -> float:
        """A bound: no client with C calls in flight sustains more calls per second from this service.

        ``served_at_once / latency`` (Little's law: calls served at once over seconds per
        call in a batch that full; for a self-hosted server at or past its slots, slots over
        the time of a call in a full batch), and no more than ``requests_per_minute / 60``.
        """
        best = self.served_at_once / self.latency
        return best if self.requests_per_minute is None else min(best, self.requests_per_minute / 60)

    @property
    def refused_share(self) -> float:
        """The fraction of the requests sent that the service refused (429s)."""
        return self.rate_limited / self.requests if self.requests else 0.0

    def summary(self) -> str:
        """One line: C, throughput, latency (when measured), makespan, and what was refused or lost."""
        latency = "" if self.mean_latency is None else f"latency {self.mean_latency:7.2f} s, "
        return (
            f"C = {self.concurrency:>3}: {self.throughput:6.2f} calls/s, {latency}makespan {self.makespan:7.2f} s, "
            f"{self.rate_limited:>4} refused (429), {self.failed:>3} failed"
        )

    def __repr__(self) -> str:
        return f"<ThroughputPoint {' '.join(self.summary().split())}>"

    def _repr_markdown_(self) -> str:
        """The point as a small table in a notebook."""
        rows = [
            ("completed", f"{self.completed} of {self.items} calls"),
            ("throughput", f"{self.throughput:.2f} calls/s (at most {self.max_throughput:.2f})"),
        ]
        if self.mean_latency is not None:
            rows.append(("latency", f"{_format.seconds(self.mean_latency)} from first request to answer "
                                    f"({_format.seconds(self.latency)} with no queue)"))
        rows += [
            ("makespan", _format.seconds(self.makespan)),
            ("requests sent", f"{self.requests}, of which {self.rate_limited} refused (429)"),
            ("failed", f"{self.failed}"),
        ]
        return _format.markdown_record(f"Throughput at C = {self.concurrency}", rows)


def served_at_once(concurrency: int, slots: int | None, max_concurrent: int | None) -> int:
    """Calls a service works on together with ``concurrency`` in flight: capped by its slots and its cap in flight."""
    return min(value for value in (concurrency, slots, max_concurrent) if value is not None)


def mean_item_latency(trace: Sequence[CallRecord]) -> float | None:
    """Mean seconds from each answered prompt's first request to its answer (None when none was answered)."""
    first: dict[str, float] = {}
    answered: dict[str, float] = {}
    for call in trace:
        first[call.prompt] = min(call.start, first.get(call.prompt, call.start))
        if call.outcome == "ok":
            answered[call.prompt] = call.end
    if not answered:
        return None
    return statistics.fmean(end - first[prompt] for prompt, end in answered.items())


def call_time(llm: SimulatedLLM, prompts: Sequence[str], batch: int) -> float:
    """Mean seconds the first attempts at ``prompts`` take, each served in a batch of ``batch`` calls, with no queue.

    With ``ttft`` and ``tpot`` the time per token grows with the batch
    (:mod:`~pocket_parallel.service.timing`); with a plain ``latency`` it does not.
    """
    model = llm.model
    return statistics.fmean(model.timing_for(p, 1, model.answer_length(p), batch).total for p in prompts)


def _service(chosen: Workload, timing_given: bool, given: set[str], profile: str | None,
             limits: dict[str, Any], algorithm: Algorithm) -> SimulatedLLM:
    """A fresh simulated service for the workload: its own timing, or its profile's where the caller gave none."""
    if profile is None:
        return chosen.llm(**limits, algorithm=algorithm)
    timing = {name: getattr(chosen, name) for name in ("latency", "jitter") if timing_given or name in given}
    return SimulatedLLM(seed=chosen.seed, failure_rate=chosen.failure_rate, profile=profile, algorithm=algorithm,
                        **timing, **limits)


async def measure_throughput_async(
    concurrency: Iterable[int],
    workload: Workload | int | None = None,
    *,
    profile: str | None = None,
    slots: Any = FROM_PROFILE,
    max_concurrent: Any = FROM_PROFILE,
    requests_per_minute: Any = FROM_PROFILE,
    tokens_per_minute: Any = FROM_PROFILE,
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
    given = {"slots": slots, "max_concurrent": max_concurrent, "requests_per_minute": requests_per_minute,
             "tokens_per_minute": tokens_per_minute}
    if profile is None:  # a limit not given is absent; with none given, a small self-hosted server
        limits = {name: None if value is FROM_PROFILE else value for name, value in given.items()}
        if all(value is FROM_PROFILE for value in given.values()):
            limits["slots"] = DEFAULT_SLOTS
    else:  # a limit not given is the profile's
        limits = {name: value for name, value in given.items() if value is not FROM_PROFILE}
    prompts = chosen.prompts()
    loop = asyncio.get_running_loop()
    virtual = is_virtual(loop)
    points = []
    for c in values:
        llm = _service(chosen, isinstance(workload, Workload), set(settings), profile, limits, algorithm)
        node = AskEach(llm, max_retries=max_retries, max_concurrency=c, backoff=backoff, collect_failures=True)
        start = loop.time()
        await node.run_async({"prompts": prompts})
        makespan = loop.time() - start
        outcomes, stats, served = node.outcomes, llm.stats, llm.settings
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
            latency=call_time(llm, prompts, served_at_once(c, served.slots, served.max_concurrent)),
            max_concurrent=served.max_concurrent,
            requests_per_minute=served.requests_per_minute,
            slots=served.slots,
            mean_latency=mean_item_latency(llm.trace),
        ))
    return points


def measure_throughput(
    concurrency: Iterable[int],
    workload: Workload | int | None = None,
    *,
    profile: str | None = None,
    slots: Any = FROM_PROFILE,
    max_concurrent: Any = FROM_PROFILE,
    requests_per_minute: Any = FROM_PROFILE,
    tokens_per_minute: Any = FROM_PROFILE,
    algorithm: Algorithm = "token_bucket",
    max_retries: int = 30,
    backoff: Backoff | None = _DEFAULT_BACKOFF,
    clock: Clock = "virtual",
    **settings: Any,
) -> list[ThroughputPoint]:
    """Measure completed calls per second, and the latency per call, for each client concurrency ``C``.

    Each run sends the workload's calls (by default 200 of 1 s; ``workload`` and ``settings``
    as for :func:`~pocket_parallel.compare`) through a
    :class:`~pocket_parallel.BoundedParallelBatchNode` with ``max_concurrency=C``,
    ``max_retries`` attempts per item and ``backoff`` between them (``None``: retry at
    once), against a fresh simulated service with these limits:

    - ``slots``: at most that many calls served at once, the rest queued, never refused (a
      self-hosted server);
    - ``max_concurrent``: calls beyond it in flight refused with a 429 (a gateway's cap);
    - ``requests_per_minute``, ``tokens_per_minute`` (with ``algorithm``): per-minute budgets.

    Without a ``profile``, a limit not given is absent, and with no limit given at all the
    service has 8 ``slots``: a small self-hosted server. With ``profile="self-hosted"`` (or ``"openai"``, ``"anthropic"``), a
    limit not given is the profile's, and so are the calls' timing (time to first token
    plus output tokens at a time per token that grows with the batch) unless ``latency`` or
    ``jitter`` is given, or a :class:`~pocket_parallel.Workload` whose settings all count as
    given. Failed items are counted, never dropped. ``clock="virtual"`` (the default) gives
    exact, repeatable numbers at once.
    """
    check_clock(clock)
    return run(
        measure_throughput_async(
            concurrency, workload, profile=profile, slots=slots, max_concurrent=max_concurrent,
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute, algorithm=algorithm,
            max_retries=max_retries, backoff=backoff, **settings,
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
