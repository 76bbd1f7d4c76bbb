"""Check for exercise 3: predict a bounded parallel batch's makespan before running it.

The student writes ``predict_makespan(latencies, max_concurrency)``. The check measures the
truth by running a real :class:`~pocket_parallel.BoundedParallelBatchNode` on the virtual clock
with exactly those latencies, and compares. What a semaphore does is simple enough to reason
about and exact enough to check: every item is waiting from the start, and in input order each
takes the slot that frees up first. With equal latencies that is ``ceil(N / C) * L``.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from numbers import Real
from typing import Any

from ..clock import run
from ..experiment import AskEach, makespan_lower_bound
from ._feedback import (
    CheckResult,
    Fail,
    NotAttempted,
    describe,
    not_attempted_in,
    run_check,
    sec,
    stub_hint,
)
from ._service import CheckLLM, latencies, list_schedule, rounds_schedule

Case = tuple[list[float], "int | None"]
_TOLERANCE = 1e-6


def check_makespan_prediction(predict_makespan: Callable[[list[float], int | None], float], *, seed: int | None = None) -> CheckResult:
    """Exercise 3: check ``predict_makespan(latencies, max_concurrency) -> seconds``.

    ``latencies`` are the seconds each call takes, in the order the items are given to a
    parallel node with a semaphore of ``max_concurrency`` (an int, or None for no limit). The
    prediction must equal, to the microsecond, the makespan measured on the virtual clock, on
    six fresh workloads: equal latencies, no limit, one slot, more slots than calls, and
    uneven latencies. ``seed`` reproduces the workloads.
    """
    if not callable(predict_makespan):
        raise TypeError(f"predict_makespan must be a function such as predict_makespan; got {type(predict_makespan).__name__}")
    return run_check("Exercise 3", lambda rng: _predictions(predict_makespan, rng), seed)


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
    cases.append(_telling_case(rng))
    cases.append((latencies(rng, rng.randint(4, 9)), None))
    return cases


def _telling_case(rng: random.Random) -> Case:
    """Uneven latencies where the true schedule differs from every tempting shortcut."""
    while True:
        count, limit = rng.randint(5, 9), rng.randint(2, 3)
        lats = latencies(rng, count, 0.5, 4.0, 0.5)
        truth = list_schedule(lats, limit)
        if all(abs(truth - other) > 0.01 for other in _shortcuts(lats, limit).values()):
            return lats, limit


def _shortcuts(lats: list[float], limit: int | None) -> dict[str, float]:
    """Tempting wrong formulas, by name."""
    count, total = len(lats), math.fsum(lats)
    found = {"sum": total}
    if limit is not None and limit < count:
        found["bound"] = max(max(lats), total / limit)
        found["tighter bound"] = makespan_lower_bound(lats, limit)
        found["share"] = total / limit
        found["rounds"] = rounds_schedule(lats, limit)
        found["rounds of the longest"] = math.ceil(count / limit) * max(lats)
        found["rounds of the mean"] = math.ceil(count / limit) * total / count
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
    cases = _cases(rng)
    measured = run(_measure(cases), clock="virtual")
    for (lats, limit), truth in zip(cases, measured):
        prediction = _ask(predict, name, lats, limit)
        if abs(prediction - truth) > _TOLERANCE + 1e-9 * abs(truth):
            raise Fail(f"for {_setting(lats, limit)}, {name} returned {sec(prediction)}, but the run took "
                       f"{sec(truth)} on the virtual clock. {_explain(prediction, lats, limit)}")
    return (f"{name} matched the virtual clock to the microsecond on six fresh workloads: equal "
            f"latencies (ceil(N / C) x L), no limit (the slowest call), one slot (the sum), more slots "
            f"than calls, and uneven latencies where a semaphore's first-free-slot schedule beats rounds "
            f"of C yet misses the lower bound. You can say how long a batch will take before you run it.")


def _ask(predict: Callable[..., Any], name: str, lats: list[float], limit: int | None) -> float:
    try:
        value = predict(list(lats), limit)
    except Exception as error:
        stub = not_attempted_in(error)
        if stub is not None:
            raise NotAttempted(stub_hint(stub, name)) from None
        extra = " max_concurrency=None means no limit: every call starts at once." if limit is None else ""
        raise Fail(f"{name}({_short(lats)}, {limit!r}) raised {describe(error)}.{extra} It must return "
                   f"the makespan in seconds for any list of latencies and any max_concurrency, an "
                   f"integer >= 1 or None.") from None
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
    simulate = ("Hint: simulate the semaphore. Keep, for each of the C slots, the time it next becomes "
                "free (all 0 at first); for each latency in input order, take the slot that frees up first "
                "and move its free time on by that latency. The makespan is when the last slot frees up.")
    if len(set(lats)) == 1:
        if "share" in matches or "bound" in matches:
            return (f"You divided the work evenly ({count} x {sec(lats[0])} / {limit}), but a call cannot be "
                    f"split: the calls go in rounds of C, and the last round, with only {count % limit} "
                    f"call{'s' * (count % limit != 1)}, still takes a whole {sec(lats[0])}. That makes "
                    f"ceil(N / C) rounds.")
        return "With equal latencies L the calls go in rounds of C, each taking L: ceil(N / C) x L."
    if "tighter bound" in matches and "bound" not in matches:
        return ("Your prediction is a lower bound (no schedule can finish sooner), which only a perfect "
                "packing reaches. The semaphore does not pack: it takes the items in input order, each in "
                "the first slot that frees up. " + simulate)
    if "bound" in matches or "share" in matches:
        return ("Your prediction is the lower bound max(longest call, total / C), which only a perfect "
                "packing reaches. The semaphore does not pack: it takes the items in input order, each in "
                "the first slot that frees up. " + simulate)
    if "rounds" in matches:
        return ("You grouped the calls into rounds of C, each as long as its slowest call. A semaphore does "
                "not wait for a whole round: the moment any call ends, the next item takes its slot. " + simulate)
    if "rounds of the longest" in matches or "rounds of the mean" in matches:
        return ("Rounds of C calls are right only when every call takes the same time; here they differ. "
                + simulate)
    return simulate
