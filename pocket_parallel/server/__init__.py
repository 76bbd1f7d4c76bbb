"""A local LLM server that speaks OpenAI's Chat Completions API and Anthropic's Messages API, for lessons over real HTTP.

It answers with the course's seeded workload model (the same prompt and seed give the same
latency and answer as :class:`~pocket_parallel.SimulatedLLM`), enforces provider-style limits
(requests, tokens, input and output tokens per minute, calls in flight, 429 with
``retry-after``; slots that queue), injects faults at seeded rates (500/503, 529 overloaded,
stalls), streams at the time-per-token pace, and counts everything it sees (``GET /stats``).

- From a terminal: ``python -m pocket_parallel.server --port 8000 --profile openai`` or
  ``--latency 0.5 --rpm 60`` (``--help`` lists every flag); ``make serve`` starts the
  ``openai`` profile.
- From Python: :class:`LocalServer`, a context manager (``with`` or ``async with``).
- With the official clients: ``openai.OpenAI(base_url=server.base_url)`` posts to
  ``/v1/chat/completions``; ``anthropic.Anthropic(base_url=server.url)`` (or
  ``ANTHROPIC_BASE_URL`` set to ``server.url``) posts to ``/v1/messages``.

It serves the learner's own programs only: web pages other than this machine's own are
refused, refilling the limits over HTTP takes the admin token it prints at start, and a
client that does not send a whole request within 10 s is cut off.

Modules, one idea each: :mod:`.settings` (what it simulates), :mod:`.service` (the
API-neutral service every endpoint runs), :mod:`.stats` (its counters), :mod:`.guard` (who
may use it), :mod:`.connections` (deadlines on connections), :mod:`.app` (the HTTP routes,
on ``aiohttp.web``), :mod:`.local` (:class:`LocalServer`), :mod:`.cli` (the command line),
and for each API:

- OpenAI's: :mod:`.chat_request` (reading and checking a request),
  :mod:`.openai_responses` (its bodies and errors), :mod:`.errors` (its error bodies);
- Anthropic's: :mod:`.anthropic_request` (reading and checking a request),
  :mod:`.anthropic_response` (a ``Message`` and its stream of events),
  :mod:`.anthropic_errors` (its error bodies, refusals and faults), :mod:`.json_body` (a
  body read as one JSON object, with every way it can be malformed turned into one error).
"""

from .local import LocalServer
from .settings import ServerSettings
from .stats import ServerStats

__all__ = ["LocalServer", "ServerSettings", "ServerStats"]
