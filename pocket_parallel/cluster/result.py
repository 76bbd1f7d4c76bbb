"""What one cluster run gives back: every item's answer or failure, and what the run cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _format
from ..outcomes import Failure, Outcomes
from .chunks import CapMode, ChunkReport


@dataclass(frozen=True)
class ClusterRun:
    """One batch run on a cluster.

    - ``outcomes``: an :class:`~pocket_parallel.outcomes.Outcomes` with every item ``ok`` (its
      answer) or ``failed`` (a :class:`~pocket_parallel.Failure`), in input order;
    - ``seconds``: wall time of the batch phase (chunks submitted until the last came back;
      the cluster was already up);
    - ``cap``, ``max_in_flight``, ``max_per_minute``, ``workers``: how it ran;
    - ``chunks``: one :class:`~.chunks.ChunkReport` per chunk as it finished (the last run of
      a rescheduled chunk);
    - ``ledger``: the scheduler's counters for the cluster cap (grants, leases moved, most
      leases out at once), or None for the other caps;
    - ``killed``: addresses of the workers killed on purpose during the run (a lesson's fault).
    """

    outcomes: Outcomes
    seconds: float
    cap: CapMode
    max_in_flight: int | None
    max_per_minute: int | None
    workers: int
    chunks: tuple[ChunkReport, ...]
    ledger: dict[str, Any] | None
    killed: tuple[str, ...] = ()

    @property
    def answers(self) -> list[Any]:
        """The answers of the items that succeeded, in input order."""
        return self.outcomes.results

    @property
    def failures(self) -> list[Failure]:
        """A :class:`~pocket_parallel.Failure` for each item that failed for good, in input order."""
        return self.outcomes.failures

    @property
    def complete(self) -> bool:
        """Whether every item has an answer or an explicit failure (nothing pending or lost)."""
        counts = self.outcomes.counts()
        return counts["ok"] + counts["failed"] == len(self.outcomes)

    @property
    def calls(self) -> int:
        """Attempts the workers made (every chunk run, the runs cut short by a dead worker excepted)."""
        return sum(chunk.calls for chunk in self.chunks)

    @property
    def from_journal(self) -> int:
        """Items a chunk found already answered in the journal (paid for by an earlier run of it)."""
        return sum(chunk.from_journal for chunk in self.chunks)

    @property
    def worker_cpu_seconds(self) -> float:
        """Processor seconds the workers spent in the chunks (client-side work: requests, parsing, counting)."""
        return sum(chunk.cpu_seconds for chunk in self.chunks)

    def summary(self) -> str:
        """One line: items, answers, failures, workers and the cap."""
        counts = self.outcomes.counts()
        limit = "no cap" if self.max_in_flight is None else f"at most {self.max_in_flight} in flight"
        return (f"{len(self.outcomes)} items on {self.workers} workers ({self.cap}, {limit}): "
                f"{counts['ok']} answers, {counts['failed']} failures")

    def __repr__(self) -> str:
        return f"<ClusterRun {self.summary()}>"

    def _repr_markdown_(self) -> str:
        """The run as a small table in a notebook."""
        counts = self.outcomes.counts()
        limit = "no cap" if self.max_in_flight is None else f"at most {self.max_in_flight} in flight"
        return _format.markdown_record(
            f"Cluster run of {len(self.outcomes)} items on {self.workers} workers",
            [
                ("cap", f"{self.cap}, {limit}"),
                ("answers", str(counts["ok"])),
                ("failures", str(counts["failed"])),
                ("calls made", str(self.calls)),
                ("taken from the journal", str(self.from_journal)),
                ("batch time", f"{_format.seconds(self.seconds)} (wall clock)"),
            ],
        )
