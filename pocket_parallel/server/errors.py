"""The errors the server answers with, in the body shape OpenAI's API uses.

Every error response is ``{"error": {"message", "type", "param", "code"}}``, so an official
client raises its usual exception (``BadRequestError``, ``RateLimitError``...) with the
message intact.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error response: status, OpenAI-style body fields, and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    """A 400 naming the parameter at fault."""
    return ApiError(400, message, param=param, code=code)
