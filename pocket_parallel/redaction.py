"""No secret in any text the library produces, and no text that fails to be produced.

An API key travels in a request's headers (``Authorization: Bearer sk-...``, ``x-api-key``)
and sometimes in its URL (``http://user:KEY@host/v1``, ``?key=...``). HTTP libraries put
both into their errors: aiohttp's errors carry the request's headers in their ``repr``, and
a URL prints with its password. So every backend passes what it shows through here:

- :func:`redact` masks, in any text, the secrets it is given (the key itself, wherever it
  appears) and whatever looks like a credential: a URL's user and password, a ``Bearer``
  token, the value of an ``Authorization``, ``x-api-key`` or ``api-key`` header, and the
  ``key``, ``api_key``, ``token`` or ``password`` of a query string;
- :func:`redact_url` is the same for a URL about to be shown;
- :func:`clean_error` makes an exception safe to raise: its message masked and its chain of
  causes (the transport's own errors, headers and all) cut off; an error that cannot be
  cleaned in place becomes a :class:`TransportError` saying what happened, masked.

And since a value's ``repr`` is its author's code, :func:`safe_repr` and :func:`safe_str`
never raise: when they fail, the message that shows the value must still say what really
went wrong. Every pattern here is linear in the length of the text, whatever the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

#: What a secret becomes.
MASK = "***"
# Shorter "secrets" would mask ordinary words: keys are long.
_MIN_SECRET = 6
# After "scheme://", the characters of a URL's authority up to "@" (user info) or its end.
_USER_INFO = re.compile(r"[^/\s@?#'\"<>\\]*@")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+")
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key)(['\"]?\s{0,3}[:=]\s{0,3}['\"]?)"
    r"(?:(?:bearer|basic|token)\s+)?[^\s'\",;]+"
)
_QUERY = re.compile(r"(?i)([?&](?:api[_-]?key|key|access[_-]?token|token|secret|password|sig|signature)=)[^&\s'\"#]+")


class TransportError(ConnectionError):
    """A call failed on its way through the HTTP transport (a connection reset, a broken response...).

    Its message names the transport's error and says what it said, with every credential
    masked; the transport's error itself, which may carry the request's headers, is not kept.
    """


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with each of ``secrets`` and everything that looks like a credential replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            text = text.replace(secret, MASK)
    text = _mask_user_info(text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _QUERY.sub(lambda m: f"{m.group(1)}{MASK}", text)


def redact_url(url: str) -> str:
    """``url`` as it may be shown: ``http://user:KEY@host/v1?key=K`` becomes ``http://***@host/v1?key=***``."""
    return redact(url)


def url_secrets(url: str) -> tuple[str, ...]:
    """The user and password written into ``url``, to be masked wherever else they appear."""
    found = []
    start = url.find("://")
    if start != -1:
        info = _USER_INFO.match(url, start + 3)
        if info is not None:
            user, _, password = info.group()[:-1].partition(":")
            found = [part for part in (password, user) if part]
    return tuple(found)


def clean_error(error: BaseException, secrets: Iterable[str | None] = (), *,
                keep: tuple[type[BaseException], ...] = ()) -> BaseException:
    """``error``, safe to raise and show: no secret in its ``str`` or ``repr``, no chain of causes behind it.

    An error of one of the ``keep`` types (a client library's own errors, which callers catch
    and which carry the response, such as ``openai.RateLimitError``) keeps its class: its
    message is masked in place and its causes are dropped. Any other error becomes a
    :class:`TransportError` whose message names it and says what it said, masked. Raise the
    result outside the ``except`` block that caught ``error``, so that Python does not link
    the two again.
    """
    known = tuple(secret for secret in secrets if secret)
    if isinstance(error, keep):
        error.args = _redacted(error.args, known)
        for name in ("message", "body"):  # a client's error keeps the provider's answer there
            if hasattr(error, name):
                setattr(error, name, _redacted(getattr(error, name), known))
        cleaned = error
    else:
        cleaned = TransportError(f"{type(error).__name__}: {redact(safe_str(error), known)}")
    cleaned.__cause__ = cleaned.__context__ = None
    cleaned.__suppress_context__ = True  # whatever is being handled where it is raised is not its cause
    return cleaned


def _redacted(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    """``value`` with every string in it redacted, through lists, tuples and dicts (a JSON body, say)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if depth > 20:
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_redacted(item, secrets, depth + 1) for item in value)
    if isinstance(value, dict):
        return {key: _redacted(item, secrets, depth + 1) for key, item in value.items()}
    return value


def safe_repr(value: Any, width: int | None = None) -> str:
    """``repr(value)``, cut to ``width`` characters if given; a stand-in naming its type if that repr raises."""
    text = _text(value, repr)
    return text if width is None or len(text) <= width else text[: width - 3] + "..."


def safe_str(value: Any) -> str:
    """``str(value)``, or a stand-in naming its type if that raises."""
    return _text(value, str)


def _text(value: Any, convert: Callable[[Any], str]) -> str:
    try:
        return convert(value)  # repr() and str() themselves refuse a __repr__ or __str__ that returns no str
    except Exception as error:
        return f"<{type(value).__qualname__} object, whose {convert.__name__} raised {type(error).__name__}>"


def _mask_user_info(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` as ``scheme://***@``."""
    pieces: list[str] = []
    done = 0
    at = text.find("://")
    while at != -1:
        start = at + 3
        info = _USER_INFO.match(text, start)
        if info is not None:
            pieces += [text[done:start], MASK]
            done = info.end() - 1  # keep the "@"
        at = text.find("://", start)
    return "".join(pieces) + text[done:] if pieces else text


__all__ = ["MASK", "TransportError", "clean_error", "redact", "redact_url", "safe_repr", "safe_str", "url_secrets"]
