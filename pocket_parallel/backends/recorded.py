"""What a backend saw: :class:`RecordedCalls`, the trace, counters and attempt numbers every backend keeps.

A backend records each call in a :class:`~pocket_parallel.trace.CallLog` (start, end, attempt,
outcome, and the counters) and numbers the calls to each prompt with
:class:`~pocket_parallel.service.model.AttemptNumbers` (a call right after a failed one with
the same prompt is its retry). :class:`RecordedCalls` gives any backend the three public
views of them: :attr:`~RecordedCalls.trace`, :attr:`~RecordedCalls.stats` and
:meth:`~RecordedCalls.reset`.
"""

from __future__ import annotations

from ..service.model import AttemptNumbers
from ..trace import CallLog, CallRecord, LLMStats


class RecordedCalls:
    """A backend's call log and attempt numbers, with the views the course's pictures read.

    A subclass records calls in ``self._log`` and numbers them with ``self._attempts``; it
    calls :meth:`reset` once when made (and extends it to reset what else it keeps).
    """

    _log: CallLog
    _attempts: AttemptNumbers

    @property
    def trace(self) -> list[CallRecord]:
        """Every finished call since the last reset, in the order they ended (times on the caller's clock)."""
        return list(self._log.records)

    @property
    def stats(self) -> LLMStats:
        """A snapshot of the counters (calls, outcomes, calls in flight now and at peak)."""
        return self._log.snapshot()

    def reset(self) -> None:
        """Forget every recorded call and zero the counters and attempt numbers."""
        self._log = CallLog()
        self._attempts = AttemptNumbers()
