"""Node recipes: small picklable objects that build the node on each worker.

A node cannot travel to a worker as it is: its LLM backend holds connections and locks that
belong to one process. So a run sends a *recipe*, a callable with plain settings that builds
the node where it runs. :class:`AskOverHTTP` is the ready-made one: each prompt sent to an
OpenAI-compatible endpoint through :class:`~pocket_parallel.backends.openai_llm.OpenAILLM`. Any
picklable zero-argument callable (a module-level function or class) that returns a
:class:`~pocket_parallel.BoundedParallelBatchNode` works as a recipe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .._validate import check_int, check_real, check_url
from ..backends.openai_llm import LOCAL_MODEL, OpenAILLM
from ..experiment import AskEach
from ..limits.retry import Backoff
from .client_work import count_tokens_slowly

_llms: dict[tuple[str, str], OpenAILLM] = {}
_llms_lock = threading.Lock()


def shared_llm(base_url: str, model: str) -> OpenAILLM:
    """One :class:`OpenAILLM` per process, endpoint and model (it keeps one client per event loop itself)."""
    with _llms_lock:
        llm = _llms.get((base_url, model))
        if llm is None:
            # The node retries (with backoff that honours retry-after): the client must not retry too.
            llm = _llms[(base_url, model)] = OpenAILLM(base_url, model, max_retries=0, timeout=60.0)
        return llm


class AskWithClientWork(AskEach):
    """:class:`~pocket_parallel.experiment.AskEach` that also counts each answer's tokens ``client_work`` times."""

    def __init__(self, llm: Any, client_work: int = 0, **settings: Any) -> None:
        super().__init__(llm, **settings)
        self.client_work = check_int("client_work", client_work, low=0, high=100_000)

    async def exec_async(self, prompt: str) -> str:
        answer = await super().exec_async(prompt)
        count_tokens_slowly(answer, self.client_work)
        return answer


@dataclass(frozen=True)
class AskOverHTTP:
    """Builds, on each worker, a node that sends each prompt to ``base_url`` and keeps the answer.

    ``base_url`` is an OpenAI-compatible endpoint (a :class:`~pocket_parallel.server.LocalServer`'s
    ``base_url``); ``model`` the model name; ``max_retries`` the attempts per item (an integer
    in ``[1, 20]``), with exponential backoff that waits at least the server's ``retry-after``
    (``backoff_base`` seconds at first, in ``(0, 60]``); ``client_work`` how many times each
    answer's tokens are counted in pure Python (:func:`~.client_work.count_tokens_slowly`):
    processor time per call, for the lesson on CPU-bound clients.
    """

    base_url: str
    model: str = LOCAL_MODEL
    max_retries: int = 6
    backoff_base: float = 0.05
    client_work: int = 0

    def __post_init__(self) -> None:
        check_url("base_url", self.base_url, "server.base_url")
        check_int("max_retries", self.max_retries, low=1, high=20)
        check_real("backoff_base", self.backoff_base, low=0.0, high=60.0, low_open=True)
        check_int("client_work", self.client_work, low=0, high=100_000)

    def __call__(self) -> AskWithClientWork:
        """The node, built on the worker that calls it."""
        return AskWithClientWork(
            shared_llm(self.base_url, self.model), self.client_work, max_retries=self.max_retries,
            backoff=Backoff(base=self.backoff_base, cap=max(1.0, self.backoff_base)),
        )
