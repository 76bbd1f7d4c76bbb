"""The LLM backend protocol, and the chapter's ``call_llm_async`` / ``call_llm`` that talk to it.

A backend is anything that answers ``await backend(prompt)`` with a string: the in-process
:class:`~pocket_parallel.SimulatedLLM`, :class:`~pocket_parallel.OpenAILLM` over HTTP, or an
``async def`` function of your own. A backend may also offer

- ``backend.call(prompt)``: a blocking twin, for plain synchronous code (:func:`call_llm`);
- ``backend.trace`` and ``backend.stats``: what it saw, for the course's pictures.

:func:`set_default_llm` chooses the backend behind :func:`call_llm_async` and
:func:`call_llm`, so the chapter's code runs unchanged against any of them.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

from .._validate import check_prompt
from .simulated import SimulatedLLM


@runtime_checkable
class LLMBackend(Protocol):
    """What :func:`call_llm_async` talks to: an async call from a prompt to its answer."""

    async def __call__(self, prompt: str) -> str:
        """The answer to ``prompt``."""
        ...


@runtime_checkable
class BlockingLLMBackend(LLMBackend, Protocol):
    """A backend that can also answer from synchronous code, blocking until it does."""

    def call(self, prompt: str) -> str:
        """The answer to ``prompt``, blocking the calling thread."""
        ...


def is_backend(candidate: Any) -> bool:
    """Whether ``candidate`` can stand behind :func:`call_llm_async`: an async callable."""
    if inspect.iscoroutinefunction(candidate):
        return True
    call = getattr(type(candidate), "__call__", None)
    return not isinstance(candidate, type) and call is not None and inspect.iscoroutinefunction(call)


def check_backend(name: str, value: Any) -> Any:
    """``value`` if it is a backend, else a TypeError saying what a backend is."""
    if not is_backend(value):
        raise TypeError(
            f"{name} must be an LLM backend: an object called as 'await {name}(prompt)' that returns the "
            f"answer as a str, such as SimulatedLLM(...), OpenAILLM(...) or an 'async def' function; "
            f"got {value!r}"
        )
    return value


_default_llm: Any = SimulatedLLM(latency=0.5, jitter=0.3, seed=42)


def get_default_llm() -> Any:
    """The backend that :func:`call_llm_async` and :func:`call_llm` use."""
    return _default_llm


def set_default_llm(llm: Any) -> Any:
    """Make ``llm`` the backend behind :func:`call_llm_async` and :func:`call_llm`.

    ``llm`` is any backend (see :class:`LLMBackend`). Returns the previous default, so a
    caller can put it back.
    """
    global _default_llm
    check_backend("llm", llm)
    previous, _default_llm = _default_llm, llm
    return previous


async def call_llm_async(prompt: str) -> str:
    """Ask the default LLM backend, as the chapter's ``call_llm_async`` does."""
    answer: str = await _default_llm(check_prompt(prompt))
    return answer


def call_llm(prompt: str) -> str:
    """Ask the default LLM backend and block until it answers (for synchronous code only)."""
    call = getattr(_default_llm, "call", None)
    if call is None:
        raise TypeError(
            f"the default LLM backend {_default_llm!r} has no blocking call: use "
            f"'await call_llm_async(prompt)' from async code"
        )
    answer: str = call(check_prompt(prompt))
    return answer
