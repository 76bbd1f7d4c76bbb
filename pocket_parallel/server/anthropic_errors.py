"""The errors of the Messages API route, in the body shape Anthropic's API answers with.

Every error response of Anthropic's API is ``{"type": "error", "error": {"type", "message"},
"request_id"}``, and the error type follows the HTTP status as Anthropic's documentation
("Errors") lists it: 400 ``invalid_request_error``, 401 ``authentication_error``, 402
``billing_error``, 403 ``permission_error``, 404 ``not_found_error``, 413
``request_too_large``, 429 ``rate_limit_error``, 500 ``api_error``, 504 ``timeout_error`` and
529 ``overloaded_error``. A 429 carries ``retry-after``, in whole seconds.

:class:`AnthropicApiError` is an :class:`~pocket_parallel.server.errors.ApiError` whose
:meth:`~AnthropicApiError.body` has that shape, so the server's error handling answers it as
it answers any other; :meth:`AnthropicApiError.from_error` re-words any other
:class:`~pocket_parallel.server.errors.ApiError` (a 404, say) in this shape, and
:func:`refused_error`, :func:`overloaded` and :func:`faulted_error` word the simulated
service's refusals and faults (429, 529, 500 and 503). The official ``anthropic`` client then
raises its usual class (``BadRequestError``, ``RateLimitError``, ``OverloadedError``...) with
the message intact.
"""

from __future__ import annotations

import math
from typing import Any

from ..service.headers import DO_NOT_RETRY, retry_after_headers
from ..service.provider import Refused
from .errors import ApiError

#: Anthropic's error type for each HTTP status it documents.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """Anthropic's error type for an HTTP status: the documented one, else by class (4xx a bad request, 5xx the API's)."""
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


class AnthropicApiError(ApiError):
    """An HTTP error answered in Anthropic's shape: status, message, extra headers and the request's id."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(status, message, type=error_type_for(status), headers=headers)
        self.request_id = request_id

    @classmethod
    def from_error(cls, error: ApiError, request_id: str | None = None) -> AnthropicApiError:
        """The same error (status, message, headers) in Anthropic's shape, quoting ``request_id`` if given.

        The id goes in the body and in a ``request-id`` header, where the official client reads it.
        """
        if request_id is None and isinstance(error, AnthropicApiError):
            return error
        headers = error.headers if request_id is None else {**error.headers, "request-id": request_id}
        return cls(error.status, error.message, headers=headers, request_id=request_id)

    def body(self) -> dict[str, Any]:
        """``{"type": "error", "error": {"type", "message"}, "request_id"}`` (the id only when known)."""
        body: dict[str, Any] = {"type": "error", "error": {"type": self.type, "message": self.message}}
        if self.request_id is not None:
            body["request_id"] = self.request_id
        return body


def invalid_request(message: str) -> AnthropicApiError:
    """A 400 ``invalid_request_error``: the message names the parameter at fault and what it accepts."""
    return AnthropicApiError(400, message)


def rate_limited(message: str, retry_after: float | None, headers: dict[str, str] | None = None) -> AnthropicApiError:
    """A 429 ``rate_limit_error``; ``retry_after`` seconds (rounded up, as the header holds whole seconds), if known.

    ``retry_after=None`` (waiting would not help, e.g. a request larger than a whole minute's
    budget) sends ``x-should-retry: false`` instead, which the official clients obey.
    """
    extra = dict(headers or {})
    if retry_after is None or math.isinf(retry_after):
        extra.update(DO_NOT_RETRY)
    else:  # Anthropic sends retry-after alone, in whole seconds: no retry-after-ms
        extra["retry-after"] = retry_after_headers(retry_after)["retry-after"]
    return AnthropicApiError(429, message, headers=extra)


def refused_error(refused: Refused, headers: dict[str, str]) -> AnthropicApiError:
    """A 429 for a limit of the simulated service that refused the request, naming the limit."""
    refusal = refused.refusal
    if refusal.too_large:
        return rate_limited(refusal.message, None, headers)
    seconds = retry_after_headers(refusal.retry_after)["retry-after"]
    return rate_limited(f"Rate limit reached for {refusal.describe()}. Please retry after {seconds} s "
                        "(the retry-after header).", refusal.retry_after, headers)


def overloaded(headers: dict[str, str] | None = None) -> AnthropicApiError:
    """A 529 ``overloaded_error``: the API is busy for everyone, not over this account's limits."""
    return AnthropicApiError(529, "Overloaded", headers=headers)


def faulted_error(status: int, headers: dict[str, str]) -> AnthropicApiError:
    """A transient 500 or 503 of the simulated service after the request's time: retrying may succeed."""
    message = "Internal server error" if status == 500 else "Service unavailable"
    return AnthropicApiError(status, f"{message}. Retrying may succeed.", headers=headers)


__all__ = ["AnthropicApiError", "ERROR_TYPES", "error_type_for", "faulted_error", "invalid_request", "overloaded",
           "rate_limited", "refused_error"]
