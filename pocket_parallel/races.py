"""Find shared-store races between the concurrent sub-flows of a parallel batch flow.

PocketFlow hands every sub-flow of an ``AsyncParallelBatchFlow`` the same ``shared`` dict.
A sub-flow that stores ``shared["text"]`` and reads it back after an ``await`` reads
whatever the sub-flow that wrote last put there. :func:`check_races` runs a flow with a
watching view of the store and reports every key that two sub-flows wrote while both were
running, naming the key and both sub-flows' params.

How it knows who writes: it wraps the flow's ``_orch_async(shared, params)`` (the step
that runs one sub-flow) so that each sub-flow sets a context variable to its params. Each
sub-flow runs in its own asyncio task and every task has its own copy of the context, so
a write reads the variable of the sub-flow that made it, even across ``await``.
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Hashable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pocketflow import AsyncFlow

from ._validate import check_clock
from .clock import Clock, run

RaceKind = Literal["write", "read"]


@dataclass(frozen=True)
class Race:
    """Two concurrent sub-flows used one key of the shared store.

    ``kind="write"``: ``second`` wrote ``key`` while ``first``, which had written it
    before, was still running, so ``first`` may read ``second``'s value. ``kind="read"``:
    ``second`` read back ``key`` after writing it, and got the value ``first`` wrote.
    """

    key: Hashable
    first: dict[str, Any]
    second: dict[str, Any]
    kind: RaceKind = "write"

    def __str__(self) -> str:
        if self.kind == "read":
            return (f"shared[{self.key!r}]: sub-flow {self.second} read back the value written by "
                    f"sub-flow {self.first}")
        return (f"shared[{self.key!r}]: written by sub-flow {self.second} while sub-flow "
                f"{self.first}, which wrote it too, was still running")


@dataclass(eq=False)
class _SubFlow:
    number: int
    params: dict[str, Any]
    written: set[Hashable] = field(default_factory=set)


_CURRENT: contextvars.ContextVar[_SubFlow | None] = contextvars.ContextVar("pocket_parallel_subflow", default=None)


class RaceWatch(MutableMapping[Hashable, Any]):
    """A view of a shared store that notes which sub-flow writes and reads each top-level key.

    Reads and writes go straight through to ``shared`` (the dict you pass in, kept as
    :attr:`store`, is the one that changes). Only top-level keys are watched: ``shared["summaries"][doc] = ...``
    counts as a read of ``"summaries"``, which is why per-item keys inside a dict made by
    the parent flow are safe. Found races collect in :attr:`races`, each reported once.
    """

    def __init__(self, shared: MutableMapping[Hashable, Any]) -> None:
        if not isinstance(shared, MutableMapping):
            raise TypeError(f"shared must be a dict (the shared store); got {type(shared).__name__}")
        self.store = shared
        self.races: list[Race] = []
        self._running: set[_SubFlow] = set()
        self._writers: dict[Hashable, list[_SubFlow]] = {}  # running sub-flows that wrote each key
        self._last_writer: dict[Hashable, _SubFlow | None] = {}
        self._seen: set[tuple[Any, ...]] = set()

    # -- the mapping: every access goes through to the real store ------------------------------

    def __getitem__(self, key: Hashable) -> Any:
        value = self.store[key]
        self._read(key)
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self.store[key] = value
        self._wrote(key)

    def __delitem__(self, key: Hashable) -> None:
        del self.store[key]
        self._wrote(key)

    def __contains__(self, key: object) -> bool:
        return key in self.store  # asking whether a key exists is not reading its value

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        return f"RaceWatch({self.store!r}, races={len(self.races)})"

    # -- bookkeeping -----------------------------------------------------------------------------

    def _started(self, sub: _SubFlow) -> None:
        self._running.add(sub)

    def _ended(self, sub: _SubFlow) -> None:
        self._running.discard(sub)
        for key in sub.written:
            self._writers[key] = [w for w in self._writers.get(key, []) if w is not sub]

    def _wrote(self, key: Hashable) -> None:
        sub = _CURRENT.get()
        self._last_writer[key] = sub
        if sub is None or sub not in self._running:
            return  # the parent flow, or code outside the check
        for other in self._writers.get(key, []):
            if other is not sub:
                self._report(Race(key, other.params, sub.params, "write"), other, sub)
        if key not in sub.written:
            sub.written.add(key)
            self._writers.setdefault(key, []).append(sub)

    def _read(self, key: Hashable) -> None:
        sub = _CURRENT.get()
        writer = self._last_writer.get(key)
        if sub is not None and key in sub.written and writer is not None and writer is not sub:
            self._report(Race(key, writer.params, sub.params, "read"), writer, sub)

    def _report(self, race: Race, first: _SubFlow, second: _SubFlow) -> None:
        mark = (race.kind, race.key, first.number, second.number)
        if mark not in self._seen:
            self._seen.add(mark)
            self.races.append(race)


async def check_races_async(flow: AsyncFlow, shared: MutableMapping[Hashable, Any]) -> list[Race]:
    """:func:`check_races` for code already inside an event loop."""
    if not isinstance(flow, AsyncFlow) or not hasattr(flow, "_orch_async"):
        raise TypeError(f"flow must be a PocketFlow AsyncFlow such as an AsyncParallelBatchFlow; got {type(flow).__name__}")
    watch = RaceWatch(shared)
    numbers = itertools.count(1)
    original = flow._orch_async  # the bound method from the class

    async def watched(store: Any, params: dict[str, Any] | None = None) -> Any:
        sub = _SubFlow(next(numbers), dict(params or {}))
        token = _CURRENT.set(sub)
        watch._started(sub)
        try:
            return await original(store, params)
        finally:
            watch._ended(sub)
            _CURRENT.reset(token)

    flow._orch_async = watched  # type: ignore[method-assign]  # an instance attribute wins over the class
    try:
        await flow.run_async(watch)
    finally:
        del flow._orch_async
    return watch.races


def check_races(flow: AsyncFlow, shared: MutableMapping[Hashable, Any], *, clock: Clock = "virtual") -> list[Race]:
    """Run ``flow`` on ``shared`` and return every race between its concurrent sub-flows.

    ``flow`` is an ``AsyncParallelBatchFlow`` (or a :class:`~pocket_parallel.BoundedParallelBatchFlow`,
    or a sequential ``AsyncBatchFlow``, whose sub-flows never overlap and so never race).
    The flow really runs and ``shared`` ends up as it would without the check. An empty list
    means no two concurrent sub-flows shared a top-level key; print each :class:`Race`
    to see the key and both sub-flows' params.
    """
    check_clock(clock)
    return run(check_races_async(flow, shared), clock=clock)
