"""What the server counts: the server-side truth about every request it saw."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class ServerStats:
    """Counters since the server started or was last reset (``POST /stats/reset``).

    - ``requests``: well-formed chat completion requests, whatever became of them;
      ``bad_requests``: those refused with a 400 before reaching the service.
    - ``ok`` (200), ``errors`` (transient 500 or 503 after the latency), ``overloaded``
      (529 at once), ``rate_limited`` (429 at once, a limit was full).
    - ``stalled``: requests accepted and never answered; ``cancelled``: admitted requests
      that ended unanswered because the client went away or the server stopped (stalls
      included).
    - ``retries``: requests that were a retry of the one before with the same prompt
      (attempt 2 or more, numbered as :class:`~pocket_parallel.service.model.AttemptNumbers` does).
    - ``in_flight`` and ``peak_in_flight``: admitted requests not yet ended, now and at most
      (waiting for a slot included); ``queued``: admitted requests that had to wait in line for
      one of the ``slots``.
    - ``prompt_tokens``: the input tokens (every message) of every admitted request (the service
      read them, whatever became of the request: a retry sends them again);
      ``completion_tokens``: the output tokens of every answer sent, thinking included;
      ``total_tokens``: the two together, what a provider would bill.
    """

    requests: int = 0
    bad_requests: int = 0
    ok: int = 0
    errors: int = 0
    overloaded: int = 0
    rate_limited: int = 0
    stalled: int = 0
    cancelled: int = 0
    retries: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    queued: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def opened(self) -> None:
        """An admitted request is now in flight."""
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def to_json(self) -> dict[str, Any]:
        """The counters as a JSON object."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerStats:
        """The counters read back from :meth:`to_json` (as ``GET /stats`` returns them)."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: int(value) for key, value in data.items() if key in names})

    def copy(self) -> ServerStats:
        """A snapshot, safe to keep."""
        return dataclasses.replace(self)
