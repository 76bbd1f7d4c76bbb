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

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any, TextIO

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from pocket_parallel.explorer_runs import CURVE_LIMITS

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
    return ExplorerCell(n, control, tuple(values), tuple(times), tuple(inside), _load())


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def seconds_estimate(items: Sequence[int], count: int) -> float:
    """A rough guess of how long :func:`measure` takes: starting the kernel, then each move and its settling."""
    if not items:
        return 0.0
    per_move = {n: 0.3 + 1.2 * n / 500 for n in items}  # the move, then the curve's points measured
    return 8.0 + sum(len(CONTROLS) * (count + 1) * per_move[n] for n in items)


def measure(items: Sequence[int], count: int, stream: TextIO = sys.stderr) -> list[ExplorerCell]:
    """Time ``count`` moves of each slider in :data:`CONTROLS` at each N of ``items``, in one kernel."""
    cells = []
    with kernel() as session:
        for n in items:
            for control in CONTROLS:
                cell = measure_cell(session, n, control, count)
                load = "unknown" if cell.load is None else f"{cell.load:.2f}"
                print(f"        explorer N = {n}, {control}: median {1000 * cell.median:.0f} ms over {count} moves "
                      f"(in the kernel {1000 * cell.kernel_median:.0f} ms); load {load}", file=stream, flush=True)
                cells.append(cell)
    return cells
