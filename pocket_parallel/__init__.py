"""pocket_parallel: helpers for learning parallel LLM calls with PocketFlow.

The pieces, each in its own module:

- :mod:`~pocket_parallel.llm`: :class:`SimulatedLLM`, a seeded stand-in for an LLM service,
  and the chapter's ``call_llm_async`` / ``call_llm`` backed by it.
- :mod:`~pocket_parallel.limits`: :class:`BoundedParallelBatchNode` and
  :class:`BoundedParallelBatchFlow`, PocketFlow's parallel classes with a concurrency
  limit that also holds inside an ``AsyncFlow``.
- :mod:`~pocket_parallel.clock`: :func:`run`, which runs a coroutine in real or virtual
  time from a script or a notebook cell.
- :mod:`~pocket_parallel.experiment`: :func:`compare` and :func:`sweep`, sequential
  against parallel on the same workload, set beside the ideal.
"""

from importlib.metadata import PackageNotFoundError, version

from .clock import VirtualDeadlockError, run
from .experiment import Comparison, Failure, compare, compare_async, ideal_makespan, sweep
from .limits import BoundedParallelBatchFlow, BoundedParallelBatchNode
from .llm import (
    CallRecord,
    LLMError,
    LLMStats,
    SimulatedLLM,
    TransientLLMError,
    call_llm,
    call_llm_async,
    get_default_llm,
    set_default_llm,
)

try:
    __version__ = version("pocket-parallel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BoundedParallelBatchFlow",
    "BoundedParallelBatchNode",
    "CallRecord",
    "Comparison",
    "Failure",
    "LLMError",
    "LLMStats",
    "SimulatedLLM",
    "TransientLLMError",
    "VirtualDeadlockError",
    "call_llm",
    "call_llm_async",
    "compare",
    "compare_async",
    "get_default_llm",
    "ideal_makespan",
    "run",
    "set_default_llm",
    "sweep",
]
