"""Which API's error shape each route answers in: OpenAI's (the default) or Anthropic's.

A client reads an error only in the shape its own API uses: OpenAI's official client
expects ``{"error": {"message", "type", "param", "code"}}`` and Anthropic's expects
``{"type": "error", "error": {"type", "message"}}`` with the error types of Anthropic's
"HTTP errors" page (``invalid_request_error`` for a 400 and any other 4xx it does not
name, ``authentication_error`` 401, ``permission_error`` 403, ``not_found_error`` 404,
``request_too_large`` 413, ``rate_limit_error`` 429, ``api_error`` 500,
``overloaded_error`` 529). So every error the server sends, from a route, from the
request guard or from aiohttp itself (404, 405, 413), is rendered here in the shape the
route asked for with :func:`answer_errors_as`; a path no route claimed gets OpenAI's.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from .errors import ApiError

ErrorShape = Literal["openai", "anthropic"]
ERROR_SHAPES: tuple[ErrorShape, ...] = ("openai", "anthropic")
# Path -> shape, for the routes that do not answer in OpenAI's shape.
_SHAPES: web.AppKey[dict[str, ErrorShape]] = web.AppKey("error_shapes", dict)
_ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
}


def answer_errors_as(app: web.Application, path: str, shape: ErrorShape) -> None:
    """Make every error on ``path`` (a route's exact path, such as ``"/v1/messages"``) use ``shape``."""
    if shape not in ERROR_SHAPES:
        raise ValueError(f"shape must be one of {', '.join(ERROR_SHAPES)}; got {shape!r}")
    if _SHAPES not in app:
        app[_SHAPES] = {}
    app[_SHAPES][path] = shape


def shape_of(request: web.Request) -> ErrorShape:
    """The error shape of the route ``request`` went to (OpenAI's unless the route asked for another)."""
    return request.app.get(_SHAPES, {}).get(request.path, "openai")


def error_body(error: ApiError, shape: ErrorShape) -> dict[str, Any]:
    """``error`` as the JSON body of ``shape``'s API."""
    if shape == "anthropic":
        kind = _ANTHROPIC_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": error.message}}
    return error.body()


def error_response(request: web.Request, error: ApiError) -> web.Response:
    """The response carrying ``error``, in the shape of ``request``'s route, with its headers."""
    return web.json_response(error_body(error, shape_of(request)), status=error.status, headers=error.headers)
