"""An LLM backend over HTTP, built on the official ``openai`` client: :class:`OpenAILLM`.

``await llm(prompt)`` sends ``[{"role": "user", "content": prompt}]`` to an OpenAI-compatible
Chat Completions endpoint and returns the answer's text, so ``set_default_llm(OpenAILLM(...))``
makes the chapter's ``call_llm_async`` go over real sockets: to the course's local server
(:class:`~pocket_parallel.server.LocalServer`) or to any provider.

What it shares with :class:`~pocket_parallel.backends.anthropic_llm.AnthropicLLM` (one client
per event loop, the call records, the blocking twin, the key never shown) is in
:mod:`.official_client`.

**The environment.** A learner with an endpoint of their own sets ``OPENAI_BASE_URL`` (e.g.
``https://api.openai.com/v1``), ``OPENAI_API_KEY`` and ``POCKET_PARALLEL_MODEL`` (the model
name, e.g. ``gpt-4o-mini``); :func:`environment_endpoint` reads them, and
:meth:`OpenAILLM.from_environment` builds a backend for them. A key is never shown: not in
``repr``, not in any message or error of this module, not as the password of a URL
(:mod:`pocket_parallel.redaction` masks them all).
"""

from __future__ import annotations

from typing import Any

import openai

from .._arguments import MAX_TOKENS
from .._validate import check_int
from .official_client import LOCAL_MODEL, TRANSPORTS, Endpoint, OfficialClientLLM, Transport

BASE_URL_VARIABLE = "OPENAI_BASE_URL"
API_KEY_VARIABLE = "OPENAI_API_KEY"
MODEL_VARIABLE = "POCKET_PARALLEL_MODEL"


class OpenAILLM(OfficialClientLLM[openai.AsyncOpenAI, openai.OpenAI]):
    """An LLM backend that asks an OpenAI-compatible endpoint through the official ``openai`` client.

    Parameters
    ----------
    base_url:
        The endpoint, e.g. ``server.base_url`` of a :class:`~pocket_parallel.server.LocalServer`
        (``http://127.0.0.1:PORT/v1``) or ``https://api.openai.com/v1``.
    model:
        The model name sent with each request (default: the local server's).
    api_key:
        The key, if the endpoint needs one (default: ``OPENAI_API_KEY`` if set). Never shown.
    max_tokens:
        The most tokens an answer may take (an integer in [1, 1000000]), sent as the request's
        ``max_tokens``; None sends none. OpenAI charges a request's tokens per minute with
        its messages plus ``max_tokens`` when it admits it (and a default when none is sent:
        the course's ``openai`` profile charges 4,096), so keep it near what answers need.
        (OpenAI's reasoning models take ``max_completion_tokens`` instead.)
    timeout:
        Seconds one HTTP attempt may take, > 0; None keeps the client's default (600 s).
    max_retries:
        How many times the client itself retries a failed request (an integer >= 0); None
        keeps its default (2). Set 0 when a node or :class:`~pocket_parallel.Backoff` does
        the retrying, or the two multiply.
    transport:
        ``"aiohttp"`` (default) sends through the client's aiohttp transport
        (``openai.DefaultAioHttpClient``, its ``openai[aiohttp]`` option), which costs far
        less CPU per call with many calls in flight than ``"default"``, the client's own
        HTTP stack; both keep the client's timeout, retries and pool size.

    Each call goes through the client's request machinery with ``client.post(...)``, the
    client's documented way to send a request of your own: its retries, its reading of
    ``retry-after``, its timeout, its connection pool and its error classes all apply. It
    skips only the typed layer of ``client.chat.completions.create`` (checking the request
    against its type hints, building a pydantic object from the answer), which costs more
    CPU per call than the rest of the client together (``make bench`` measures both).

    ``await llm(prompt)`` returns the answer's text. Errors are the client's own
    (``openai.RateLimitError``, ``openai.InternalServerError``, ``openai.APITimeoutError``...),
    carrying the response, so :class:`~pocket_parallel.Backoff` reads their ``retry-after``;
    their messages are masked and their chain of causes dropped, since the transport's errors
    carry the request's headers. An error of the transport itself (aiohttp's, say) becomes a
    :class:`~pocket_parallel.redaction.TransportError` (a ``ConnectionError``) saying what it
    said, masked.
    ``llm.call(prompt)`` is the blocking twin. :attr:`trace` and :attr:`stats` record every
    call as the client saw it (one record per call, however many attempts the client made
    inside it); :attr:`last_usage` is the ``usage`` of the latest answer. Use it on the real
    clock only: a virtual clock cannot jump over a network round trip.
    """

    path = "/chat/completions"
    base_url_variable = BASE_URL_VARIABLE
    api_key_variable = API_KEY_VARIABLE
    model_variable = MODEL_VARIABLE
    model_example = "gpt-4o-mini for OpenAI"
    url_example = "server.base_url"
    answer_kind = "chat.completion"
    usage_keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    client_errors = (openai.APIError,)

    def __init__(
        self,
        base_url: str,
        model: str = LOCAL_MODEL,
        api_key: str | None = None,
        *,
        max_tokens: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        transport: Transport = "aiohttp",
    ) -> None:
        super().__init__(base_url, model, api_key, timeout=timeout, max_retries=max_retries, transport=transport)
        self.max_tokens = None if max_tokens is None else check_int("max_tokens", max_tokens, low=1, high=MAX_TOKENS)

    def _settings(self) -> list[tuple[str, Any]]:
        return [("max_tokens", self.max_tokens), *super()._settings()]

    def _new_client(self, options: dict[str, Any]) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**options, **self._transport(lambda: openai.DefaultAioHttpClient()))

    def _new_blocking_client(self, options: dict[str, Any]) -> openai.OpenAI:
        return openai.OpenAI(**options)

    def _body(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": prompt}]}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def _read(self, answer: Any) -> str:
        content = answer["choices"][0]["message"]["content"]
        return content if isinstance(content, str) else ""


def environment_endpoint(environ: Any = None) -> Endpoint | None:
    """The endpoint named by ``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` and ``POCKET_PARALLEL_MODEL``.

    None when ``OPENAI_BASE_URL`` is unset or empty: then the course uses its local server
    (a key alone never sends the course's calls to a paid service). With a base URL the
    model must be named too, since every provider serves different ones.
    """
    return OpenAILLM.environment_endpoint(environ)


__all__ = ["Endpoint", "LOCAL_MODEL", "OpenAILLM", "TRANSPORTS", "Transport", "environment_endpoint"]
