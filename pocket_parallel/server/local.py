"""Start and stop a server from Python: on the running event loop, or on its own loop in a thread.

::

    with LocalServer(latency=0.05, max_concurrent=8) as server:        # its own thread
        llm = OpenAILLM(base_url=server.base_url)
        ...
        print(server.stats().peak_in_flight)

    async with LocalServer(latency=0.05) as server:                    # the running loop
        ...

Use the thread form in a notebook: then the server keeps answering while a cell blocks in
:func:`~pocket_parallel.run` (which runs its coroutine on a loop of its own). Both forms listen
on an ephemeral loopback port (``port=0``) unless told otherwise, and stop leaving no task,
thread or socket behind: requests still being answered, stalled ones included, are cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from ..service.settings import settings_from, takes_settings
from .app import SERVICE, cancel_active, make_app
from .connections import ConnectionWatch
from .guard import RequestGuard
from .service import ChatService
from .settings import ServerSettings
from .stats import ServerStats

_STOP_TIMEOUT = 10.0


class LocalServer:
    """An LLM server on loopback speaking OpenAI's and Anthropic's APIs, simulating the seeded course service.

    It takes every setting of :class:`~pocket_parallel.server.ServerSettings`, the first
    four by position: those of :class:`~pocket_parallel.SimulatedLLM` (the same seed and
    prompt give the same latency and answer over HTTP as in-process; calls of 0.5 s without a
    profile), its limits (``max_concurrent``, ``requests_per_minute``, ``tokens_per_minute``,
    ``input_tokens_per_minute``, ``output_tokens_per_minute``, ``algorithm``, ``quantum``,
    ``slots``), its timing (``ttft``, ``tpot``, ``answer_tokens``), a ``profile``, and
    ``host``, ``port`` and ``model``: where it listens and the model name it answers as.
    ``allow_origins`` lists the web pages it serves besides this machine's own (see
    :mod:`~pocket_parallel.server.guard`: by default, no other).

    Start it with ``with`` (a thread of its own) or ``async with`` (the running loop), or
    with :meth:`start` / :meth:`astart` and stop it with :meth:`stop` / :meth:`astop`. While
    it runs, :attr:`url` is its address (the base URL an Anthropic client takes, as
    ``ANTHROPIC_BASE_URL``), :attr:`base_url` the one an OpenAI client takes,
    :meth:`stats` its counters and :meth:`reset` zeroes them and refills the limits between
    experiments (over HTTP, refilling takes :attr:`admin_token`).
    """

    @takes_settings(ServerSettings, allow_origins=())
    def __init__(self, *args: Any, allow_origins: Iterable[str] = (), **settings: Any) -> None:
        self.settings: ServerSettings = settings_from(ServerSettings, "LocalServer", args, settings)
        if isinstance(allow_origins, str):
            raise TypeError(f"allow_origins must be a list of origins, such as ['http://192.168.1.5:8888']; "
                            f"got the str {allow_origins!r}")
        self._guard = RequestGuard(self.settings.host, allow_origins)
        self._watch: ConnectionWatch | None = None
        self._mode: Literal["thread", "loop"] | None = None
        self._runner: web.AppRunner | None = None
        self._service: ChatService | None = None
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    @classmethod
    def from_settings(cls, settings: ServerSettings, allow_origins: Iterable[str] = ()) -> LocalServer:
        """A server simulating ``settings`` (as the command line builds them), serving ``allow_origins`` too."""
        return cls(**{field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)},
                   allow_origins=allow_origins)

    def __repr__(self) -> str:
        where = f"running at {self.url}" if self.running else "stopped"
        return f"LocalServer({self.settings.describe()}; {where})"

    # -- where it is ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._port is not None

    @property
    def port(self) -> int:
        """The port it listens on (chosen by the system when ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the server is not running: start it with 'with LocalServer(...) as server:'")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: where it listens, and the base URL an Anthropic client takes."""
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def admin_token(self) -> str:
        """The token ``POST /admin/reset`` needs (``Authorization: Bearer <token>``); made at random for each server."""
        return self._guard.admin_token

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the base URL an OpenAI client takes."""
        return self.url + "/v1"

    # -- on the running loop ------------------------------------------------------------------

    async def astart(self) -> LocalServer:
        """Start listening on the running event loop; returns the server."""
        self._refuse_if_started()
        await self._open()
        self._mode, self._loop = "loop", asyncio.get_running_loop()
        return self

    async def astop(self) -> None:
        """Stop a server started with :meth:`astart`: cancel what it is answering, close every socket."""
        if self._mode != "loop":
            raise RuntimeError("astop() stops a server started with astart() or 'async with'; use stop() for 'with'")
        try:
            await self._close()
        finally:
            self._mode = self._loop = None

    async def __aenter__(self) -> LocalServer:
        return await self.astart()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.astop()

    # -- in a thread of its own ---------------------------------------------------------------

    def start(self) -> LocalServer:
        """Start listening on a new event loop in a background thread; returns once it is ready."""
        self._refuse_if_started()
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._serve, args=(ready, failure), name="pocket-parallel-server", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._mode, self._thread = "thread", thread
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start`: cancel what it is answering, close every socket, end the thread."""
        if self._mode != "thread":
            raise RuntimeError("stop() stops a server started with start() or 'with'; use 'await astop()' for 'async with'")
        assert self._loop is not None and self._stopping is not None and self._thread is not None
        try:
            self._loop.call_soon_threadsafe(self._stopping.set)
        except RuntimeError:
            pass  # its loop already closed
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"the server thread did not stop within {_STOP_TIMEOUT:g} s")
        self._mode = self._thread = self._loop = self._stopping = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve_until_stopped(loop, ready, failure))
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
                ready.set()

    async def _serve_until_stopped(self, loop: asyncio.AbstractEventLoop, ready: threading.Event,
                                   failure: list[BaseException]) -> None:
        try:
            await self._open()
        except BaseException as error:  # handed to start(), which raises it in the caller's thread
            failure.append(error)
            return
        self._loop, self._stopping = loop, asyncio.Event()
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self._close()

    # -- reading it ---------------------------------------------------------------------------

    def stats(self) -> ServerStats:
        """A snapshot of the counters (what ``GET /stats`` returns), from any thread."""
        stats: ServerStats = self._on_server_loop(lambda service: service.stats.copy())
        return stats

    def reset(self) -> None:
        """Zero the counters and attempt numbers and refill the limits (as ``POST /admin/reset``).

        Refused (:class:`~pocket_parallel.server.service.Busy`, a RuntimeError) while requests are in flight.
        """
        self._on_server_loop(lambda service: service.reset())

    def _on_server_loop(self, action: Any) -> Any:
        service = self._service
        if service is None:
            raise RuntimeError("the server is not running: start it with 'with LocalServer(...) as server:'")
        if self._mode == "thread" and self._loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not self._loop:  # read on the server's own loop, never half-way through a request

                async def act() -> Any:
                    return action(service)

                return asyncio.run_coroutine_threadsafe(act(), self._loop).result(_STOP_TIMEOUT)
        return action(service)

    # -- opening and closing ------------------------------------------------------------------

    def _refuse_if_started(self) -> None:
        if self._mode is not None:
            raise RuntimeError(f"the server is already running at {self.url}: stop it before starting it again")

    async def _open(self) -> None:
        service = ChatService(self.settings)
        watch = ConnectionWatch()
        runner = web.AppRunner(make_app(service, self._guard), access_log=None, handler_cancellation=True,
                               shutdown_timeout=1.0, keepalive_timeout=watch.idle_timeout)
        await runner.setup()
        try:
            assert runner.server is not None  # made by setup()
            self._port = await watch.listen(runner.server, self.settings.host, self.settings.port)
        except BaseException:
            watch.close()
            await runner.cleanup()
            raise
        self._runner, self._service, self._watch = runner, service, watch
        self._guard.warn_if_unchecked()

    async def _close(self) -> None:
        runner, watch = self._runner, self._watch
        self._runner = self._service = self._port = self._watch = None
        if watch is not None:
            watch.close()
        if runner is not None:
            if runner.app is not None:
                await cancel_active(runner.app)
            await runner.cleanup()
        if watch is not None:
            await watch.wait_closed()


__all__ = ["LocalServer", "SERVICE"]
