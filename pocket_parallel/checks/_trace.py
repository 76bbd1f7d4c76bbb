"""Reading the calls a student's code made, as the check's service recorded them in the subprocess.

Every call arrives as a :class:`Call`: its prompt, attempt number, start and end on the run's
clock, how it ended, and where it came from (:mod:`._calls`). :class:`Calls` answers what the
checks ask of them: which prompts were sent that the exercise never asks for, which calls were
made outside PocketFlow's per-item step, how many attempts each item got and whether a retry
waited ``wait`` seconds, how many calls were in flight at most, and whether a slot sat idle
while an item was ready to go.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._feedback import Fail, clip, plural, sec

TOLERANCE = 1e-6  # seconds: the virtual clock ticks in microseconds


@dataclass(frozen=True)
class Call:
    """One call to the check's service."""

    prompt: str
    attempt: int
    start: float
    end: float
    outcome: str
    step: bool
    functions: tuple[str, ...]

    @classmethod
    def of(cls, data: dict[str, Any]) -> Call:
        """From the subprocess's plain data."""
        return cls(str(data["prompt"]), int(data["attempt"]), float(data["start"]), float(data["end"]),
                   str(data["outcome"]), bool(data.get("step")), tuple(map(str, data.get("functions", ()))))

    @property
    def failed(self) -> bool:
        """Whether it ended without an answer (an error, a cancellation, a refusal)."""
        return self.outcome != "ok"

    @property
    def made_in(self) -> str:
        """The student's node method that made the call, e.g. ``"prep_async"``: an override of
        PocketFlow's own steps first (it is what took the call out of the per-item step)."""
        for name in _NODE_METHODS:
            if name in self.functions:
                return name
        return self.functions[0] if self.functions else "code outside any node method"


_NODE_METHODS = ("_exec", "_run_async", "run_async", "_orch_async", "prep_async", "post_async", "__init__",
                 "exec_async")


@dataclass(frozen=True)
class Idle:
    """A stretch of time in which fewer than C slots were busy while ``ready`` items could have started."""

    start: float
    end: float
    busy: int
    ready: int


class Calls:
    """The calls of one run (or of one node in it), grouped by prompt."""

    def __init__(self, calls: Iterable[Call]) -> None:
        self.all = sorted(calls, key=lambda call: (call.start, call.end))
        self.by_prompt: dict[str, list[Call]] = defaultdict(list)
        for call in self.all:
            self.by_prompt[call.prompt].append(call)

    @classmethod
    def of(cls, data: Iterable[dict[str, Any]], prompts: Iterable[str] | None = None) -> Calls:
        """The calls in the subprocess's data; only those with one of ``prompts``, if given."""
        keep = None if prompts is None else set(prompts)
        return cls(call for call in map(Call.of, data) if keep is None or call.prompt in keep)

    def __len__(self) -> int:
        return len(self.all)

    def foreign(self, expected: Iterable[str]) -> list[Call]:
        """The calls whose prompt is none of ``expected``."""
        known = set(expected)
        return [call for call in self.all if call.prompt not in known]

    def outside_step(self) -> list[Call]:
        """The calls PocketFlow's per-item step did not lead to (no retries, no fallback for them)."""
        return [call for call in self.all if not call.step]

    def attempts(self, prompt: str) -> list[Call]:
        """The calls with ``prompt``, in the order they started."""
        return list(self.by_prompt.get(prompt, ()))

    def peak(self) -> int:
        """The most calls in flight at once (a call ending at t and one starting at t do not overlap)."""
        events = sorted([(call.end, -1) for call in self.all] + [(call.start, 1) for call in self.all])
        peak = now = 0
        for _, change in events:
            now += change
            peak = max(peak, now)
        return peak

    def in_flight_at(self, moment: float) -> int:
        """How many calls were in flight at ``moment``."""
        return sum(1 for call in self.all if call.start <= moment < call.end)

    def last_end(self) -> float:
        """When the last call ended (0 without calls)."""
        return max((call.end for call in self.all), default=0.0)

    def early_retries(self, wait: float) -> list[tuple[Call, Call]]:
        """Pairs (failed attempt, next attempt) where the next started less than ``wait`` s after the failure."""
        found = []
        for attempts in self.by_prompt.values():
            for failed, following in zip(attempts, attempts[1:]):
                if following.start < failed.end + wait - TOLERANCE:
                    found.append((failed, following))
        return found

    def idle(self, prompts: Sequence[str], limit: int, wait: float) -> Idle | None:
        """The first stretch in which fewer than ``limit`` slots were busy while an item of ``prompts`` was ready.

        An item is ready from 0 s until its first attempt, and from ``wait`` s after a failed
        attempt until the next one. A slot is busy with a call in flight, or with an item
        sleeping its ``wait`` after a failure (a node may keep the slot meanwhile, as
        ``BoundedParallelBatchNode`` does, or hand it to the next item, as a semaphore held only
        around the call does: either wastes nothing on purpose).
        """
        changes: list[tuple[float, int, int]] = []  # (time, change in busy, change in ready)
        for prompt in prompts:
            attempts = self.by_prompt.get(prompt, [])
            ready_from = 0.0
            for index, call in enumerate(attempts):
                changes += [(ready_from, 0, 1), (max(ready_from, call.start), 0, -1)]
                changes += [(call.start, 1, 0), (call.end, -1, 0)]
                if index + 1 < len(attempts):
                    changes += [(call.end, 1, 0), (call.end + wait, -1, 0)]
                    ready_from = call.end + wait
            if not attempts:
                changes.append((0.0, 0, 1))  # ready from the start and never started
        changes.sort()
        busy = ready = 0
        for index, (moment, busy_change, ready_change) in enumerate(changes):
            busy += busy_change
            ready += ready_change
            following = changes[index + 1][0] if index + 1 < len(changes) else moment
            if following - moment > TOLERANCE and ready > 0 and busy < limit:
                return Idle(moment, following, busy, ready)
        return None


