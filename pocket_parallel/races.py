"""Find shared-store races between the concurrent sub-flows of a parallel batch flow.

PocketFlow hands every sub-flow of an ``AsyncParallelBatchFlow`` the same ``shared`` dict,
and with it every container inside: ``shared["scratch"]`` is one dict for all of them. A
sub-flow that stores ``shared["text"]`` (or ``shared["scratch"]["text"]``) and reads it back
after an ``await`` reads whatever the sub-flow that wrote last put there. :func:`check_races`
runs a flow with a watching view of the store and reports every place that two sub-flows
wrote while both were running: a top-level key, or any value inside, by its path
(``shared['scratch']['text']``), with both sub-flows' params.

How it knows who writes:

- Each sub-flow runs in its own asyncio task, and the check wraps the flow's
  ``_orch_async(shared, params)`` (the step that runs one sub-flow) so that it sets a context
  variable to its params. Every task has its own copy of the context, inherited by the tasks
  it starts, so a write reads the variable of the sub-flow that made it, even across ``await``.
- Top-level keys are watched as they are written and read (the flow gets a view of the store).
- Values inside are watched by comparing the store before and after every step a task takes
  between two ``await``\\ s that suspend (a task factory wraps each task started during the
  run): asyncio runs one task at a time, so each change belongs to the sub-flow whose step
  made it. The comparison walks dicts, lists, tuples, deques, sets, ``SimpleNamespace`` and
  dataclass instances; other objects (a lock, a semaphore, a client) are meant to be shared
  and count as single values. A write that stores the very object already there changes
  nothing and is not seen.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import contextlib
import contextvars
import dataclasses
import itertools
import textwrap
import types
from collections.abc import Callable, Coroutine, Hashable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pocketflow import AsyncFlow

from ._validate import check_clock
from .clock import Clock, run

RaceKind = Literal["write", "read"]
Path = tuple[Hashable, ...]

_WIDTH = 88  # columns of plain text, so that notebooks never break a line inside a word
_MAX_DEPTH = 12  # the comparison looks no deeper than this below a top-level key ...
_MAX_VALUES = 20_000  # ... and at no more values than this in all


# -- paths into the store ------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """One step of a path through the store into an object's attribute: ``.name``."""

    name: str


@dataclass(frozen=True)
class Member:
    """The last step of a path into a set: the element ``value``."""

    value: Hashable


def describe_path(path: Path) -> str:
    """``shared['scratch']['summary']``, ``shared['state'].summary``, ``shared['done'] (element 'a')``.

    ``path`` is a tuple of steps from the store: keys and indices, :class:`Attribute` and
    :class:`Member`.
    """
    if not isinstance(path, tuple):
        raise TypeError(f"path must be a tuple of keys, indices, Attribute and Member steps; got {type(path).__name__}")
    text = "shared"
    for part in path:
        if isinstance(part, Attribute):
            text += f".{part.name}"
        elif isinstance(part, Member):
            text += f" (element {part.value!r})"
        else:
            text += f"[{part!r}]"
    return text


# -- what the check reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class Race:
    """Two concurrent sub-flows used one place of the shared store.

    ``kind="write"``: ``second`` wrote the place at ``path`` while ``first``, which had
    written it before, was still running, so ``first`` may read ``second``'s value.
    ``kind="read"``: ``second`` read back a top-level key after writing it, and got the value
    ``first`` wrote. ``key`` is the top-level key the path starts with; ``path`` defaults to
    ``(key,)``. ``within`` is True when ``first`` wrote a value inside the one at ``path``
    that ``second`` then replaced (say, ``first`` filed ``shared['results']['a']`` and
    ``second`` set ``shared['results'] = {}``). :attr:`where` spells the path out.
    """

    key: Hashable
    first: dict[str, Any]
    second: dict[str, Any]
    kind: RaceKind = "write"
    path: Path = ()
    within: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("write", "read"):
            raise ValueError(f"kind must be 'write' or 'read'; got {self.kind!r}")
        if not self.path:
            object.__setattr__(self, "path", (self.key,))
        elif self.path[0] != self.key:
            raise ValueError(f"path must start with key {self.key!r}; got {self.path!r}")

    @property
    def where(self) -> str:
        """The place both sub-flows used, e.g. ``shared['scratch']['summary']``."""
        return describe_path(self.path)

    def __str__(self) -> str:
        return _wrap(self._sentence(), [self.where, repr(self.first), repr(self.second)])

    def _sentence(self) -> str:
        if self.kind == "read":
            return (f"{self.where}: sub-flow {self.second!r} read back the value written by "
                    f"sub-flow {self.first!r}")
        which = "which wrote a value inside it" if self.within else "which wrote it too"
        return (f"{self.where}: written by sub-flow {self.second!r} while sub-flow {self.first!r}, "
                f"{which}, was still running")


