"""Which configurations a benchmark run measures, how often, and which it skips and why."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import contenders as registry
from .contenders import Contender
from .stats import ideal

# Rough CPU seconds per item on a 2-core cloud VM, used only to estimate how long a run
# takes (for the number of repetitions and the progress line), never in any result.
_PER_ITEM = {"aiometer": 100e-6, "flow": 40e-6, "pf_flow": 40e-6, "threads": 40e-6, "node_llm": 30e-6}
_PER_ITEM_DEFAULT = 23e-6
LONG_RUN = 1.5
"""Seconds: a configuration whose slowest run is expected to take longer gets fewer repetitions."""


@dataclass(frozen=True)
class Config:
    """One configuration to measure: N items, limit C (1: the sequential comparison), its contenders."""

    n: int
    limit: int | None
    contenders: tuple[Contender, ...]
    repetitions: int
    memory_latency: float | None  # None: no memory runs

    @property
    def rounds(self) -> int:
        """How many waits in a row the ideal schedule needs: ceil(N / C)."""
        return 1 if self.limit is None else math.ceil(self.n / self.limit)


@dataclass(frozen=True)
class Skipped:
    """A configuration left out, and why."""

    n: int
    limit: int | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """A benchmark run: the grid of N and C, the latency, repetitions, and the virtual-time section.

    A configuration runs if its ideal makespan is at most ``max_ideal`` seconds or it is
    listed in ``long`` (where contenders marked ``reference`` sit out, to save time).
    Configurations with a run expected to take over :data:`LONG_RUN` seconds are repeated
    ``long_repetitions`` times, the rest ``repetitions`` times. Memory runs use a latency
    shortened so that their ideal makespan is at most ``memory_max_ideal`` seconds.
    """

    name: str
    latency: float = 0.1
    items: tuple[int, ...] = (10, 100, 1_000, 10_000, 100_000)
    limits: tuple[int | None, ...] = (10, 100, None)
    sequential_items: tuple[int, ...] = (10,)
    max_ideal: float = 1.0
    long: frozenset[tuple[int | None, int]] = field(default_factory=frozenset)
    repetitions: int = 5
    long_repetitions: int = 3
    memory: bool = True
    memory_max_ideal: float = 1.0
    virtual_items: tuple[int, ...] = (1_000, 20_000, 100_000, 200_000)
    virtual_latency: float = 1.0
    virtual_limit: int = 100
    virtual_repetitions: int = 3
    virtual_contenders: tuple[str, ...] = ("floor", "node", "node_llm")
    virtual_large: tuple[int, ...] = ()
    """Item counts run once, for our node alone: how far the engine scales."""


FULL = Plan(name="full", long=frozenset({(100, 10_000)}), virtual_large=(1_000_000,))
QUICK = Plan(
    name="quick",
    items=(100, 1_000),
    limits=(100, None),
    sequential_items=(10,),
    max_ideal=0.1,
    repetitions=3,
    long_repetitions=3,
    memory_max_ideal=0.1,
    virtual_items=(1_000, 10_000),
    virtual_repetitions=2,
)
PLANS = {"full": FULL, "quick": QUICK}


def estimate(contender: Contender, n: int, limit: int | None, latency: float) -> float:
    """A rough guess of one run's seconds: its best possible time plus per-item CPU."""
    if contender.key == "threads":
        best = ideal(n, registry.thread_workers(n, limit), latency)
    else:
        best = ideal(n, limit, latency)
    return best + n * _PER_ITEM.get(contender.key, _PER_ITEM_DEFAULT)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:,.0f} min"


def _limit_text(limit: int | None) -> str:
    return "no limit" if limit is None else f"C = {limit}"


def configurations(plan: Plan) -> tuple[list[Config], list[Skipped]]:
    """The configurations ``plan`` measures, in order, and the ones it skips with the reason."""
    configs: list[Config] = []
    skipped: list[Skipped] = []
    grid = [(1, n) for n in plan.sequential_items] + [(c, n) for c in plan.limits for n in plan.items]
    for limit, n in grid:
        chosen = tuple(c for c in registry.CONTENDERS if c.accepts(limit))
        best = ideal(n, limit, plan.latency)
        slowest = max(estimate(c, n, limit, plan.latency) for c in chosen)
        repetitions = plan.repetitions if slowest <= LONG_RUN else plan.long_repetitions
        if limit != 1 and best > plan.max_ideal and (limit, n) not in plan.long:
            skipped.append(Skipped(n, limit, (
                f"ideal makespan {best:,.4g} s per run: {len(chosen)} contenders × {repetitions} runs "
                f"would take about {_duration(best * len(chosen) * repetitions)}"
            )))
            continue
        if best > plan.max_ideal:  # a long configuration: reference contenders sit it out
            chosen = tuple(c for c in chosen if not c.reference)
        memory_latency = None
        if plan.memory:
            memory_latency = round(plan.latency * min(1.0, plan.memory_max_ideal / best), 6)
        configs.append(Config(n, limit, chosen, repetitions, memory_latency))
    longest_sequential = max(plan.sequential_items, default=0)
    for n in plan.items:
        if n > longest_sequential:
            skipped.append(Skipped(n, 1, (
                f"PocketFlow's sequential AsyncBatchNode: N × L = {n * plan.latency:,.4g} s per run"
            )))
            break  # one line covers every larger N
    for index, skip in enumerate(skipped):
        if skip.limit in (1, None):
            continue
        rounds = math.ceil(skip.n / skip.limit)
        twin = next((c for c in configs if c.limit not in (1, None) and c.rounds == rounds), None)
        if twin is not None:
            skipped[index] = Skipped(skip.n, skip.limit, skip.reason + (
                f"; the same {rounds} waits in a row are measured at {_limit_text(twin.limit)}, N = {twin.n:,}"
            ))
    return configs, skipped


def config_seconds(plan: Plan, config: Config) -> float:
    """A rough guess of how long measuring ``config`` takes, memory runs included."""
    once = sum(estimate(c, config.n, config.limit, plan.latency) for c in config.contenders)
    total = once * config.repetitions
    if config.memory_latency is not None:
        total += sum(estimate(c, config.n, config.limit, config.memory_latency) + 0.05 for c in config.contenders)
    return total


def estimated_seconds(plan: Plan, configs: list[Config]) -> float:
    """A rough guess of the whole run's duration in seconds."""
    total = sum(config_seconds(plan, config) for config in configs)
    for n in plan.virtual_items:
        total += n * 40e-6 * len(plan.virtual_contenders) * (plan.virtual_repetitions + 1)
    return total
