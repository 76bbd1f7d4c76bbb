"""Deadlines on the server's connections, so that stuck or idle clients cannot hold it.

- **A whole request within 10 s.** A connection must send a complete request, headers and
  body, within :data:`REQUEST_DEADLINE` seconds of opening, or of sending the first byte of
  its next request; otherwise it is closed. aiohttp has no such timeout (a client that sends
  half its headers, "slowloris", is kept for as long as it likes), so a small protocol sits
  between the socket and aiohttp's: it starts the clock, and the :func:`whole_request`
  middleware stops it once the body is read.
- **Idle keep-alive connections close after** :data:`IDLE_TIMEOUT` **seconds** (aiohttp's
  ``keepalive_timeout``; clients open a new one when they need it).
- **Out of file descriptors.** When the process reaches its limit of open files, asyncio
  stops accepting for a second and logs a traceback, every second, for as long as it lasts.
  Here that is one log line (again at most once a minute while it lasts); the connections
  already open are served as usual, and new ones are accepted as soon as the deadlines
  above close the idle ones.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

if sys.platform != "win32":  # imported now: out of file descriptors, an import would fail
    import resource

#: Seconds a connection has to send one whole request, once it opens or starts sending one.
REQUEST_DEADLINE = 10.0
#: Seconds an idle keep-alive connection stays open (aiohttp's ``keepalive_timeout``).
IDLE_TIMEOUT = 75.0
# Seconds between two reports that the process is out of file descriptors.
_REPORT_EVERY = 60.0
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_log = logging.getLogger(__name__)


class ConnectionWatch:
    """The deadlines of one server's connections, and its listening socket.

    ``request_deadline`` and ``idle_timeout`` are in seconds (None: :data:`REQUEST_DEADLINE`,
    :data:`IDLE_TIMEOUT`; aiohttp's server takes the second as its ``keepalive_timeout``). :meth:`listen` opens
    the socket; :meth:`close` closes it. ``closed_unfinished`` counts the connections closed
    because a request did not arrive whole in time.
    """

    def __init__(self, request_deadline: float | None = None, idle_timeout: float | None = None) -> None:
        self.request_deadline = REQUEST_DEADLINE if request_deadline is None else request_deadline
        self.idle_timeout = IDLE_TIMEOUT if idle_timeout is None else idle_timeout
        self.closed_unfinished = 0
        self._reported_at: float | None = None  # when running out of file descriptors was last logged
        self._listener: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handler: Any = None

    async def listen(self, make_protocol: Callable[[], asyncio.Protocol], host: str, port: int) -> int:
        """Listen on ``host``:``port`` with ``make_protocol`` (aiohttp's server) behind the deadlines; return the port."""
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(lambda: _Deadlines(make_protocol(), self), host, port)
        self._loop, self._previous_handler = loop, loop.get_exception_handler()
        loop.set_exception_handler(self._loop_error)
        return int(self._listener.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop accepting connections (those open stay until the server closes them) and restore the loop's handler."""
        if self._listener is not None:
            self._listener.close()
        if self._loop is not None and self._loop.get_exception_handler() == self._loop_error:
            self._loop.set_exception_handler(self._previous_handler)
        self._loop = None

    async def wait_closed(self) -> None:
        """Wait until the listening socket and every connection it accepted are closed."""
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        sock = context.get("socket")
        ours = self._listener is not None and sock is not None and any(
            sock.fileno() == listening.fileno() for listening in self._listener.sockets)
        if ours and isinstance(error, OSError) and error.errno in _OUT_OF_RESOURCES:
            now = loop.time()
            if self._reported_at is None or now - self._reported_at >= _REPORT_EVERY:
                self._reported_at = now
                _log.warning("cannot accept new connections: %s (the limit is %s); serving the connections already "
                             "open, and accepting again as they close", error.strerror or error, _open_files_limit())
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)


class _Deadlines(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the clock of :data:`REQUEST_DEADLINE` around it.

    The clock runs while a request is on its way ("waiting": since the connection opened,
    or since the first byte after the last answer), stops while it is answered, and is off
    while the connection is idle between requests.
    """

    def __init__(self, inner: asyncio.Protocol, watch: ConnectionWatch) -> None:
        self._inner, self._watch = inner, watch
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._state = "waiting"
        self._next_started = False  # bytes of the next request came while this one was answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._start_clock()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._state == "idle":
            self._state = "waiting"
            self._start_clock()
        elif self._state == "answering":
            self._next_started = True
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        self._transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def request_arrived(self) -> None:
        """The request is here whole: stop the clock while it is answered."""
        self._state = "answering"
        self._stop_clock()

    def response_sent(self) -> None:
        """The answer is out: the connection is idle, or its next request is already on its way."""
        if self._next_started:
            self._next_started = False
            self._state = "waiting"
            self._start_clock()
        else:
            self._state = "idle"

    def _start_clock(self) -> None:
        self._stop_clock()
        self._timer = asyncio.get_running_loop().call_later(self._watch.request_deadline, self._too_slow)

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if self._state == "waiting" and self._transport is not None:
            self._watch.closed_unfinished += 1
            self._transport.close()


@web.middleware
async def whole_request(request: web.Request, handler: Any) -> web.StreamResponse:
    """Read the body under the request's deadline, then stop the clock while the route answers."""
    protocol = request.transport.get_protocol() if request.transport is not None else None
    deadlines = protocol if isinstance(protocol, _Deadlines) else None
    try:
        if request.body_exists:
            await request.read()  # kept by aiohttp: the route's own read() returns it
        if deadlines is not None:
            deadlines.request_arrived()
        response: web.StreamResponse = await handler(request)
        return response
    finally:
        if deadlines is not None:
            deadlines.response_sent()


def _open_files_limit() -> str:
    if sys.platform == "win32":
        return "set by the system"
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"{soft} open files, ulimit -n"
