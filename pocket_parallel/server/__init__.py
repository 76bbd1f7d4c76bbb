"""A local LLM server that speaks OpenAI's Chat Completions API, for lessons over real HTTP.

It answers with the course's seeded workload model (the same prompt and seed give the same
latency and answer as :class:`~pocket_parallel.SimulatedLLM`), enforces provider-style limits
(calls in flight, requests and tokens per minute, 429 with ``retry-after``), injects faults at
seeded rates (500/503, 529 overloaded, stalls), and counts everything it sees (``GET /stats``).

- From a terminal: ``python -m pocket_parallel.server --port 8000 --latency 0.5 --rpm 60``
  (``--help`` lists every flag); ``make serve`` starts it with the course's defaults.
- From Python: :class:`LocalServer`, a context manager (``with`` or ``async with``).

It serves the learner's own programs only: web pages other than this machine's own are
refused, refilling the limits over HTTP takes the admin token it prints at start, and a
client that does not send a whole request within 10 s is cut off.

Modules, one idea each: :mod:`.settings` (what it simulates), :mod:`.json_body` (reading a
JSON body, a 400 for anything malformed), :mod:`.chat_request` (reading and checking a
request), :mod:`.service` (the simulated service), :mod:`.stats` (its counters),
:mod:`.errors` (OpenAI-style error bodies), :mod:`.error_shapes` (each route's error shape,
OpenAI's or Anthropic's), :mod:`.guard` (who may use it), :mod:`.connections` (deadlines on
connections), :mod:`.app` (the HTTP routes, on ``aiohttp.web``), :mod:`.local`
(:class:`LocalServer`), :mod:`.cli` (the command line).
"""

from .local import LocalServer
from .settings import ServerSettings
from .stats import ServerStats

__all__ = ["LocalServer", "ServerSettings", "ServerStats"]
