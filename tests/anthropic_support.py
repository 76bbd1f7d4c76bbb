"""A tiny Messages API on loopback for the tests: the request parser and the renderers behind ``POST /v1/messages``.

It is not the course's server (that routes to the simulated service); it answers at once with
a reply made from the prompt, so the tests can put the official ``anthropic`` client in front
of exactly what ``anthropic_request`` and ``anthropic_response`` write:

- the answer's text is ``"echo: " + prompt``, the thinking ``"thinking about: " + prompt``;
- a prompt ``"status N"`` gets that HTTP error in Anthropic's shape (a 429 with
  ``retry-after: 1``), a streamed prompt ``"fail mid-stream"`` an ``error`` event after its
  first events, and ``"answer garbage"`` a 200 whose body is no ``Message``.

It runs on a loop of its own in a thread, so clients on other loops (``run``, ``asyncio.run``)
and blocking clients reach it, and it stops leaving no thread or socket behind.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

from aiohttp import web

from pocket_parallel.server.anthropic_errors import AnthropicApiError, overloaded, rate_limited
from pocket_parallel.server.anthropic_request import MessagesRequest, parse_messages_request
from pocket_parallel.server.anthropic_response import (
    MessageReply,
    cut_at_stop_sequence,
    error_event,
    message_events,
    message_id,
    render_message,
)
from pocket_parallel.service.model import estimate_tokens

SCRIPTED = {
    401: lambda: AnthropicApiError(401, "invalid x-api-key"),
    403: lambda: AnthropicApiError(403, "Your API key does not have permission to use the specified resource."),
    404: lambda: AnthropicApiError(404, "model: no-such-model"),
    429: lambda: rate_limited("Number of request tokens has exceeded your per-minute rate limit.", 0.2),
    500: lambda: AnthropicApiError(500, "Internal server error"),
    529: overloaded,
}


def reply_to(request: MessagesRequest) -> MessageReply:
    """The reply this test server gives: an echo of the prompt, thinking first when asked for."""
    text, met = cut_at_stop_sequence("echo: " + request.prompt, request.stop_sequences)
    thinking = None
    if request.thinking is not None:
        thinking = "" if request.thinking.omitted else "thinking about: " + request.prompt
    output = estimate_tokens(text) + estimate_tokens(thinking or "")
    stop = "stop_sequence" if met else ("max_tokens" if output > request.max_tokens else "end_turn")
    return MessageReply(text, estimate_tokens(request.input_text), output, stop, thinking, met)


class MessagesServer:
    """``with MessagesServer() as server:``, then point a client at ``server.url``.

    ``server.received`` holds each request answered (not refused), ``server.hits`` counts every request,
    ``server.credentials`` the ``x-api-key`` or ``authorization`` header of each.
    """

    def __init__(self) -> None:
        self.received: list[MessagesRequest] = []
        self.hits = 0
        self.credentials: list[str] = []
        self.url = ""
        self._numbers = itertools.count(1)
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
        number = next(self._numbers)
        self.hits = number
        self.credentials.append(http.headers.get("x-api-key") or http.headers.get("authorization") or "")
        headers = {"request-id": f"req_{number}"}
        try:
            request = parse_messages_request(await http.read())
            status = int(request.prompt[len("status "):]) if request.prompt.startswith("status ") else None
            if status is not None:
                raise SCRIPTED[status]()
        except AnthropicApiError as error:
            error.request_id = f"req_{number}"
            return web.json_response(error.body(), status=error.status, headers={**headers, **error.headers})
        self.received.append(request)
        if request.prompt == "answer garbage":
            return web.json_response({"content": 5}, headers=headers)
        reply, model, id = reply_to(request), request.model, message_id(number)
        if not request.stream:
            return web.json_response(render_message(reply, model=model, id=id), headers=headers)
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(http)
        for index, event in enumerate(message_events(reply, model=model, id=id)):
            if index == 3 and request.prompt == "fail mid-stream":
                await response.write(error_event("overloaded_error", "Overloaded").encode())
                break
            await response.write(event.encode())
        await response.write_eof()
        return response