class Races(list[Race]):
    """The races :func:`check_races` found: a list of :class:`Race` that reads well when shown.

    Empty when no two concurrent sub-flows wrote the same place. ``print(races)``, or the
    list as the last line of a notebook cell, shows one wrapped paragraph per race.
    """

    def __str__(self) -> str:
        if not self:
            return "No races: no two sub-flows running at the same time wrote the same place in shared."
        head = f"{len(self)} race{'s' * (len(self) != 1)} found:"
        return "\n".join([head, *(_wrap(race._sentence(), [race.where, repr(race.first), repr(race.second)],
                                         first="- ", rest="  ") for race in self)])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's display: the readable text, not the list of reprs."""
        printer.text(str(self))


def _wrap(text: str, keep_whole: list[str], first: str = "", rest: str = "    ") -> str:
    # Break lines only between words, and never inside a path or a params dict.
    glue = "\x00"
    for piece in keep_whole:
        text = text.replace(piece, piece.replace(" ", glue))
    wrapped = textwrap.fill(text, _WIDTH, initial_indent=first, subsequent_indent=rest,
                            break_long_words=False, break_on_hyphens=False)
    return wrapped.replace(glue, " ")


# -- comparing the store before and after a step ------------------------------------------------

Entry = tuple[Any, Any]  # (the value, its shape: length of a sequence, members of a set, or None)


def _snapshot(store: MutableMapping[Any, Any]) -> dict[Path, Entry]:
    """Every value reachable from the store by path (holding a reference keeps ids unique)."""
    found: dict[Path, Entry] = {}
    for key, value in list(store.items()):
        _walk(value, (key,), found, set())
    return found


def _walk(value: Any, path: Path, found: dict[Path, Entry], on_path: set[int]) -> None:
    if id(value) in on_path or len(path) > _MAX_DEPTH or len(found) >= _MAX_VALUES:
        found[path] = (value, None)
        return
    shape: Any = None
    children: list[tuple[Hashable, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, (list, tuple, collections.deque)):
        shape, children = len(value), list(enumerate(value))
    elif isinstance(value, (set, frozenset)):
        shape = frozenset(value)
    elif isinstance(value, types.SimpleNamespace) or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        children = [(Attribute(name), child) for name, child in _attributes(value)]
    found[path] = (value, shape)
    if children:
        on_path.add(id(value))
        for part, child in children:
            _walk(child, (*path, part), found, on_path)
        on_path.discard(id(value))


def _attributes(value: Any) -> list[tuple[str, Any]]:
    if hasattr(value, "__dict__"):
        return list(vars(value).items())
    return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value) if hasattr(value, f.name)]


