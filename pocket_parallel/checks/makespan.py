"""Check for exercise 3: predict a bounded parallel batch's makespan before running it.

The student writes ``predict_makespan(latencies, max_concurrency)``. The check measures the
truth by running a real :class:`~pocket_parallel.BoundedParallelBatchNode` on the virtual clock
with exactly those latencies, and compares. What a semaphore does is simple enough to reason
about and exact enough to check: every item is waiting from the start, and in input order each
takes the slot that frees up first. With equal latencies that is ``ceil(N / C) * L``.

Every tempting shortcut is wrong on at least one of the workloads, by construction, on every
seed: the uneven workload is drawn until its true makespan differs from each of them, and it
comes twice, in two orders with different makespans, so that no answer that ignores the input
order can be right on both. The prediction must be arithmetic: the check stops a function that
runs the batch instead (see :mod:`._compute_only`).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
from collections.abc import Callable
from numbers import Real
from typing import Any

from ..clock import run
from ..experiment import AskEach, makespan_lower_bound, semaphore_makespan
from . import _compute_only
from ._compute_only import RanSomething, TooSlow, call_computing_only
from ._feedback import CheckResult, Fail, NotAttempted, describe, not_attempted_in, plural, run_check, sec, stub_hint
from ._service import CheckLLM, latencies, rounds_schedule

Case = tuple[list[float], "int | None"]
_TOLERANCE = 1e-6
_GAP = 0.01  # seconds by which the telling workloads' true makespan differs from every shortcut


def check_makespan_prediction(predict_makespan: Callable[[list[float], int | None], float], *, seed: int | None = None) -> CheckResult:
    """Exercise 3: check ``predict_makespan(latencies, max_concurrency) -> seconds``.

    ``latencies`` are the seconds each call takes, in the order the items are given to a
    parallel node with a semaphore of ``max_concurrency`` (an int, or None for no limit). The
    prediction must equal, to the microsecond, the makespan measured on the virtual clock, on
    seven fresh workloads: equal latencies, no limit, one slot, more slots than calls, and
    uneven latencies in two orders. It must be computed, not measured: a function that runs
    an event loop, sleeps, starts threads, or calls the simulated LLM or a PocketFlow node
    is stopped and told so. ``seed`` reproduces the workloads.
    """
    if not callable(predict_makespan):
        raise TypeError(f"predict_makespan must be a function such as predict_makespan; got {type(predict_makespan).__name__}")
    return run_check("Exercise 3", lambda rng: _predictions(predict_makespan, rng), seed, predict_makespan)


def _cases(rng: random.Random) -> list[Case]:
    count, limit = rng.randint(5, 12), rng.randint(2, 5)
    while count % limit == 0:
        count = rng.randint(5, 12)
    equal = rng.choice((0.5, 1.0, 1.5, 2.0, 2.5, 3.0))
    cases: list[Case] = [([equal] * count, limit)]
    cases.append(([rng.choice((0.5, 1.0, 2.0, 3.0))] * rng.randint(3, 10), None))
    cases.append((latencies(rng, rng.randint(3, 6)), 1))
    few = latencies(rng, rng.randint(3, 6))
    cases.append((few, len(few) + rng.randint(0, 3)))
    cases.extend(_telling_pair(rng))
    cases.append((latencies(rng, rng.randint(4, 9)), None))
    return cases


def _telling_pair(rng: random.Random) -> tuple[Case, Case]:
    """Uneven latencies where the true schedule differs from every tempting shortcut, then the
    same latencies in another order with another true makespan."""
    while True:
        count, limit = rng.randint(5, 9), rng.randint(2, 3)
        lats = latencies(rng, count, 0.5, 4.0, 0.5)
        truth = semaphore_makespan(lats, limit)
        if not _tells_apart(lats, limit, truth):
            continue
        for _ in range(20):
            reordered = rng.sample(lats, count)
            if abs(semaphore_makespan(reordered, limit) - truth) > _GAP:
                return (lats, limit), (reordered, limit)


def _tells_apart(lats: list[float], limit: int, truth: float) -> bool:
    """Whether the truth differs from every shortcut, and the shortcuts that the feedback explains
    differently differ from each other (so that a wrong answer gets the explanation of its mistake)."""
    found = _shortcuts(lats, limit)
    if any(abs(truth - value) <= _GAP for value in found.values()):
        return False
    groups = [[found[name] for name in names] for names, _ in _MISTAKES]
    return not any(abs(a - b) <= _GAP for i, group in enumerate(groups) for other in groups[i + 1:]
                   for a in group for b in other)


def _shortcuts(lats: list[float], limit: int | None) -> dict[str, float]:
    """Tempting wrong formulas and schedules, by name."""
    count, total = len(lats), math.fsum(lats)
    found = {"sum": total}
    if limit is not None and 1 < limit < count:
        size = math.ceil(count / limit)
        found["bound"] = max(max(lats), total / limit)
        found["tighter bound"] = makespan_lower_bound(lats, limit)
        found["share"] = total / limit
        found["rounds"] = rounds_schedule(lats, limit)
        found["rounds of the longest"] = math.ceil(count / limit) * max(lats)
        found["rounds of the mean"] = math.ceil(count / limit) * total / count
        found["dealt in turn"] = max(math.fsum(lats[slot::limit]) for slot in range(limit))
        found["blocks"] = max(math.fsum(lats[start:start + size]) for start in range(0, count, size))
        found["longest first"] = semaphore_makespan(sorted(lats, reverse=True), limit)
        found["shortest first"] = semaphore_makespan(sorted(lats), limit)
        found["reversed"] = semaphore_makespan(lats[::-1], limit)
    return found


async def _measure(cases: list[Case]) -> list[float]:
    measured = []
    for number, (lats, limit) in enumerate(cases):
        prompts = [f"Summarize: case {number}, call {i}" for i in range(len(lats))]
        llm = CheckLLM(latencies=dict(zip(prompts, lats)))
        loop = asyncio.get_running_loop()
        start = loop.time()
        await AskEach(llm, max_concurrency=limit).run_async({"prompts": prompts})
        measured.append(round(loop.time() - start, 6))
    return measured


def _predictions(predict: Callable[..., Any], rng: random.Random) -> str:
    name = getattr(predict, "__name__", "predict_makespan")
    if inspect.iscoroutinefunction(predict):
        raise Fail(f"{name} is an async function ('async def'), so calling it runs nothing and returns a "
                   f"coroutine, not a number. A prediction is arithmetic: write 'def {name}(latencies, "
                   f"max_concurrency):' and return the makespan in seconds.")
    cases = _cases(rng)
    measured = run(_measure(cases), clock="virtual")
    answered: dict[tuple[tuple[float, ...], int | None], tuple[list[float], float]] = {}
    for (lats, limit), truth in zip(cases, measured):
        prediction = _ask(predict, name, lats, limit)
        if abs(prediction - truth) > _TOLERANCE + 1e-9 * abs(truth):
            same = answered.get((tuple(sorted(lats)), limit))
            if same is not None and abs(same[1] - prediction) <= _TOLERANCE:
                raise Fail(_order_ignored(name, lats, limit, prediction, truth, same[0]))
            raise Fail(f"for {_setting(lats, limit)}, {name} returned {sec(prediction)}, but the run took "
                       f"{sec(truth)} on the virtual clock. {_explain(prediction, lats, limit)}")
        answered[(tuple(sorted(lats)), limit)] = (lats, prediction)
    return (f"{name} matched the virtual clock to the microsecond on seven fresh workloads, by arithmetic "
            f"alone: equal latencies (ceil(N / C) x L), no limit (the slowest call), one slot (the sum), "
            f"more slots than calls, and uneven latencies in two orders, where a semaphore's "
            f"first-free-slot schedule beats rounds of C yet misses the lower bound, and the order of "
            f"the calls changes the makespan. You can say how long a batch will take before you run it.")


def _order_ignored(name: str, lats: list[float], limit: int | None, prediction: float, truth: float,
                   before: list[float]) -> str:
    return (f"for {_setting(lats, limit)}, {name} returned {sec(prediction)}, the same as for these very "
            f"latencies in the order {_short(before)}, but this run took {sec(truth)} on the virtual "
            f"clock. Your prediction does not depend on the order of the calls (did you sort them?), yet "
            f"a semaphore takes the items in input order: which call starts when, and so the makespan, "
            f"changes with the order. " + _SIMULATE)


def _ask(predict: Callable[..., Any], name: str, lats: list[float], limit: int | None) -> float:
    try:
        value = call_computing_only(predict, list(lats), limit)
    except RanSomething as ran:
        raise Fail(f"{name} {ran.what} while predicting {_setting(lats, limit)}. The exercise asks for "
                   f"arithmetic only: work the makespan out from the latencies and C, without running "
                   f"anything. Running the batch (on the virtual clock, say) gives the right number but "
                   f"predicts nothing, so while your function runs the check stops it at the first event "
                   f"loop, sleep, thread, PocketFlow node or call to the simulated LLM. " + _SIMULATE) from None
    except TooSlow:
        raise Fail(f"{name}({_short(lats)}, {limit!r}) was still computing after {_compute_only.TIME_LIMIT:g} s "
                   f"of real time, for {plural(len(lats), 'latency', 'latencies')}: arithmetic on a handful "
                   f"of numbers takes microseconds. Look for a loop that never ends, such as a 'while' "
                   f"whose condition never becomes false.") from None
    except Exception as error:
        stub = not_attempted_in(error)
        if stub is not None:
            raise NotAttempted(stub_hint(stub, name)) from None
        extra = " max_concurrency=None means no limit: every call starts at once." if limit is None else ""
        raise Fail(f"{name}({_short(lats)}, {limit!r}) raised {describe(error)}.{extra} It must return "
                   f"the makespan in seconds for any list of latencies and any max_concurrency, an "
                   f"integer >= 1 or None.") from None
    if inspect.iscoroutine(value):
        value.close()  # never awaited: close it so Python does not warn about it
        raise Fail(f"{name}({_short(lats)}, {limit!r}) returned a coroutine, not a number: it is an async "
                   f"function, or returns the result of one without awaiting it. A prediction is arithmetic: "
                   f"make it a plain 'def' that returns the makespan in seconds.")
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise Fail(f"{name}({_short(lats)}, {limit!r}) returned {value!r}; it must return the makespan "
                   f"in seconds as a number (did you forget the return statement?).")
    return float(value)


def _short(lats: list[float]) -> str:
    return "[" + ", ".join(f"{x:g}" for x in lats) + "]"


def _setting(lats: list[float], limit: int | None) -> str:
    count = len(lats)
    bound = "with no limit (max_concurrency=None)" if limit is None else f"with at most C = {limit} in flight"
    if len(set(lats)) == 1:
        return f"{count} calls of {sec(lats[0])} each {bound}"
    return f"{count} calls with latencies {_short(lats)} s, in this input order, {bound}"


_SIMULATE = ("Hint: follow the semaphore on paper. Keep, for each of the C slots, the time it next becomes "
             "free (all 0 at first); for each latency in input order, take the slot that frees up first "
             "and move its free time on by that latency. The makespan is when the last slot frees up.")


def _explain(prediction: float, lats: list[float], limit: int | None) -> str:
    count = len(lats)
    if limit is None or limit >= count:
        if abs(prediction - math.fsum(lats)) <= _TOLERANCE and count > 1:
            return ("You added the latencies, as if the calls ran one after another. With no limit, or "
                    "at least as many slots as calls, every call starts at once, so the batch ends when "
                    "its slowest call does.")
        return "With no limit, or at least as many slots as calls, every call starts at once: the batch ends when its slowest call does."
    if limit == 1:
        return "With one slot the calls run one after another: the makespan is the sum of the latencies."
    matches = [name for name, value in _shortcuts(lats, limit).items() if abs(prediction - value) <= _TOLERANCE]
    if len(set(lats)) == 1:
        if "share" in matches or "bound" in matches:
            return (f"You divided the work evenly ({count} x {sec(lats[0])} / {limit}), but a call cannot be "
                    f"split: the calls go in rounds of C, and the last round, with only {count % limit} "
                    f"call{'s' * (count % limit != 1)}, still takes a whole {sec(lats[0])}. That makes "
                    f"ceil(N / C) rounds.")
        return "With equal latencies L the calls go in rounds of C, each taking L: ceil(N / C) x L."
    for names, why in _MISTAKES:
        if any(name in matches for name in names):
            return why + _SIMULATE
    return _SIMULATE


# What each tempting shortcut gets wrong, in the order to test them (the first match is named).
_MISTAKES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("bound", "tighter bound", "share"), "Your prediction is a lower bound, such as max(longest call, total / C): "
                                          "no schedule can finish sooner, and only a perfect packing reaches it. "
                                          "The semaphore does not pack: it takes the items in input order, each in "
                                          "the first slot that frees up. "),
    (("rounds",), "You grouped the calls into rounds of C, each as long as its slowest call. A semaphore does "
                  "not wait for a whole round: the moment any call ends, the next item takes its slot. "),
    (("rounds of the longest", "rounds of the mean"), "Rounds of C calls are right only when every call takes "
                                                      "the same time; here they differ. "),
    (("dealt in turn", "blocks"), "You gave each slot its own fixed share of the calls (call 1 to slot 1, "
                                  "call 2 to slot 2, ..., or one block of calls per slot), as if each slot had "
                                  "its own queue. A semaphore has one queue for all slots: the next call goes "
                                  "to whichever slot frees up first, so a slot with short calls takes more of "
                                  "them. "),
    (("longest first", "shortest first", "reversed"), "You reordered the calls (longest first, shortest first "
                                                      "or back to front). Sorting can shorten a batch, but a "
                                                      "semaphore does not sort: it takes the items in input "
                                                      "order, as prep_async returned them. "),
)
