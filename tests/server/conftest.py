"""The fixture the server's test modules share: a client of the module's ``server``, its counters reset first."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def http(server):
    """An httpx client of the module's ``server`` fixture, after ``server.reset()``."""
    server.reset()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