def _changed(before: dict[Path, Entry], after: dict[Path, Entry]) -> list[tuple[Path, bool]]:
    """The places written between two snapshots, each with whether its value was replaced.

    A value replaced, added or deleted is written as a whole (``True``), and nothing inside
    it is listed again. A list or deque that changed length was changed in place, as a
    whole (``False``); a set, element by element (``False``).
    """
    changed: list[tuple[Path, bool]] = []
    whole: set[Path] = set()  # written as a whole: what lies inside is part of that write

    def inside_whole(path: Path) -> bool:
        return any(path[:end] in whole for end in range(1, len(path)))

    for path, (value, shape) in after.items():  # a walk lists each value before what is inside it
        if inside_whole(path):
            continue
        old = before.get(path)
        if old is None or old[0] is not value:
            whole.add(path)
            changed.append((path, True))
        elif shape != old[1]:
            if isinstance(shape, frozenset):
                changed += [((*path, Member(m)), False) for m in shape ^ old[1]]
            else:
                whole.add(path)
                changed.append((path, False))
    for path in before:
        if path not in after and not inside_whole(path):
            whole.add(path)
            changed.append((path, True))
    return changed


# -- watching the store --------------------------------------------------------------------------


@dataclass(eq=False)
class _SubFlow:
    number: int
    params: dict[str, Any]
    written: set[Path] = field(default_factory=set)


_CURRENT: contextvars.ContextVar[_SubFlow | None] = contextvars.ContextVar("pocket_parallel_subflow", default=None)


class RaceWatch(MutableMapping[Hashable, Any]):
    """A view of a shared store that notes which sub-flow writes each place, and reads each key.

    Reads and writes go straight through to ``shared`` (the dict you pass in, kept as
    :attr:`store`, is the one that changes). Top-level keys are watched as they are used;
    values inside are compared before and after each step of a task (see the module's notes),
    which :func:`check_races_async` arranges. ``shared["summaries"][doc] = ...`` is a write
    of ``shared['summaries'][doc]`` only, which is why per-item keys inside a dict made by
    the parent flow are safe. Found races collect in :attr:`races`, each reported once.
    """

    def __init__(self, shared: MutableMapping[Any, Any]) -> None:
        if not isinstance(shared, MutableMapping):
            raise TypeError(f"shared must be a dict (the shared store); got {type(shared).__name__}")
        self.store = shared
        self.races = Races()
        self._running: set[_SubFlow] = set()
        # Running sub-flows that wrote each place, by top-level key, then by path.
        self._writers: dict[Hashable, dict[Path, list[_SubFlow]]] = {}
        self._last_writer: dict[Hashable, _SubFlow | None] = {}  # of each top-level key
        self._seen: set[tuple[Any, ...]] = set()
        self._before = _snapshot(shared)
        self._closed = False

    # -- the mapping: every access goes through to the real store ------------------------------

    def __getitem__(self, key: Hashable) -> Any:
        value = self.store[key]
        self._read(key)
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self.store[key] = value
        self._wrote_key(key)

    def __delitem__(self, key: Hashable) -> None:
        del self.store[key]
        self._wrote_key(key)

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
        self._sync(None)  # what changed before it started is not its doing
        self._running.add(sub)

    def _ended(self, sub: _SubFlow) -> None:
        self._sync(sub)  # what its last step wrote is still its own
        self._running.discard(sub)
        for path in sub.written:
            writers = self._writers[path[0]][path]
            writers[:] = [w for w in writers if w is not sub]

    def _close(self) -> None:
        self._closed = True

    def _sync(self, author: _SubFlow | None) -> None:
        """Compare the store with the last snapshot; every change inside a top-level value is ``author``'s."""
        if self._closed:
            return
        after = _snapshot(self.store)
        for path, replaced in _changed(self._before, after):
            if len(path) > 1 or not replaced:  # a top-level key itself is seen as it is written
                self._wrote(path, author)
        self._before = after

    def _wrote_key(self, key: Hashable) -> None:
        sub = _CURRENT.get()
        self._last_writer[key] = sub
        self._wrote((key,), sub)

    def _wrote(self, path: Path, sub: _SubFlow | None) -> None:
        if sub is None or sub not in self._running:
            return  # the parent flow, or code outside the check
        by_path = self._writers.setdefault(path[0], {})
        for other_path, writers in by_path.items():
            # The same place, or a value inside the one written now (which this write replaces). A
            # container another sub-flow made earlier and this one now files into is no conflict.
            if other_path[:len(path)] != path:
                continue
            for other in writers:
                if other is not sub:
                    race = Race(path[0], other.params, sub.params, "write", path, within=path != other_path)
                    self._report(race, other, sub)
        if path not in sub.written:
            sub.written.add(path)
            by_path.setdefault(path, []).append(sub)

    def _read(self, key: Hashable) -> None:
        sub = _CURRENT.get()
        writer = self._last_writer.get(key)
        if sub is not None and (key,) in sub.written and writer is not None and writer is not sub:
            self._report(Race(key, writer.params, sub.params, "read"), writer, sub)

    def _report(self, race: Race, first: _SubFlow, second: _SubFlow) -> None:
        mark = (race.kind, race.path, first.number, second.number)
        if mark not in self._seen:
            self._seen.add(mark)
            self.races.append(race)


