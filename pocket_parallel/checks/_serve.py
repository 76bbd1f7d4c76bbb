"""The subprocess's side of a check: answer JSON lines on stdin with JSON lines on stdout.

Both subprocesses that run a student's answer use it: :mod:`._sandbox`'s, and exercise 3's
predictor (:mod:`._predictor`), which loads this file by its path because pocket_parallel may not
be imported there. So it imports nothing but the standard library.
"""

from __future__ import annotations

import _thread
import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The module name the answer's rebuilt source has in the subprocess.
MODULE = "checked_answer"


def end_with_parent() -> None:
    """End this process and its session once the process that started it is gone: never an orphan."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        if os.name == "posix":
            os.killpg(0, signal.SIGKILL)
        os._exit(1)  # pragma: no cover - Windows

    _thread.start_new_thread(watch, ())


def serve(handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Reply to each request on stdin with ``handle(request)``, one JSON line each, until stdin ends.

    What the student's code prints, and what processes it starts print, goes nowhere: only the
    replies reach the real stdout. A failure of the check's own code is replied as ``{"internal": ...}``.
    """
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 1)
    os.close(nowhere)
    for line in sys.stdin:
        try:
            reply = handle(json.loads(line))
        except Exception:  # the check's own code failed: say so, rather than hang the check
            reply = {"internal": traceback.format_exc()[-3000:]}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def write_answer(folder: str, source: str) -> None:
    """Write the answer's module into ``folder`` and make it importable (here and in processes started from here)."""
    Path(folder, f"{MODULE}.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, folder)


def load_answer(name: str, describe: Callable[[BaseException], dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    """Import the answer's module afresh and return ``(its name, {"loaded": True})``, or ``(None, {"error": ...})``."""
    sys.modules.pop(MODULE, None)
    importlib.invalidate_caches()
    try:
        return getattr(importlib.import_module(MODULE), name), {"loaded": True}
    except Exception as error:  # the student's code, rebuilt, can raise anything at import
        return None, {"error": describe(error)}
