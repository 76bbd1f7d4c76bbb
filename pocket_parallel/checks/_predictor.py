"""Exercise 3's predictor: the student's ``predict_makespan`` runs where it can only compute.

The check asks for a prediction by arithmetic. A function that runs the batch instead (the
course's node on the virtual clock, an asyncio semaphore of its own, threads that sleep) gets
the right number without predicting anything, and a function that could read the check's
frames could copy the right number. So the prediction runs in a process of its own, started as
a script (``python -I _predictor.py``), which imports nothing of pocket_parallel and is given
nothing but the latencies and C of each workload; the truth stays with the check.

Before the student's code is rebuilt there, a Python audit hook is installed, and an audit hook
cannot be removed: it refuses to import an event loop (asyncio), threads, processes, the
course's own code, PocketFlow or looptime, by refusing to open their files (which any way of
importing them must do, and which stops their code being copied at run time too), and to start
a process or fork. A refusal is an exception naming what was refused, and the check turns it
into advice.
"""

from __future__ import annotations

# Loaded before the guard: Python 3.13's importlib.invalidate_caches() imports it, and it imports threading.
import importlib.metadata  # noqa: F401
import importlib.util
import json
import math
import numbers
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

_HERE = Path(__file__).resolve().parent

#: Modules a prediction may not import, and what using them means.
FORBIDDEN = {
    "asyncio": "an event loop (asyncio)", "_asyncio": "an event loop (asyncio)",
    "threading": "threads", "concurrent": "threads or processes (concurrent.futures)",
    "multiprocessing": "processes (multiprocessing)", "_multiprocessing": "processes (multiprocessing)",
    "subprocess": "processes (subprocess)", "_posixsubprocess": "processes (subprocess)",
    "looptime": "a virtual clock (looptime)", "pocketflow": "PocketFlow's nodes", "pocket_parallel": "the course's own code",
    "trio": "an event loop (trio)", "anyio": "an event loop (anyio)", "curio": "an event loop (curio)",
}
#: Audit events a prediction may not cause.
_ACTIONS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen")
#: The marker every refusal's message carries, for the check to recognise it.
REFUSED = "refused by the check while predicting"


def _by_path(name: str) -> ModuleType:
    """A module of this folder that imports only the standard library, loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"pocket_parallel_check{name}", _HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _forbidden_files() -> list[tuple[str, str]]:
    """(path, module) for the files of every forbidden module: its folder, or its file and compiled file.

    ``importlib.import_module`` raises no "import" audit event (only the import statement does),
    but no module's code can be loaded without opening its file: refusing those opens refuses
    every way in.
    """
    found = []
    for name in FORBIDDEN:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            found += [(os.path.realpath(folder) + os.sep, name) for folder in spec.submodule_search_locations]
        elif spec.origin and os.path.isfile(spec.origin):
            origin = os.path.realpath(spec.origin)
            stem = os.path.splitext(os.path.basename(origin))[0]
            found += [(origin, name), (os.path.join(os.path.dirname(origin), "__pycache__", f"{stem}."), name)]
    return found


def _guard(files: list[tuple[str, str]]) -> None:
    """Forget the forbidden modules already imported, then refuse them (and starting processes) for good."""
    for name in list(sys.modules):
        if name.split(".")[0] in FORBIDDEN:
            del sys.modules[name]

    def refuse(name: str) -> str:
        return f"import {name}: {REFUSED}, since it is {FORBIDDEN[name.split('.')[0]]}"

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "import":
            if str(args[0]).split(".")[0] in FORBIDDEN:
                raise ImportError(refuse(str(args[0])))
        elif event.startswith(_ACTIONS):
            raise PermissionError(f"{event}: {REFUSED}, since it starts a process")
        elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(args[0]))
            for prefix, name in files:
                if path.startswith(prefix):  # an OSError: what reads files for itself (linecache) expects one
                    raise PermissionError(refuse(name))

    sys.addaudithook(hook)


def _predict(function: Any, latencies: list[float], limit: int | None, errors: ModuleType) -> dict[str, Any]:
    given = list(latencies)
    try:
        value = function(given, limit)
    except Exception as error:  # the student's code can raise anything
        return {"error": errors.error_info(error), "mutated": given != latencies}
    found: dict[str, Any] = {"mutated": given != latencies}
    if type(value).__name__ == "coroutine":
        value.close()  # never awaited: close it so Python does not warn about it
        found["coroutine"] = True
    elif not isinstance(value, bool) and _finite(value):
        found["value"] = float(value)
    else:
        text = repr(value)
        found["other"] = text if len(text) <= 80 else text[:77] + "..."
    return found


def _finite(value: Any) -> bool:
    """Whether ``value`` is a finite real number (an int, a float, a NumPy number...)."""
    return isinstance(value, numbers.Real) and math.isfinite(float(value))


def describe_refusal(text: str) -> str:
    """'tried import asyncio, which is an event loop (asyncio)', from a refusal's message."""
    what = text.split(":", 1)[1].split(REFUSED)[0].strip(" :") if ":" in text else text
    reason = text.split("since it ", 1)[1].split(" (in ")[0].rstrip(".") if "since it " in text else ""
    return f"tried {what}, which {reason}" if reason else f"tried {what}"


def main() -> None:
    """Serve the check: rebuild ``predict_makespan`` under the guard, answer each workload's cases."""
    serving, errors = _by_path("_serve"), _by_path("_errors")
    serving.end_with_parent()
    start = json.loads(sys.stdin.readline() or "null")
    if start is None:
        return
    files = _forbidden_files()
    predict: list[Any] = [None]

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "load":
            predict[0], reply = serving.load_answer(start["name"], errors.error_info)
            return dict(reply)
        cases = request["workload"]["cases"]
        return {"observation": {"answers": [_predict(predict[0], lats, limit, errors) for lats, limit in cases]},
                "notes": []}

    serving.write_answer(start["folder"], start["module"])
    _guard(files)
    serving.serve(handle)


if __name__ == "__main__":
    main()
