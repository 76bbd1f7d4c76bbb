"""LLM backends: what ``call_llm_async`` talks to, and the batch a lesson sends them.

- :mod:`.protocol`: the backend protocol, ``call_llm_async`` / ``call_llm`` and
  :func:`set_default_llm`;
- :mod:`.simulated`: :class:`SimulatedLLM`, in process, on the real or the virtual clock;
- :mod:`.openai_llm`: :class:`~.openai_llm.OpenAILLM`, over HTTP on the official ``openai``
  client, and :mod:`.anthropic_llm`: :class:`~.anthropic_llm.AnthropicLLM`, on the official
  ``anthropic`` client (both imported on first use: the clients take a while to import), with
  what the two share in :mod:`.official_client`;
- :mod:`.workload`: :class:`Workload`, a batch of prompts and the seeded model they follow.
"""

from .protocol import BlockingLLMBackend, LLMBackend, call_llm, call_llm_async, get_default_llm, set_default_llm
from .simulated import LLMError, OverloadedError, RateLimitError, SimulatedLLM, TransientLLMError
from .workload import Workload, as_workload

__all__ = [
    "BlockingLLMBackend",
    "LLMBackend",
    "LLMError",
    "OverloadedError",
    "RateLimitError",
    "SimulatedLLM",
    "TransientLLMError",
    "Workload",
    "as_workload",
    "call_llm",
    "call_llm_async",
    "get_default_llm",
    "set_default_llm",
]
