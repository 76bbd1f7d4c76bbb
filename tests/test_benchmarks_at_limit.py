"""Throughput at the limit: every contender runs against a real server per profile, the allowed rate and the verdict follow the numbers.

Nothing here asserts a timing: tiny cases run end to end against LocalServer, and the
arithmetic of the report is checked on made-up runs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ sits beside the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import at_limit  # noqa: E402
from pocket_parallel.server import LocalServer  # noqa: E402
from tests.http_support import NO_LEAKED_RESOURCES, nothing_left_behind  # noqa: E402

pytestmark = NO_LEAKED_RESOURCES

# LangChain is make bench's extra, not the learner's install: its contender runs where it is installed.
CONTENDERS = tuple(c for c in at_limit.LIMIT_CONTENDERS
                   if c.key != "langchain" or importlib.util.find_spec("langchain_core") is not None)
FAST = (("ttft", 0.01), ("tpot", 0.0001))
TINY = at_limit.LimitPlan("tiny", (
    at_limit.Case("openai", 6, (("requests_per_minute", 60_000), ("tokens_per_minute", 60_000_000), *FAST)),
    at_limit.Case("anthropic", 6, (("requests_per_minute", 60_000), ("output_tokens_per_minute", 6_000_000), *FAST)),
    at_limit.Case("self-hosted", 6, FAST),
))


def test_every_contender_runs_on_every_profile_and_the_report_has_its_shape():
    said: list[str] = []
    with nothing_left_behind():
        results = at_limit.measure(TINY, say=said.append, contenders=CONTENDERS)
    assert [r.case.profile for r in results.cases] == ["openai", "anthropic", "self-hosted"]
    for result in results.cases:
        assert {c.key for c in result.cells} == {c.key for c in CONTENDERS}
        for cell in result.cells:
            (run,) = cell.runs
            assert run.answered == 6 and run.failed == 0 and run.requests >= 6
    assert results.cases[0].announced["tokens_per_minute"] == 60_000_000
    assert results.cases[1].announced["output_tokens_per_minute"] == 6_000_000
    assert results.cases[2].announced["requests_per_minute"] is None  # a self-hosted server announces nothing
    assert len(said) == 3 * len(CONTENDERS)
    text = at_limit.section(results)
    assert text.startswith("## Throughput at the limit")
    assert text.count("### ") == 3 and "the binding one is" in text
    assert at_limit.from_json(at_limit.to_json(results)) == results
    assert "of the allowed rate" in at_limit.readme_bullet(results)


def test_the_tightest_limit_sets_the_allowed_rate():
    case = at_limit.Case("openai", 40, (("requests_per_minute", 600), ("tokens_per_minute", 1_200_000)))
    server = LocalServer(**case.settings())  # never started: only its settings are read
    allowed = at_limit.allowed_rate(server, case)
    # Every request costs its prompt plus the 4,096 tokens charged when no max_tokens is sent.
    prompt_tokens = sum(-(-len(p) // 4) for p in at_limit.prompts(40)) / 40
    assert dict(allowed.by_limit)["requests per minute"] == pytest.approx(10.0)
    assert allowed.rate == pytest.approx(1_200_000 / 60 / (prompt_tokens + 4_096))
    assert allowed.binding == "tokens per minute"
    slots = at_limit.Case("self-hosted", 40, (("slots", 4),))
    by_slots = at_limit.allowed_rate(LocalServer(**slots.settings()), slots)
    assert by_slots.binding == "4 slots" and by_slots.rate < 4 / by_slots.mean_latency  # a full batch is slower


def test_output_tokens_count_what_answers_use_not_what_was_reserved():
    case = at_limit.Case("anthropic", 40, (("requests_per_minute", 60_000), ("output_tokens_per_minute", 60_000)))
    allowed = at_limit.allowed_rate(LocalServer(**case.settings()), case)
    assert allowed.binding == "output tokens per minute"
    assert allowed.rate > 60_000 / 60 / at_limit.ANTHROPIC_MAX_TOKENS  # more than if the reservation stayed spent


def _cell(rate: float, refused: int, requests: int = 100) -> at_limit.LimitCell:
    return at_limit.LimitCell("openai", "node", "node", True, (at_limit.LimitRun(10.0, rate, 100, 0, refused, requests),))


def test_the_steady_rate_and_the_verdict_follow_the_numbers():
    assert at_limit.steady_rate([0.0, 5.0] + [1.0 + i * 0.1 for i in range(9)]) == pytest.approx(10.0, rel=0.2)
    assert at_limit.steady_rate([1.0]) == 0.0
    allowed = at_limit.Allowed(10.0, "requests per minute", (("requests per minute", 10.0),), 1.0)
    assert at_limit.meets_goal(_cell(9.6, 1), allowed)
    assert not at_limit.meets_goal(_cell(9.4, 0), allowed)
    assert not at_limit.meets_goal(_cell(10.0, 2), allowed)
