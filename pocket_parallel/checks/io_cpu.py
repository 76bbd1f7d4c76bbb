"""Checks for exercise 6: blocking I/O goes to threads, CPU-bound work goes to processes.

These two checks run on the real clock, because threads, processes and the GIL are real, in the
check's subprocess (:mod:`._sandbox`). They are decided by facts, never by a stopwatch, so they
hold on a busy machine:

- A **heartbeat** task ticks on the event loop every few milliseconds while the student's code
  runs, and every call of the work the check hands over (``fetch`` or ``crunch``) waits, before
  it returns, until the loop has ticked at least once after the call began (up to
  :data:`PATIENCE` seconds). A loop that stays free ticks within milliseconds; a loop blocked
  by ``pool.map``, ``future.result()`` or a thread's ``join`` cannot tick before the call ends,
  and so never does: that is a fact, not a measurement.
- :func:`check_blocking_io` hands ``fetch_all`` a blocking ``fetch(url)`` that also waits, up to
  :data:`PATIENCE` seconds, for every other URL's call to be in flight: calls on the loop's own
  thread, calls one at a time or a few at a time are facts too. The check gives the loop a
  thread pool as large as the batch (up to 60 URLs), so ``asyncio.to_thread`` can run them all.
- :func:`check_cpu_work` hands ``crunch_all`` a ``crunch(n)`` that records, wherever it runs
  (in any process: the record goes to a file), which process and thread ran it and when it
  computed; after computing, it waits up to :data:`PATIENCE` seconds for a call in another
  process to be computing as well. The work must run in worker processes, at least two of them
  computing at overlapping times (that holds on a busy machine; a speedup need not). The CPU
  time of the loop's thread and of the other threads of the process is measured too, for all
  of the answer's code: computing anywhere but in worker processes shows.

Results must come back in the order of the input, on inputs whose sorted order differs. After
a call has waited :data:`PATIENCE` seconds in vain, the others of that batch no longer wait, so a
wrong answer costs seconds, not minutes. Pools start with forkserver (or spawn), never by
forking the check's threaded process.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..cpu_work import count_primes
from ._feedback import SETTINGS, Check, CheckResult, Fail, Lab, clip, plural, raise_for_run
from ._portable import from_portable, to_portable
from . import _running
from ._running import run_answer
from ._sandbox import experiment

#: Seconds a call waits for a heartbeat tick, and for its company, before it gives up on them (on a
#: loop that is free a tick comes every few milliseconds, on a busy machine within a fraction of a second).
PATIENCE = 2.0
_HEARTBEAT = 0.005  # seconds between heartbeat ticks
_GUARD = 60.0  # real seconds a student's coroutine may take before the check gives up
_PROBE = "POCKET_PARALLEL_CRUNCH_PROBE"
_OVERHEAD = 0.25  # seconds of processor time the loop's thread may spend on a pool and its results
T = TypeVar("T")  # the environment variable naming crunch's probe folder


def check_blocking_io(fetch_all: Callable[..., Any], *, seed: int | None = None) -> CheckResult:
    """Exercise 6a: check ``async def fetch_all(fetch, urls) -> list``.

    ``fetch(url)`` is a blocking download. ``fetch_all`` must run one call per URL, all at once,
    without blocking the event loop (each call in a worker thread), and return the pages in the
    order of ``urls``. It runs on fresh batches of 3 to 60 URLs, and none.
    """
    _require_async_function("fetch_all", fetch_all)
    return EXERCISE_6A(fetch_all, seed)


def check_cpu_work(crunch_all: Callable[..., Any], *, seed: int | None = None) -> CheckResult:
    """Exercise 6b: check ``async def crunch_all(crunch, numbers) -> list``.

    ``crunch(n)`` is CPU-bound (it counts the primes below ``n`` in pure Python). ``crunch_all``
    must compute ``crunch(n)`` once for every number in worker processes, at least two of them
    computing at the same time, while the event loop stays free, and return the results in
    input order. It runs on fresh batches of 4 to 12 numbers, and none.
    """
    _require_async_function("crunch_all", crunch_all)
    return EXERCISE_6B(crunch_all, seed)


def _require_async_function(parameter: str, value: Any) -> None:
    if not callable(value) or isinstance(value, type):
        raise TypeError(f"{parameter} must be the async function {parameter} itself; got {type(value).__name__}")


def _must_be_async(lab: Lab) -> None:
    if not lab.facts["coroutine_function"]:
        raise Fail(f"{lab.name} is a plain function; the exercise asks for 'async def {lab.name}(...)', so that it "
                   f"can await work running elsewhere while the event loop goes on with other tasks.")


def page_of(url: str) -> str:
    """The page the simulated web server returns for ``url``."""
    return f"<html>{len(url)} bytes of {url}</html>"


def crunch(n: int) -> int:
    """CPU-bound work for exercise 6b: the number of primes below ``n`` (pure Python).

    Importable from this module, so a process pool can send it to its workers with any start
    method. Inside a check it also records where and when it computed (see the module's notes).
    """
    probe = _CrunchProbe.from_environment()
    if probe is None:
        return count_primes(n)
    start = probe.begin()
    result = count_primes(n)
    probe.end(start, n)
    return result


# -- in the subprocess: the heartbeat ----------------------------------------------------------------


class _Heartbeat:
    """Ticks on the event loop; threads may wait for a tick, other processes read the count from a file."""

    def __init__(self, counter: Path | None = None) -> None:
        self.ticks = 0
        self.changed = threading.Condition()
        self._counter = os.open(counter, os.O_RDWR | os.O_CREAT) if counter is not None else None

    async def beat(self) -> None:
        while True:
            with self.changed:
                self.ticks += 1
                self.changed.notify_all()
            if self._counter is not None:
                _write_at_start(self._counter, self.ticks.to_bytes(8, "big"))
            await asyncio.sleep(_HEARTBEAT)

    def close(self) -> None:
        if self._counter is not None:
            os.close(self._counter)
            self._counter = None


def _write_at_start(descriptor: int, data: bytes) -> None:
    if hasattr(os, "pwrite"):
        os.pwrite(descriptor, data, 0)
    else:  # pragma: no cover - Windows
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, data)


async def _with_heartbeat(heart: _Heartbeat, work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    beat = asyncio.ensure_future(heart.beat())
    await asyncio.sleep(0)  # the first tick
    try:
        return await work()
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)


# -- 6a: blocking I/O ---------------------------------------------------------------------------------


class _BlockingFetch:
    """A blocking download that waits for a heartbeat tick, and for every other URL's call, before it returns."""

    def __init__(self, heart: _Heartbeat, count: int, patience: float) -> None:
        self.heart, self.count, self.patience = heart, count, patience
        self.loop_thread: int | None = None
        self.threads: list[int] = []
        self.in_flight = self.peak = 0
        self.frozen = self.alone = False  # set once a call waited PATIENCE seconds in vain

    def __call__(self, url: str) -> str:
        changed = self.heart.changed
        with changed:
            self.threads.append(threading.get_ident())
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            first_tick = self.heart.ticks
            changed.notify_all()
        if threading.get_ident() != self.loop_thread:  # on the loop's thread, waiting for the loop would hang it
            deadline = time.monotonic() + self.patience
            with changed:
                while not ((self.heart.ticks > first_tick or self.frozen) and (self.peak >= self.count or self.alone)):
                    if not changed.wait(deadline - time.monotonic()) and time.monotonic() >= deadline:
                        break
                self.frozen = self.frozen or self.heart.ticks <= first_tick
                self.alone = self.alone or self.peak < self.count
        with changed:
            self.in_flight -= 1
        return page_of(url)


@experiment("exercise 6a")
def _run_fetches(fetch_all: Any, workload: dict[str, Any]) -> dict[str, Any]:
    urls = workload["urls"]
    heart = _Heartbeat()
    fetch = _BlockingFetch(heart, len(urls), workload["patience"])

    async def work() -> Any:
        loop = asyncio.get_running_loop()
        fetch.loop_thread = threading.get_ident()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=max(4, len(urls)), thread_name_prefix="fetch"))
        return await _with_heartbeat(heart, lambda: fetch_all(fetch, list(urls)))

    pages, report = run_answer(work, clock="real", guard=_GUARD)
    return {"run": report, "pages": to_portable(pages), "peak": fetch.peak, "frozen": fetch.frozen,
            "on_loop": sum(thread == fetch.loop_thread for thread in fetch.threads), "calls": len(fetch.threads)}