def chain_end(attempts: Sequence[Call]) -> float:
    """When an item's last attempt ended."""
    return max((call.end for call in attempts), default=0.0)


def check_calls(name: str, calls: Calls, expected: dict[str, int], *, item: Callable[[str], str], prompt_form: str,
                max_retries: int, wait: float) -> None:
    """Fail unless the calls keep the exercise's contract.

    ``expected`` maps every prompt the exercise asks for to the attempts PocketFlow makes for it
    (1, one more per transient failure, ``max_retries`` for a prompt that always fails);
    ``item(prompt)`` names its item in a sentence ("the call for Spanish"); ``prompt_form``
    shows the prompt as the exercise writes it. Every call must have one of those prompts,
    come from PocketFlow's per-item step, and each retry must wait ``wait`` seconds.
    """
    check_origins(name, calls, expected, item=item, prompt_form=prompt_form,
                  why=f"In this workload some calls fail once and the check set max_retries={max_retries}")
    for prompt, count in sorted(expected.items(), key=lambda pair: pair[1] != 1):  # plain items first: clearest
        got = calls.attempts(prompt)
        if len(got) > count:
            if count == 1:
                raise Fail(f"{name} made {item(prompt)} {len(got)} times, although its first attempt succeeded: "
                           f"one call per item, and a retry only after a failure (PocketFlow's step does that).")
            raise Fail(f"{item(prompt)} fails {'every time' if count == max_retries else 'at first'}, and with "
                       f"max_retries={max_retries} PocketFlow makes exactly {count} attempts at it, but {name} made "
                       f"{len(got)}. Leave retrying to PocketFlow's per-item step (AsyncNode._exec), which reads "
                       f"max_retries from the node: do not retry inside exec_async as well.")
        if len(got) < count:
            raise Fail(f"{item(prompt)} failed, and with max_retries={max_retries} PocketFlow makes {count} attempts "
                       f"at it, but {name} made {plural(len(got), 'attempt')}. Let an error from call_llm_async "
                       f"leave exec_async, so that PocketFlow's per-item step retries it.")
    early = calls.early_retries(wait)
    if early:
        failed, following = early[0]
        raise Fail(f"after {item(failed.prompt)} failed at {sec(failed.end)}, {name} tried again at "
                   f"{sec(following.start)}, {sec(following.start - failed.end)} later; the check set wait={sec(wait)} "
                   f"on the node, and PocketFlow's per-item step sleeps that long before each retry. A retry loop "
                   f"of your own skips node.wait: leave retrying to PocketFlow.")


def check_origins(name: str, calls: Calls, prompts: Iterable[str], *, item: Callable[[str], str], prompt_form: str,
                  why: str) -> None:
    """Fail unless every call has one of ``prompts`` and was made in PocketFlow's per-item step
    (``why`` says why that matters in this workload)."""
    foreign = calls.foreign(prompts)
    if foreign:
        raise Fail(f"{name} sent the prompt {clip(foreign[0].prompt, 80)}, which is none of the prompts this "
                   f"workload asks for. The check compares every prompt with the exercise's, character for "
                   f"character: send exactly {prompt_form}, one per item.")
    outside = calls.outside_step()
    if outside:
        call = outside[0]
        raise Fail(f"{name} made {plural(len(outside), 'call')} outside PocketFlow's per-item step, among them "
                   f"{item(call.prompt)}, from {call.made_in}{_through(call)}. PocketFlow retries an item, and "
                   f"falls back for it, only around exec_async, in AsyncNode._exec; a call made in prep_async or "
                   f"post_async, or in a task started there and merely awaited in exec_async, gets neither. {why}: "
                   f"make each item's call in exec_async and return its result.")


def _through(call: Call) -> str:
    names = [name for name in call.functions if name != call.made_in][:3]
    return f" (by way of {', '.join(names)})" if names else ""
