"""PocketFlow's parallel-batch cookbook, a program written for the official ``anthropic`` client, run unchanged.

tests/cookbook/pocketflow-parallel-batch/ holds its ``main.py`` and ``utils.py`` byte for byte
(The-Pocket/PocketFlow, cookbook/pocketflow-parallel-batch/, commit 4526a358b7de; see
tests/cookbook/README.md). Each test runs ``python main.py`` in a subprocess, in a copy of the
cookbook's directory layout (it reads ``../../README.md`` and writes ``translations/``), with
``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` pointing at a :class:`LocalServer`. The program
sends 8 requests at once, each with ``max_tokens=20000`` and extended thinking
(``budget_tokens=16000``), and writes ``response.content[1].text``: the text block after the
thinking block.

The server runs on the real clock with a short time per token (the subprocess cannot share a
virtual clock), so these tests count requests and check answers, never time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pocket_parallel.server import LocalServer
from pocket_parallel.service.provider import CallRequest, SimulatedProvider

COOKBOOK = Path(__file__).parent / "cookbook" / "pocketflow-parallel-batch"
# The Git blob ids of the two files in The-Pocket/PocketFlow at 4526a358b7de13b2ba505b702b488916c618ba67.
UPSTREAM_BLOBS = {"main.py": "5f944613c0c06891e12d0f5fbafa58c6a09d59ec",
                  "utils.py": "6d8c4c5f878116a43328be52abb928b0d86061b8"}
LANGUAGES = ["Chinese", "Spanish", "Japanese", "German", "Russian", "Portuguese", "French", "Korean"]
README = "# Pocket Flow\n\nA [100-line](https://github.com/The-Pocket/PocketFlow) LLM framework.\n\n```python\nflow.run(shared)\n```\n"
# Fast tokens, so that 8 answers of up to 16,400 output tokens take a fraction of a second each.
QUICK = {"ttft": 0.05, "tpot": 0.00001}


def the_prompt(language: str) -> str:
    """The prompt main.py sends for ``language``, as its TranslateTextNodeParallel builds it."""
    main = (COOKBOOK / "main.py").read_text(encoding="utf-8")
    template = main[main.index('        prompt = f"""') + len('        prompt = f"""'):main.index('Translated:"""')]
    return template.replace("{language}", language).replace("{text}", README) + "Translated:"


def run_cookbook(tmp_path: Path, server: LocalServer) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run main.py unchanged against ``server``; the process and the directory it writes its translations to."""
    program = tmp_path / "cookbook" / "pocketflow-parallel-batch"
    shutil.copytree(COOKBOOK, program)
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    environment = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-local-test"}
    done = subprocess.run([sys.executable, "main.py"], cwd=program, env=environment, capture_output=True, text=True,
                          timeout=300)
    return done, program / "translations"


def expected_replies(server: LocalServer) -> dict[str, Any]:
    """What the server answers each language's request with: the seeded thinking and text of its prompt."""
    provider = SimulatedProvider(server.settings)
    return {language: provider.reply_for(CallRequest(the_prompt(language), max_tokens=20_000, thinking_budget=16_000))
            for language in LANGUAGES}


def test_the_cookbook_files_are_pocketflows_own_unchanged():
    for name, blob in UPSTREAM_BLOBS.items():
        data = (COOKBOOK / name).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob, f"{name} differs from PocketFlow's"
    utils = (COOKBOOK / "utils.py").read_text(encoding="utf-8")
    assert "max_tokens=20000" in utils and '"budget_tokens": 16000' in utils and "response.content[1].text" in utils
    assert the_prompt("German").startswith("\nPlease translate the following markdown file into German.")


def test_the_cookbook_runs_unchanged_with_extended_thinking_and_writes_each_translation(tmp_path):
    with LocalServer(seed=1, answer_tokens=(100, 400), **QUICK) as server:
        done, translations = run_cookbook(tmp_path, server)
        stats = server.stats()
        expected = expected_replies(server)
    assert done.returncode == 0, done.stderr
    assert "=== Translation Complete ===" in done.stdout
    assert sorted(done.stdout.count(f"Translated {language} text") for language in LANGUAGES) == [1] * 8
    for language, reply in expected.items():
        written = (translations / f"README_{language.upper()}.md").read_text(encoding="utf-8")
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
        done, translations = run_cookbook(tmp_path, server)
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
        done, translations = run_cookbook(tmp_path, server)
        stats = server.stats()
        expected = expected_replies(server)
    assert done.returncode == 0, done.stderr
    for language, reply in expected.items():
        assert (translations / f"README_{language.upper()}.md").read_text(encoding="utf-8") == reply.text
    assert stats.ok == 8 and stats.rate_limited >= 1
    assert stats.requests == 8 + stats.rate_limited == 8 + stats.retries  # each 429 was retried, by the client

