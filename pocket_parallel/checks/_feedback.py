"""What every exercise check shares: the result object, the subprocess it runs the answer in, and
the sentences for how the student's code ended.

A check runs the student's code on fresh random workloads and turns whatever happens into one
friendly paragraph: what was expected, what happened (with numbers and units), and a hint.
The code runs in a subprocess of its own (:mod:`._sandbox`), out of reach of the notebook: the
check ships it there (:mod:`._shipping`), the subprocess runs it and reports what it saw as
plain data, and the check, here in the kernel, judges. Nothing a student writes should make a
check print a traceback or hang:

- a stub that still raises ``NotImplementedError`` gets "Not attempted yet";
- any other exception becomes a sentence naming it and the function and line it came from;
- a run that goes on far longer than its workload needs ends with a message: a guard in the
  run's own time (on the virtual clock a deadlock reaches it at once), a watchdog thread for
  code that keeps a virtual loop busy forever, and, for code that never returns to the loop at
  all, the end of the subprocess after :data:`WALL_LIMIT` real seconds.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._validate import check_int
from ._display import markdown, plain_text, sentence_case
from ._errors import stub_hint
from ._predictor import REFUSED, describe_refusal
from ._quiet import Noise, quiet
from ._sandbox import Sandbox, SandboxError, TooLong, Worker
from ._serve import end_with_parent
from ._shipping import CannotShip, Shipment, ship

Status = Literal["passed", "failed", "not attempted"]

#: Real seconds a virtual-clock run may take before it is cut off (normally milliseconds).
WALL_LIMIT = 10.0
#: Settings a check's body may read, sent from the kernel to the judge (the tests shorten waits with them).
SETTINGS: dict[str, Any] = {}
#: Real seconds the subprocess may take over one workload beyond WALL_LIMIT (a busy machine's delays).
_SLACK = 10.0

_VERDICTS: dict[str, str] = {"passed": "Passed", "failed": "Not yet", "not attempted": "Not attempted yet"}
_REPLAY = " (To replay this exact workload, pass seed={seed} to the check.)"


@dataclass(frozen=True)
class CheckResult:
    """What one check found: ``passed`` or not, and why (``message``).

    ``status`` is ``"passed"``, ``"failed"`` or ``"not attempted"`` (the code still raises
    ``NotImplementedError``). ``exercise`` names the exercise, e.g. ``"Exercise 1"``.
    ``message`` is the whole answer as one paragraph, starting with the verdict ("Passed: ",
    "Not yet: ", "Not attempted yet: "); a failure ends with the seed that replays it.

    As the last line of a notebook cell a result shows itself once, as formatted text: the
    verdict on a line of its own, then the explanation. ``str(result)`` is the same text
    wrapped between words for a terminal (and for nbval, which compares plain text).
    """

    exercise: str
    status: Status
    message: str
    seed: int | None = None  # the seed that replays a failure, when the message names one

    @property
    def passed(self) -> bool:
        """True when the student's code did everything the exercise asks."""
        return self.status == "passed"

    @property
    def verdict(self) -> str:
        """"Passed", "Not yet" or "Not attempted yet"."""
        return _VERDICTS[self.status]

    def _paragraphs(self) -> list[str]:
        body = self.message.removeprefix(f"{self.verdict}: ")
        replay = _REPLAY.format(seed=self.seed) if self.seed is not None else ""
        if replay and body.endswith(replay):
            body = body.removesuffix(replay)
            return [body, replay.strip()[1:-1]]
        return [body]

    def __str__(self) -> str:
        return plain_text(self.verdict, self.exercise, self._paragraphs())

    def __repr__(self) -> str:
        return f"CheckResult({self.exercise!r}, status={self.status!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display (nbval compares it): the wrapped message, not the repr."""
        printer.text(str(self))

    def _repr_markdown_(self) -> str:
        """The rich display in JupyterLab, Notebook 7, VS Code and Colab."""
        return markdown(self.verdict, self.exercise, self._paragraphs())


class Fail(Exception):
    """Raised inside a check with the paragraph to show when an expectation is not met."""


class NeverEnded(Fail):
    """The student's code was still waiting at the check's time limit, or waited for something that never came."""


class NotAttempted(Exception):
    """The student's code still raises NotImplementedError: the stub has not been replaced."""


def new_seed(seed: int | None) -> int:
    """``seed`` checked, or a fresh one from the OS, so that every call draws a new workload."""
    if seed is None:
        return int.from_bytes(os.urandom(4), "big")
    return check_int("seed", seed, low=0)


# -- running a check ---------------------------------------------------------------------------------


