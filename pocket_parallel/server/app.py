"""The HTTP routes, on ``aiohttp.web``: OpenAI's Chat Completions API and Anthropic's Messages API over a :class:`ChatService`.

- ``POST /v1/chat/completions``: a ``chat.completion`` (or, with ``"stream": true``, its
  server-sent ``chat.completion.chunk`` events, each token at its time), or an OpenAI-style
  error (:mod:`.openai_responses` renders both).
- ``POST /v1/messages``: a ``Message`` (or, with ``"stream": true``, Anthropic's server-sent
  events, each token at its time), or an error in Anthropic's shape
  (:mod:`.anthropic_request` reads the request, :mod:`.anthropic_response` and
  :mod:`.anthropic_errors` write the answers). Every response carries the
  ``anthropic-ratelimit-*`` headers and a ``request-id``; a 429 says ``retry-after`` in whole
  seconds, or ``x-should-retry: false`` for a request larger than the limit itself.
- ``GET /v1/models``: the one model served.
- ``GET /stats``: the counters (:class:`~pocket_parallel.server.stats.ServerStats`), the
  settings and the limits; ``POST /stats/reset`` zeroes the counters (never the limits).
- ``POST /admin/reset``: zeroes the counters and refills the limits, with the admin token only.

Every request passes the :class:`~pocket_parallel.server.guard.RequestGuard` first and the
connection deadlines of :mod:`~pocket_parallel.server.connections`; every error, whoever
raises it, is rendered in its route's shape (Anthropic's under ``/v1/messages``, OpenAI's elsewhere).

Every response of the completions route, refused or not, carries the ``x-ratelimit-*``
headers of the per-minute limits that are set. Any other path gets a 404 and any other
method a 405, both as JSON (in Anthropic's shape under ``/v1/messages``, OpenAI's
elsewhere); no request, however malformed, stops the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ..service.headers import anthropic_rate_headers, openai_rate_headers
from ..service.provider import Overloaded, Refused
from ..service.quota import LimitStates
from . import anthropic_errors as anthropic
from . import openai_responses as openai
from .anthropic_request import parse_messages_request
from .anthropic_response import MessageReply, StreamEvent, message_events, message_id, render_message
from .chat_request import ChatRequest, parse_chat_request
from .connections import whole_request
from .errors import ApiError
from .guard import RequestGuard
from .service import Busy, ChatService, Faulted, ServiceCall

SERVICE = web.AppKey("service", ChatService)
#: Where Anthropic's Messages API is served: errors under it take Anthropic's shape.
MESSAGES_PATH = "/v1/messages"
# The id of the request being answered, as Anthropic's errors quote it.
REQUEST_ID = web.RequestKey("request_id", str)
REQUEST_NUMBER = web.RequestKey("request_number", int)
GUARD = web.AppKey("guard", RequestGuard)
# The handler tasks answering a completion right now, and the numbers of the responses.
ACTIVE: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("active", set)
NUMBERS: web.AppKey[itertools.count[int]] = web.AppKey("numbers", itertools.count)
#: Largest request body accepted (bytes); a larger one gets a 413.
MAX_BODY = 1024 * 1024
_log = logging.getLogger(__name__)


def make_app(service: ChatService, guard: RequestGuard | None = None) -> web.Application:
    """The aiohttp application serving ``service``, behind ``guard`` (a loopback-only one if None)."""
    guard = guard or RequestGuard(service.settings.host)
    app = web.Application(middlewares=[_errors_as_json, guard.middleware(), whole_request], client_max_size=MAX_BODY)
    app[GUARD] = guard
    active: set[asyncio.Task[Any]] = set()
    numbers: itertools.count[int] = itertools.count(1)
    app[SERVICE] = service
    app[ACTIVE] = active
    app[NUMBERS] = numbers
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post(MESSAGES_PATH, _messages)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/stats", _stats)
    app.router.add_post("/stats/reset", _reset)
    app.router.add_post("/admin/reset", _admin_reset)
    app.router.add_get("/", _index)
    return app


async def cancel_active(app: web.Application) -> None:
    """Cancel every request still being answered (stalled ones included) and wait until they end."""
    running = app[ACTIVE]
    active = set(running)
    for task in active:
        task.cancel()
    if active:
        await asyncio.wait(active, timeout=5.0)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _error(error: ApiError, request: web.Request | None = None) -> web.Response:
    if request is not None and f"{request.path}/".startswith(f"{MESSAGES_PATH}/"):  # each API's errors in its shape
        error = anthropic.AnthropicApiError.from_error(error, request.get(REQUEST_ID))
    return _json(error.body(), error.status, error.headers)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method == "POST" and request.path == MESSAGES_PATH:  # numbered first: even a 413 quotes its id
        numbers = request.app[NUMBERS]
        number = next(numbers)
        request[REQUEST_NUMBER], request[REQUEST_ID] = number, f"req_{number}"
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as error:
        return _error(error, request)
    except web.HTTPException as error:  # raised by aiohttp itself: no route, wrong method, body too large
        if error.status < 400:
            raise
        message = {
            404: f"Invalid URL ({request.method} {request.path}): this server serves POST /v1/chat/completions, "
                 "POST /v1/messages, GET /v1/models, GET /stats, POST /stats/reset and POST /admin/reset.",
            405: f"Method {request.method} is not allowed on {request.path}.",
            413: f"Request body too large: at most {MAX_BODY} bytes.",
        }.get(error.status, error.reason)
        code = {404: "unknown_url", 405: "method_not_allowed", 413: "request_too_large"}.get(error.status)
        return _error(ApiError(error.status, message, code=code), request)
    except Exception:  # a bug of ours must not take the server down: answer 500 and keep serving
        _log.exception("unexpected error answering %s %s", request.method, request.path)
        return _error(ApiError(500, "The server had an unexpected error.", type="server_error"), request)


def _answering(request: web.Request) -> asyncio.Task[Any]:
    """The handler's task, now among those being answered (:func:`cancel_active` ends them); discard it when done."""
    task = asyncio.current_task()
    assert task is not None  # aiohttp runs every handler in a task
    request.app[ACTIVE].add(task)
    return task


