"""The explorer's response in a real Jupyter kernel: from a slider move to the new picture.

A kernel is started with ``jupyter_client`` (the kernel JupyterLab would start), an explorer is
made in it, and slider moves are sent the way a browser sends them: a comm message that sets
the slider widget's value. A move's time runs from sending that message to receiving the
picture widget's update with the new PNG bytes, which is what the browser then shows. Between
moves the benchmark waits until the explorer has measured its whole curve, as a learner who
looks at the picture would.

Each move goes to a setting the explorer has not seen: a C it has not run (never one of the
curve's own points, which are already measured) or a new latency (a new workload: its
sequential run, its parallel run and new reference lines). The kernel also reports how long
each change took inside it (``Explorer.redraw_times``); the rest is messaging.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty
from typing import Any, TextIO

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from pocket_parallel.widgets.runs import CURVE_LIMITS

TARGET = 0.100
"""Seconds: the response the explorer aims for, median over moves, for N up to 500."""

CONTROLS = ("max_concurrency", "latency")
START = {"max_concurrency": 10, "latency": 1.0, "jitter": 0.3}
STARTUP_SECONDS = 60.0
MOVE_SECONDS = 30.0
SETTLE_SECONDS = 120.0


def moves(control: str, count: int) -> list[Any]:
    """``count`` values for ``control`` the explorer has not run yet, stepping up from the start.

    C steps by one (as the arrow key moves it), skipping the curve's own points; the latency
    steps by 0.01 s (the slider's step), each a new workload.
    """
    if control == "max_concurrency":
        values, c = [], START["max_concurrency"]
        while len(values) < count:
            c += 1
            if c not in CURVE_LIMITS:
                values.append(c)
        return values
    if control == "latency":
        return [round(START["latency"] + 0.01 * (k + 1), 2) for k in range(count)]
    raise ValueError(f"control must be one of {', '.join(CONTROLS)}; got {control!r}")


@dataclass(frozen=True)
class ExplorerCell:
    """Every move of one slider at one N: seconds to the new picture, and seconds spent inside the kernel.

    ``load`` is the machine's 1-minute load average when the moves were done.
    """

    n: int
    control: str
    values: tuple[Any, ...]
    times: tuple[float, ...]
    kernel_times: tuple[float, ...]
    load: float | None = None

    @property
    def median(self) -> float:
        """Median seconds from the move to the new picture."""
        return statistics.median(self.times)

    @property
    def kernel_median(self) -> float:
        """Median seconds the kernel spent on a move (run, draw, encode)."""
        return statistics.median(self.kernel_times)

    @property
    def within_target(self) -> float:
        """Share of moves answered within :data:`TARGET`."""
        return sum(t <= TARGET for t in self.times) / len(self.times)


# -- the kernel --------------------------------------------------------------------------------

_SETUP = """
import asyncio as _pp_asyncio, json as _pp_json, time as _pp_time
from pocket_parallel import explorer as _pp_explorer

async def _pp_settle(widget, timeout):
    end = _pp_time.monotonic() + timeout
    while not widget.curve_complete() or "pp-measuring" in widget._dom_classes:
        if _pp_time.monotonic() > end:
            raise TimeoutError(f"the explorer was still measuring its curve after {timeout} s")
        await _pp_asyncio.sleep(0.02)
"""


class KernelSession:
    """A Jupyter kernel of this Python, with a client, that runs code and sends widget messages.

    Use it as a context manager: the kernel is shut down on leaving, whatever happened.
    """

    def __init__(self) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix="pp-kernel-", suffix=".log", delete=False)  # noqa: SIM115
        self.manager = KernelManager(kernel_name="python3")
        self.client: BlockingKernelClient | None = None

    def __enter__(self) -> KernelSession:
        try:
            self.manager.start_kernel(stdout=self._log, stderr=self._log)
            self.client = self.manager.client()
            self.client.start_channels()
            self.client.wait_for_ready(timeout=STARTUP_SECONDS)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the channels and the kernel (politely, then by force)."""
        if self.client is not None:
            self.client.stop_channels()
        try:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=False)
        except Exception:
            if self.manager.has_kernel:
                self.manager.shutdown_kernel(now=True)
        finally:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)

    def _client(self) -> BlockingKernelClient:
        if self.client is None:
            raise RuntimeError("the kernel is not running: use KernelSession as a context manager")
        return self.client

    def execute(self, code: str, timeout: float = SETTLE_SECONDS) -> str:
        """Run ``code`` in the kernel and return what it printed; a kernel error is raised here."""
        client = self._client()
        msg_id = client.execute(code, store_history=False)
        printed: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline, f"running {code.strip().splitlines()[0]!r}")
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                raise RuntimeError(f"the kernel raised {content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(printed)

    def _next(self, deadline: float, doing: str) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the kernel did not finish {doing} in time")
        try:
            message: dict[str, Any] = self._client().get_iopub_msg(timeout=left)
        except Empty:
            raise TimeoutError(f"the kernel did not finish {doing} in time") from None
        return message

    def set_value(self, model_id: str, value: Any, answer_from: str, timeout: float = MOVE_SECONDS) -> float:
        """Set a widget's value as a browser does; seconds until widget ``answer_from`` sends new bytes."""
        client = self._client()
        message = client.session.msg("comm_msg", {
            "comm_id": model_id, "data": {"method": "update", "state": {"value": value}, "buffer_paths": []}})
        sent = time.perf_counter()
        client.shell_channel.send(message)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline, f"answering a move to {value!r}")
            content = reply["content"]
            if (reply["msg_type"] == "comm_msg" and content.get("comm_id") == answer_from
                    and content["data"].get("method") == "update" and ["value"] in content["data"].get("buffer_paths", [])):
                return time.perf_counter() - sent


