"""Profiles: realistic defaults for the simulated service, each standing for one kind of provider.

``profile="openai"`` (``--profile openai`` on the server) sets every setting below that you
do not give yourself; any setting you give overrides its profile. Without a profile, limits
and latency behave exactly as they always have in this package (a minute's burst, charges
of prompt plus answer, one latency per call).

**openai**: a hosted API with OpenAI's rules (platform.openai.com/docs/guides/rate-limits,
DESIGN.md round 3).

- 500 requests and 200,000 tokens per minute: the order of OpenAI's first paid tier for a
  small model (tiers differ by model and change: your account's limits page says yours).
- ``quantum`` 1 s: OpenAI writes that per-minute limits may be enforced over shorter
  periods (60,000 requests per minute as 1,000 per second), so a burst draws 429s under
  the minute's budget.
- Tokens per minute count every message, system included, plus ``max_tokens`` when the
  request is admitted (:data:`~pocket_parallel.service.provider.DEFAULT_MAX_TOKENS`, 4,096,
  when a request gives none), as OpenAI documents.

**anthropic**: a hosted API with Anthropic's rules (docs.anthropic.com/en/api/rate-limits,
DESIGN.md round 3).

- 50 requests, 30,000 input tokens and 8,000 output tokens per minute: Anthropic's Tier 1
  for Claude Sonnet as published in 2025 (tiers change: the Console's limits page says yours).
- ``quantum`` 1 s: Anthropic writes that its limits may be enforced over shorter intervals
  (60 requests per minute as about one per second).
- Input tokens count every message at admission; output tokens are reserved from
  ``max_tokens`` at admission and the unused part is returned when the answer ends.

**self-hosted**: a server on your own GPU (vLLM, llama.cpp's server, Ollama).

- 8 ``slots``: it decodes at most 8 sequences together (vLLM's ``max_num_seqs``, llama.cpp's
  ``--parallel``, Ollama's ``OLLAMA_NUM_PARALLEL``; 8 is a small server's choice) and queues
  the rest, first come first served, never refusing.
- No rate limits: nobody bills you per minute.
- The time per token grows with the batch (:mod:`~pocket_parallel.service.timing`).

Latency, the same shape everywhere: time to first token plus output tokens × time per
output token, with answers of 100 to 400 tokens and a jitter of 0.3. The numbers (first
token after 0.5 s and 100 tokens a second for ``openai``; 1 s and about 67 a second for
``anthropic``; 0.1 s and 50 a second for one sequence on ``self-hosted``) are orders of
magnitude of our own choosing for the lessons, not published figures: no provider publishes
its latency.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from .._validate import check_choice

_SHARED: dict[str, Any] = {"jitter": 0.3, "answer_tokens": (100, 400)}

#: Every profile's settings, by name.
PROFILES: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType({
    "openai": MappingProxyType({
        **_SHARED, "requests_per_minute": 500, "tokens_per_minute": 200_000, "quantum": 1.0,
        "ttft": 0.5, "tpot": 0.01,
    }),
    "anthropic": MappingProxyType({
        **_SHARED, "requests_per_minute": 50, "input_tokens_per_minute": 30_000,
        "output_tokens_per_minute": 8_000, "quantum": 1.0, "ttft": 1.0, "tpot": 0.015,
    }),
    "self-hosted": MappingProxyType({
        **_SHARED, "slots": 8, "ttft": 0.1, "tpot": 0.02,
    }),
})
#: The profile names, for ``--profile`` and error messages.
PROFILE_NAMES = tuple(PROFILES)


def profile_settings(name: str | None) -> MappingProxyType[str, Any]:
    """The settings ``name`` stands for (none for None), or a ValueError naming the profiles."""
    if name is None:
        return MappingProxyType({})
    return PROFILES[check_choice("profile", name, PROFILE_NAMES)]
