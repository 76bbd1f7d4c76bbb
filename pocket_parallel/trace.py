"""What a simulated service saw: every call with its start, end and outcome, and running counters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from . import _format

Outcome = Literal["ok", "error", "cancelled", "rate_limited", "overloaded"]


@dataclass(frozen=True)
class CallRecord:
    """One call to the service: what was asked, when (on the caller's clock), and how it ended.

    ``outcome`` is ``"ok"``, ``"error"`` (a transient failure after its latency),
    ``"rate_limited"`` (refused by a limit, a 429), ``"overloaded"`` (turned away at once, a
    529) or ``"cancelled"`` (the caller stopped waiting: a timeout, or the run was stopped).
    """

    prompt: str
    attempt: int
    start: float
    end: float
    outcome: Outcome

    @property
    def duration(self) -> float:
        """Seconds from the call's start to its end."""
        return self.end - self.start

    def __repr__(self) -> str:
        return (f"<CallRecord {_format.clip(repr(self.prompt), 48)} attempt {self.attempt}: "
                f"{self.start:g} s to {self.end:g} s, {self.outcome}>")


@dataclass
class LLMStats:
    """Counters kept by a simulated service since it was made or last reset.

    ``calls`` counts every call, refused ones included; ``in_flight`` and ``peak_in_flight``
    count admitted calls only (a refused call is never in flight). ``rate_limited`` counts
    calls refused by a limit (429s) and ``overloaded`` those turned away as overloaded
    (529s), apart from ``transient_errors`` (admitted calls that failed after their latency).
    """

    calls: int = 0
    ok: int = 0
    transient_errors: int = 0
    cancelled: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0
    overloaded: int = 0


class CallLog:
    """The trace and counters of one service: calls are opened when admitted and closed when they end."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self.stats = LLMStats()

    def refused(self, prompt: str, attempt: int, now: float, outcome: Outcome) -> None:
        """A call turned away at once (``"rate_limited"`` or ``"overloaded"``)."""
        self.stats.calls += 1
        if outcome == "overloaded":
            self.stats.overloaded += 1
        else:
            self.stats.rate_limited += 1
        self.records.append(CallRecord(prompt, attempt, now, now, outcome))

    def opened(self) -> None:
        """A call was admitted and is now in flight."""
        stats = self.stats
        stats.calls += 1
        stats.in_flight += 1
        if stats.in_flight > stats.peak_in_flight:
            stats.peak_in_flight = stats.in_flight

    def closed(self, prompt: str, attempt: int, start: float, end: float, outcome: Outcome) -> None:
        """An admitted call ended ``"ok"``, with an ``"error"``, or ``"cancelled"``."""
        stats = self.stats
        stats.in_flight -= 1
        if outcome == "ok":
            stats.ok += 1
        elif outcome == "error":
            stats.transient_errors += 1
        else:
            stats.cancelled += 1
        self.records.append(CallRecord(prompt, attempt, start, end, outcome))

    def snapshot(self) -> LLMStats:
        """A copy of the counters, safe to keep."""
        return dataclasses.replace(self.stats)