@contextmanager
def kernel() -> Iterator[KernelSession]:
    """A :class:`KernelSession` with the explorer imported and its settle helper defined."""
    with KernelSession() as session:
        session.execute(_SETUP)
        yield session


def measure_cell(session: KernelSession, n: int, control: str, count: int) -> ExplorerCell:
    """Make an explorer of ``n`` items in the kernel and time ``count`` moves of ``control``."""
    values = moves(control, count)
    ids = json.loads(session.execute(
        f"_pp_widget = _pp_explorer(items={n}, max_concurrency={START['max_concurrency']}, "
        f"latency={START['latency']}, jitter={START['jitter']})\n"
        "await _pp_settle(_pp_widget, 120)\n"
        "print(_pp_json.dumps({'max_concurrency': _pp_widget.max_concurrency.model_id, "
        "'latency': _pp_widget.latency.model_id, 'picture': _pp_widget.picture.model_id}))"
    ))
    times = []
    for value in values:
        times.append(session.set_value(ids[control], value, answer_from=ids["picture"]))
        session.execute(f"await _pp_settle(_pp_widget, {SETTLE_SECONDS})")
    inside = json.loads(session.execute(
        f"print(_pp_json.dumps(list(_pp_widget.redraw_times)[-{count}:]))\n"
        f"assert _pp_widget.settings()[{control!r}] == {values[-1]!r}, _pp_widget.settings()\n"
        "_pp_widget.close()"
    ))
    loads = _loads()
    return ExplorerCell(n, control, tuple(values), tuple(times), tuple(inside), None if loads is None else loads[0])


def seconds_estimate(items: Sequence[int], count: int) -> float:
    """A rough guess of how long :func:`measure` takes: starting the kernel, then each move and its settling."""
    if not items:
        return 0.0
    per_move = {n: 0.3 + 1.2 * n / 500 for n in items}  # the move, then the curve's points measured
    return 8.0 + sum(len(CONTROLS) * (count + 1) * per_move[n] for n in items)


@dataclass(frozen=True)
class ExplorerResults:
    """Every cell of one run of the explorer's benchmark, with when it ran and the load around it."""

    cells: tuple[ExplorerCell, ...]
    date: str
    duration: float
    load_start: tuple[float, float, float] | None
    load_end: tuple[float, float, float] | None


def _loads() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def measure(items: Sequence[int], count: int, stream: TextIO = sys.stderr) -> ExplorerResults:
    """Time ``count`` moves of each slider in :data:`CONTROLS` at each N of ``items``, in one kernel."""
    began, load_start = time.perf_counter(), _loads()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cells = []
    with kernel() as session:
        for n in items:
            for control in CONTROLS:
                cell = measure_cell(session, n, control, count)
                load = "unknown" if cell.load is None else f"{cell.load:.2f}"
                print(f"        explorer N = {n}, {control}: median {1000 * cell.median:.0f} ms over {count} moves "
                      f"(in the kernel {1000 * cell.kernel_median:.0f} ms); load {load}", file=stream, flush=True)
                cells.append(cell)
    return ExplorerResults(tuple(cells), date, time.perf_counter() - began, load_start, _loads())


# -- the report ---------------------------------------------------------------------------------

_SLIDERS = {"max_concurrency": "C (a new C each move)", "latency": "latency (a new workload each move)"}


def _order(cell: ExplorerCell) -> tuple[int, int]:
    return cell.n, CONTROLS.index(cell.control) if cell.control in CONTROLS else len(CONTROLS)


def _ms(value: float) -> str:
    return f"{1000 * value:.0f} ms"


def _short(control: str) -> str:
    return "C" if control == "max_concurrency" else control


