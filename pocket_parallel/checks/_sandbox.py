"""Run a student's answer in a fresh Python process, out of reach of the notebook it was written in.

A check that ran the answer in the student's own kernel could be patched by any cell, and the
answer could read the check's frames. So a check ships the answer's source (:mod:`._shipping`)
to a subprocess and talks to it in JSON lines:

1. the first line carries the module that rebuilds the answer; the subprocess writes it to a
   file in a fresh temporary folder (so that process pools started with ``spawn`` or
   ``forkserver`` can import what it defines) and keeps its own stdout for the replies: what
   the student's code prints goes nowhere;
2. ``{"op": "load"}`` imports that module afresh (a new class, with no state left from an
   earlier workload) and replies whether it could;
3. ``{"op": "run", "experiment": name, "workload": {...}}`` runs one registered experiment
   (:func:`experiment`) on the answer and replies with what it observed, as plain data.

The check in the kernel draws the workloads, reads the observations and judges them; nothing
the subprocess says can run code in the kernel (JSON, never pickle). A request that takes longer
than its time limit ends the subprocess, with everything it started.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ._serve import end_with_parent, load_answer, serve, write_answer
from ._shipping import Shipment

#: Seconds the subprocess may take to start and rebuild the answer (imports included) on a busy machine.
START_SECONDS = 60.0

Experiment = Callable[[Any, dict[str, Any]], dict[str, Any]]
EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str) -> Callable[[Experiment], Experiment]:
    """Register an experiment under ``name``: ``(answer, workload) -> observation``, run in the subprocess."""

    def register(function: Experiment) -> Experiment:
        EXPERIMENTS[name] = function
        return function

    return register


class SandboxError(Exception):
    """The subprocess ended, or stopped answering, before it replied: ``output`` is the end of its stderr."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class TooLong(SandboxError):
    """A request took longer than its time limit; the subprocess and what it started were stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no reply within {seconds:g} s")
        self.seconds = seconds


class Worker:
    """One subprocess that answers JSON lines with JSON lines: start it with ``with``, then :meth:`ask`.

    Its stdout carries the replies only; its stderr goes to a temporary file, read back when it
    dies. It runs in a session of its own, so that ending it ends what it started too.
    """

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._stderr: IO[str] | None = None

    def __enter__(self) -> Worker:
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                       "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            encoding="utf-8", errors="replace", env=environment, start_new_session=os.name == "posix")
        self._reader = threading.Thread(target=self._read, name="pocket-parallel-check-reader", daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def send(self, message: dict[str, Any]) -> None:
        """Send one message (a JSON line)."""
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except OSError:
            raise SandboxError("the check's subprocess ended unexpectedly", self._output()) from None

    def ask(self, message: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Send ``message`` and return the reply; :class:`TooLong` (and the subprocess ended) after ``seconds``."""
        self.send(message)
        try:
            line = self._replies.get(timeout=seconds)
        except queue.Empty:
            if self._process is not None:
                _end(self._process)
            raise TooLong(seconds) from None
        if line is None:
            raise SandboxError("the check's subprocess ended unexpectedly", self._output())
        reply: dict[str, Any] = json.loads(line)
        if "internal" in reply:  # a bug of the check's, not the student's: say so loudly
            raise RuntimeError(f"pocket_parallel's check failed in its subprocess:\n{reply['internal']}")
        return reply

    def close(self) -> None:
        """End the subprocess (politely, then not) and everything it started; idempotent."""
        process, self._process = self._process, None
        if process is not None:
            try:
                if process.stdin is not None:
                    process.stdin.close()
            except OSError:
                pass
            _exited(process, 10.0)
            _end(process)
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _read(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            self._replies.put(line)
        self._replies.put(None)
        process.stdout.close()

    def _output(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-3000:]


class Sandbox(Worker):
    """The subprocess that runs the student's answer: start it with ``with``, then :meth:`load` and :meth:`run`.

    ``command`` starts it (by default this module's :func:`main` in the same Python, started
    with ``-c``: the answer's functions live in a module file of their own, which processes a
    pool starts can import); ``settings`` goes to it with the answer's module.
    """

    def __init__(self, shipment: Shipment, *, settings: dict[str, Any] | None = None,
                 command: list[str] | None = None) -> None:
        super().__init__(command or [sys.executable, "-c", f"from {__name__} import main; main()"])
        self.shipment = shipment
        self.settings = dict(settings or {})
        self._folder: str | None = None

    def __enter__(self) -> Sandbox:
        # The subprocess works in a folder of the check's: removed here even if the subprocess had to be killed.
        self._folder = tempfile.mkdtemp(prefix="pocket-parallel-check-")
        super().__enter__()
        self.send({"module": self.shipment.source, "name": self.shipment.name, "folder": self._folder, **self.settings})
        return self

    def close(self) -> None:
        """End the subprocess and what it started, and remove its folder; idempotent."""
        super().close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def load(self, seconds: float = START_SECONDS) -> dict[str, Any]:
        """Import the answer's module afresh: ``{"loaded": True}``, or ``{"error": ...}`` saying why not."""
        return self.ask({"op": "load"}, seconds)

    def run(self, name: str, workload: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Run experiment ``name`` on ``workload``; its observation, or :class:`TooLong` after ``seconds``."""
        return self.ask({"op": "run", "experiment": name, "workload": workload}, seconds)


def _exited(process: subprocess.Popen[str], seconds: float) -> None:
    """Wait up to ``seconds`` for ``process`` to exit, without reaping it (its id stays its own)."""
    if os.name != "posix":  # pragma: no cover - Windows
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.01)


def _end(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` and its session (pool workers, a forkserver), then reap it.

    Until it is reaped, even after it exited, its id names it and its session, and no other.
    """
    if process.returncode is None:
        try:
            if os.name == "posix":
                os.killpg(process.pid, signal.SIGKILL)
            else:  # pragma: no cover - Windows
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass
    process.wait()


# -- the subprocess's side ---------------------------------------------------------------------------


def main() -> None:
    """Serve the check: rebuild the answer, run experiments on it, reply in JSON lines on stdout."""
    end_with_parent()
    start = json.loads(sys.stdin.readline() or "null")
    if start is None:
        return
    from . import _running
    from ._errors import error_info
    from ._quiet import quiet

    _running.WALL_LIMIT = float(start.get("wall_limit", _running.WALL_LIMIT))
    _running.FOLDER = start["folder"]
    importlib.import_module("pocket_parallel.checks")  # its modules register their experiments
    answer: list[Any] = [None]

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "load":
            answer[0], reply = load_answer(start["name"], error_info)
            return reply
        with quiet() as noise:
            observation = EXPERIMENTS[request["experiment"]](answer[0], request["workload"])
        return {"observation": observation, "notes": noise.notes}

    write_answer(start["folder"], start["module"])
    serve(handle)


if __name__ == "__main__":
    main()
