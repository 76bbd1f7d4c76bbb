"""What a local server simulates: the seeded service model, its limits, and where it listens."""

from __future__ import annotations

from dataclasses import dataclass

from .._validate import check_int
from ..service.model import ServiceModel
from ..service.quota import Algorithm, Quota

#: The model name the server answers as, unless told otherwise.
DEFAULT_MODEL = "pocket-parallel-sim"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServerSettings:
    """Everything a :class:`~pocket_parallel.server.LocalServer` simulates, checked when made.

    ``latency``, ``jitter``, ``seed``, ``failure_rate``, ``stall_rate`` and ``overload_rate``
    are those of :class:`~pocket_parallel.service.model.ServiceModel`; ``max_concurrent``,
    ``requests_per_minute``, ``tokens_per_minute`` and ``algorithm`` those of
    :class:`~pocket_parallel.service.quota.Quota` (per-minute limits are a token bucket by default).
    ``host`` is the address to listen on (loopback unless told otherwise), ``port`` the
    port (0 picks a free one), ``model`` the name the server answers as.
    """

    latency: float = 0.5
    jitter: float = 0.0
    seed: int = 0
    failure_rate: float = 0.0
    stall_rate: float = 0.0
    overload_rate: float = 0.0
    max_concurrent: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    algorithm: Algorithm = "token_bucket"
    host: str = LOOPBACK
    port: int = 0
    model: str = DEFAULT_MODEL

    def __post_init__(self) -> None:
        self.service_model()  # each check names its parameter and range
        self.quota()
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError(f"host must be an address to listen on, such as '127.0.0.1'; got {self.host!r}")
        check_int("port", self.port, low=0, high=65_535)
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty name, such as {DEFAULT_MODEL!r}; got {self.model!r}")

    def service_model(self) -> ServiceModel:
        """The seeded model of each call (latency, faults, answer, tokens)."""
        return ServiceModel(self.latency, self.jitter, self.seed, self.failure_rate, self.stall_rate, self.overload_rate)

    def quota(self) -> Quota:
        """A fresh :class:`~pocket_parallel.service.quota.Quota` enforcing these limits."""
        return Quota(
            max_concurrent=self.max_concurrent,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            algorithm=self.algorithm,
        )

    def describe(self) -> str:
        """The simulated service in one line, e.g. ``"latency 0.5 s, jitter 0, seed 0; max_concurrent=8"``."""
        faults = "".join(
            f", {name} {value:g}"
            for name, value in (("failure_rate", self.failure_rate), ("stall_rate", self.stall_rate),
                                ("overload_rate", self.overload_rate))
            if value
        )
        limits = self.quota().describe() or "no limits"
        return f"latency {self.latency:g} s, jitter {self.jitter:g}, seed {self.seed}{faults}; {limits}"
