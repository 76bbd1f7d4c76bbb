"""PocketFlow's parallel node and flow, with limits that hold wherever they run.

The chapter's ``RateLimitedParallelNode`` overrides ``run_async``. An ``AsyncFlow`` never
calls ``run_async`` on its nodes: it calls ``_run_async``, which calls ``_exec``. So inside a
flow the override is skipped and every item starts at once. The classes here limit the
per-item step itself, PocketFlow's ``AsyncNode._exec`` (``exec_async`` with ``max_retries``,
``wait`` and ``exec_fallback_async``), the one step both paths go through, and run it on
the bounded-batch engine (:mod:`pocket_parallel._engine`): at most C items in flight, the
next item starting the moment a slot frees, in input order.

On top of that they can pace requests (``max_per_minute``), back off between attempts
(``backoff``), give each attempt a deadline (``timeout``) and the whole batch one
(``deadline``), keep failed items as :class:`~pocket_parallel.Failure` records instead of
stopping at the first error (``collect_failures``), and keep the outcome of every item
reachable in ``.outcomes`` even when the run is cancelled.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar

from pocketflow import (
    AsyncNode,
    AsyncParallelBatchFlow,
    AsyncParallelBatchNode,
    BaseNode,
)

from ._engine import ItemFailed, Slot, run_batch
from ._validate import check_bool, check_int, check_limit, check_optional_seconds, check_real
from .journal import Journal, JournalError
from .limits.ratelimit import RateLimiter
from .limits.retry import Backoff
from .limits.settings import check_backoff, check_max_per_minute, check_max_tokens_per_minute
from .limits.tokens import REFUND_QUANTUM, TokenBudget, acquire_together
from .outcomes import DeadlineExceeded, Failure, Outcomes

T = TypeVar("T")
_FROM_CLASS: Any = object()  # "not given": use the value in the class body


def _setting(obj: Any, name: str, given: Any) -> Any:
    """The argument if given, else the class attribute."""
    return getattr(type(obj), name, None) if given is _FROM_CLASS else given


def _check_gate(value: Any) -> AbstractAsyncContextManager[Any] | None:
    """An async context manager each attempt enters (an ``asyncio.Semaphore``, say), or None."""
    if value is None:
        return None
    if not (hasattr(value, "__aenter__") and hasattr(value, "__aexit__")):
        raise TypeError(
            f"shared_gate must be an async context manager each call enters, such as asyncio.Semaphore(5) shared "
            f"with other nodes, or None; got {value!r}"
        )
    gate: AbstractAsyncContextManager[Any] = value
    return gate


#: Each token budget of the node: (its setting, the per-item estimate it needs, what that estimate is, an example).
TOKEN_BUDGETS = (
    ("max_tokens_per_minute", "tokens_for", "the tokens its request will use, prompt plus answer",
     "lambda prompt: estimate_tokens(prompt) + 200"),
    ("max_input_tokens_per_minute", "input_tokens_for", "the input tokens of its request (every message)",
     "lambda prompt: estimate_tokens(prompt)"),
    ("max_output_tokens_per_minute", "output_tokens_for", "the output tokens its request reserves: its max_tokens",
     "lambda prompt: 500, or simply 500"),
)


def _check_tokens_for(value: Any, budget: Any, name: str = "tokens_for") -> Callable[[Any], int] | None:
    """A per-item token estimate: required with its token budget; a callable (``output_tokens_for``: or an int)."""
    setting, _, what, example = next(entry for entry in TOKEN_BUDGETS if entry[1] == name)
    if value is None:
        if budget is not None:
            raise ValueError(
                f"{name} must be given with {setting}: a function from an item to {what} (e.g. {example})"
            )
        return None
    if name == "output_tokens_for" and not callable(value):
        reserved = check_int(name, value, low=1)
        return lambda item: reserved
    if not callable(value):
        raise TypeError(f"{name} must be a function from an item to {what}; got {value!r}")
    estimate: Callable[[Any], int] = value
    return estimate


def _check_output_tokens_used(value: Any, budget: Any) -> Callable[[Any], int] | None:
    """How many output tokens an attempt's answer used: a callable, given only with an output budget, or None."""
    if value is None:
        return None
    if not callable(value):
        raise TypeError(f"output_tokens_used must be a function from an attempt's answer to the output tokens it "
                        f"used (e.g. lambda reply: reply.output_tokens), or None; got {value!r}")
    if budget is None:
        raise ValueError("output_tokens_used hands unused output tokens back to max_output_tokens_per_minute: "
                         "give it with that budget (and output_tokens_for), or leave it None")
    used: Callable[[Any], int] = value
    return used


