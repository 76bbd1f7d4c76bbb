"""The HTTP routes, on ``aiohttp.web``: OpenAI's Chat Completions API over a :class:`ChatService`.

- ``POST /v1/chat/completions``: a ``chat.completion`` (or, with ``"stream": true``, its
  server-sent ``chat.completion.chunk`` events), or an OpenAI-style error.
- ``GET /v1/models``: the one model served.
- ``GET /stats``: the counters (:class:`~pocket_parallel.server.stats.ServerStats`), the
  settings and the limits; ``POST /stats/reset`` zeroes the counters (never the limits).
- ``POST /admin/reset``: zeroes the counters and refills the limits, with the admin token only.

Every request passes the :class:`~pocket_parallel.server.guard.RequestGuard` first and the
connection deadlines of :mod:`~pocket_parallel.server.connections`; every error, whoever
raises it, is rendered in its route's shape (:mod:`~pocket_parallel.server.error_shapes`).

Every response of the completions route, refused or not, carries the ``x-ratelimit-*``
headers of the per-minute limits that are set. Any other path gets a 404 and any other
method a 405, both as JSON; no request, however malformed, stops the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from typing import Any

from aiohttp import web

from .chat_request import ChatRequest, parse_chat_request
from .connections import whole_request
from .error_shapes import error_response
from .errors import ApiError
from .guard import RequestGuard
from .service import Answer, ChatService

SERVICE = web.AppKey("service", ChatService)
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


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as error:
        return error_response(request, error)
    except web.HTTPException as error:  # raised by aiohttp itself: no route, wrong method, body too large
        if error.status < 400:
            raise
        message = {
            404: f"Invalid URL ({request.method} {request.path}): this server serves POST /v1/chat/completions, "
                 "GET /v1/models, GET /stats, POST /stats/reset and POST /admin/reset.",
            405: f"Method {request.method} is not allowed on {request.path}.",
            413: f"Request body too large: at most {MAX_BODY} bytes.",
        }.get(error.status, error.reason)
        code = {404: "unknown_url", 405: "method_not_allowed", 413: "request_too_large"}.get(error.status)
        return error_response(request, ApiError(error.status, message, code=code))
    except Exception:  # a bug of ours must not take the server down: answer 500 and keep serving
        _log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(request, ApiError(500, "The server had an unexpected error.", type="server_error"))


async def _chat(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    numbers = request.app[NUMBERS]
    number = next(numbers)
    try:
        chat = parse_chat_request(await request.read())
    except ApiError as error:
        service.stats.bad_requests += 1
        error.headers.update(service.rate_headers())
        raise
    task = asyncio.current_task()
    assert task is not None  # aiohttp runs every handler in a task
    active = request.app[ACTIVE]
    active.add(task)
    try:
        answer = await service.answer(chat)
    finally:
        active.discard(task)
    headers = {**answer.headers, "x-request-id": f"req_{number}"}
    if chat.stream:
        return await _stream(request, chat, answer, number, headers)
    return _json(_completion(chat, answer, number), headers=headers)


def _completion(chat: ChatRequest, answer: Answer, number: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.text, "refusal": None},
            "logprobs": None,
            "finish_reason": answer.finish_reason,
        }],
        "usage": _usage(answer),
    }


def _usage(answer: Answer) -> dict[str, int]:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.total_tokens}


async def _stream(request: web.Request, chat: ChatRequest, answer: Answer, number: int,
                  headers: dict[str, str]) -> web.StreamResponse:
    """The answer as OpenAI's server-sent events: a role chunk, content chunks, a finish chunk, [DONE]."""
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    base = {"id": f"chatcmpl-{number}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": chat.model}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if chat.include_usage:
            body["usage"] = None
        return body

    words = answer.text.split(" ")
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": word if i == 0 else " " + word}) for i, word in enumerate(words)]
    events.append(chunk({}, answer.finish_reason))
    if chat.include_usage:
        events.append({**base, "choices": [], "usage": _usage(answer)})
    for event in events:
        await response.write(f"data: {json.dumps(event)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _models(request: web.Request) -> web.Response:
    name = request.app[SERVICE].settings.model
    return _json({"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "pocket-parallel"}]})


async def _stats(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    settings = service.settings
    model = {name: getattr(settings, name)
             for name in ("latency", "jitter", "seed", "failure_rate", "stall_rate", "overload_rate")}
    return _json({**service.stats.to_json(), "settings": model,
                  "limits": {**service.quota.limits(), "algorithm": service.quota.algorithm}})


async def _reset(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    service.reset(refill_limits=False)
    return _json(service.stats.to_json())


async def _admin_reset(request: web.Request) -> web.Response:
    request.app[GUARD].require_admin(request)
    service = request.app[SERVICE]
    service.reset()
    return _json({**service.stats.to_json(), "limits": service.quota.limits()})


async def _index(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return _json({
        "service": "pocket-parallel local LLM server (OpenAI Chat Completions API)",
        "model": service.settings.model,
        "simulates": service.settings.describe(),
        "endpoints": ["POST /v1/chat/completions", "GET /v1/models", "GET /stats", "POST /stats/reset",
                      "POST /admin/reset"],
    })