Body = Callable[[random.Random, "Lab"], str]
#: Every exercise's check by its label ("Exercise 1"): the judge subprocess finds them here.
CHECKS: dict[str, Check] = {}
#: Real seconds the judge subprocess may take for one seed before the kernel gives up on it.
_SECONDS_PER_SEED = 300.0


@dataclass(frozen=True)
class Check:
    """One exercise's check: ``body(rng, lab)`` draws workloads from ``rng``, runs them on the
    student's answer through ``lab`` and returns the pass message, or raises :class:`Fail` /
    :class:`NotAttempted`. ``command`` starts the answer's subprocess (by default :mod:`._sandbox`'s).

    Called in the notebook, a check ships the answer's source (:mod:`._shipping`) to a *judge*
    subprocess, which draws the workloads and judges; the judge runs the answer in a second
    subprocess. No cell can patch the judge, and the answer's code cannot reach it either.
    """

    exercise: str
    body: Body
    command: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        CHECKS[self.exercise] = self

    def __call__(self, answer: Any, seed: int | None = None) -> CheckResult:
        """Check ``answer`` on the workload of ``seed`` (a fresh one when None)."""
        return self.on_seeds(answer, [new_seed(seed)])[0]

    def on_seeds(self, answer: Any, seeds: Sequence[int], settings: dict[str, Any] | None = None) -> list[CheckResult]:
        """The results for each of ``seeds``, all in one judge: the answer rebuilt afresh for each
        seed, so that each result is the one a separate check would give. ``settings`` reach the
        body as :data:`SETTINGS` (e.g. exercise 6's ``patience``)."""
        seeds = [new_seed(seed) for seed in seeds]
        try:
            shipment = ship(answer)
        except CannotShip as cannot:
            return [_result(self.exercise, "failed", str(cannot), seed, getattr(answer, "__name__", None), [])
                    for seed in seeds]
        request = {"exercise": self.exercise, "seeds": seeds, "wall_limit": WALL_LIMIT, "settings": dict(settings or {}),
                   "shipment": {"name": shipment.name, "source": shipment.source, "missing": shipment.missing}}
        with Worker([sys.executable, "-c", f"from {__name__} import judge_main; judge_main()"]) as judge:
            try:
                reply = judge.ask(request, _SECONDS_PER_SEED * (len(seeds) + 1))
            except SandboxError as error:  # the judge is the check's own code: its end is a bug to report
                raise RuntimeError(f"pocket_parallel's check ended unexpectedly ({error}):\n{error.output}") from None
        return [CheckResult(self.exercise, r["status"], r["message"], r["seed"]) for r in reply["results"]]

    def judged(self, shipment: Shipment, seeds: Sequence[int]) -> list[CheckResult]:
        """In the judge subprocess: run and judge the answer on each seed."""
        lab = Lab(shipment, self.command)
        try:
            return [self._one(lab, seed) for seed in seeds]
        finally:
            lab.close()

    def _one(self, lab: Lab, seed: int) -> CheckResult:
        lab.notes = []
        with quiet() as noise:
            try:
                lab.fresh()
                outcome: tuple[Status, str] = ("passed", self.body(random.Random(seed), lab))
            except Fail as failure:
                outcome = ("failed", str(failure))
            except NotAttempted as stub:
                outcome = ("not attempted", str(stub))
        return _result(self.exercise, *outcome, seed, lab.name, noise.notes + lab.notes)


def judge_main() -> None:
    """The judge subprocess: read one request, judge the answer on its seeds, reply with the results."""
    end_with_parent()
    request = json.loads(sys.stdin.readline())
    global WALL_LIMIT
    WALL_LIMIT = float(request["wall_limit"])
    SETTINGS.update(request["settings"])
    importlib.import_module("pocket_parallel.checks")  # every exercise's module registers its check
    data = request["shipment"]
    shipment = Shipment(data["name"], data["source"], dict(data["missing"]))
    try:
        results = CHECKS[request["exercise"]].judged(shipment, request["seeds"])
        reply: dict[str, Any] = {"results": [{"status": r.status, "message": r.message, "seed": r.seed}
                                             for r in results]}
    except Exception:  # the check's own code failed: say so, rather than hang the kernel
        reply = {"internal": traceback.format_exc()[-3000:]}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


def _result(exercise: str, status: Status, text: str, seed: int, name: str | None, notes: list[str]) -> CheckResult:
    """The :class:`CheckResult`: the message a sentence, a failure ending with what Python reported and the seed."""
    text = sentence_case(text, name)
    verdict = _VERDICTS[status]
    if status == "failed":
        return CheckResult(exercise, status, f"{verdict}: {text}{Noise(notes).sentence()}{_REPLAY.format(seed=seed)}", seed)
    return CheckResult(exercise, status, f"{verdict}: {text}")


