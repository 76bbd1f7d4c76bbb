"""pocket_parallel: helpers for learning parallel LLM calls with PocketFlow.

The top level holds what the notebooks teach. A few teaching submodules hold the rest that a
learner types: :mod:`~pocket_parallel.plots` (pictures), :mod:`~pocket_parallel.limits`
(client-side pacing and backoff), :mod:`~pocket_parallel.journal` (batches that survive a
crash), :mod:`~pocket_parallel.widgets` (the explorer), :mod:`~pocket_parallel.server` (a
local LLM server), :mod:`~pocket_parallel.cluster` (Dask), :mod:`~pocket_parallel.checks`
(the exercises' checks) and :mod:`~pocket_parallel.lecture` (the lecture app).

Everything else is the machinery under them, in packages by concern; ``docs/architecture.md``
draws the map and says what may import what.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .backends.protocol import call_llm, call_llm_async, get_default_llm, set_default_llm
from .backends.simulated import LLMError, RateLimitError, SimulatedLLM, TransientLLMError
from .backends.workload import Workload
from .clock import VirtualDeadlockError, run
from .cpu_work import count_primes, count_primes_measured, overlap_seconds, peak_computing
from .experiment import AskEach, compare, makespan_lower_bound, semaphore_makespan, sweep
from .files import write_atomic, write_atomic_async
from .limits.ratelimit import RateLimiter
from .limits.retry import Backoff
from .nodes import BoundedParallelBatchFlow, BoundedParallelBatchNode
from .outcomes import Failure
from .races import check_races
from .throughput import find_knee, measure_throughput


def __getattr__(name: str) -> Any:
    # The explorer needs ipywidgets and matplotlib, OpenAILLM and AnthropicLLM their official
    # clients: imported on first use, so that ``import pocket_parallel`` (and the terminal demo) stays quick.
    if name == "explorer":
        from . import widgets

        return widgets.explorer
    if name == "OpenAILLM":  # imports the openai client, which takes a while
        from .backends.openai_llm import OpenAILLM

        return OpenAILLM
    if name == "AnthropicLLM":  # imports the anthropic client, which takes a while too
        from .backends.anthropic_llm import AnthropicLLM

        return AnthropicLLM
    raise AttributeError(f"module 'pocket_parallel' has no attribute {name!r}")


try:
    __version__ = version("pocket-parallel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AnthropicLLM",
    "AskEach",
    "Backoff",
    "BoundedParallelBatchFlow",
    "BoundedParallelBatchNode",
    "Failure",
    "LLMError",
    "OpenAILLM",
    "RateLimitError",
    "RateLimiter",
    "SimulatedLLM",
    "TransientLLMError",
    "VirtualDeadlockError",
    "Workload",
    "call_llm",
    "call_llm_async",
    "check_races",
    "compare",
    "count_primes",
    "count_primes_measured",
    "explorer",
    "find_knee",
    "get_default_llm",
    "makespan_lower_bound",
    "measure_throughput",
    "overlap_seconds",
    "peak_computing",
    "run",
    "semaphore_makespan",
    "set_default_llm",
    "sweep",
    "write_atomic",
    "write_atomic_async",
]
