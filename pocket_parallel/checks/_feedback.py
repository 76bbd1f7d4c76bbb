"""What every exercise check shares: the result object, and safe calls into a student's code.

A check runs the student's code on fresh random workloads and turns whatever happens into one
friendly paragraph: what was expected, what happened (with numbers and units), and a hint.
Nothing a student writes should make a check print a traceback or hang:

- a stub that still raises ``NotImplementedError`` gets "Not attempted yet";
- any other exception becomes a sentence naming it and the function and line it came from;
- a run that goes on far longer than its workload needs ends with a message: a guard in the
  run's own time (on the virtual clock a deadlock reaches it at once, since virtual time jumps
  straight to it), and a watchdog thread for code that keeps a virtual loop busy forever.
"""

from __future__ import annotations

import asyncio
import os
import random
import sysconfig
import threading
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._validate import check_int
from ..backends.protocol import set_default_llm
from ..backends.simulated import SimulatedLLM
from ..clock import Clock, VirtualDeadlockError, run
from ._display import markdown, plain_text, sentence_case
from ._quiet import quiet

if TYPE_CHECKING:
    from ._service import CheckLLM

T = TypeVar("T")
Status = Literal["passed", "failed", "not attempted"]


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


def run_check(exercise: str, body: Callable[[random.Random], str], seed: int | None, subject: Any = None) -> CheckResult:
    """Run a check's ``body`` and turn its outcome into a :class:`CheckResult` (printing nothing).

    ``body`` returns the pass message, or raises :class:`Fail` / :class:`NotAttempted`; the
    message becomes a sentence (its first word capitalised unless it is code, such as the
    name of ``subject``, the student's class or function). A failure ends with the seed that
    replays its workload, for the student or the instructor. Nothing reaches stderr while it
    runs; what Python warned about meanwhile is added to a failure.
    """
    seed = new_seed(seed)
    with quiet() as noise:
        try:
            outcome: tuple[Status, str] = ("passed", body(random.Random(seed)))
        except Fail as failure:
            outcome = ("failed", str(failure))
        except NotAttempted as stub:
            outcome = ("not attempted", str(stub))
    status, text = outcome
    text = sentence_case(text, getattr(subject, "__name__", None))
    verdict = _VERDICTS[status]
    if status == "failed":
        return CheckResult(exercise, status, f"{verdict}: {text}{noise.sentence()}{_REPLAY.format(seed=seed)}", seed)
    return CheckResult(exercise, status, f"{verdict}: {text}")


# -- calling the student's code ------------------------------------------------------------------