def _check_backoff_and_wait(value: Any, wait: float) -> Backoff | None:
    backoff: Backoff | None = check_backoff(value)
    if backoff is not None and wait > 0:
        raise ValueError(
            f"give wait (a constant pause) or backoff (growing, jittered pauses), not both; "
            f"got wait={wait!r} and backoff={backoff!r}"
        )
    return backoff


class _RunState:
    """Mutable state shared by a node and the shallow copies an ``AsyncFlow`` runs.

    A flow runs ``copy.copy(node)``, so attributes set during the run land on the copy.
    This one object is shared by the original and every copy, so ``node.outcomes`` on the
    node you built shows the latest run, wherever it ran.
    """

    def __init__(self) -> None:
        self.outcomes: Outcomes | None = None
        self.limiter: RateLimiter | None = None
        self.budgets: dict[str, TokenBudget] = {}

    def rate_limiter(self, setting: Any) -> RateLimiter | None:
        value = check_max_per_minute(setting)
        if value is None or isinstance(value, RateLimiter):
            return value
        if self.limiter is None or self.limiter.requests != value:  # reused across runs: one budget
            self.limiter = RateLimiter(value, per=60.0)
        return self.limiter

    def token_budget(self, setting: Any, name: str = "max_tokens_per_minute", refunded: bool = False
                     ) -> TokenBudget | None:
        """The budget a token setting asks for: ``max_tokens_per_minute`` as always (a minute's
        bucket), the input and output budgets paced evenly (no burst: the server's quantum is unknown);
        an output budget that is ``refunded`` keeps a second's refill for its refunds, starting empty."""
        value = check_max_tokens_per_minute(setting, name)
        if value is None or isinstance(value, TokenBudget):
            return value
        if name == "max_tokens_per_minute":
            wanted = TokenBudget(value)
        elif refunded:
            wanted = TokenBudget(value, quantum=REFUND_QUANTUM, start_full=False)
        else:
            wanted = TokenBudget(value, quantum=0.0)
        budget = self.budgets.get(name)
        if budget is None or _shape(budget) != _shape(wanted):  # reused across runs: one budget
            budget = self.budgets[name] = wanted
        return budget


def _shape(budget: TokenBudget) -> tuple[int, float, bool]:
    return budget.tokens_per_minute, budget.quantum, budget.start_full


def _run_state(obj: Any) -> _RunState:
    """The node's or flow's shared run state, made on first use if its __init__ was skipped."""
    state: _RunState | None = obj.__dict__.get("_state")
    if state is None:  # a subclass whose __init__ did not call ours
        state = obj._state = _RunState()
    return state


