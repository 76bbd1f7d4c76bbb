"""A tiny Messages API on loopback for what the course's server never does: check a key, answer garbage.

Everything else (answers, streams, refusals, faults) is tested against the course's own
:class:`~pocket_parallel.server.LocalServer`. This one records the credentials of each
request and answers at once:

- a prompt ``"status 401"`` gets a 401 ``authentication_error`` in Anthropic's shape;
- ``"answer garbage"`` gets a 200 whose body is no ``Message``;
- any other prompt gets the ``Message`` ``"echo: " + prompt``.

It runs on a loop of its own in a thread, so clients on other loops (``run``, ``asyncio.run``)
and blocking clients reach it, and it stops leaving no thread or socket behind.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from pocket_parallel.server.anthropic_errors import AnthropicApiError
from pocket_parallel.server.anthropic_request import parse_messages_request
from pocket_parallel.server.anthropic_response import MessageReply, message_id, render_message


class MessagesServer:
    """``with MessagesServer() as server:``, then point a client at ``server.url``.

    ``server.credentials`` holds the ``x-api-key`` or ``authorization`` header of each request.
    """

    def __init__(self) -> None:
        self.credentials: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-messages-server", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> MessagesServer:
        self._thread.start()
        self._ready.wait(10)
        assert self.url, "the test server did not start"
        return self

    def __exit__(self, *exc_info: Any) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _messages(self, http: web.Request) -> web.StreamResponse:
        self.credentials.append(http.headers.get("x-api-key") or http.headers.get("authorization") or "")
        request = parse_messages_request(await http.read())
        if request.prompt == "status 401":
            error = AnthropicApiError(401, "invalid x-api-key")
            return web.json_response(error.body(), status=error.status)
        if request.prompt == "answer garbage":
            return web.json_response({"content": 5})
        reply = MessageReply("echo: " + request.prompt, input_tokens=1, output_tokens=1)
        return web.json_response(render_message(reply, model=request.model, id=message_id(len(self.credentials))))
