"""Describing an exception from the student's code in a sentence, and as plain data for the check.

These run in the check's subprocess (see :mod:`._sandbox`), where the student's code raised:
the description names the exception, its message, and the function and line of the student's
code it came from; a ``NotImplementedError`` (the stub) is recognised, even as the cause of
another error.
"""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path
from typing import Any

# This module imports nothing of the package: exercise 3's predictor loads it by its path, in a
# process where pocket_parallel may not be imported.
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for p in {str(Path(__file__).resolve().parent.parent),
                                     *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
)


def library_file(filename: str) -> bool:
    """Whether ``filename`` belongs to the standard library, an installed package or pocket_parallel itself."""
    if not filename or filename.startswith("<"):
        return False
    try:
        path = str(Path(filename).resolve())
    except (OSError, RuntimeError, ValueError):
        return False
    return path.startswith(_LIBRARY_DIRS)


def error_info(error: BaseException) -> dict[str, Any]:
    """What the check needs to know of an exception from the student's code, as plain data."""
    stub = not_attempted_in(error)
    info: dict[str, Any] = {
        "types": [klass.__name__ for klass in type(error).__mro__],
        "text": describe(error),
        "stub": None if stub is None else str(stub).strip(),
    }
    if isinstance(error, NameError) and getattr(error, "name", None):
        info["name"] = error.name
    return info


def where(error: BaseException) -> str:
    """``" (in exec_async, line 7)"``: the innermost frame of the error outside the libraries."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not library_file(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    name = "the cell's top level" if frame.name == "<module>" else frame.name
    return f" (in {name}, line {frame.lineno})"


def describe(error: BaseException) -> str:
    """``"ZeroDivisionError: division by zero (in exec_async, line 7)"``, kept short."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(error).__name__}{': ' + text if text else ''}{where(error)}"


def stub_hint(hint: str, name: str) -> str:
    """The "not attempted" paragraph, quoting the stub's own hint."""
    hint = hint.strip()
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