class _JournalRecorder:
    """Tells a journal of every item that ends, the moment it ends, under that item's key.

    A write the journal refuses (a full disk, say) does not stop the batch: the item keeps
    its outcome, and ``outcomes`` notes that it was not saved.
    """

    def __init__(self, journal: Journal, keys: list[str], outcomes: Outcomes) -> None:
        self.journal, self.keys, self.outcomes = journal, keys, outcomes
        self.problem: JournalError | None = None

    def succeeded(self, index: int, value: Any) -> None:
        self._saved(index, lambda: self.journal.record_result(self.keys[index], value, position=index))

    def failed(self, index: int, failure: Failure) -> None:
        self._saved(index, lambda: self.journal.record_failure(self.keys[index], failure.error, failure.attempts,
                                                               position=index))

    def _saved(self, index: int, write: Callable[[], bool]) -> None:
        try:
            write()
        except JournalError as error:
            self.outcomes._not_saved(index)
            self.problem = self.problem or error

    def report(self) -> None:
        """Warn once if some outcomes could not be written."""
        if self.problem is not None:
            warnings.warn(f"{len(self.outcomes.not_saved)} of this run's outcomes were not saved in the journal: "
                          f"{self.problem}. They are in the results, and .outcomes.not_saved lists their items.",
                          RuntimeWarning, stacklevel=2)


@contextmanager
def _journaled(owner: Any, setting: Any, outcomes: Outcomes) -> Iterator[tuple[dict[int, Any], _JournalRecorder | None]]:
    """The items a journal already answered (by index), and a recorder for the rest; opens and closes a path."""
    if setting is None:
        yield {}, None
        return
    journal = setting if isinstance(setting, Journal) else Journal(setting, identity=_identity(owner))
    try:
        keys = [journal.key_of(item) for item in outcomes.items]  # an item without a key fails before any call
        answered = journal.answered(keys)
        recorder = _JournalRecorder(journal, keys, outcomes)
        try:
            yield {i: answered[key] for i, key in enumerate(keys) if key in answered}, recorder
        finally:
            recorder.report()
    finally:
        if journal is not setting:
            journal.close()


def _identity(owner: Any) -> str:
    """The batch a journal belongs to: the node's or flow's class, by module and name."""
    kind = type(owner)
    return f"{kind.__module__}.{kind.__qualname__}"


def _check_journal(value: Any) -> Journal | str | os.PathLike[str] | None:
    if value is None or isinstance(value, (Journal, str, os.PathLike)):
        return value
    raise TypeError(f"journal must be a file path (str or Path), a Journal, or None; got {value!r}")


def _deadline(seconds: float | None) -> float | None:
    """The loop time ``seconds`` from now, or None."""
    return None if seconds is None else asyncio.get_running_loop().time() + seconds


class AttemptTimeout(TimeoutError):
    """An attempt ran past the node's ``timeout`` and was cancelled; PocketFlow's loop may retry it."""


if sys.version_info >= (3, 11):

    async def _within(seconds: float, awaitable: Awaitable[T], attempt: int) -> T:
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():  # ours, not a TimeoutError from inside the attempt
                raise AttemptTimeout(f"attempt {attempt} took longer than the timeout of {seconds:g} s") from None
            raise

else:  # pragma: no cover - Python 3.10

    async def _within(seconds: float, awaitable: Awaitable[T], attempt: int) -> T:
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait([task], timeout=seconds)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise AttemptTimeout(f"attempt {attempt} took longer than the timeout of {seconds:g} s")
        return task.result()


