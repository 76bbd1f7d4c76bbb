"""The simulated LLM service that :class:`~pocket_parallel.SimulatedLLM` and the HTTP server both run.

- :mod:`.settings`: :class:`ServiceSettings`, every setting of the service, declared once;
  :mod:`.profiles`: the ``openai``, ``anthropic`` and ``self-hosted`` profiles and where
  their numbers come from;
- :mod:`.model`: :class:`ServiceModel`, how each call behaves (latency or time per token,
  faults, answer, tokens), seeded by prompt and attempt; :class:`AttemptNumbers`, which
  attempt a call is; :mod:`.answers` (what a call outputs: lengths, ``max_tokens``, thinking)
  and :mod:`.timing` (time to first token, time per token in a batch);
- :mod:`.quota`: :class:`Quota`, the per-minute limits and the in-flight cap a provider
  enforces, refusing with a 429, on :mod:`.bucket`'s token buckets (quantum, debt, refunds);
  :mod:`.slots`: a self-hosted server's slots, where calls wait instead;
- :mod:`.headers`: both APIs' rate-limit headers from the state of the limits;
- :mod:`.provider`: :class:`SimulatedProvider`, the steps of one call through all of them.
"""

from .answers import Reply
from .headers import anthropic_rate_headers, openai_rate_headers, retry_after_headers
from .model import AttemptNumbers, ServiceModel, answer_to, estimate_tokens
from .provider import DEFAULT_MAX_TOKENS, CallRequest, Overloaded, Refused, SimulatedProvider
from .quota import Quota, Refusal
from .settings import ServiceSettings

__all__ = [
    "DEFAULT_MAX_TOKENS", "AttemptNumbers", "CallRequest", "Overloaded", "Quota", "Refusal", "Refused", "Reply",
    "ServiceModel", "ServiceSettings", "SimulatedProvider", "anthropic_rate_headers", "answer_to",
    "estimate_tokens", "openai_rate_headers", "retry_after_headers",
]
