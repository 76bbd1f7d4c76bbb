"""Read and reset a local LLM server's counters over HTTP (``GET /stats``, ``POST /stats/reset``).

The server's counters are the ground truth of a cluster run: how many calls were in flight
at most, how many were refused with a 429, how many were answered. A cluster can claim
anything; the server counts.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .._validate import check_url

_TIMEOUT = 10.0


def server_root(url: str) -> str:
    """``http://host:port`` from the server's URL or its OpenAI base URL (``.../v1``)."""
    root = check_url("server", url, "http://127.0.0.1:8000").rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def read_stats(url: str) -> dict[str, Any]:
    """The server's ``GET /stats``: its counters, settings and limits."""
    with urllib.request.urlopen(server_root(url) + "/stats", timeout=_TIMEOUT) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


def reset_stats(url: str) -> None:
    """Zero the server's counters (``POST /stats/reset``, with no body); refused by the server while calls are in flight.

    The server's limits are not refilled: only the program that owns the server can do that.
    """
    request = urllib.request.Request(server_root(url) + "/stats/reset", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT):
            pass
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"the server refused to reset its counters ({error.code}): "
                           f"{error.read().decode(errors='replace')[:200]}") from None
