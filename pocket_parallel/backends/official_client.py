"""What the backends on an official client share: :class:`OfficialClientLLM`.

:class:`~pocket_parallel.backends.openai_llm.OpenAILLM` and
:class:`~pocket_parallel.backends.anthropic_llm.AnthropicLLM` differ only in the request they
send and the answer they read. Both official clients are built on the same generated base
(Stainless): a constructor taking ``base_url``, ``api_key``, ``timeout``, ``max_retries`` and
``http_client``, an aiohttp transport (``DefaultAioHttpClient``), and ``client.post(path,
cast_to=bytes, body=...)``, the documented way to send a request of your own with the client's
retries, ``retry-after`` handling, timeout, connection pool and error classes. The rest is here:

**One client per event loop.** An async client pools its connections on the event loop that
first used it; used again under another loop (every :func:`~pocket_parallel.run` and every
``asyncio.run`` makes a fresh one) it fails with "Event loop is closed". So a backend keeps
one client per running loop and closes each before its loop closes: ``asyncio.run`` and
:func:`~pocket_parallel.run` shut a loop's async generators down before closing it, and a
small async generator parked on each loop closes that loop's client then. A loop that lives
on (a notebook's) keeps its client until :meth:`OfficialClientLLM.aclose`.

**What it saw.** ``trace`` and ``stats`` record every call as the client saw it (one record
per call, however many attempts the client made inside it), numbered as the simulated service
numbers attempts; ``call(prompt)`` is the blocking twin of ``await llm(prompt)``.

**The environment.** :func:`read_endpoint` reads a base URL, a key and a model name from
environment variables; a key alone never sends the course's calls to a paid service.

**The key** is never shown: not in ``repr``, not in any message or error of these modules,
not as the password of a URL (:mod:`pocket_parallel.redaction` masks them all). The errors a
call raises are the official client's own, carrying its response, with their messages masked
and their chain of causes dropped (the transport's errors carry the request's headers, key
included); an error of the transport itself becomes a
:class:`~pocket_parallel.redaction.TransportError` saying what it said, masked.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from .._validate import check_choice, check_int, check_optional_seconds, check_prompt, check_url
from ..clock import is_virtual
from ..redaction import clean_error, redact, redact_url, url_secrets
from ..trace import CallRecord, Outcome
from .recorded import RecordedCalls

#: The model name the course's local server answers as.
LOCAL_MODEL = "pocket-parallel-sim"
# The local server reads no key, but the official clients refuse to start without one.
NO_KEY = "no-key-needed-for-the-local-server"
Transport = Literal["aiohttp", "default"]
TRANSPORTS: tuple[Transport, ...] = ("aiohttp", "default")


class AsyncClient(Protocol):
    """What a backend uses of an official async client."""

    async def post(self, path: str, *, cast_to: type[bytes], body: Any) -> bytes:
        """Send one request through the client's machinery; the raw body of its answer."""
        ...

    async def close(self) -> None:
        """Close its connections."""
        ...


class BlockingClient(Protocol):
    """What a backend uses of an official blocking client."""

    def post(self, path: str, *, cast_to: type[bytes], body: Any) -> bytes:
        """Send one request through the client's machinery; the raw body of its answer."""
        ...

    def close(self) -> None:
        """Close its connections."""
        ...


AsyncClientT = TypeVar("AsyncClientT", bound=AsyncClient)
BlockingClientT = TypeVar("BlockingClientT", bound=BlockingClient)
LLMT = TypeVar("LLMT", bound="OfficialClientLLM[Any, Any]")


@dataclass(frozen=True)
class Endpoint:
    """Where a learner's own endpoint is, as the environment says.

    ``api_key`` is kept out of ``repr``; read it only to hand it to a client.
    """

    base_url: str
    model: str
    api_key: str | None

    def __repr__(self) -> str:
        key = "set" if self.api_key else "not set"
        return f"Endpoint(base_url={redact_url(self.base_url)!r}, model={self.model!r}, api_key {key})"


def read_endpoint(environ: Mapping[str, str] | None, base_url_variable: str, api_key_variable: str,
                  model_variable: str, model_example: str) -> Endpoint | None:
    """The endpoint the three variables name, or None when ``base_url_variable`` is unset or empty.

    Then the course uses its local server: a key alone never sends the course's calls to a
    paid service. With a base URL the model must be named too, since every provider serves
    different ones.
    """
    env = os.environ if environ is None else environ
    base_url = (env.get(base_url_variable) or "").strip()
    if not base_url:
        return None
    model = (env.get(model_variable) or "").strip()
    if not model:
        raise ValueError(
            f"{base_url_variable} is set, so the course will call that endpoint: set {model_variable} to a model "
            f"it serves too (e.g. {model_example}), or unset {base_url_variable} to use the local server"
        )
    return Endpoint(base_url, model, env.get(api_key_variable) or None)


