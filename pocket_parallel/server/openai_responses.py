"""OpenAI's Chat Completions shapes, rendered from what the API-neutral service returns.

- :func:`completion`: a ``chat.completion`` body; :func:`chunk` and :func:`usage_chunk`: the
  ``chat.completion.chunk`` events of a stream; :func:`usage`: the ``usage`` object.
- :func:`refused_error`, :func:`overloaded_error`, :func:`faulted_error`: the service's
  refusals and faults as :class:`~pocket_parallel.server.errors.ApiError` (OpenAI's error body),
  each with the six ``x-ratelimit-*`` headers of the limits that are set. A 429 says when to
  come back (``retry-after``, ``retry-after-ms``); a request that can never fit says
  ``x-should-retry: false`` instead, and its message starts "Request too large", as OpenAI's does.
"""

from __future__ import annotations

import time
from typing import Any

from ..service.headers import DO_NOT_RETRY, openai_rate_headers, retry_after_headers
from ..service.provider import Overloaded, Refused
from .chat_request import ChatRequest
from .errors import ApiError
from .service import Faulted, ServiceCall

# OpenAI's error "type" for a 429: which kind of limit was reached.
_RATE_LIMIT_TYPES = {"max_concurrent": "requests", "requests_per_minute": "requests"}


def usage(call: ServiceCall) -> dict[str, int]:
    """The ``usage`` object: input tokens (every message), output tokens, and both."""
    prompt, completion_tokens = call.input_tokens, call.reply.output_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def completion(chat: ChatRequest, call: ServiceCall, number: int) -> dict[str, Any]:
    """The ``chat.completion`` body of a finished call."""
    reply = call.reply
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text, "refusal": None},
            "logprobs": None,
            "finish_reason": reply.finish_reason,
        }],
        "usage": usage(call),
    }


def chunk(chat: ChatRequest, number: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` event (with ``"usage": null`` when the request asked for usage)."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{number}", "object": "chat.completion.chunk", "created": int(time.time()), "model": chat.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if chat.include_usage:
        body["usage"] = None
    return body


def usage_chunk(chat: ChatRequest, call: ServiceCall, number: int) -> dict[str, Any]:
    """The last event of a stream with ``stream_options.include_usage``: no choices, the usage."""
    return {"id": f"chatcmpl-{number}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": chat.model, "choices": [], "usage": usage(call)}


def refused_error(refused: Refused) -> ApiError:
    """A 429 for a limit that refused the request, in OpenAI's words and headers."""
    refusal = refused.refusal
    headers = openai_rate_headers(refused.limits)
    headers.update(DO_NOT_RETRY if refusal.too_large else retry_after_headers(refusal.retry_after))
    return ApiError(429, refusal.message, type=_RATE_LIMIT_TYPES.get(refusal.limit, "tokens"),
                    code="rate_limit_exceeded", headers=headers)


def overloaded_error(overloaded: Overloaded) -> ApiError:
    """A 529: the service turned the request away at once as overloaded."""
    return ApiError(529, "The service is overloaded. Please retry after a brief wait.", type="overloaded_error",
                    code="overloaded", headers=openai_rate_headers(overloaded.limits))


def faulted_error(faulted: Faulted) -> ApiError:
    """A 500 or 503: the request failed after its time; retrying may succeed."""
    message = ("The server had an error while processing your request." if faulted.status == 500
               else "The service is temporarily unavailable.")
    return ApiError(faulted.status, message + " Retrying may succeed.", type="server_error",
                    headers=openai_rate_headers(faulted.limits))
