"""The numbers reported for each contender: median and spread, efficiency, overhead over the floor."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pocket_parallel.experiment import semaphore_makespan

from .contenders import FLOOR


def ideal(n: int, limit: int | None, latency: float) -> float:
    """The best any schedule can do for ``n`` waits of ``latency`` with at most ``limit`` at once.

    ``ceil(n / limit) * latency``; just ``latency`` with no limit.
    """
    return semaphore_makespan([latency] * n, limit)


@dataclass(frozen=True)
class Cell:
    """One contender in one configuration (N items, limit C, latency L): every measurement and what follows.

    ``walls[k]`` and ``ratios[k]`` come from repetition ``k``; ``ratios[k]`` is
    ``walls[k]`` over the floor's wall time in that same repetition. ``memory`` is the peak
    RSS growth in bytes of one separate run at latency ``memory_latency`` (None: not measured).
    """

    key: str
    label: str
    ours: bool
    n: int
    limit: int | None
    latency: float
    walls: tuple[float, ...]
    ratios: tuple[float, ...]
    memory: int | None = None
    memory_latency: float | None = None

    @property
    def ideal(self) -> float:
        """Ideal makespan of this configuration."""
        return ideal(self.n, self.limit, self.latency)

    @property
    def wall(self) -> float:
        """Median wall time over the repetitions."""
        return statistics.median(self.walls)

    @property
    def efficiency(self) -> float:
        """Ideal makespan over median wall time: 1.0 means no schedule could have finished sooner."""
        return self.ideal / self.wall

    @property
    def overhead(self) -> float:
        """Median over repetitions of wall time / the floor's wall time in the same repetition."""
        return statistics.median(self.ratios)


def summarize(
    n: int,
    limit: int | None,
    latency: float,
    walls: Mapping[str, Sequence[float]],
    labels: Mapping[str, str],
    ours: frozenset[str] = frozenset(),
    memory: Mapping[str, int | None] | None = None,
    memory_latency: float | None = None,
) -> list[Cell]:
    """Turn one configuration's wall times (per contender key, one per repetition) into cells.

    ``walls`` must hold the floor (key ``"floor"``) with as many repetitions as every other
    contender: repetition ``k`` of each is set against repetition ``k`` of the floor.
    """
    if FLOOR not in walls:
        raise ValueError(f"walls must include the floor ({FLOOR!r}): the overhead ratio is measured against it")
    floor = list(walls[FLOOR])
    if not floor or min(floor) <= 0:
        raise ValueError(f"the floor's wall times must be positive; got {floor!r}")
    cells = []
    for key, times in walls.items():
        times = list(times)
        if len(times) != len(floor):
            raise ValueError(
                f"walls[{key!r}] has {len(times)} repetitions but the floor has {len(floor)}: "
                "each repetition is compared with the floor's run in the same repetition"
            )
        memory_used = (memory or {}).get(key)
        cells.append(
            Cell(
                key=key,
                label=labels.get(key, key),
                ours=key in ours,
                n=n,
                limit=limit,
                latency=latency,
                walls=tuple(times),
                ratios=tuple(t / f for t, f in zip(times, floor)),
                memory=memory_used,
                memory_latency=memory_latency if memory_used is not None else None,
            )
        )
    return cells


@dataclass(frozen=True)
class VirtualCell:
    """One contender simulated on the virtual clock: real seconds it took, and the makespan it reported."""

    key: str
    label: str
    n: int
    limit: int | None
    latency: float
    walls: tuple[float, ...]
    makespans: tuple[float, ...]
    memory: int | None = None
    peak: int | None = None

    @property
    def ideal(self) -> float:
        """Ideal makespan of this configuration (virtual seconds)."""
        return ideal(self.n, self.limit, self.latency)

    @property
    def wall(self) -> float:
        """Median real seconds the simulation took."""
        return statistics.median(self.walls)

    @property
    def makespan(self) -> float:
        """Median makespan on the virtual clock (every repetition reports the same, exactly)."""
        return statistics.median(self.makespans)


def virtual_ratio(cells: Sequence[VirtualCell], key: str, n: int, value: str = "wall") -> float | None:
    """``key``'s median wall time (or ``"memory"``) over the floor's at ``n`` items, both measured in this run."""
    mine = next((c for c in cells if (c.key, c.n) == (key, n)), None)
    floor = next((c for c in cells if (c.key, c.n) == (FLOOR, n)), None)
    if mine is None or floor is None:
        return None
    top, bottom = getattr(mine, value), getattr(floor, value)
    return None if top is None or not bottom else top / bottom


def virtual_growth(cells: Sequence[VirtualCell], key: str, small: int, large: int) -> float | None:
    """How many times longer ``key`` took at ``large`` items than at ``small`` (linear: large / small)."""
    low = next((c for c in cells if (c.key, c.n) == (key, small)), None)
    high = next((c for c in cells if (c.key, c.n) == (key, large)), None)
    return None if low is None or high is None else high.wall / low.wall


def find(cells: Sequence[Cell], key: str, limit: int | None, n: int) -> Cell | None:
    """The cell of contender ``key`` at limit ``limit`` and ``n`` items, or None if not measured."""
    return next((c for c in cells if (c.key, c.limit, c.n) == (key, limit, n)), None)