def outcome_of(error: BaseException) -> Outcome:
    """How a call that raised ``error`` ended: refused by a limit (429), turned away as overloaded (529), or failed."""
    status = getattr(error, "status_code", None)
    if status == 429:
        return "rate_limited"
    if status == 529:
        return "overloaded"
    return "error"


async def _close_on_shutdown(client: AsyncClient, forget: Callable[[], None]) -> AsyncGenerator[None, None]:
    """Parked on a loop after its first step: the loop's ``shutdown_asyncgens`` closes ``client``."""
    try:
        yield
    finally:
        forget()
        await client.close()


class OfficialClientLLM(RecordedCalls, ABC, Generic[AsyncClientT, BlockingClientT]):
    """An LLM backend that sends one request per call through an official client (see the module's text).

    A subclass names its API (:attr:`path`, the environment variables, the answer's kind and
    usage keys) and says how to make its clients, what to send for a prompt (:meth:`_body`)
    and how to read the answer's text (:meth:`_read`). ``timeout`` (seconds per HTTP
    attempt) and ``max_retries`` (the client's own retries) are handed to the clients; None
    keeps their defaults (600 s, 2 retries).
    ``transport="aiohttp"`` sends through the client's aiohttp transport, which costs far less
    CPU per call with many calls in flight than ``"default"``, the client's own HTTP stack.
    """

    #: Where the client posts each request, relative to ``base_url``.
    path: ClassVar[str]
    #: The environment variables :meth:`from_environment` reads, and an example model name.
    base_url_variable: ClassVar[str]
    api_key_variable: ClassVar[str]
    model_variable: ClassVar[str]
    model_example: ClassVar[str]
    #: How the course's local server gives the base URL this API takes (for messages).
    url_example: ClassVar[str]
    #: What the API calls its answer, and the ``usage`` counts :attr:`last_usage` keeps.
    answer_kind: ClassVar[str]
    usage_keys: ClassVar[tuple[str, ...]]
    #: The client's own error classes: a call raises them as they are, masked (see :mod:`~pocket_parallel.redaction`).
    client_errors: ClassVar[tuple[type[BaseException], ...]]

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
        check_url("base_url", base_url, self.url_example)
        if url_secrets(base_url):  # the client would log it, and send it in a header of its own
            raise ValueError(f"base_url must not hold credentials (user:password@); give the key as api_key, or in "
                             f"{self.api_key_variable}; got {redact_url(base_url)!r}")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty model name such as {LOCAL_MODEL!r}; got {model!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise ValueError(f"api_key must be a non-empty str, or None to read {self.api_key_variable}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = check_optional_seconds("timeout", timeout)
        self.max_retries = None if max_retries is None else check_int("max_retries", max_retries, low=0, high=100)
        self.transport: Transport = check_choice("transport", transport, TRANSPORTS)
        self.__api_key = api_key or os.environ.get(self.api_key_variable) or NO_KEY
        self._clients: dict[asyncio.AbstractEventLoop, tuple[AsyncClientT, AsyncGenerator[None, None]]] = {}
        self._lock = threading.Lock()
        self._blocking: BlockingClientT | None = None
        self.last_usage: dict[str, int] | None = None
        self.reset()

    @classmethod
    def environment_endpoint(cls, environ: Mapping[str, str] | None = None) -> Endpoint | None:
        """The endpoint this API's variables name in ``environ`` (default: the environment); see :func:`read_endpoint`."""
        return read_endpoint(environ, cls.base_url_variable, cls.api_key_variable, cls.model_variable,
                             cls.model_example)

    @classmethod
    def from_environment(cls: type[LLMT], **settings: Any) -> LLMT | None:
        """A backend for the endpoint the environment names (see :meth:`environment_endpoint`), or None."""
        endpoint = cls.environment_endpoint()
        if endpoint is None:
            return None
        return cls(endpoint.base_url, endpoint.model, endpoint.api_key, **settings)

    def __repr__(self) -> str:
        options = "".join(f", {name}={value!r}" for name, value in self._settings() if value is not None)
        if self.transport != "aiohttp":
            options += f", transport={self.transport!r}"
        key = "set" if self.__api_key != NO_KEY else "not set"
        return (f"{type(self).__name__}(base_url={redact_url(self.base_url)!r}, model={self.model!r}{options}; "
                f"api_key {key})")

    def _settings(self) -> list[tuple[str, Any]]:
        """The settings ``repr`` shows after the model when they are not None (a subclass adds its own)."""
        return [("timeout", self.timeout), ("max_retries", self.max_retries)]

    # -- what a subclass says ---------------------------------------------------------------------

    @abstractmethod
    def _new_client(self, options: dict[str, Any]) -> AsyncClientT:
        """A new async client made with ``options`` (and this backend's transport)."""

    @abstractmethod
    def _new_blocking_client(self, options: dict[str, Any]) -> BlockingClientT:
        """A new blocking client made with ``options``."""

    @abstractmethod
    def _body(self, prompt: str) -> dict[str, Any]:
        """The JSON body of the request that asks ``prompt``."""

    @abstractmethod
    def _read(self, answer: Any) -> str:
        """The answer's text in its decoded JSON body; KeyError, IndexError or TypeError if it is not one."""

    # -- the clients --------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"base_url": self.base_url, "api_key": self.__api_key}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.max_retries is not None:
            options["max_retries"] = self.max_retries
        return options

    def _transport(self, aiohttp_client: Callable[[], Any]) -> dict[str, Any]:
        """The ``http_client`` keyword for an async client: its aiohttp transport when asked for and available."""
        if self.transport == "aiohttp":
            try:
                return {"http_client": aiohttp_client()}
            except (AttributeError, RuntimeError):  # a client release without it, or installed without aiohttp
                pass
        return {}

    async def client(self) -> AsyncClientT:
        """The async client of the running event loop, made on first use there."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        if is_virtual(loop):
            raise RuntimeError(
                f"{type(self).__name__} talks to a real server over real sockets: run it on the real clock "
                "(run(..., clock='real') or top-level await), not the virtual one"
            )
        client = self._new_client(self._options())

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
        failure: BaseException | None = None
        with self._recording(prompt, asyncio.get_running_loop().time):
            try:
                raw = await client.post(self.path, cast_to=bytes, body=self._body(prompt))
            except Exception as error:
                failure = self._cleaned(error)
            if failure is not None:
                raise failure  # outside the except block: the transport's error is not chained to it
        return self._text(raw)

    def call(self, prompt: str) -> str:
        """Blocking version of ``await llm(prompt)``, for synchronous code (one shared blocking client)."""
        prompt = check_prompt(prompt)
        if self._blocking is None:
            self._blocking = self._new_blocking_client(self._options())
        failure: BaseException | None = None
        with self._recording(prompt, time.monotonic):
            try:
                raw = self._blocking.post(self.path, cast_to=bytes, body=self._body(prompt))
            except Exception as error:
                failure = self._cleaned(error)
            if failure is not None:
                raise failure
        return self._text(raw)

    def _cleaned(self, error: Exception) -> BaseException:
        """``error`` with no key in its message and no transport error behind it (see :mod:`~pocket_parallel.redaction`)."""
        return clean_error(error, [self.__api_key], keep=self.client_errors)

    def _text(self, raw: bytes) -> str:
        """The answer's text in the raw body of a response; keeps its usage in :attr:`last_usage`."""
        try:
            answer = json.loads(raw)
            text = self._read(answer)
        except (ValueError, KeyError, IndexError, TypeError):
            shown = redact(repr(raw[:200]), [self.__api_key])
            raise ValueError(f"the endpoint's answer is not a {self.answer_kind}: {shown}") from None
        usage = answer.get("usage")
        if isinstance(usage, dict):
            self.last_usage = {key: int(usage.get(key) or 0) for key in self.usage_keys}
        return text

    # -- what it saw ----------------------------------------------------------------------------

    @contextmanager
    def _recording(self, prompt: str, clock: Callable[[], float]) -> Iterator[None]:
        """Record one call around the ``with`` body: in flight from now, ended as the body ends."""
        attempt = self._attempts.next(prompt)
        start = clock()
        self._log.opened()
        outcome: Outcome = "cancelled"
        try:
            yield
            outcome = "ok"
        except Exception as error:
            outcome = outcome_of(error)
            raise
        finally:
            self._ended(prompt, attempt, start, clock(), outcome)

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
