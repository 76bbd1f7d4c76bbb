"""The command line: ``python -m pocket_parallel.server --port 8000 --latency 0.5 --rpm 60``.

Prints the server's URL once it listens, and the admin token that refills its limits over
HTTP (``POST /admin/reset``), serves until Ctrl-C (or SIGTERM), then stops cleanly with
status 0. Web pages other than this machine's own are refused unless ``--allow-origin``
names them (:mod:`~pocket_parallel.server.guard`). A bad flag prints the usage line and a message naming the flag, and
exits with status 2; an address that cannot be listened on exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from .. import _arguments as arg
from ..service.quota import ALGORITHMS
from .guard import check_origin
from .local import LocalServer
from .settings import DEFAULT_MODEL, LOOPBACK, ServerSettings

#: The flag that sets each setting, for error messages that name what the user typed.
FLAGS = {
    "latency": "--latency", "jitter": "--jitter", "seed": "--seed", "failure_rate": "--failure-rate",
    "stall_rate": "--stall-rate", "overload_rate": "--overload-rate", "max_concurrent": "--max-concurrent",
    "requests_per_minute": "--rpm", "tokens_per_minute": "--tpm", "algorithm": "--algorithm",
    "host": "--host", "port": "--port", "model": "--model",
}


def parser() -> argparse.ArgumentParser:
    """The argument parser, with every limit and fault as a flag."""
    p = argparse.ArgumentParser(
        prog="python -m pocket_parallel.server",
        description="A local LLM server speaking OpenAI's Chat Completions API, simulating the course's "
                    "seeded service with provider-style limits and faults.",
    )
    add = p.add_argument
    add("--host", default=LOOPBACK, help=f"address to listen on (default {LOOPBACK}: this machine only)")
    add("--port", type=arg.port(), default=8000, help="port to listen on; 0 picks a free one (default 8000)")
    add("--latency", type=arg.latency(), default=0.5, help="mean seconds per call, 0.000001-86400 (default 0.5)")
    add("--jitter", type=arg.number("--jitter", low=0.0, high=3.0), default=0.0, help="spread of the latency (coefficient of variation), in [0, 3]")
    add("--seed", type=arg.seed(), default=0, help="seed of every latency, fault and answer, >= 0 (default 0)")
    add("--failure-rate", type=arg.probability("--failure-rate"), default=0.0, help="share of calls failing with a 500 or 503 after their latency, in [0, 1)")
    add("--stall-rate", type=arg.probability("--stall-rate"), default=0.0, help="share of calls accepted and never answered, in [0, 1)")
    add("--overload-rate", type=arg.probability("--overload-rate"), default=0.0, help="share of calls turned away at once with a 529, in [0, 1)")
    add("--max-concurrent", type=arg.limit("--max-concurrent", high=arg.MAX_IN_FLIGHT), default=None, help="most calls in flight, or none (default none)")
    add("--rpm", type=arg.limit("--rpm"), default=None, help="requests per minute, or none (default none)")
    add("--tpm", type=arg.limit("--tpm"), default=None, help="tokens per minute (prompt plus answer), or none (default none)")
    add("--algorithm", choices=ALGORITHMS, default="token_bucket",
        help="how per-minute limits are counted (default token_bucket, refilled continuously)")
    add("--model", default=DEFAULT_MODEL, help=f"model name the server answers as (default {DEFAULT_MODEL})")
    add("--allow-origin", dest="allow_origins", metavar="ORIGIN", action="append", default=[], type=_origin,
        help="also serve requests from the web page at ORIGIN (e.g. http://192.168.1.5:8888; '*' for any); "
             "repeat for more. Default: this machine's own pages only, as Ollama does")
    return p


def _origin(text: str) -> str:
    try:
        return check_origin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("allow_origin must be", "must be")) from None


def settings_from(argv: Sequence[str] | None, p: argparse.ArgumentParser) -> ServerSettings:
    """The settings the flags ask for; a bad value exits with status 2 and names its flag."""
    args = p.parse_args(argv)
    values = dict(
        latency=args.latency, jitter=args.jitter, seed=args.seed, failure_rate=args.failure_rate,
        stall_rate=args.stall_rate, overload_rate=args.overload_rate, max_concurrent=args.max_concurrent,
        requests_per_minute=args.rpm, tokens_per_minute=args.tpm, algorithm=args.algorithm,
        host=args.host, port=args.port, model=args.model,
    )
    try:
        return ServerSettings(**values)
    except (TypeError, ValueError) as error:
        message = str(error)
        for name, flag in sorted(FLAGS.items(), key=lambda item: -len(item[0])):
            if message.startswith(name + " ") or message.startswith(name + ":"):
                message = flag + message[len(name):]
                break
        p.error(message)
        raise  # pragma: no cover - p.error exits


async def serve(settings: ServerSettings, out: TextIO = sys.stdout, allow_origins: Sequence[str] = ()) -> None:
    """Serve until SIGINT or SIGTERM, announcing the URL and the admin token once listening."""
    server = LocalServer(
        settings.latency, settings.jitter, settings.seed, settings.failure_rate,
        stall_rate=settings.stall_rate, overload_rate=settings.overload_rate,
        max_concurrent=settings.max_concurrent, requests_per_minute=settings.requests_per_minute,
        tokens_per_minute=settings.tokens_per_minute, algorithm=settings.algorithm,
        host=settings.host, port=settings.port, model=settings.model, allow_origins=allow_origins,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread: Ctrl-C still raises
            pass
    async with server:
        print(f"pocket-parallel LLM server listening at {server.url}", file=out)
        print(f"  OpenAI base URL: {server.base_url}   counters: {server.url}/stats", file=out)
        print(f"  simulating: {settings.describe()}", file=out)
        print(f"  admin token: {server.admin_token}  (POST /admin/reset with 'Authorization: Bearer <token>' "
              "zeroes the counters and refills the limits)", file=out)
        print("  Ctrl-C stops it.", file=out, flush=True)
        await stop.wait()
        stats = server.stats()
    print(f"stopped after {stats.requests} requests ({stats.ok} answered, {stats.rate_limited} rate-limited)",
          file=out, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server from the command line; returns the exit status."""
    p = parser()
    settings = settings_from(argv, p)
    try:
        asyncio.run(serve(settings, allow_origins=p.parse_args(argv).allow_origins))
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