def run_check(exercise: str, body: Callable[[random.Random], str], seed: int | None, subject: Any = None) -> CheckResult:
    """Run a body that needs no student code in a subprocess (and the tests of this module)."""
    seed = new_seed(seed)
    with quiet() as noise:
        try:
            outcome: tuple[Status, str] = ("passed", body(random.Random(seed)))
        except Fail as failure:
            outcome = ("failed", str(failure))
        except NotAttempted as stub:
            outcome = ("not attempted", str(stub))
    return _result(exercise, *outcome, seed, getattr(subject, "__name__", None), noise.notes)


class Lab:
    """The check's handle on the subprocess that runs the student's answer (started when first used).

    :meth:`fresh` rebuilds the answer there before each seed's workloads; :meth:`run` runs one
    experiment and returns what it observed. What Python reported in the subprocess (warnings,
    asyncio's log, stderr) collects in :attr:`notes`.
    """

    def __init__(self, shipment: Shipment, command: tuple[str, ...] | None = None) -> None:
        self.shipment = shipment
        self.command = list(command) if command else None
        self.notes: list[str] = []
        self._box: Sandbox | None = None
        self._facts: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The answer's name, as the student wrote it."""
        return self.shipment.name

    def fresh(self) -> None:
        """Rebuild the answer in the subprocess (starting one if needed), or fail saying why it cannot be."""
        self._facts = None
        try:
            reply = self._sandbox().load()
        except SandboxError as error:
            self.close()
            raise Fail(f"the Python process in which the check runs {self.name} ended while it rebuilt {self.name} from "
                       f"your cells, without a word ({_last_line(error.output)}). Does your code call exit(), "
                       f"os._exit() or something that crashes the interpreter when its cell runs?") from None
        if "error" in reply:
            raise_for_load(Raised.of(reply["error"]), self.shipment)

    @property
    def facts(self) -> dict[str, Any]:
        """What the rebuilt answer says of itself (:mod:`._facts`): its bases, the steps it overrides..."""
        if self._facts is None:
            self._facts = self.run("facts", {}, doing="being looked at")
        return self._facts

    def run(self, experiment: str, workload: dict[str, Any], *, doing: str, seconds: float | None = None,
            too_long: str | None = None) -> dict[str, Any]:
        """Run ``experiment`` on ``workload`` in the subprocess and return its observation.

        If it takes longer than ``seconds`` of real time (default: :data:`WALL_LIMIT` and some
        slack), the subprocess is ended and the check fails, saying the answer was still running
        while ``doing`` (or saying ``too_long``).
        """
        limit = WALL_LIMIT + float(SETTINGS.get("slack", _SLACK)) if seconds is None else seconds
        try:
            reply = self._sandbox().run(experiment, workload, limit)
        except TooLong:
            self.close()
            raise Fail(too_long or (
                f"{self.name} was still running after {limit:g} s of real time while {doing}, far longer than this "
                f"workload needs, so the check stopped it. Look for code that never gives the event loop back (a "
                f"loop with no await that waits, time.sleep, a blocking wait on a thread or a process) or a loop "
                f"that never ends.")) from None
        except SandboxError as error:
            self.close()
            raise Fail(f"the Python process in which the check runs {self.name} ended while {doing}, without "
                       f"a word ({_last_line(error.output)}). Does your code call exit(), os._exit() or "
                       f"something that crashes the interpreter?") from None
        self.notes += [str(note) for note in reply.get("notes", [])]
        observation: dict[str, Any] = reply["observation"]
        return observation

    def close(self) -> None:
        """End the subprocess, if one is running."""
        if self._box is not None:
            box, self._box = self._box, None
            box.close()

    def _sandbox(self) -> Sandbox:
        if self._box is None:
            box = Sandbox(self.shipment, settings={"wall_limit": WALL_LIMIT}, command=self.command)
            box.__enter__()
            self._box = box
        return self._box


def _last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return f"it last said: {lines[-1][:160]}" if lines else "it said nothing"


# -- what the student's code raised -------------------------------------------------------------------


@dataclass(frozen=True)
class Raised:
    """An exception from the student's code, as the subprocess described it (see :func:`._running.error_info`)."""

    types: tuple[str, ...]
    text: str
    stub: str | None = None
    name: str | None = None

    @classmethod
    def of(cls, info: dict[str, Any]) -> Raised:
        """From the subprocess's plain-data description."""
        return cls(tuple(info.get("types", ())), str(info.get("text", "")), info.get("stub"), info.get("name"))

    def is_a(self, type_name: str) -> bool:
        """Whether the exception's class, or one of its bases, is called ``type_name``."""
        return type_name in self.types


