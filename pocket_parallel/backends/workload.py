"""The batch a lesson sends: :class:`Workload`, a number of prompts and the seeded model their calls follow.

It makes the prompts and builds the simulated LLM that :func:`~pocket_parallel.compare`, the
explorer, the throughput curve and the checks run against.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .._validate import check_int
from ..service.model import ServiceModel
from .simulated import SimulatedLLM


@dataclass(frozen=True)
class Workload:
    """A batch of ``items`` prompts and the seeded model their calls follow.

    ``latency``, ``jitter``, ``failure_rate`` and ``seed`` are those of :class:`ServiceModel`.
    :meth:`prompts` are ``"Summarize: document i of N"``; :meth:`llm` builds a fresh
    :class:`~pocket_parallel.SimulatedLLM` for them, optionally with server-side limits.
    Change one setting with :meth:`but`: ``workload.but(items=200)``.
    """

    items: int = 20
    latency: float = 1.0
    jitter: float = 0.0
    failure_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("items", self.items, low=1, high=1_000_000)
        self.model  # validates the rest, with the same messages as SimulatedLLM

    @property
    def model(self) -> ServiceModel:
        """The :class:`ServiceModel` every call of this workload follows."""
        return ServiceModel(self.latency, self.jitter, self.seed, self.failure_rate)

    def prompts(self) -> list[str]:
        """The prompts the batch sends: one summary request per numbered document."""
        return [f"Summarize: document {i} of {self.items}" for i in range(1, self.items + 1)]

    def llm(self, **limits: Any) -> SimulatedLLM:
        """A fresh :class:`~pocket_parallel.SimulatedLLM` for this workload.

        ``limits`` are its server-side keywords (``max_concurrent``, ``requests_per_minute``,
        ``tokens_per_minute``...).
        """
        return SimulatedLLM(self.latency, self.jitter, self.seed, self.failure_rate, **limits)

    def but(self, **changes: Any) -> Workload:
        """A copy with some settings changed (each checked as in the constructor)."""
        return replace(self, **changes)


_WORKLOAD_SETTINGS = ("items", "latency", "jitter", "failure_rate", "seed")


def as_workload(workload: Workload | int | None = None, **settings: Any) -> Workload:
    """A :class:`Workload` from what a caller typed: a Workload, an item count, and/or its settings.

    ``as_workload(20, latency=0.5)``, ``as_workload(items=20, latency=0.5)`` and
    ``as_workload(Workload(20), latency=0.5)`` are the same workload.
    """
    unknown = sorted(set(settings) - set(_WORKLOAD_SETTINGS))
    if unknown:
        raise TypeError(
            f"unexpected setting{'s' * (len(unknown) > 1)} {', '.join(unknown)}: a workload takes "
            f"{', '.join(_WORKLOAD_SETTINGS)}"
        )
    if isinstance(workload, Workload):
        return workload.but(**settings) if settings else workload
    if workload is not None:
        if "items" in settings:
            raise TypeError(f"give the item count once: got {workload!r} and items={settings['items']!r}")
        settings["items"] = workload
    return Workload(**settings)
