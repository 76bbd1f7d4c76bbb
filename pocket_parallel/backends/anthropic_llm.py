"""An LLM backend over HTTP, built on the official ``anthropic`` client: :class:`AnthropicLLM`.

``await llm(prompt)`` sends one user message to Anthropic's Messages API (``POST
{base_url}/v1/messages``) and returns the answer's text: the text block, which follows the
thinking block when extended thinking is on. So ``set_default_llm(AnthropicLLM(...))`` makes
the chapter's ``call_llm_async`` ask Claude, or any server that speaks the Messages API.

It shares with :class:`~pocket_parallel.OpenAILLM` (in :mod:`.official_client`) one client
per event loop, the call records, the blocking twin and a key that is never shown.

**The environment.** The official client reads ``ANTHROPIC_BASE_URL`` and
``ANTHROPIC_API_KEY``; :meth:`AnthropicLLM.from_environment` reads them too, with
``ANTHROPIC_MODEL`` for the model name, and returns None when ``ANTHROPIC_BASE_URL`` is unset
(a key alone never sends the course's calls to a paid service): set it to
``https://api.anthropic.com`` to mean Anthropic's own API.
"""

from __future__ import annotations

from typing import Any

import anthropic

from .._validate import check_int
from .official_client import LOCAL_MODEL, Endpoint, OfficialClientLLM, Transport

#: The largest ``max_tokens`` taken: the longest output Anthropic documents for a Claude model (128k tokens).
MAX_OUTPUT_TOKENS = 128_000
#: Anthropic's smallest thinking budget.
MIN_THINKING_BUDGET = 1_024


class AnthropicLLM(OfficialClientLLM[anthropic.AsyncAnthropic, anthropic.Anthropic]):
    """An LLM backend that asks a Messages API endpoint through the official ``anthropic`` client.

    Parameters
    ----------
    base_url:
        The server's root, e.g. ``server.url`` of a :class:`~pocket_parallel.server.LocalServer`
        (``http://127.0.0.1:PORT``) or ``https://api.anthropic.com``: the client adds
        ``/v1/messages`` itself.
    model:
        The model name sent with each request (default: the local server's).
    api_key:
        The key, if the endpoint needs one (default: ``ANTHROPIC_API_KEY`` if set). Never shown.
    max_tokens:
        The most tokens an answer may take, thinking included (an integer in [1, 128000];
        Anthropic requires it). An output-token limit charges all of it when a request is
        admitted (Anthropic's OTPM, by its documentation, returning what goes unused when
        the answer ends), so keep it near what answers need.
    thinking_budget:
        Extended thinking's budget in tokens (an integer >= 1,024 and below ``max_tokens``, as
        Anthropic requires), or None for no extended thinking.
    timeout, max_retries, transport:
        As for :class:`~pocket_parallel.OpenAILLM`: seconds per HTTP attempt (None: the
        client's 600 s), the client's own retries (None: its 2; set 0 when a node or
        :class:`~pocket_parallel.Backoff` retries, or the two multiply), and ``"aiohttp"``
        (``anthropic.DefaultAioHttpClient``) or the client's ``"default"`` HTTP stack.

    Each call goes through the client's request machinery with ``client.post("/v1/messages",
    ...)``, as ``client.messages.create`` does, keeping its retries (408, 409, 429, >= 500,
    ``x-should-retry``), ``retry-after``, timeout and error classes, without building pydantic
    objects. ``create`` alone refuses a plain (not streamed) request whose ``max_tokens``
    implies more than its ten-minute default timeout (above 21,333 tokens); this backend does
    not, so give such calls a ``timeout``.

    ``await llm(prompt)`` returns the text of the answer's text blocks ("" when it has none,
    e.g. when thinking used up ``max_tokens``); :attr:`last_stop_reason` says why the latest
    answer ended (``"end_turn"``, ``"max_tokens"``...) and :attr:`last_usage` holds its
    ``input_tokens`` and ``output_tokens``. Errors are the client's own
    (``anthropic.RateLimitError``, ``anthropic.OverloadedError``...), carrying the response,
    so :class:`~pocket_parallel.Backoff` reads their ``retry-after``. ``llm.call(prompt)`` is
    the blocking twin; :attr:`trace` and :attr:`stats` record every call. Real clock only.
    """

    path = "/v1/messages"
    base_url_variable = "ANTHROPIC_BASE_URL"
    api_key_variable = "ANTHROPIC_API_KEY"
    model_variable = "ANTHROPIC_MODEL"
    model_example = "claude-sonnet-4-5 for Anthropic"
    url_example = "server.url"
    answer_kind = "Message"
    usage_keys = ("input_tokens", "output_tokens")
    client_errors = (anthropic.APIError,)

    def __init__(
        self,
        base_url: str,
        model: str = LOCAL_MODEL,
        api_key: str | None = None,
        *,
        max_tokens: int = 1_024,
        thinking_budget: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        transport: Transport = "aiohttp",
    ) -> None:
        super().__init__(base_url, model, api_key, timeout=timeout, max_retries=max_retries, transport=transport)
        if self.base_url.endswith("/v1"):
            raise ValueError(
                f"base_url must be the server's root, without /v1 (the anthropic client adds /v1/messages itself), "
                f"such as server.url or https://api.anthropic.com; got {base_url!r}"
            )
        self.max_tokens = check_int("max_tokens", max_tokens, low=1, high=MAX_OUTPUT_TOKENS)
        if thinking_budget is not None and (isinstance(thinking_budget, bool) or not isinstance(thinking_budget, int)
                                            or not MIN_THINKING_BUDGET <= thinking_budget < self.max_tokens):
            raise ValueError(
                f"thinking_budget must be an integer >= {MIN_THINKING_BUDGET} and below max_tokens ({self.max_tokens}: "
                f"thinking counts toward it, as Anthropic requires), or None for no extended thinking; "
                f"got {thinking_budget!r}"
            )
        self.thinking_budget = thinking_budget
        self.last_stop_reason: str | None = None

    def _settings(self) -> list[tuple[str, Any]]:
        return [("max_tokens", self.max_tokens), ("thinking_budget", self.thinking_budget), *super()._settings()]

    def _new_client(self, options: dict[str, Any]) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(**options, **self._transport(lambda: anthropic.DefaultAioHttpClient()))

    def _new_blocking_client(self, options: dict[str, Any]) -> anthropic.Anthropic:
        return anthropic.Anthropic(**options)

    def _body(self, prompt: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens,
                                "messages": [{"role": "user", "content": prompt}]}
        if self.thinking_budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": self.thinking_budget}
        return body

    def _read(self, answer: Any) -> str:
        text = "".join(block["text"] for block in answer["content"] if block["type"] == "text")
        self.last_stop_reason = answer.get("stop_reason")
        return text


def environment_endpoint(environ: Any = None) -> Endpoint | None:
    """The endpoint named by ``ANTHROPIC_BASE_URL``, ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_MODEL``, or None."""
    return AnthropicLLM.environment_endpoint(environ)


__all__ = ["AnthropicLLM", "MAX_OUTPUT_TOKENS", "environment_endpoint"]
