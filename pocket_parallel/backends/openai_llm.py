"""An LLM backend over HTTP, built on the official ``openai`` client: :class:`OpenAILLM`.

``await llm(prompt)`` sends ``[{"role": "user", "content": prompt}]`` to an OpenAI-compatible
Chat Completions endpoint and returns the answer's text, so ``set_default_llm(OpenAILLM(...))``
makes the chapter's ``call_llm_async`` go over real sockets: to the course's local server
(:class:`~pocket_parallel.server.LocalServer`) or to any provider.

**One client per event loop.** An ``AsyncOpenAI`` client pools its connections on the event
loop that first used it; used again under another loop (every :func:`~pocket_parallel.run`
and every ``asyncio.run`` makes a fresh one) it fails with "Event loop is closed". So
:class:`OpenAILLM` keeps one client per running loop and closes each before its loop closes:
``asyncio.run`` and :func:`~pocket_parallel.run` shut a loop's async generators down before
closing it, and a small async generator parked on each loop closes that loop's client then.
A loop that lives on (a notebook's) keeps its client until :meth:`OpenAILLM.aclose`.

**The environment.** A learner with an endpoint of their own sets ``OPENAI_BASE_URL`` (e.g.
``https://api.openai.com/v1``), ``OPENAI_API_KEY`` and ``POCKET_PARALLEL_MODEL`` (the model
name, e.g. ``gpt-4o-mini``); :func:`environment_endpoint` reads them, and
:meth:`OpenAILLM.from_environment` builds a backend for them. A key is never shown: not in
``repr``, not in any message or error of this module, not as the password of a URL
(:mod:`pocket_parallel.redaction` masks them all).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal

import openai

from .._validate import check_choice, check_int, check_optional_seconds, check_prompt, check_url
from ..clock import is_virtual
from ..redaction import clean_error, redact, redact_url, url_secrets
from ..service.model import AttemptNumbers
from ..trace import CallLog, CallRecord, LLMStats, Outcome

BASE_URL_VARIABLE = "OPENAI_BASE_URL"
API_KEY_VARIABLE = "OPENAI_API_KEY"
MODEL_VARIABLE = "POCKET_PARALLEL_MODEL"
#: The model name the course's local server answers as.
LOCAL_MODEL = "pocket-parallel-sim"
# The local server reads no key, but the official client refuses to start without one.
_NO_KEY = "no-key-needed-for-the-local-server"
Transport = Literal["aiohttp", "default"]
TRANSPORTS: tuple[Transport, ...] = ("aiohttp", "default")


@dataclass(frozen=True)
class Endpoint:
    """Where a learner's own OpenAI-compatible endpoint is, as the environment says.

    ``api_key`` is kept out of ``repr``; read it only to hand it to a client.
    """

    base_url: str
    model: str
    api_key: str | None

    def __repr__(self) -> str:
        key = "set" if self.api_key else "not set"
        return f"Endpoint(base_url={redact_url(self.base_url)!r}, model={self.model!r}, api_key {key})"


def environment_endpoint(environ: Any = None) -> Endpoint | None:
    """The endpoint named by ``OPENAI_BASE_URL``, ``OPENAI_API_KEY`` and ``POCKET_PARALLEL_MODEL``.

    None when ``OPENAI_BASE_URL`` is unset or empty: then the course uses its local server
    (a key alone never sends the course's calls to a paid service). With a base URL the
    model must be named too, since every provider serves different ones.
    """
    env = os.environ if environ is None else environ
    base_url = (env.get(BASE_URL_VARIABLE) or "").strip()
    if not base_url:
        return None
    model = (env.get(MODEL_VARIABLE) or "").strip()
    if not model:
        raise ValueError(
            f"{BASE_URL_VARIABLE} is set, so the course will call that endpoint: set {MODEL_VARIABLE} to a model "
            f"it serves too (for OpenAI, e.g. gpt-4o-mini), or unset {BASE_URL_VARIABLE} to use the local server"
        )
    return Endpoint(base_url, model, env.get(API_KEY_VARIABLE) or None)


def _http_client(transport: Transport) -> dict[str, Any]:
    """The ``http_client`` keyword for ``AsyncOpenAI``: its aiohttp transport when asked for and available."""
    if transport == "aiohttp":
        try:
            return {"http_client": openai.DefaultAioHttpClient()}
        except (AttributeError, RuntimeError):  # an openai release without it, or aiohttp too old for it
            pass
    return {}


def _outcome_of(error: BaseException) -> Outcome:
    status = getattr(error, "status_code", None)
    if status == 429:
        return "rate_limited"
    if status == 529:
        return "overloaded"
    return "error"


async def _close_on_shutdown(client: openai.AsyncOpenAI, forget: Any) -> AsyncGenerator[None, None]:
    """Parked on a loop after its first step: the loop's ``shutdown_asyncgens`` closes ``client``."""
    try:
        yield
    finally:
        forget()
        await client.close()


class OpenAILLM:
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

    def __init__(
        self,
        base_url: str,
        model: str = LOCAL_MODEL,
        api_key: str | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        transport: Transport = "aiohttp",
    ) -> None:
        check_url("base_url", base_url, "server.base_url")
        if url_secrets(base_url):  # the client would log it, and send it in a header of its own
            raise ValueError(f"base_url must not hold credentials (user:password@); give the key as api_key, or in "
                             f"{API_KEY_VARIABLE}; got {redact_url(base_url)!r}")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty model name such as {LOCAL_MODEL!r}; got {model!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise ValueError("api_key must be a non-empty str, or None to read OPENAI_API_KEY")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = check_optional_seconds("timeout", timeout)
        self.max_retries = None if max_retries is None else check_int("max_retries", max_retries, low=0, high=100)
        self.transport: Transport = check_choice("transport", transport, TRANSPORTS)
        self.__api_key = api_key or os.environ.get(API_KEY_VARIABLE) or _NO_KEY
        self._clients: dict[asyncio.AbstractEventLoop, tuple[openai.AsyncOpenAI, AsyncGenerator[None, None]]] = {}
        self._lock = threading.Lock()
        self._blocking: openai.OpenAI | None = None
        self.last_usage: dict[str, int] | None = None
        self.reset()

    @classmethod
    def from_environment(cls, **settings: Any) -> OpenAILLM | None:
        """A backend for the endpoint the environment names (see :func:`environment_endpoint`), or None."""
        endpoint = environment_endpoint()
        if endpoint is None:
            return None
        return cls(endpoint.base_url, endpoint.model, endpoint.api_key, **settings)

    def __repr__(self) -> str:
        options = "".join(f", {name}={value!r}" for name, value in (("timeout", self.timeout),
                                                                     ("max_retries", self.max_retries))
                          if value is not None)
        if self.transport != "aiohttp":
            options += f", transport={self.transport!r}"
        key = "set" if self.__api_key != _NO_KEY else "not set"
        return f"OpenAILLM(base_url={redact_url(self.base_url)!r}, model={self.model!r}{options}; api_key {key})"

    # -- the clients --------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"base_url": self.base_url, "api_key": self.__api_key}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.max_retries is not None:
            options["max_retries"] = self.max_retries
        return options

    async def client(self) -> openai.AsyncOpenAI:
        """The ``AsyncOpenAI`` client of the running event loop, made on first use there."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        if is_virtual(loop):
            raise RuntimeError(
                "OpenAILLM talks to a real server over real sockets: run it on the real clock "
                "(run(..., clock='real') or top-level await), not the virtual one"
            )
        client = openai.AsyncOpenAI(**self._options(), **_http_client(self.transport))

        def forget() -> None:
            with self._lock:
                self._clients.pop(loop, None)

        closer = _close_on_shutdown(client, forget)
        await closer.__anext__()  # registers it with this loop's shutdown_asyncgens
        with self._lock:
            for old in [other for other in self._clients if other.is_closed()]:
                del self._clients[old]  # a loop closed without shutting its generators down
            self._clients[loop] = (client, closer)
        return client

    async def aclose(self) -> None:
        """Close the running loop's client now (a notebook's loop never shuts down by itself)."""
        entry = self._clients.get(asyncio.get_running_loop())
        if entry is not None:
            await entry[1].aclose()  # runs the closer's finally: forget, then close the client

    def close(self) -> None:
        """Close the blocking client of :meth:`call`, if one was made."""
        if self._blocking is not None:
            self._blocking.close()
            self._blocking = None

    # -- calling it -----------------------------------------------------------------------------

    async def __call__(self, prompt: str) -> str:
        """The endpoint's answer to ``prompt`` (the content of one user message)."""
        prompt = check_prompt(prompt)
        client = await self.client()
        attempt = self._attempts.next(prompt)
        loop = asyncio.get_running_loop()
        start = loop.time()
        self._log.opened()
        outcome: Outcome = "cancelled"
        failure: BaseException | None = None
        try:
            body = await client.post("/chat/completions", cast_to=bytes, body=self._body(prompt))
            outcome = "ok"
        except Exception as error:
            outcome = _outcome_of(error)
            failure = self._cleaned(error)
        finally:
            self._ended(prompt, attempt, start, loop.time(), outcome)
        if failure is not None:
            raise failure  # outside the except block: the transport's error is not chained to it
        return self._text(body)

    def call(self, prompt: str) -> str:
        """Blocking version of ``await llm(prompt)``, for synchronous code (one shared ``openai.OpenAI`` client)."""
        prompt = check_prompt(prompt)
        if self._blocking is None:
            self._blocking = openai.OpenAI(**self._options())
        attempt = self._attempts.next(prompt)
        start = time.monotonic()
        self._log.opened()
        outcome: Outcome = "cancelled"
        failure: BaseException | None = None
        try:
            body = self._blocking.post("/chat/completions", cast_to=bytes, body=self._body(prompt))
            outcome = "ok"
        except Exception as error:
            outcome = _outcome_of(error)
            failure = self._cleaned(error)
        finally:
            self._ended(prompt, attempt, start, time.monotonic(), outcome)
        if failure is not None:
            raise failure
        return self._text(body)

    def _cleaned(self, error: Exception) -> BaseException:
        """``error`` with no key in its message and no transport error behind it (see :mod:`~pocket_parallel.redaction`)."""
        return clean_error(error, [self.__api_key], keep=(openai.APIError,))

    def _body(self, prompt: str) -> dict[str, Any]:
        return {"model": self.model, "messages": [{"role": "user", "content": prompt}]}

    def _text(self, raw: bytes) -> str:
        """The answer's text in a ``chat.completion`` body; keeps its ``usage`` in :attr:`last_usage`."""
        try:
            completion = json.loads(raw)
            content = completion["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            shown = redact(repr(raw[:200]), [self.__api_key])
            raise ValueError(f"the endpoint's answer is not a chat.completion: {shown}") from None
        usage = completion.get("usage")
        if isinstance(usage, dict):
            self.last_usage = {key: int(usage.get(key) or 0)
                               for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
        return content if isinstance(content, str) else ""

    # -- what it saw ----------------------------------------------------------------------------

    @property
    def trace(self) -> list[CallRecord]:
        """Every finished call since the last reset, in the order they ended (times on the caller's loop clock)."""
        return list(self._log.records)

    @property
    def stats(self) -> LLMStats:
        """A snapshot of the client-side counters (calls, outcomes, calls in flight now and at peak)."""
        return self._log.snapshot()

    def reset(self) -> None:
        """Forget every recorded call and zero the counters and attempt numbers."""
        self._log = CallLog()
        self._attempts = AttemptNumbers()

    def _ended(self, prompt: str, attempt: int, start: float, end: float, outcome: Outcome) -> None:
        log = self._log
        if outcome in ("rate_limited", "overloaded"):  # a refusal: counted as such, not as an error
            log.stats.in_flight -= 1
            log.stats.calls -= 1  # refused() counts the call again
            log.refused(prompt, attempt, end, outcome)
            log.records[-1] = CallRecord(prompt, attempt, start, end, outcome)
        else:
            log.closed(prompt, attempt, start, end, outcome)
        self._attempts.settled(prompt, attempt, outcome)
