"""A program written for the official ``anthropic`` client runs unchanged against LocalServer, with extended thinking.

tests/programs/translate_with_thinking.py calls Anthropic's API the way PocketFlow's parallel-batch
cookbook does (cookbook/pocketflow-parallel-batch): one ``AsyncAnthropic`` per call, configured
only by ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``; 8 requests at once, each with
``max_tokens=20000`` and extended thinking (``budget_tokens=16000``); the answer read as
``response.content[1].text``, the text block after the thinking block. Each test runs it in a
subprocess with the environment pointing at a :class:`LocalServer`; the program knows nothing of
pocket-parallel.

The server runs on the real clock with a short time per token (the subprocess cannot share a
virtual clock), so these tests count requests and check answers, never time.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pocket_parallel.server import LocalServer
from pocket_parallel.service.provider import CallRequest, SimulatedProvider

PROGRAM = Path(__file__).parent / "programs" / "translate_with_thinking.py"
TEXT = "Pocket Flow is a 100-line LLM framework."
# Fast tokens, so that 8 answers of up to 16,400 output tokens take a fraction of a second each.
QUICK = {"ttft": 0.05, "tpot": 0.00001}


def the_program() -> Any:
    """The program as a module (for its languages and prompts; importing it runs nothing)."""
    spec = importlib.util.spec_from_file_location("translate_with_thinking", PROGRAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LANGUAGES: list[str] = the_program().LANGUAGES


def run_program(tmp_path: Path, server: LocalServer) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the program unchanged against ``server``; the process and the directory it writes its translations to."""
    (tmp_path / "text.md").write_text(TEXT, encoding="utf-8")
    translations = tmp_path / "translations"
    environment = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-local-test"}
    done = subprocess.run([sys.executable, str(PROGRAM), str(tmp_path / "text.md"), str(translations)],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    return done, translations


def expected_replies(server: LocalServer) -> dict[str, Any]:
    """What the server answers each language's request with: the seeded thinking and text of its prompt."""
    provider = SimulatedProvider(server.settings)
    program = the_program()
    return {language: provider.reply_for(CallRequest(program.prompt_for(TEXT, language), max_tokens=20_000,
                                                     thinking_budget=16_000))
            for language in LANGUAGES}


def test_the_program_asks_as_the_cookbook_does():
    source = PROGRAM.read_text(encoding="utf-8")
    assert "max_tokens=20000" in source and '"budget_tokens": 16000' in source and "response.content[1].text" in source
    assert "pocket_parallel" not in source and len(LANGUAGES) == 8


def test_the_program_runs_unchanged_with_extended_thinking_and_writes_each_translation(tmp_path):
    with LocalServer(seed=1, answer_tokens=(100, 400), **QUICK) as server:
        done, translations = run_program(tmp_path, server)
        stats = server.stats()
        expected = expected_replies(server)
    assert done.returncode == 0, done.stderr
    assert "all translations written" in done.stdout
    assert sorted(done.stdout.count(f"translated into {language}\n") for language in LANGUAGES) == [1] * 8
    for language, reply in expected.items():
        written = (translations / f"{language}.md").read_text(encoding="utf-8")
        assert written == reply.text and not written.startswith("Thinking about")  # content[1]: the text block
        assert reply.thinking is not None and 4_000 <= reply.thinking_tokens <= 16_000
    assert len({reply.text for reply in expected.values()}) == 8
    assert (stats.requests, stats.ok, stats.rate_limited, stats.bad_requests) == (8, 8, 0, 0)
    assert stats.completion_tokens == sum(reply.output_tokens for reply in expected.values())  # thinking included


def test_against_the_anthropic_profile_every_request_is_too_large_for_its_output_budget(tmp_path):
    # The profile's output budget is 8,000 tokens a minute; each request reserves its max_tokens, 20,000, at
    # admission. No wait can make it fit, so the server says x-should-retry: false, the client does not retry,
    # and PocketFlow's 3 attempts (max_retries=3) fail at once: the program ends with the client's RateLimitError.
    with LocalServer(profile="anthropic", **QUICK) as server:
        done, translations = run_program(tmp_path, server)
        stats = server.stats()
    assert done.returncode != 0 and "anthropic.RateLimitError" in done.stderr
    assert ("Request too large for output tokens per minute (OTPM): limit 8000, requested 20000"
            in done.stderr)
    assert stats.ok == 0 and stats.rate_limited == stats.requests
    # One request per PocketFlow attempt, none from the client: at most 8 items × 3 attempts (the first item
    # to run out ends the program, so others may be cut short), at least the 3 of that item.
    assert 3 <= stats.requests <= 24
    assert not translations.exists()


def test_a_burst_of_reservations_draws_429s_that_the_client_retries_and_the_program_still_finishes(tmp_path):
    # An output budget enforced per second whose second holds four reservations of 20,000 (4,800,000 a
    # minute): four of the eight are admitted at once, the others refused with retry-after: 1, and the
    # client's own retries (2 by default) bring them in once the bucket has refilled.
    with LocalServer(seed=1, output_tokens_per_minute=4_800_000, quantum=1.0, **QUICK) as server:
        done, translations = run_program(tmp_path, server)
        stats = server.stats()
        expected = expected_replies(server)
    assert done.returncode == 0, done.stderr
    for language, reply in expected.items():
        assert (translations / f"{language}.md").read_text(encoding="utf-8") == reply.text
    assert stats.ok == 8 and stats.rate_limited >= 1
    assert stats.requests == 8 + stats.rate_limited == 8 + stats.retries  # each 429 was retried, by the client