# -- seeing every step of every task -------------------------------------------------------------


class _StepByStep(collections.abc.Coroutine):  # type: ignore[type-arg]
    """A task's coroutine, run exactly as the task would run it, with the store compared around each step.

    A task advances its coroutine one step at a time (``send``, or ``throw`` for a
    cancellation); a step ends at the next ``await`` that suspends. Before a step, what
    changed since the last one was done outside the sub-flows; after it, by the sub-flow
    whose context the task runs in.
    """

    __slots__ = ("_coro", "_watch")

    def __init__(self, coro: Coroutine[Any, Any, Any], watch: RaceWatch) -> None:
        self._coro, self._watch = coro, watch

    def send(self, value: Any) -> Any:
        return self._step(self._coro.send, value)

    def throw(self, error: Any, value: Any = None, traceback: Any = None) -> Any:
        if value is not None:  # the old three-argument form
            error = value if isinstance(value, BaseException) else error(value)
        return self._step(self._coro.throw, error)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        return self

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def __getattr__(self, name: str) -> Any:  # cr_frame, __qualname__, ...: what asyncio shows of a task
        if name in _StepByStep.__slots__:
            raise AttributeError(name)  # not set yet: never look for it on the coroutine
        return getattr(self._coro, name)

    def _step(self, advance: Callable[[Any], Any], argument: Any) -> Any:
        self._watch._sync(None)
        before = _CURRENT.get()
        try:
            return advance(argument)
        finally:
            self._watch._sync(_CURRENT.get() or before)


@contextlib.contextmanager
def _every_task_stepped(watch: RaceWatch) -> Iterator[None]:
    """While the block runs, every task started on this loop runs step by step under ``watch``."""
    loop = asyncio.get_running_loop()
    previous: Callable[..., asyncio.Future[Any]] | None = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        if asyncio.iscoroutine(coro):
            coro = _StepByStep(coro, watch)
        if previous is not None:
            task: asyncio.Future[Any] = previous(loop, coro, **kwargs)
            return task
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield
    finally:
        loop.set_task_factory(previous)
        watch._close()  # tasks still running from here on are no longer watched


async def check_races_async(flow: AsyncFlow, shared: MutableMapping[Any, Any]) -> Races:
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

    flow._orch_async = watched  # an instance attribute wins over the class
    try:
        with _every_task_stepped(watch):
            await flow.run_async(watch)
    finally:
        del flow._orch_async
    return watch.races


def check_races(flow: AsyncFlow, shared: MutableMapping[Any, Any], *, clock: Clock = "virtual") -> Races:
    """Run ``flow`` on ``shared`` and return every race between its concurrent sub-flows.

    ``flow`` is an ``AsyncParallelBatchFlow`` (or a :class:`~pocket_parallel.BoundedParallelBatchFlow`,
    or a sequential ``AsyncBatchFlow``, whose sub-flows never overlap and so never race).
    The flow really runs and ``shared`` ends up as it would without the check. The result is
    a list of :class:`Race` (empty when no two concurrent sub-flows wrote the same place,
    whether a top-level key or a value inside one such as ``shared['scratch']['summary']``);
    print it to see each place and both sub-flows' params.
    """
    check_clock(clock)
    return run(check_races_async(flow, shared), clock=clock)