def _rounds(sizes: Callable[[random.Random], tuple[int, ...]], one_round: Callable[[Lab, str, random.Random, int], None],
            passed: str) -> Callable[[random.Random, Lab], str]:
    """A check's body: the answer must be an ``async def``; one round per batch size; then ``passed``."""
    def body(rng: random.Random, lab: Lab) -> str:
        _must_be_async(lab)
        for count in sizes(rng):
            one_round(lab, lab.name, rng, count)
        return f"{lab.name} {passed}"
    return body


def _patience() -> float:
    return float(SETTINGS.get("patience", PATIENCE))


def _urls(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct URLs whose pages, in input order, are sorted neither up nor down."""
    return _unsorted(lambda: list(dict.fromkeys(f"https://example.org/{rng.choice(('news', 'wiki', 'shop', 'docs'))}/"
                                                f"{rng.randint(100, 99_999)}" for _ in range(count))), count, page_of)


def _unsorted(draw: Callable[[], list[T]], count: int, result: Callable[[T], Any]) -> list[T]:
    """What ``draw()`` returns, drawn again until it holds ``count`` items whose results, in order, are
    sorted neither up nor down (so results returned sorted, or in completion order, show)."""
    while True:
        items = draw()
        results = [result(item) for item in items]
        if len(items) == count and (count < 2 or results not in (sorted(results), sorted(results, reverse=True))):
            return items


def _round(lab: Lab, name: str, experiment: str, workload: dict[str, Any], doing: str) -> dict[str, Any]:
    """Run one round of ``experiment`` with the check's patience; fail unless the answer ended well."""
    seen = lab.run(experiment, {**workload, "patience": _patience()}, doing=doing, seconds=_GUARD + 30)
    raise_for_run(seen["run"], name, doing, clock="real")
    return seen


def _fetch_round(lab: Lab, name: str, rng: random.Random, count: int) -> None:
    urls = _urls(rng, count)
    seen = _round(lab, name, "exercise 6a", {"urls": urls}, f"fetching {plural(count, 'URL')}")
    pages, expected = from_portable(seen["pages"]), [page_of(url) for url in urls]
    if not isinstance(pages, (list, tuple)) or list(pages) != expected:
        order = (" They are all there, in another order: asyncio.gather keeps the order of the awaitables it is "
                 "given, whatever order they finish in." if isinstance(pages, (list, tuple))
                 and sorted(map(str, pages)) == sorted(expected) else " asyncio.gather keeps that order.")
        raise Fail(f"{name} returned {clip(pages, 80)}; it should return the list of the {count} pages, fetch(url) "
                   f"for each URL, in the order of the URLs.{order}")
    if seen["calls"] != count:
        raise Fail(f"{name} called fetch {plural(seen['calls'], 'time')} for {plural(count, 'URL')}: once per URL.")
    if seen["on_loop"]:
        raise Fail(f"{name} called the blocking fetch on the event loop's own thread ({seen['on_loop']} of {count} "
                   f"calls), so the loop stood still during each download: nothing else could run and the downloads "
                   f"could not overlap. Hint: 'await asyncio.to_thread(fetch, url)' runs the call in a worker thread "
                   f"and frees the loop while it waits; gather one of those per URL.")
    if seen["frozen"]:
        raise Fail(f"{name} ran fetch in other threads, but the event loop did not tick once while a download was "
                   f"in flight (the check waited {_patience():g} s for it): the coroutine waited for the threads with a "
                   f"blocking call (pool.map(...), future.result(), thread.join()), which holds the whole loop. Hint: "
                   f"await them instead: asyncio.to_thread(fetch, url) per URL, gathered.")
    if count and seen["peak"] < count:
        how = ("one at a time: each call was awaited before the next one started" if seen["peak"] == 1
               else f"at most {seen['peak']} at a time")
        raise Fail(f"{name} ran fetch in worker threads (good: the loop stayed free), but {how}, for {count} URLs. "
                   f"Downloads wait, they do not compute: all of them can wait together. Hint: create one "
                   f"asyncio.to_thread(fetch, url) per URL and await them together with asyncio.gather (no fixed "
                   f"number of workers: the batch may be larger than any you chose).")


# -- 6b: CPU-bound work -------------------------------------------------------------------------------


class _CrunchProbe:
    """What crunch writes, in whichever process runs it, to the check's folder: one JSON line per call."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.loop = json.loads((self.folder / "loop.json").read_text())  # {"pid", "thread", "patience"}

    @classmethod
    def from_environment(cls) -> _CrunchProbe | None:
        folder = os.environ.get(_PROBE)
        return cls(folder) if folder and Path(folder, "loop.json").exists() else None

    def _ticks(self) -> int:
        try:
            with open(self.folder / "ticks", "rb") as counter:
                return int.from_bytes(counter.read(8) or b"\0", "big")
        except OSError:
            return 0

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode()
        descriptor = os.open(self.folder / "log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(descriptor, line)  # one write of one short line: whole, whatever else appends
        finally:
            os.close(descriptor)

    def _records(self) -> list[dict[str, Any]]:
        try:
            text = (self.folder / "log").read_text()
        except OSError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def begin(self) -> dict[str, Any]:
        start = {"kind": "start", "pid": os.getpid(), "thread": threading.get_ident(), "at": time.monotonic(),
                 "cpu": time.thread_time(), "ticks": self._ticks()}
        self._write(start)
        return start

    def end(self, start: dict[str, Any], n: int) -> None:
        computed, cpu = time.monotonic(), time.thread_time() - start["cpu"]
        on_loop = (start["pid"], start["thread"]) == (self.loop["pid"], self.loop["thread"])
        ticked = on_loop or self._wait(lambda records: self._ticks() > start["ticks"], "frozen")
        # A thread of the loop's own process has no company to wait for: it is wrong as it is.
        company = start["pid"] == self.loop["pid"] or self._wait(lambda r: _overlapped(r, start, computed), "alone")
        self._write({"kind": "end", "pid": start["pid"], "thread": start["thread"], "n": n, "start": start["at"],
                     "computed": computed, "cpu": cpu, "ticked": ticked, "company": company, "on_loop": on_loop})

    def _wait(self, done: Callable[[list[dict[str, Any]]], bool], flag: str) -> bool:
        """Whether ``done(records)`` came true within PATIENCE seconds (not waiting once ``flag`` is set)."""
        deadline = time.monotonic() + float(self.loop["patience"])
        while True:
            records = self._records()
            if done(records):
                return True
            if any(r.get("kind") == flag for r in records) or time.monotonic() >= deadline:
                self._write({"kind": flag})
                return False
            time.sleep(0.002)


def _overlapped(records: list[dict[str, Any]], mine: dict[str, Any], computed: float) -> bool:
    """Whether a call in another process began before this one finished computing and was still going
    (or ended after this one began)."""
    ended = {(r["pid"], r["start"]): r["computed"] for r in records if r.get("kind") == "end"}
    return any(r.get("kind") == "start" and r["pid"] != mine["pid"] and r["at"] < computed
               and ended.get((r["pid"], r["at"]), math.inf) > mine["at"] for r in records)


def _probe_folder() -> Path:
    """This subprocess's folder for crunch's records, emptied for a new round. Its path stays the same,
    so a forkserver started in one round (its environment fixed then) serves the next ones too."""
    folder = Path(_running.FOLDER, "crunch")
    folder.mkdir(exist_ok=True)
    os.environ[_PROBE] = str(folder)
    for name in ("log", "ticks", "loop.json"):
        (folder / name).unlink(missing_ok=True)
    return folder


@experiment("exercise 6b")
def _run_crunches(crunch_all: Any, workload: dict[str, Any]) -> dict[str, Any]:
    numbers = workload["numbers"]
    _processes_start_clean()
    folder = _probe_folder()
    heart = _Heartbeat(folder / "ticks")
    measured: dict[str, float] = {}

    async def work() -> Any:
        (folder / "loop.json").write_text(json.dumps({"pid": os.getpid(), "thread": threading.get_ident(),
                                                      "patience": workload["patience"]}))
        loop_cpu, process_cpu = time.thread_time(), time.process_time()
        try:
            return await _with_heartbeat(heart, lambda: crunch_all(crunch, list(numbers)))
        finally:
            measured["loop_cpu"] = time.thread_time() - loop_cpu
            measured["process_cpu"] = time.process_time() - process_cpu

    try:
        results, report = run_answer(work, clock="real", guard=_GUARD)
    finally:
        heart.close()
        (folder / "loop.json").unlink(missing_ok=True)  # crunch calls still running from now on record nothing
    log = folder / "log"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {"run": report, "results": to_portable(results), "records": [r for r in records if r["kind"] == "end"],
            "loop_pid": os.getpid(), **measured}


def _processes_start_clean() -> None:
    """Pools made without a start method use forkserver (spawn where there is none): never a fork of this
    threaded process. The forkserver preloads this module, so each worker starts in milliseconds."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("forkserver", force=True)
        multiprocessing.set_forkserver_preload([__name__])
    else:  # pragma: no cover - Windows
        multiprocessing.set_start_method("spawn", force=True)


def _numbers(rng: random.Random, count: int) -> list[int]:
    """``count`` distinct numbers to crunch, sorted neither up nor down."""
    return _unsorted(lambda: rng.sample(range(10_000, 25_000), count), count, lambda n: n)


def _crunch_round(lab: Lab, name: str, rng: random.Random, count: int) -> None:
    numbers = _numbers(rng, count)
    seen = _round(lab, name, "exercise 6b", {"numbers": numbers}, f"crunching {plural(count, 'number')}")
    results, expected = from_portable(seen["results"]), [count_primes(n) for n in numbers]
    if not isinstance(results, (list, tuple)) or list(results) != expected:
        raise Fail(f"{name} returned {clip(results, 80)}; it should return [crunch(n) for n in numbers], in the order "
                   f"of the numbers ({expected}). asyncio.gather keeps that order.")
    records = seen["records"]
    crunched = sorted(r["n"] for r in records)
    if crunched != sorted(numbers):
        raise Fail(f"{name} called crunch {plural(len(records), 'time')} for {plural(count, 'number')} (on "
                   f"{sorted(set(crunched))[:6]}...): the exercise asks for crunch(n), once for each number. Do not "
                   f"compute the counts another way, and do not compute any twice.")
    here = [r for r in records if r["pid"] == seen["loop_pid"]]
    on_loop = [r for r in here if r["on_loop"]]
    # Computing of the answer's own beyond crunch: more processor time than all the jobs took, and
    # more than a pool's setting up and handing over ever costs (tens of milliseconds).
    work = max(math.fsum(r["cpu"] for r in records), _OVERHEAD)
    if on_loop or (count and seen["loop_cpu"] > work):
        raise Fail(f"{name} computed on the event loop's own thread: {seen['loop_cpu']:.2f} s of processor time "
                   f"there, all the while the loop was frozen: no other task could run, and the jobs ran one "
                   f"after another on one core. CPU-bound work never reaches an await that waits, so async alone "
                   f"cannot overlap it. Hint: run each call in a process pool, 'await loop.run_in_executor(pool, "
                   f"crunch, n)' with pool a ProcessPoolExecutor.")
    threads_cpu = seen["process_cpu"] - seen["loop_cpu"]
    if here or (count and threads_cpu > work):
        raise Fail(f"{name} kept the event loop free (good) by computing in threads of this process ({threads_cpu:.2f} "
                   f"s of processor time there). But threads take turns holding the GIL, so CPU-bound jobs still run "
                   f"one at a time, on one core. Hint: use a concurrent.futures.ProcessPoolExecutor and 'await "
                   f"loop.run_in_executor(pool, crunch, n)' for each number: processes compute side by side.")
    if any(not r["ticked"] for r in records):
        raise Fail(f"{name} ran crunch in other processes (good), but the event loop did not tick once while a job "
                   f"was computing (the check waited {_patience():g} s for it): it waited for the pool with a blocking "
                   f"call (pool.map(...), future.result(), or a 'with ProcessPoolExecutor()' block ending inside the "
                   f"coroutine), so no other task could run meanwhile. Hint: 'await loop.run_in_executor(pool, "
                   f"crunch, n)' per number, gathered, waits without blocking the loop.")
    processes = {r["pid"] for r in records}
    if count >= 2 and (len(processes) < 2 or not any(r["company"] for r in records)):
        raise Fail(f"{name} ran crunch in other processes without blocking the loop (good), but never in two at the "
                   f"same time: {plural(len(processes), 'process', 'processes')} computed, one after another (the "
                   f"check waited {PATIENCE:g} s for a second one). Processes compute side by side only when there "
                   f"are several: leave ProcessPoolExecutor its default number of workers (one per core), or give "
                   f"it at least two, and submit every number before awaiting any.")


EXERCISE_6A = Check("Exercise 6a", _rounds(
    lambda rng: (rng.randint(3, 6), 0, rng.randint(20, 60)), _fetch_round,
    "ran fresh batches of blocking downloads, from none to dozens. Every call ran in a worker thread and all of "
    "them were in flight together, while the event loop kept ticking the whole time, and the pages came back in the "
    "order of the URLs. asyncio.to_thread is the tool for blocking I/O inside async code."))
EXERCISE_6B = Check("Exercise 6b", _rounds(
    lambda rng: (rng.randint(4, 6), 0, rng.randint(8, 12)), _crunch_round,
    "computed fresh batches of CPU-bound jobs in worker processes, at least two of them computing at the same time, "
    "while the event loop kept ticking the whole time and did no computing of its own; the results came back in "
    "the order of the numbers. For CPU-bound work, asyncio and threads only take turns under the GIL; processes "
    "compute side by side."))
