"""Keep a check silent on stderr, and keep what Python said for the feedback.

nbgrader scores a test cell that writes anything to stderr as zero, warnings included, and a
student's code can make Python warn ("coroutine ... was never awaited") or asyncio log ("Task
exception was never retrieved") while a check runs it. Inside :func:`quiet`, warnings are
recorded instead of shown, whatever is written to ``sys.stderr`` is kept, and asyncio's log
records are collected; at the end it collects the young garbage once, so that warnings about
objects the check dropped arrive while it still listens. What it caught becomes short notes that a
failing check adds to its message (often they name the mistake).
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

# Warnings about the libraries' own future, not about the student's code.
_NOT_FOR_STUDENTS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning)
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+")


@dataclass
class Noise:
    """What Python printed or warned about while a check ran, as one-line notes."""

    notes: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        """``" Python also reported: RuntimeWarning: ..."``, or ``""`` when nothing was caught."""
        if not self.notes:
            return ""
        more = f" (and {len(self.notes) - 1} more)" if len(self.notes) > 1 else ""
        first = self.notes[0] if len(self.notes[0]) <= 200 else self.notes[0][:197] + "..."
        end = "" if first.endswith((".", "!", "?")) else "."
        return f" Python also reported: {first}{more}{end}"


class _Collect(logging.Handler):
    def __init__(self, noise: Noise) -> None:
        super().__init__(level=logging.WARNING)
        self.noise = noise

    def emit(self, record: logging.LogRecord) -> None:
        self.noise.notes.append(_one_line(record.getMessage()))


@contextlib.contextmanager
def quiet() -> Iterator[Noise]:
    """Run the block with nothing reaching stderr; yield the notes it fills in on the way out."""
    noise = Noise()
    logger = logging.getLogger("asyncio")
    saved = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [_Collect(noise)], False
    stderr = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
            warnings.simplefilter("always")
            try:
                yield noise
            finally:
                # "Never awaited" and similar warnings fire when objects are freed; what a check made
                # is young, and a full collection would cost a notebook tens of milliseconds.
                gc.collect(1)
        noise.notes += [f"{w.category.__name__}: {_one_line(str(w.message))}" for w in caught
                        if not issubclass(w.category, _NOT_FOR_STUDENTS)]
        if stderr.getvalue().strip():
            noise.notes.append(_one_line(stderr.getvalue()))
    finally:
        logger.handlers, logger.propagate = saved


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    return _ADDRESS.sub("0x...", lines[0].strip() if lines else "")