def raise_for_load(error: Raised, shipment: Shipment) -> None:
    """Fail with why the answer's code could not be rebuilt in the subprocess."""
    name = shipment.name
    if error.is_a("NameError") and error.name:
        why = shipment.missing.get(error.name, "something the check could not copy")
        raise Fail(f"{name} uses {error.name}, and the check could not copy it from your notebook ({why}). The check "
                   f"runs your code in a fresh Python process, rebuilt from the source of your cells: define "
                   f"{error.name} in a cell with an assignment, a 'def', a 'class' or an import, run that cell, then "
                   f"run the check again.")
    if REFUSED in error.text:
        raise Fail(f"{name} {describe_refusal(error.text)}, when the check rebuilt it from the source of your cells. "
                   f"The exercise asks for arithmetic only: work the makespan out from the latencies and C, without "
                   f"running anything; so the check runs your function where it can only compute, and nothing of an "
                   f"event loop, threads, processes, PocketFlow or pocket_parallel may be imported there.")
    tail = "" if error.is_a("ImportError") else " Does it depend on something a cell changed after defining it?"
    raise Fail(f"the check rebuilds {name} from the source of your cells in a fresh Python process, and there "
               f"that code raised {error.text}.{tail}")


def raise_for_build(error: Raised, name: str, shown: str) -> None:
    """Fail (or NotAttempted) because building the student's class, ``name(shown)``, raised."""
    if error.stub is not None:
        raise NotAttempted(stub_hint(error.stub, name))
    if error.is_a("TypeError") and "argument" in error.text:
        advice = "The exercise builds it exactly like that, so it must accept those arguments."
    else:
        advice = "Read the error and fix the line it points to."
    raise Fail(f"the check could not create {name}({shown}): it raised {error.text}. {advice}")


Advice = Callable[[Raised], str]


def raise_for_run(report: dict[str, Any], name: str, doing: str, *, clock: str = "virtual",
                  advice: Advice | None = None, blocking_calls: int = 0) -> None:
    """Fail (or NotAttempted) unless the run described by ``report`` (:func:`._running.run_answer`) ended well."""
    ended, guard = report["ended"], report.get("guard", 0.0)
    if ended == "wall_limit":
        raise Fail(f"{name} was still running after {report.get('wall_limit', WALL_LIMIT):g} s of real time while "
                   f"{doing}, although on the virtual clock this workload takes a moment. Something keeps the event "
                   f"loop busy without letting time pass: a loop around 'await asyncio.sleep(0)', or a task that "
                   f"reschedules itself forever.")
    if ended == "timeout":
        unit = "of virtual time" if clock == "virtual" else "(wall clock)"
        raise NeverEnded(f"{name} was still running after {guard:g} s {unit} while {doing}, far longer than this "
                         f"workload needs. Look for a wait that is never satisfied (a semaphore acquired and never "
                         f"released: use 'async with') or a loop that never ends.")
    if ended == "deadlock":
        raise NeverEnded(f"{name} waited forever while {doing}: every task was waiting and nothing could ever wake "
                         f"one up. Common causes: a semaphore acquired and never released (use 'async with'), a lock "
                         f"taken twice, or an await on a future nobody sets.")
    _blocking_first(blocking_calls, name)
    if ended == "raised":
        error = Raised.of(report["error"])
        if error.stub is not None:
            raise NotAttempted(stub_hint(error.stub, name))
        meaning = advice(error) if advice is not None else (
            "The check builds its input exactly as the exercise describes; read the error, fix the line it points "
            "to, and run the check again.")
        raise Fail(f"{name} raised {error.text} while {doing}. {meaning}")


def _blocking_first(blocking_calls: int, name: str) -> None:
    if blocking_calls:
        raise Fail(f"{name} called the blocking call_llm(...) (or llm.call(...)) {blocking_calls} "
                   f"time{'s' * (blocking_calls != 1)} from async code. A blocking call holds the "
                   f"whole event loop while it waits, so no other call can start meanwhile: everything "
                   f"runs one at a time. Inside exec_async, write 'await call_llm_async(prompt)'.")


# -- small formatting helpers --------------------------------------------------------------------


def sec(value: float) -> str:
    """Seconds with a unit and no float dust: ``3.5 s``, ``0.25 s``, ``12 s``."""
    return f"{round(value, 6):g} s"


def plural(count: int, word: str, words: str | None = None) -> str:
    """``"1 call"``, ``"3 calls"``."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def clip(value: Any, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 4] + "...'"

