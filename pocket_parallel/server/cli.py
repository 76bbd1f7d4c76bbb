"""The command line: ``python -m pocket_parallel.server --port 8000 --profile openai`` or ``--latency 0.5 --rpm 60``.

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
from ..service.profiles import PROFILE_NAMES
from ..service.quota import ALGORITHMS
from .guard import check_origin
from .local import LocalServer
from .settings import DEFAULT_MODEL, LOOPBACK, ServerSettings

#: The flag that sets each setting, for error messages that name what the user typed.
FLAGS = {
    "latency": "--latency", "jitter": "--jitter", "seed": "--seed", "failure_rate": "--failure-rate",
    "stall_rate": "--stall-rate", "overload_rate": "--overload-rate", "max_concurrent": "--max-concurrent",
    "requests_per_minute": "--rpm", "tokens_per_minute": "--tpm", "input_tokens_per_minute": "--input-tpm",
    "output_tokens_per_minute": "--output-tpm", "algorithm": "--algorithm", "quantum": "--quantum",
    "slots": "--slots", "ttft": "--ttft", "tpot": "--tpot", "answer_tokens": "--answer-tokens",
    "profile": "--profile", "host": "--host", "port": "--port", "model": "--model",
}
_GIVEN = argparse.SUPPRESS  # a setting left out takes its profile's value, or the default without one


def parser() -> argparse.ArgumentParser:
    """The argument parser, with every setting as a flag."""
    p = argparse.ArgumentParser(
        prog="python -m pocket_parallel.server",
        description="A local LLM server speaking OpenAI's Chat Completions API and Anthropic's Messages API, "
                    "simulating the course's "
                    "seeded service with provider-style limits and faults. A flag left out takes its "
                    "--profile's value (or, without a profile, the default shown); a flag given overrides it.",
    )
    add = p.add_argument
    add("--profile", choices=PROFILE_NAMES, default=_GIVEN,
        help="realistic defaults of one kind of provider (see pocket_parallel.service.profiles); default none")
    add("--host", default=LOOPBACK, help=f"address to listen on (default {LOOPBACK}: this machine only)")
    add("--port", type=arg.port(), default=8000, help="port to listen on; 0 picks a free one (default 8000)")
    add("--latency", type=arg.latency(), default=_GIVEN,
        help="mean seconds per call, 0.000001-86400 (default 0.5 without a profile); overrides a profile's --ttft/--tpot")
    add("--ttft", type=arg.ttft(), default=_GIVEN, help="seconds to the first token, in [0, 86400], with --tpot")
    add("--tpot", type=arg.tpot(), default=_GIVEN,
        help="seconds per output token, in [0, 60]: a call takes ttft + output tokens x tpot")
    add("--answer-tokens", type=arg.token_range("--answer-tokens"), default=_GIVEN,
        help="draw each answer's length from LOW-HIGH output tokens, or none (default none: answers as they are)")
    add("--jitter", type=arg.number("--jitter", low=0.0, high=3.0), default=_GIVEN,
        help="spread of the latency (coefficient of variation), in [0, 3] (default 0)")
    add("--seed", type=arg.seed(), default=_GIVEN, help="seed of every latency, fault and answer, >= 0 (default 0)")
    add("--failure-rate", type=arg.probability("--failure-rate"), default=_GIVEN,
        help="share of calls failing with a 500 or 503 after their latency, in [0, 1)")
    add("--stall-rate", type=arg.probability("--stall-rate"), default=_GIVEN,
        help="share of calls accepted and never answered, in [0, 1)")
    add("--overload-rate", type=arg.probability("--overload-rate"), default=_GIVEN,
        help="share of calls turned away at once with a 529, in [0, 1)")
    add("--max-concurrent", type=arg.limit("--max-concurrent", high=arg.MAX_IN_FLIGHT), default=_GIVEN,
        help="refuse calls beyond this many in flight, as a gateway does, or none (default none)")
    add("--slots", type=arg.limit("--slots", high=arg.MAX_IN_FLIGHT), default=_GIVEN,
        help="serve at most this many calls at once and queue the rest, as a self-hosted server does, or none")
    add("--rpm", type=arg.limit("--rpm"), default=_GIVEN, help="requests per minute, or none (default none)")
    add("--tpm", type=arg.limit("--tpm"), default=_GIVEN,
        help="tokens per minute, or none: prompt plus answer without a profile; every message plus max_tokens "
             "with one, as OpenAI counts")
    add("--input-tpm", type=arg.limit("--input-tpm"), default=_GIVEN,
        help="input tokens per minute (every message), or none, as Anthropic counts")
    add("--output-tpm", type=arg.limit("--output-tpm"), default=_GIVEN,
        help="output tokens per minute, or none: max_tokens reserved at admission, the unused part returned "
             "at the end, as Anthropic counts")
    add("--quantum", type=arg.quantum(), default=_GIVEN,
        help="seconds of refill a per-minute bucket holds, in [0.001, 60] (default 60: a minute's burst; "
             "1 enforces per second, as OpenAI documents)")
    add("--algorithm", choices=ALGORITHMS, default=_GIVEN,
        help="how per-minute limits are counted (default token_bucket, refilled continuously)")
    add("--model", default=DEFAULT_MODEL, help=f"model name the server answers as (default {DEFAULT_MODEL})")
    add("--allow-origin", dest="allow_origins", metavar="ORIGIN", action="append", default=[], type=_origin,
        help="also serve requests from the web page at ORIGIN (e.g. http://192.168.1.5:8888; '*' for any); "
             "repeat for more. Default: this machine's own pages only, as Ollama does")
    return p


#: Each flag's attribute on the parsed arguments, by setting name (where they differ).
_ATTRIBUTES = {"requests_per_minute": "rpm", "tokens_per_minute": "tpm", "input_tokens_per_minute": "input_tpm",
               "output_tokens_per_minute": "output_tpm"}
def _origin(text: str) -> str:
    try:
        return check_origin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("allow_origin must be", "must be")) from None


def settings_from(argv: Sequence[str] | None, p: argparse.ArgumentParser) -> ServerSettings:
    """The settings the flags ask for; a bad value exits with status 2 and names its flag."""
    args = vars(p.parse_args(argv))
    values = {name: args[_ATTRIBUTES.get(name, name)] for name in FLAGS if _ATTRIBUTES.get(name, name) in args}
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
    server = LocalServer.from_settings(settings, allow_origins)
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
        print(f"  Anthropic base URL (ANTHROPIC_BASE_URL): {server.url}", file=out)
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