class _Pacing:
    """What every attempt waits for, in order: the shared gate, the request budget, the token budgets;
    and what a successful attempt hands back: the output tokens it reserved and did not use."""

    __slots__ = ("rate", "budgets", "gate", "output", "used")

    def __init__(
        self, rate: RateLimiter | None, budgets: list[tuple[str, TokenBudget, Callable[[Any], int]]],
        gate: AbstractAsyncContextManager[Any] | None, used: Callable[[Any], int] | None = None,
    ) -> None:
        self.rate, self.gate, self.used = rate, gate, used
        self.budgets = [(budget, estimate) for _, budget, estimate in budgets]
        self.output = next((budget for setting, budget, _ in budgets if setting == "max_output_tokens_per_minute"),
                           None)

    @classmethod
    def of(cls, node: Any, state: _RunState) -> _Pacing:
        """The node's pacing for this run (settings re-checked: they may have been reassigned since __init__)."""
        used = _check_output_tokens_used(node.output_tokens_used, node.max_output_tokens_per_minute)
        budgets = []
        for setting, estimate_name, _, _ in TOKEN_BUDGETS:
            budget = state.token_budget(getattr(node, setting), setting, refunded=used is not None)
            estimate = _check_tokens_for(getattr(node, estimate_name), budget, estimate_name)
            if budget is not None and estimate is not None:
                budgets.append((setting, budget, estimate))
        return cls(state.rate_limiter(node.max_per_minute), budgets, _check_gate(node.shared_gate), used)

    @property
    def active(self) -> bool:
        return self.rate is not None or bool(self.budgets) or self.gate is not None

    async def wait_turn(self, item: Any) -> int:
        """Wait until the request budget and every token budget let the attempt go at once, and spend them;
        returns the output tokens it reserved (0: none)."""
        wanted = [(budget, estimate(item)) for budget, estimate in self.budgets]
        rate = None if self.rate is None else self.rate.acquire
        if wanted:
            await acquire_together(wanted, then=rate)
        elif rate is not None:
            await rate()
        return next((tokens for budget, tokens in wanted if budget is self.output), 0)

    def hand_back(self, reserved: int, answer: Any) -> None:
        """Return to the output budget what the attempt reserved and its answer did not use (never more)."""
        if self.used is None or self.output is None or not reserved:
            return
        used = self.used(answer)
        if isinstance(used, bool) or not isinstance(used, int) or used < 0:
            raise TypeError(f"output_tokens_used must return the output tokens the answer used, an integer >= 0; "
                            f"got {used!r} for {answer!r:.80}")
        self.output.refund(reserved - min(used, reserved))


class _Attempts:
    """Stands in for the node as ``self`` in PocketFlow's per-item retry loop, ``AsyncNode._exec``.

    That loop calls ``self.exec_async`` once per attempt and reads ``max_retries``, ``wait``
    and ``exec_fallback_async`` from ``self`` (newer PocketFlow also sets ``self.cur_retry``).
    This stand-in hands those through to the node, except ``exec_async``, which it wraps:
    before each attempt it sleeps the backoff owed for the previous failure (lending its
    concurrency slot meanwhile if it was given one to lend), then takes a token from the
    rate limiter, then calls the
    node's own ``exec_async`` within the attempt's ``timeout``. PocketFlow's loop still
    decides how many attempts there are and what happens after the last one.
    """

    __slots__ = ("_node", "_key", "_pacing", "_backoff", "_timeout", "_slot", "attempts", "last_error")

    def __init__(
        self, node: AsyncNode, key: int, pacing: _Pacing, backoff: Backoff | None,
        timeout: float | None, slot: Slot | None,
    ) -> None:
        self._node, self._key, self._pacing, self._backoff = node, key, pacing, backoff
        self._timeout, self._slot = timeout, slot
        self.attempts = 0
        self.last_error: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)

    @property
    def cur_retry(self) -> Any:
        return self._node.cur_retry

    @cur_retry.setter
    def cur_retry(self, value: Any) -> None:
        self._node.cur_retry = value  # newer PocketFlow numbers attempts on the node itself

    async def exec_async(self, prep_res: Any) -> Any:
        if self.attempts and self._backoff is not None:
            delay = self._backoff.delay(self.attempts, self.last_error, self._key)
            if math.isinf(delay):  # the server said waiting never helps: fail without a request
                self.attempts += 1
                raise self.last_error  # type: ignore[misc]
            if self._slot is None:
                await asyncio.sleep(delay)
            else:
                async with self._slot.lent():  # asleep, the item is no call in flight: another may start
                    await asyncio.sleep(delay)
        self.attempts += 1
        gate = self._pacing.gate
        try:
            if gate is None:
                return await self._attempt(prep_res)
            async with gate:
                return await self._attempt(prep_res)
        except Exception as error:
            self.last_error = error
            raise

    async def _attempt(self, prep_res: Any) -> Any:
        reserved = await self._pacing.wait_turn(prep_res)
        if self._timeout is None:
            answer = await self._node.exec_async(prep_res)
        else:
            answer = await _within(self._timeout, self._node.exec_async(prep_res), self.attempts)
        self._pacing.hand_back(reserved, answer)
        return answer