_LIBRARY_DIRS = tuple(
    str(Path(p).resolve())
    for p in {str(Path(__file__).resolve().parent.parent), *(sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib"))}
)


def where(error: BaseException) -> str:
    """``" (in exec_async, line 7)"``: the innermost frame of the error outside the libraries."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not _in_library(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    name = "the cell's top level" if frame.name == "<module>" else frame.name
    return f" (in {name}, line {frame.lineno})"


def _in_library(filename: str) -> bool:
    try:
        path = str(Path(filename).resolve())
    except (OSError, RuntimeError):
        return False
    return path.startswith(_LIBRARY_DIRS)


def describe(error: BaseException) -> str:
    """``"ZeroDivisionError: division by zero (in exec_async, line 7)"``, kept short."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(error).__name__}{': ' + text if text else ''}{where(error)}"


def stub_hint(error: NotImplementedError, name: str) -> str:
    """The "not attempted" paragraph, quoting the stub's own hint."""
    hint = str(error).strip()
    quoted = f" Its hint: {hint}" if hint else ""
    if quoted and not quoted.endswith((".", "!", "?")):
        quoted += "."
    return (f"{name} still raises NotImplementedError where your code goes.{quoted} Replace the "
            f"line that raises it with your solution, run that cell, then run this check again.")


def not_attempted_in(error: BaseException | None) -> NotImplementedError | None:
    """The NotImplementedError behind ``error`` (itself, or its cause or context), if any."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, NotImplementedError):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def build(factory: Callable[..., T], name: str, *args: Any, **kwargs: Any) -> T:
    """Call the student's class or factory; turn a stub or a crash into NotAttempted / Fail."""
    shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    try:
        return factory(*args, **kwargs)
    except Exception as error:  # a student's constructor can raise anything
        stub = not_attempted_in(error)
        if stub is not None:
            raise NotAttempted(stub_hint(stub, name)) from None
        if isinstance(error, TypeError) and "argument" in str(error):
            advice = "The exercise builds it exactly like that, so it must accept those arguments."
        else:
            advice = "Read the error and fix the line it points to."
        raise Fail(f"the check could not create {name}({shown}): it raised {describe(error)}. {advice}") from None


def run_student(
    coro: Coroutine[Any, Any, T],
    name: str,
    doing: str,
    *,
    clock: Clock = "virtual",
    guard: float = 3600.0,
    llm: CheckLLM | None = None,
    advice: Callable[[Exception], str] | None = None,
) -> tuple[T, float]:
    """Run ``coro`` (which runs the student's code) and return ``(its result, seconds it took)``.

    Seconds are on ``clock``: exact and rounded to the microsecond on the virtual clock. While
    it runs, ``llm`` (if given) is the default LLM behind ``call_llm_async``. ``guard`` is the
    most seconds the run may take before the check gives up on it. ``doing`` completes the
    sentence "while {name} was {doing}" in messages; ``advice(error)``, if given, says what an
    exception from the student's code means for this exercise.
    """

    async def timed() -> tuple[T, float]:
        loop = asyncio.get_running_loop()
        with _watchdog(loop, asyncio.current_task(), WALL_LIMIT if clock == "virtual" else None) as fired:
            start = loop.time()
            try:
                value = await asyncio.wait_for(coro, timeout=guard)
            except asyncio.CancelledError:
                if fired.is_set():
                    raise _WallLimit() from None
                raise
            return value, loop.time() - start

    try:
        with default_llm(llm):
            value, seconds = run(timed(), clock=clock)
    except _WallLimit:
        raise Fail(f"{name} was still running after {WALL_LIMIT:g} s of real time while {doing}, although "
                   f"on the virtual clock this workload takes a moment. Something keeps the event loop "
                   f"busy without letting time pass: a loop around 'await asyncio.sleep(0)', or a task "
                   f"that reschedules itself forever.") from None
    except asyncio.TimeoutError:
        unit = "of virtual time" if clock == "virtual" else "(wall clock)"
        raise NeverEnded(f"{name} was still running after {guard:g} s {unit} while {doing}, far longer than "
                   f"this workload needs. Look for a wait that is never satisfied (a semaphore acquired "
                   f"and never released: use 'async with') or a loop that never ends.") from None
    except VirtualDeadlockError:
        raise NeverEnded(f"{name} waited forever while {doing}: every task was waiting and nothing could "
                   f"ever wake one up. Common causes: a semaphore acquired and never released (use 'async with'), "
                   f"a lock taken twice, or an await on a future nobody sets.") from None
    except Exception as error:
        _blocking_first(llm, name)
        stub = not_attempted_in(error)
        if stub is not None:
            raise NotAttempted(stub_hint(stub, name)) from None
        meaning = advice(error) if advice is not None else (
            "The check builds its input exactly as the exercise describes; read the error, fix the line "
            "it points to, and run the check again.")
        raise Fail(f"{name} raised {describe(error)} while {doing}. {meaning}") from None
    _blocking_first(llm, name)
    if clock == "virtual":
        seconds = round(seconds, 6)
    return value, seconds


def _blocking_first(llm: CheckLLM | None, name: str) -> None:
    if llm is not None and llm.blocking_calls:
        raise Fail(f"{name} called the blocking call_llm(...) (or llm.call(...)) {llm.blocking_calls} "
                   f"time{'s' * (llm.blocking_calls != 1)} from async code. A blocking call holds the "
                   f"whole event loop while it waits, so no other call can start meanwhile: everything "
                   f"runs one at a time. Inside exec_async, write 'await call_llm_async(prompt)'.")


#: Real seconds a virtual-clock run may take before the check cancels it (normally milliseconds).
WALL_LIMIT = 10.0


class _WallLimit(Exception):
    """The watchdog cancelled a virtual-clock run that kept the loop busy for WALL_LIMIT real seconds."""


@contextmanager
def _watchdog(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any] | None, seconds: float | None) -> Iterator[threading.Event]:
    """After ``seconds`` of real time, cancel ``task`` from another thread; the event says it fired.

    A virtual clock only moves when every task waits. Code that keeps the loop busy (a task
    that awaits ``asyncio.sleep(0)`` forever) never lets it move, so no timer inside the loop,
    not even the run's guard, can end it; a thread can.
    """
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        try:
            loop.call_soon_threadsafe(task.cancel)  # type: ignore[union-attr]
        except RuntimeError:
            pass  # the loop has closed meanwhile: the run is over anyway

    timer = threading.Timer(seconds, fire) if seconds is not None and task is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield fired
    finally:
        if timer is not None:
            timer.cancel()


@contextmanager
def default_llm(llm: SimulatedLLM | None) -> Iterator[None]:
    """Make ``llm`` the service behind ``call_llm_async`` for the duration (no-op for None)."""
    if llm is None:
        yield
        return
    previous = set_default_llm(llm)
    try:
        yield
    finally:
        set_default_llm(previous)


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

