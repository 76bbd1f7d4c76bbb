"""The simulated LLM service that :class:`~pocket_parallel.SimulatedLLM` and the HTTP server both run.

- :mod:`.model`: :class:`ServiceModel`, how each call behaves (latency, faults, answer, tokens),
  seeded by prompt and attempt; :class:`AttemptNumbers`, which attempt a call is;
- :mod:`.quota`: :class:`Quota`, the limits a provider enforces, refusing with a 429.
"""

from .model import AttemptNumbers, ServiceModel, answer_to, estimate_tokens
from .quota import Quota, Refusal

__all__ = ["AttemptNumbers", "Quota", "Refusal", "ServiceModel", "answer_to", "estimate_tokens"]