def table(results: ExplorerResults) -> str:
    """One row per N and slider: the median time to the new picture, its spread, and the load."""
    lines = ["| N | slider moved | moves | to the new picture: median | min–max | within "
             f"{_ms(TARGET)} | inside the kernel: median | load (1 min) |",
             "|---:|:---|---:|---:|---:|---:|---:|---:|"]
    for cell in sorted(results.cells, key=_order):
        within = sum(t <= TARGET for t in cell.times)
        load = "unknown" if cell.load is None else f"{cell.load:.2f}"
        lines.append(f"| {cell.n:,} | {_SLIDERS.get(cell.control, cell.control)} | {len(cell.times)} | "
                     f"{_ms(cell.median)} | {_ms(min(cell.times))}–{_ms(max(cell.times))} | "
                     f"{within} of {len(cell.times)} | {_ms(cell.kernel_median)} | {load} |")
    return "\n".join(lines)


def readme_bullet(results: ExplorerResults) -> str | None:
    """One sentence: the median response per N and slider, and whether it met :data:`TARGET`."""
    ordered = sorted(results.cells, key=_order)
    if not ordered:
        return None
    by_n: dict[int, list[str]] = {}
    for cell in ordered:
        by_n.setdefault(cell.n, []).append(f"{_ms(cell.median)} ({_short(cell.control)})")
    parts = "; ".join(f"N = {n:,}: " + ", ".join(texts) for n, texts in by_n.items())
    missed = [c for c in ordered if c.median > TARGET]
    verdict = (f"within the {_ms(TARGET)} aimed for everywhere" if not missed else
               f"over the {_ms(TARGET)} aimed for at " + ", ".join(f"N = {c.n:,} ({_short(c.control)})" for c in missed))
    loads = [c.load for c in ordered if c.load is not None]
    load = f" (1-minute load average {min(loads):.1f}–{max(loads):.1f} while moving)" if loads else ""
    return (f"The explorer in a Jupyter kernel (timed {results.date}), from a slider move to the new picture, "
            f"median of {len(ordered[0].times)} moves: {parts}; {verdict}{load}. Method and every move: "
            "[benchmarks/results/latest.md](benchmarks/results/latest.md).")


def _load_text(load: tuple[float, float, float] | None) -> str:
    return "unknown" if load is None else ", ".join(f"{x:.2f}" for x in load)


def section(results: ExplorerResults) -> str:
    """The explorer's part of the results file (Markdown)."""
    minutes, seconds = divmod(round(results.duration), 60)
    return "\n".join([
        "## The explorer: from a slider move to the new picture, in a Jupyter kernel",
        "",
        "A kernel is started with `jupyter_client`, `explorer(items=N, max_concurrency=10, latency=1.0, jitter=0.3)` "
        "is made in it, and each move sets a slider's value with the comm message a browser sends; the time runs "
        "until the picture widget's update with the new PNG arrives. Between moves the explorer finishes measuring "
        "its curve. Each move of C goes to a C not yet run (the curve's own points are skipped); each latency move "
        f"(+0.01 s) is a new workload. The aim: a median of {_ms(TARGET)} or less for N up to 500. *Inside the "
        "kernel* is the explorer's own `redraw_times` (run, draw, encode); the rest is messaging. "
        f"This part ran on {results.date} and took {minutes} min {seconds:02d} s; load average (1, 5, 15 min) "
        f"{_load_text(results.load_start)} at its start, {_load_text(results.load_end)} at its end.",
        "",
        table(results),
        "",
    ])


def to_json(results: ExplorerResults) -> dict[str, Any]:
    """The results as plain JSON data."""
    return asdict(results)


def from_json(data: dict[str, Any]) -> ExplorerResults:
    """The inverse of :func:`to_json`."""
    def load(value: Any) -> tuple[float, float, float] | None:
        return None if value is None else (float(value[0]), float(value[1]), float(value[2]))

    cells = tuple(ExplorerCell(c["n"], c["control"], tuple(c["values"]), tuple(c["times"]), tuple(c["kernel_times"]),
                               c.get("load")) for c in data["cells"])
    return ExplorerResults(cells, data["date"], data["duration"], load(data["load_start"]), load(data["load_end"]))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.explorer [--quick] [--into RESULTS.json]``: time the explorer alone, print its section.

    With ``--into``, the explorer's part of a saved full run is replaced by this measurement
    (which keeps its own date and load); ``python -m benchmarks.run --redraw`` then redraws
    the reports from it.
    """
    import argparse

    from .plan import FULL, QUICK

    parser = argparse.ArgumentParser(prog="python -m benchmarks.explorer", description=main.__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 50 and 500, three moves per slider")
    parser.add_argument("--into", type=Path, metavar="RESULTS.json",
                        help="replace the explorer's part of this saved full run with the new measurement")
    args = parser.parse_args(argv)
    if args.into is not None:
        if args.quick:
            parser.error("--into takes the full measurement, not a quick one")
        try:
            saved = json.loads(args.into.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parser.error(f"--into: cannot read {args.into}: {error}")
    plan = QUICK if args.quick else FULL
    results = measure(plan.explorer_items, plan.explorer_moves)
    print(section(results))
    if args.into is not None:
        saved["explorer"] = to_json(results)
        args.into.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
        print(f"wrote the explorer's part into {args.into}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
