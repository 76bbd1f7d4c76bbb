"""Who may use the server: the learner's own programs, not a web page that happens to be open.

A server on loopback is still reachable from every page the learner's browser shows: a page
can send requests to ``http://127.0.0.1:8000`` (a form, or ``fetch`` with a simple content
type needs no permission), and a page whose name is made to resolve to 127.0.0.1 (DNS
rebinding) can even read the answers. So every request passes these checks first, on every
route, as Ollama and Jupyter check theirs:

- **Origin.** A browser names the page that sent a request in its ``Origin`` header. Requests
  with an ``Origin`` are served only from this machine's own pages (http or https on
  ``localhost``, ``127.0.0.1``, ``[::1]`` or ``0.0.0.0``, any port: Ollama's default list)
  and from the origins given with ``--allow-origin``; those also get the CORS headers a
  browser needs to read the answer. Programs (Python, curl) send no ``Origin``.
- **Host.** The ``Host`` header must name a loopback address or the ``--host`` the server
  listens on; a rebound name (``evil.example:8000``) is refused. Listening on every interface
  (``0.0.0.0`` or ``::``), the server cannot tell which names are its own, so it does not
  check ``Host`` and warns at start.
- **Content type.** A POST with a body must declare ``Content-Type: application/json``: the
  types a page may send without asking (``text/plain``, forms) are refused with a 415. A POST
  with no body (``/stats/reset``) needs no type.
- **Admin token.** Refilling the rate limits (``POST /admin/reset``) takes the token the
  server makes at start and prints, as Jupyter prints its own, sent as
  ``Authorization: Bearer <token>``. ``POST /stats/reset`` zeroes the counters only.

A refused request gets a 403, 415 or 401 in its route's error shape
(OpenAI's, or Anthropic's under ``/v1/messages``), and nothing else happens.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .errors import ApiError

#: The names this machine's own pages and programs use for it.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
#: ``--host`` values that listen on every interface: then ``Host`` cannot be checked.
EVERY_INTERFACE = frozenset({"0.0.0.0", "::", ""})
_BEARER = "bearer "
_CORS_HEADERS = {"Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Max-Age": "600"}
_log = logging.getLogger(__name__)


def check_origin(origin: Any) -> str:
    """An origin for ``--allow-origin``: ``scheme://host[:port]`` (lower case, no path), or ``*`` for any."""
    if origin == "*":
        return "*"
    text = origin.strip().lower().rstrip("/") if isinstance(origin, str) else ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if not parts.scheme or not parts.hostname or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"allow_origin must be an origin such as 'http://192.168.1.5:8888' (scheme, host and "
                         f"port, no path), or '*' for any; got {origin!r}")
    return text


class RequestGuard:
    """The checks every request passes (see the module's text), for one server.

    ``host`` is the address the server listens on; ``allow_origins`` the origins served besides
    this machine's own pages; ``admin_token`` the token that refills limits (made at random
    when None). Its ``repr`` never shows the token.
    """

    def __init__(self, host: str, allow_origins: Iterable[str] = (), admin_token: str | None = None) -> None:
        self.host = host
        self.allow_origins = tuple(dict.fromkeys(check_origin(origin) for origin in allow_origins))
        self.checks_host = host.strip("[]") not in EVERY_INTERFACE
        self.__admin_token = admin_token or secrets.token_urlsafe(24)

    def __repr__(self) -> str:
        origins = ", ".join(self.allow_origins) or "none"
        return f"RequestGuard(host={self.host!r}, extra origins: {origins}; admin token set)"

    @property
    def admin_token(self) -> str:
        """The token that ``POST /admin/reset`` needs, sent as ``Authorization: Bearer <token>``."""
        return self.__admin_token

    def origin_allowed(self, origin: str) -> bool:
        """Whether a request whose ``Origin`` header is ``origin`` may be served."""
        if "*" in self.allow_origins:
            return True
        try:
            parts = urlsplit(origin.strip().lower())
            hostname = parts.hostname
        except ValueError:
            return False
        if parts.scheme in ("http", "https") and hostname in LOOPBACK_NAMES and not parts.path:
            return True
        return origin.strip().lower().rstrip("/") in self.allow_origins

    def host_allowed(self, host: str) -> bool:
        """Whether a ``Host`` header naming ``host`` (with or without a port) names this server."""
        if not self.checks_host:
            return True
        name = _hostname(host)
        return name in LOOPBACK_NAMES or _is_loopback_address(name) or name == self.host.strip("[]").lower()

    def require_admin(self, request: web.Request) -> None:
        """Refuse (401) a request that does not carry the admin token."""
        sent = request.headers.get("Authorization", "")
        token = sent[len(_BEARER):].strip() if sent[: len(_BEARER)].lower() == _BEARER else ""
        if not hmac.compare_digest(token.encode(), self.__admin_token.encode()):
            raise ApiError(401, "This route needs the admin token the server printed when it started (or "
                           "LocalServer.admin_token), sent as 'Authorization: Bearer <token>'.",
                           type="authentication_error", code="invalid_admin_token")

    def middleware(self) -> Any:
        """The aiohttp middleware that runs the checks before any route (and answers CORS preflights)."""

        @web.middleware
        async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
            origin = request.headers.get("Origin")
            if origin is not None and not self.origin_allowed(origin):
                raise ApiError(403, f"Requests from the web page at {_clip(origin)} are refused: this server serves "
                               "programs on this machine and its own pages. Start it with --allow-origin "
                               f"{_clip(origin)} to serve that page.", type="permission_error",
                               code="origin_not_allowed")
            host = request.headers.get("Host")
            if host is not None and not self.host_allowed(host):
                raise ApiError(403, f"Requests for the host {_clip(host)} are refused: this server answers to "
                               f"localhost, 127.0.0.1 and {self.host}.", type="permission_error",
                               code="host_not_allowed")
            cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin is not None else {}
            if request.method == "OPTIONS" and origin is not None:
                asked = request.headers.get("Access-Control-Request-Headers", "")
                return web.Response(status=204, headers={**cors, **_CORS_HEADERS,
                                                         "Access-Control-Allow-Headers": asked[:1000]})
            if request.method == "POST" and request.body_exists and request.content_type != "application/json":
                raise ApiError(415, f"A POST with a body must be JSON, sent with 'Content-Type: application/json'; "
                               f"got {_clip(request.headers.get('Content-Type', 'no Content-Type'))}.",
                               code="unsupported_media_type", headers=cors)
            try:
                response: web.StreamResponse = await handler(request)
            except ApiError as error:
                error.headers.update(cors)
                raise
            response.headers.update(cors)
            return response

        return guard

    def warn_if_unchecked(self) -> None:
        """Log a warning when the server listens on every interface (then ``Host`` goes unchecked)."""
        if not self.checks_host:
            _log.warning("listening on every network interface (%s): any machine that reaches this one can use the "
                         "server, and the Host header is not checked; use --host 127.0.0.1 to serve this machine only",
                         self.host or "0.0.0.0")


def _hostname(host: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8000`` gives ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _is_loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _clip(text: str, width: int = 80) -> str:
    """A header value as a message shows it: quoted, at most ``width`` characters."""
    return repr(text if len(text) <= width else text[: width - 3] + "...")