class BoundedParallelBatchNode(AsyncParallelBatchNode):
    """PocketFlow's ``AsyncParallelBatchNode`` with at most ``max_concurrency`` items in flight.

    Use it exactly like ``AsyncParallelBatchNode`` (``prep_async`` returns the items,
    ``exec_async`` handles one, ``post_async`` gets the results in input order), and give
    the limits at construction or in the class body::

        class Summarize(BoundedParallelBatchNode):
            max_concurrency = 5
            async def exec_async(self, text): ...

        Summarize(max_retries=3, wait=1)            # 5 from the class
        Summarize(max_concurrency=None)             # no limit
        Summarize(max_retries=8, max_per_minute=60, backoff=Backoff(), collect_failures=True)

    The limit holds whether the node runs alone (``run_async``) or inside an ``AsyncFlow``.
    The next item starts the moment a slot frees, in input order. An item keeps its slot
    through its attempts and the pauses between them, so a retrying item is never
    overtaken by a new one. ``max_concurrency`` is an integer >= 1, or None for no limit.

    Further settings (each also settable in the class body):

    - ``max_per_minute``: at most this many ``exec_async`` calls start in any 60 s window;
      every attempt counts, retries included, because each is a request to the service.
      An integer >= 1, a :class:`~pocket_parallel.RateLimiter` shared with other nodes, or
      None. Requests are spaced evenly, with no initial burst (see
      :mod:`pocket_parallel.limits.ratelimit` for why): a server whose bucket holds a
      second's share, as OpenAI enforces, never refuses them.
    - ``max_tokens_per_minute`` with ``tokens_for``: before each attempt, take
      ``tokens_for(item)`` tokens (its estimate: prompt plus answer) from a budget that
      refills continuously, as the provider's does, starting with a minute's worth. An
      integer >= 1, a :class:`~pocket_parallel.limits.tokens.TokenBudget` shared with other
      nodes, or None. :class:`~pocket_parallel.limits.announced.AnnouncedLimits` sizes both
      from a response's headers, with the budget paced evenly (``TokenBudget(n, quantum=0)``:
      a server that enforces per second refuses a minute's burst).
    - ``max_input_tokens_per_minute`` with ``input_tokens_for`` (the item's input tokens,
      every message) and ``max_output_tokens_per_minute`` with ``output_tokens_for`` (the
      output the item's request reserves: its ``max_tokens``; a function of the item, or one
      number for every item): budgets for a provider that limits input and output tokens
      apart, as Anthropic does. They are paced evenly, with no initial burst (a
      ``TokenBudget(n, quantum=0)``), since no header tells a client how large a burst the
      server's bucket takes.
    - ``output_tokens_used``: a function from an attempt's answer (what ``exec_async``
      returned) to the output tokens the answer used, such as ``estimate_tokens`` for a
      text answer, or ``lambda reply: reply.output_tokens``; thinking tokens count as output.
      After each successful attempt the node hands back to the output budget what the
      request reserved and the answer did not use (never more than it reserved), as
      Anthropic's server does when an answer ends. Without it, nothing is handed back, and a
      ``max_tokens`` far above the answers' length slows the node below what the server
      would allow. With it, the output budget (from an integer) keeps the refunds it is
      handed, up to one second of refill (:data:`~pocket_parallel.limits.tokens.REFUND_QUANTUM`),
      starting empty. A count below the server's lets the node overdraw the budget: when
      unsure, count high. Needs ``max_output_tokens_per_minute``.
    - ``shared_gate``: an async context manager each attempt enters and holds for its call, such as
      an ``asyncio.Semaphore`` shared by several nodes (one cap for the whole account) or
      a cluster-wide cap (:mod:`pocket_parallel.cluster`). None: no gate.
    - ``backoff``: a :class:`~pocket_parallel.Backoff` that replaces PocketFlow's constant
      ``wait`` (give one or the other) with exponential backoff and full jitter that
      honours a server's ``retry_after``.
    - ``backoff_releases_slot``: True lets an item asleep in its ``backoff`` lend its slot
      to the next item (it gets a slot back before any new item starts). Then at most C
      calls are in flight, but more than C items may be in progress, and every one of them
      can be refused and retried: against a server that is already full that means many
      more 429s for the same throughput. False by default.
    - ``timeout``: seconds one attempt may take; a slower attempt is cancelled and counts as
      a failed attempt (a ``TimeoutError``), which PocketFlow's loop may retry. None: no
      limit.
    - ``deadline``: seconds the whole batch may take; when they pass, what finished is kept,
      the items in flight are cancelled, and they and the items never started become
      :class:`~pocket_parallel.Failure` records whose error is a
      :class:`~pocket_parallel.outcomes.DeadlineExceeded`. None: no deadline.
    - ``journal``: a file path (or a :class:`~pocket_parallel.journal.Journal`): each
      item's result or failure is written to that SQLite file the moment it arrives, and a
      later run of the same node over the same items sends only the items not answered yet
      (failures are retried). After a crash at any point nothing finished is lost, and at
      most the calls that were in flight are paid again. Items are keyed by their content
      (:func:`~pocket_parallel.journal.item_key`; give a ``Journal(path, identity, key=...)``
      to choose keys). A journal that cannot be used (another node class's, read-only,
      damaged...) raises :class:`~pocket_parallel.journal.JournalError` before any call;
      if the disk fills during the run, the answers stay in the results,
      ``node.outcomes.not_saved`` lists the items whose outcome was not written, and a
      ``RuntimeWarning`` says so.
    - ``collect_failures``: False (the default, as PocketFlow) raises the first error that
      survives all retries and ``exec_fallback_async``, after cancelling the other items
      (and raises ``DeadlineExceeded`` when the deadline passes); True keeps going and
      hands ``post_async`` a :class:`~pocket_parallel.Failure` (item, last error, attempts)
      in that item's place.

    ``node.outcomes`` is an :class:`~pocket_parallel.outcomes.Outcomes` for the latest run,
    filled in as items finish: after an error or a cancellation (``task.cancel()``, a
    kernel interrupt) it still holds every result that was finished. A cancelled run
    cancels every item in flight and leaves no task behind.
    """

    max_concurrency: int | None = None
    max_per_minute: int | RateLimiter | None = None
    max_tokens_per_minute: int | TokenBudget | None = None
    tokens_for: Callable[[Any], int] | None = None
    max_input_tokens_per_minute: int | TokenBudget | None = None
    input_tokens_for: Callable[[Any], int] | None = None
    max_output_tokens_per_minute: int | TokenBudget | None = None
    output_tokens_for: Callable[[Any], int] | int | None = None
    output_tokens_used: Callable[[Any], int] | None = None
    shared_gate: AbstractAsyncContextManager[Any] | None = None
    backoff: Backoff | None = None
    backoff_releases_slot: bool = False
    timeout: float | None = None
    deadline: float | None = None
    journal: Journal | str | os.PathLike[str] | None = None
    collect_failures: bool = False

    def __init__(
        self,
        max_retries: int = 1,
        wait: float = 0,
        *,
        max_concurrency: Any = _FROM_CLASS,
        max_per_minute: Any = _FROM_CLASS,
        max_tokens_per_minute: Any = _FROM_CLASS,
        tokens_for: Any = _FROM_CLASS,
        max_input_tokens_per_minute: Any = _FROM_CLASS,
        input_tokens_for: Any = _FROM_CLASS,
        max_output_tokens_per_minute: Any = _FROM_CLASS,
        output_tokens_for: Any = _FROM_CLASS,
        output_tokens_used: Any = _FROM_CLASS,
        shared_gate: Any = _FROM_CLASS,
        backoff: Any = _FROM_CLASS,
        backoff_releases_slot: Any = _FROM_CLASS,
        timeout: Any = _FROM_CLASS,
        deadline: Any = _FROM_CLASS,
        journal: Any = _FROM_CLASS,
        collect_failures: Any = _FROM_CLASS,
    ) -> None:
        super().__init__(
            max_retries=check_int("max_retries", max_retries, low=1),
            wait=check_real("wait", wait, low=0.0),
        )
        self.max_concurrency = check_limit("max_concurrency", _setting(self, "max_concurrency", max_concurrency))
        self.max_per_minute = check_max_per_minute(_setting(self, "max_per_minute", max_per_minute))
        given = {"max_tokens_per_minute": max_tokens_per_minute, "tokens_for": tokens_for,
                 "max_input_tokens_per_minute": max_input_tokens_per_minute, "input_tokens_for": input_tokens_for,
                 "max_output_tokens_per_minute": max_output_tokens_per_minute, "output_tokens_for": output_tokens_for}
        for setting, estimate_name, _, _ in TOKEN_BUDGETS:
            budget = check_max_tokens_per_minute(_setting(self, setting, given[setting]), setting)
            estimate = _setting(self, estimate_name, given[estimate_name])
            _check_tokens_for(estimate, budget, estimate_name)
            setattr(self, setting, budget)
            setattr(self, estimate_name, estimate)
        self.output_tokens_used = _check_output_tokens_used(
            _setting(self, "output_tokens_used", output_tokens_used), self.max_output_tokens_per_minute)
        self.shared_gate = _check_gate(_setting(self, "shared_gate", shared_gate))
        self.backoff = _check_backoff_and_wait(_setting(self, "backoff", backoff), self.wait)
        self.backoff_releases_slot = check_bool(
            "backoff_releases_slot", _setting(self, "backoff_releases_slot", backoff_releases_slot))
        self.timeout = check_optional_seconds("timeout", _setting(self, "timeout", timeout))
        self.deadline = check_optional_seconds("deadline", _setting(self, "deadline", deadline))
        self.journal = _check_journal(_setting(self, "journal", journal))
        self.collect_failures = check_bool("collect_failures", _setting(self, "collect_failures", collect_failures))
        self._state = _RunState()

    @property
    def outcomes(self) -> Outcomes | None:
        """What became of each item in the latest run (None before the first run)."""
        return _run_state(self).outcomes

    async def _exec(self, items: Any) -> list[Any]:
        # Settings are re-checked at run time: they may have been reassigned since __init__.
        limit = check_limit("max_concurrency", self.max_concurrency)
        state = _run_state(self)
        pacing = _Pacing.of(self, state)
        backoff = _check_backoff_and_wait(self.backoff, self.wait)
        lend = check_bool("backoff_releases_slot", self.backoff_releases_slot)
        timeout = check_optional_seconds("timeout", self.timeout)
        deadline = _deadline(check_optional_seconds("deadline", self.deadline))
        keep_going = check_bool("collect_failures", self.collect_failures)
        outcomes = state.outcomes = Outcomes(items or [])
        # AsyncNode._exec is PocketFlow's per-item step: exec_async with retries and fallback.
        run_item = AsyncNode._exec
        plain = not pacing.active and backoff is None and timeout is None and deadline is None

        async def one(index: int, item: Any, slot: Slot) -> Any:
            # Without pacing, backoff, timeout or deadline, PocketFlow's retry loop runs on the
            # node itself (the fast path); otherwise on a stand-in that handles each attempt.
            runner: Any = self if plain else _Attempts(self, index, pacing, backoff, timeout, slot if lend else None)
            try:
                return await run_item(runner, item)
            except Exception as error:
                # PocketFlow's loop lets an error out only after its last attempt.
                tried = self.max_retries if plain else runner.attempts
                raise ItemFailed(Failure(item, error, tried)) from error
            except asyncio.CancelledError:
                if slot.deadline_passed:  # the batch deadline, not the caller: a failure with its attempts
                    raise ItemFailed(Failure(item, DeadlineExceeded(), runner.attempts)) from None
                raise

        with _journaled(self, _check_journal(self.journal), outcomes) as (answered, recorder):
            return await run_batch(outcomes.items, one, outcomes, limit=limit, keep_going=keep_going,
                                   deadline=deadline, answered=answered, recorder=recorder)