async def _chat(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    numbers = request.app[NUMBERS]
    number = next(numbers)
    try:
        chat = parse_chat_request(await request.read())
    except ApiError as error:
        service.stats.bad_requests += 1
        error.headers.update(openai_rate_headers(service.limits()))
        raise
    task = _answering(request)
    try:
        async with service.call(chat.service_request()) as call:
            headers = {**openai_rate_headers(call.limits), "x-request-id": f"req_{number}"}
            if chat.stream:
                return await _stream(request, chat, call, number, headers)
            await call.finish()
            return _json(openai.completion(chat, call, number), headers=headers)
    except Refused as refused:
        raise openai.refused_error(refused) from None
    except Overloaded as overloaded:
        raise openai.overloaded_error(overloaded) from None
    except Faulted as faulted:
        raise openai.faulted_error(faulted) from None
    finally:
        request.app[ACTIVE].discard(task)


async def _stream(request: web.Request, chat: ChatRequest, call: ServiceCall, number: int,
                  headers: dict[str, str]) -> web.StreamResponse:
    """The answer as OpenAI's server-sent events, each token at its time: a role chunk with the first
    token, then one content chunk per token, a finish chunk, the usage if asked, and ``[DONE]``."""
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    async def send(event: Any) -> None:
        await response.write(f"data: {json.dumps(event)}\n\n".encode())

    async for piece in call.pieces():
        if not response.prepared:  # headers go out with the first token: a failure before it is still a plain error
            await response.prepare(request)
            await send(openai.chunk(chat, number, {"role": "assistant", "content": ""}))
        if piece.kind == "text":
            await send(openai.chunk(chat, number, {"content": piece.text}))
    if not response.prepared:
        await response.prepare(request)
    await send(openai.chunk(chat, number, {}, call.reply.finish_reason))
    if chat.include_usage:
        await send(openai.usage_chunk(chat, call, number))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _messages(request: web.Request) -> web.StreamResponse:
    """Anthropic's Messages API: a ``Message`` (or its events, each token at its time), or Anthropic's error."""
    service = request.app[SERVICE]
    number = request[REQUEST_NUMBER]
    try:
        messages = parse_messages_request(await request.read())
    except ApiError as error:
        service.stats.bad_requests += 1
        error.headers.update(_anthropic_headers(service))
        raise
    task = _answering(request)
    try:
        async with service.call(messages.service_request()) as call:
            headers = {**_anthropic_headers(service, call.limits), "request-id": request[REQUEST_ID]}
            shown = messages.thinking is None or not messages.thinking.omitted
            reply = MessageReply.of(call.reply, call.input_tokens, show_thinking=shown)
            if messages.stream:
                events = message_events(reply, model=messages.model, id=message_id(number))
                return await _stream_message(request, call, events, shown, headers)
            await call.finish()
            return _json(render_message(reply, model=messages.model, id=message_id(number)), headers=headers)
    except Refused as refused:
        raise anthropic.refused_error(refused, _anthropic_headers(service, refused.limits)) from None
    except Overloaded as overloaded:
        raise anthropic.overloaded(_anthropic_headers(service, overloaded.limits)) from None
    except Faulted as faulted:
        raise anthropic.faulted_error(faulted.status, _anthropic_headers(service, faulted.limits)) from None
    finally:
        request.app[ACTIVE].discard(task)


def _anthropic_headers(service: ChatService, limits: LimitStates | None = None) -> dict[str, str]:
    """The ``anthropic-ratelimit-*`` headers of ``limits`` (default: the limits now)."""
    return anthropic_rate_headers(service.limits() if limits is None else limits, service.moment())


async def _stream_message(request: web.Request, call: ServiceCall, events: Iterator[StreamEvent], shown: bool,
                          headers: dict[str, str]) -> web.StreamResponse:
    """A ``Message`` as Anthropic's server-sent events, each token's event at its time (see :mod:`.anthropic_response`).

    With the thinking's display omitted, its tokens take their time and send nothing.
    """
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    async def send_through_token() -> None:
        for event in events:  # the events before the next token, then the token's own
            await response.write(event.encode())
            if event.token:
                return

    async for piece in call.pieces():
        if not response.prepared:  # headers go out with the first token: a failure before it is still a plain error
            await response.prepare(request)
        if piece.kind == "text" or shown:
            await send_through_token()
    if not response.prepared:
        await response.prepare(request)
    for event in events:
        await response.write(event.encode())
    await response.write_eof()
    return response


async def _models(request: web.Request) -> web.Response:
    name = request.app[SERVICE].settings.model
    return _json({"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "pocket-parallel"}]})


async def _stats(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    quota = service.quota
    return _json({**service.stats.to_json(), "settings": service.settings.to_json(),
                  "limits": {**quota.limits(), "algorithm": quota.algorithm, "quantum": quota.quantum,
                             "slots": service.settings.slots}})


async def _reset(request: web.Request) -> web.Response:
    service = _reset_service(request, refill_limits=False)
    return _json(service.stats.to_json())


async def _admin_reset(request: web.Request) -> web.Response:
    request.app[GUARD].require_admin(request)
    service = _reset_service(request, refill_limits=True)
    return _json({**service.stats.to_json(), "limits": service.quota.limits()})


def _reset_service(request: web.Request, *, refill_limits: bool) -> ChatService:
    service = request.app[SERVICE]
    try:
        service.reset(refill_limits=refill_limits)
    except Busy as busy:
        raise ApiError(409, str(busy), code="requests_in_flight") from None
    return service


async def _index(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return _json({
        "service": "pocket-parallel local LLM server (OpenAI Chat Completions API, Anthropic Messages API)",
        "model": service.settings.model,
        "simulates": service.settings.describe(),
        "endpoints": ["POST /v1/chat/completions", "POST /v1/messages", "GET /v1/models", "GET /stats",
                      "POST /stats/reset", "POST /admin/reset"],
    })
