"""Check for exercise 3: predict a bounded parallel batch's makespan before running it.

The student writes ``predict_makespan(latencies, max_concurrency)``. The check measures the
truth by running a real :class:`~pocket_parallel.BoundedParallelBatchNode` on the virtual clock
with exactly those latencies, and compares. What a semaphore does is simple enough to reason
about and exact enough to check: every item is waiting from the start, and in input order each
takes the slot that frees up first. With equal latencies that is ``ceil(N / C) * L``.

Every tempting shortcut is wrong on at least one of the workloads, by construction, on every
seed: the uneven workload is drawn until its true makespan differs from each of them, and it
comes twice, in two orders with different makespans, so that no answer that ignores the input
order can be right on both. Latencies are drawn to the microsecond, so that no simulation in
ticks of any practical size comes out exact; an empty batch comes twice.

The prediction must be arithmetic, and its own: it runs in a process of its own that gets only
the latencies and C (see :mod:`._predictor`), where it cannot import an event loop, threads, the
course's code or PocketFlow, nor read the check's frames; and the list it is given must come
back unchanged.
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..clock import run
from ..experiment import AskEach, makespan_lower_bound, semaphore_makespan
from ._errors import stub_hint
from ._feedback import SETTINGS, Check, CheckResult, Fail, Lab, NotAttempted, Raised, plural, sec
from ._predictor import REFUSED, describe_refusal
from ._service import CheckLLM, rounds_schedule, uneven

Case = tuple[list[float], "int | None"]
_TOLERANCE = 1e-6
_GAP = 0.01  # seconds by which the telling workloads' true makespan differs from every shortcut
#: Real seconds the predictions of one workload may take (arithmetic on a few numbers takes microseconds).
TIME_LIMIT = 10.0


def check_makespan_prediction(predict_makespan: Callable[[list[float], int | None], float], *, seed: int | None = None) -> CheckResult:
    """Exercise 3: check ``predict_makespan(latencies, max_concurrency) -> seconds``.

    ``latencies`` are the seconds each call takes, in the order the items are given to a
    parallel node with a semaphore of ``max_concurrency`` (an int, or None for no limit). The
    prediction must equal, to the microsecond, the makespan measured on the virtual clock, on
    fresh workloads: equal latencies, no limit, one slot, more slots than calls, no calls at
    all, uneven latencies in two orders, and a longer batch. It must be computed, not
    measured, and it gets nothing but the latencies and C: it runs in a process where an event
    loop, threads, processes, PocketFlow and the course's code cannot be imported, and must leave
    the list it is given unchanged. ``seed`` reproduces the workloads.
    """
    if not callable(predict_makespan):
        raise TypeError(f"predict_makespan must be a function such as predict_makespan; got {type(predict_makespan).__name__}")
    return EXERCISE_3(predict_makespan, seed)


def _cases(rng: random.Random) -> list[Case]:
    count, limit = rng.randint(5, 12), rng.randint(2, 5)
    while count % limit == 0:
        count = rng.randint(5, 12)
    cases: list[Case] = [([round(rng.uniform(0.4, 3.2), 6)] * count, limit)]
    cases.append((uneven(rng, rng.randint(3, 10), 0.4, 3.2), None))
    cases.append((uneven(rng, rng.randint(3, 7), 0.4, 3.2), 1))
    few = uneven(rng, rng.randint(3, 6), 0.4, 3.2)
    cases.append((few, len(few) + rng.randint(0, 3)))
    cases.append(([], rng.randint(1, 4)))
    cases.extend(_telling_pair(rng))
    cases.append(([], None))
    cases.append((uneven(rng, rng.randint(25, 40), 0.2, 4.0), rng.randint(3, 7)))
    return cases


def _telling_pair(rng: random.Random) -> tuple[Case, Case]:
    """Uneven latencies where the true schedule differs from every tempting shortcut, then the
    same latencies in another order with another true makespan."""
    while True:
        count, limit = rng.randint(5, 9), rng.randint(2, 3)
        lats = uneven(rng, count, 0.4, 4.0)
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


def _predictions(rng: random.Random, lab: Lab) -> str:
    name = lab.name
    cases = _cases(rng)
    measured = run(_measure(cases), clock="virtual")
    allowed = float(SETTINGS.get("time_limit", TIME_LIMIT))
    seen = lab.run("predictions", {"cases": cases}, doing="predicting", seconds=allowed, too_long=(
        f"{name} was still computing after {allowed:g} s of real time, for {plural(len(cases), 'workload')} of at "
        f"most {max(len(lats) for lats, _ in cases)} latencies: arithmetic on a handful of numbers takes "
        f"microseconds. Look for a loop that never ends, such as a 'while' whose condition never becomes false, "
        f"or a simulation in ticks too small for its latencies."))
    answered: dict[tuple[tuple[float, ...], int | None], tuple[list[float], float]] = {}
    for (lats, limit), truth, found in zip(cases, measured, seen["answers"]):
        prediction = _ask(found, name, lats, limit)
        if abs(prediction - truth) > _TOLERANCE + 1e-9 * abs(truth):
            same = answered.get((tuple(sorted(lats)), limit))
            if same is not None and abs(same[1] - prediction) <= _TOLERANCE:
                raise Fail(_order_ignored(name, lats, limit, prediction, truth, same[0]))
            raise Fail(f"for {_setting(lats, limit)}, {name} returned {sec(prediction)}, but the run took "
                       f"{sec(truth)} on the virtual clock. {_explain(prediction, lats, limit)}")
        answered[(tuple(sorted(lats)), limit)] = (lats, prediction)
    return (f"{name} matched the virtual clock to the microsecond on {len(cases)} fresh workloads, by arithmetic "
            f"alone, in a process that could run nothing: equal latencies (ceil(N / C) x L), no limit (the slowest "
            f"call), one slot (the sum), more slots than calls, no calls at all, and uneven latencies in two orders, "
            f"where a semaphore's first-free-slot schedule beats rounds of C yet misses the lower bound, and the "
            f"order of the calls changes the makespan. You can say how long a batch will take before you run it.")


def _order_ignored(name: str, lats: list[float], limit: int | None, prediction: float, truth: float,
                   before: list[float]) -> str:
    return (f"for {_setting(lats, limit)}, {name} returned {sec(prediction)}, the same as for these very "
            f"latencies in the order {_short(before)}, but this run took {sec(truth)} on the virtual "
            f"clock. Your prediction does not depend on the order of the calls (did you sort them?), yet "
            f"a semaphore takes the items in input order: which call starts when, and so the makespan, "
            f"changes with the order. " + _SIMULATE)


def _ask(found: dict[str, Any], name: str, lats: list[float], limit: int | None) -> float:
    """The prediction the subprocess reported, or Fail / NotAttempted saying what went wrong."""
    if "error" in found:
        error = Raised.of(found["error"])
        if error.stub is not None:
            raise NotAttempted(stub_hint(error.stub, name))
        if REFUSED in error.text:
            raise Fail(f"{name} {describe_refusal(error.text)} while predicting {_setting(lats, limit)}. The exercise asks "
                       f"for arithmetic only: work the makespan out from the latencies and C, without running "
                       f"anything. Running the batch (on the virtual clock, say) gives the right number but predicts "
                       f"nothing, so the check runs your function where it can only compute. " + _SIMULATE)
        extra = " max_concurrency=None means no limit: every call starts at once." if limit is None else ""
        empty = " With no latencies at all, the batch takes 0 s." if not lats else ""
        raise Fail(f"{name}({_short(lats)}, {limit!r}) raised {error.text}.{extra}{empty} It must return "
                   f"the makespan in seconds for any list of latencies and any max_concurrency, an "
                   f"integer >= 1 or None.")
    if found.get("coroutine"):
        raise Fail(f"{name}({_short(lats)}, {limit!r}) returned a coroutine, not a number: it is an async "
                   f"function, or returns the result of one without awaiting it. A prediction is arithmetic: "
                   f"make it a plain 'def' that returns the makespan in seconds.")
    if "value" not in found:
        raise Fail(f"{name}({_short(lats)}, {limit!r}) returned {found.get('other')}; it must return the makespan "
                   f"in seconds as a number (did you forget the return statement?).")
    if found.get("mutated"):
        raise Fail(f"{name}({_short(lats)}, {limit!r}) changed the list it was given (sorted it, or popped from it, "
                   f"in place). The caller's latencies are the caller's: a prediction reads them and leaves them "
                   f"as they were. Work on a copy (sorted(latencies), list(latencies)) if you must reorder.")
    return float(found["value"])


def _short(lats: list[float]) -> str:
    return "[" + ", ".join(f"{x:g}" for x in lats) + "]"


def _setting(lats: list[float], limit: int | None) -> str:
    count = len(lats)
    bound = "with no limit (max_concurrency=None)" if limit is None else f"with at most C = {limit} in flight"
    if not lats:
        return f"no calls at all {bound}"
    if len(set(lats)) == 1:
        return f"{count} calls of {sec(lats[0])} each {bound}"
    return f"{count} calls with latencies {_short(lats)} s, in this input order, {bound}"


_SIMULATE = ("Hint: follow the semaphore on paper. Keep, for each of the C slots, the time it next becomes "
             "free (all 0 at first); for each latency in input order, take the slot that frees up first "
             "and move its free time on by that latency. The makespan is when the last slot frees up.")


def _explain(prediction: float, lats: list[float], limit: int | None) -> str:
    count = len(lats)
    if not count:
        return "With no calls at all there is nothing to wait for: the batch takes 0 s."
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


EXERCISE_3 = Check("Exercise 3", _predictions,
                   command=(sys.executable, "-I", str(Path(__file__).with_name("_predictor.py"))))