class BoundedParallelBatchFlow(AsyncParallelBatchFlow):
    """PocketFlow's ``AsyncParallelBatchFlow`` running at most ``max_concurrency`` sub-flows at once.

    ``prep_async`` returns one parameter dict per sub-flow, as in PocketFlow. All sub-flows
    share the one ``shared`` dict: keep per-item data under per-item keys (taken from
    ``self.params``), never under a fixed key that another sub-flow can overwrite
    (:func:`~pocket_parallel.check_races` finds such keys).

    ``max_per_minute`` (an integer >= 1, a :class:`~pocket_parallel.RateLimiter`, or None)
    limits how many sub-flows *start* in any 60 s window; a sub-flow that makes several
    requests, or retries, makes more than one request per start. ``deadline`` (seconds)
    stops the whole batch when it passes, as on the node. ``journal`` (a path or a
    :class:`~pocket_parallel.journal.Journal`) records each sub-flow that finished, keyed by
    its params, so a re-run runs only the others: keep what a sub-flow produces outside
    ``shared`` (files, or a journaled node inside it), since a skipped sub-flow writes
    nothing to this run's ``shared``. ``collect_failures=True`` lets
    the other sub-flows go on when one raises, and records it as a
    :class:`~pocket_parallel.Failure` whose item is its params. ``flow.outcomes`` shows
    which sub-flows finished, failed or were cancelled in the latest run.
    """

    max_concurrency: int | None = None
    max_per_minute: int | RateLimiter | None = None
    deadline: float | None = None
    journal: Journal | str | os.PathLike[str] | None = None
    collect_failures: bool = False

    def __init__(
        self,
        start: BaseNode | None = None,
        *,
        max_concurrency: Any = _FROM_CLASS,
        max_per_minute: Any = _FROM_CLASS,
        deadline: Any = _FROM_CLASS,
        journal: Any = _FROM_CLASS,
        collect_failures: Any = _FROM_CLASS,
    ) -> None:
        super().__init__(start=start)
        self.max_concurrency = check_limit("max_concurrency", _setting(self, "max_concurrency", max_concurrency))
        self.max_per_minute = check_max_per_minute(_setting(self, "max_per_minute", max_per_minute))
        self.deadline = check_optional_seconds("deadline", _setting(self, "deadline", deadline))
        self.journal = _check_journal(_setting(self, "journal", journal))
        self.collect_failures = check_bool("collect_failures", _setting(self, "collect_failures", collect_failures))
        self._state = _RunState()

    @property
    def outcomes(self) -> Outcomes | None:
        """What became of each sub-flow (by its params) in the latest run (None before the first)."""
        return _run_state(self).outcomes

    async def _run_async(self, shared: Any) -> Any:
        limit = check_limit("max_concurrency", self.max_concurrency)  # it may have been reassigned
        state = _run_state(self)
        rate = state.rate_limiter(self.max_per_minute)
        deadline = _deadline(check_optional_seconds("deadline", self.deadline))
        keep_going = check_bool("collect_failures", self.collect_failures)
        batch = await self.prep_async(shared) or []
        outcomes = state.outcomes = Outcomes(batch)

        async def one(index: int, params: dict[str, Any], slot: Slot) -> None:
            if rate is not None:
                await rate.acquire()
            await self._orch_async(shared, {**self.params, **params})

        with _journaled(self, _check_journal(self.journal), outcomes) as (answered, recorder):
            await run_batch(outcomes.items, one, outcomes, limit=limit, keep_going=keep_going, deadline=deadline,
                            answered=answered, recorder=recorder)
        return await self.post_async(shared, batch, None)
