"""What a local server simulates, and where it listens: :class:`ServerSettings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .._validate import check_int
from ..service.settings import ServiceSettings

#: The model name the server answers as, unless told otherwise.
DEFAULT_MODEL = "pocket-parallel-sim"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServerSettings(ServiceSettings):
    """Everything a :class:`~pocket_parallel.server.LocalServer` simulates, checked when made.

    Every setting of :class:`~pocket_parallel.service.settings.ServiceSettings` (the same
    as :class:`~pocket_parallel.SimulatedLLM`'s, profiles included; calls of 0.5 s without a
    profile), then ``host``, the address to listen on (loopback unless told otherwise),
    ``port`` (0 picks a free one) and ``model``, the name the server answers as.
    """

    host: str = LOOPBACK
    port: int = 0
    model: str = DEFAULT_MODEL

    DEFAULT_LATENCY: ClassVar[float] = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError(f"host must be an address to listen on, such as '127.0.0.1'; got {self.host!r}")
        check_int("port", self.port, low=0, high=65_535)
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty name, such as {DEFAULT_MODEL!r}; got {self.model!r}")

    def describe(self) -> str:
        """The simulated service in one line, e.g. ``"latency 0.5 s, jitter 0, seed 0; max_concurrent=8"``."""
        faults = "".join(
            f", {name} {value:g}"
            for name, value in (("failure_rate", self.failure_rate), ("stall_rate", self.stall_rate),
                                ("overload_rate", self.overload_rate))
            if value
        )
        limits = self.quota().describe() or "no limits"
        return f"{self.timing_text()}, seed {self.seed}{faults}; {limits}{self.extras_text()}"
