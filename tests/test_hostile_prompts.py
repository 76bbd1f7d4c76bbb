"""Prompts as an attacker writes them: reading one costs time in its length, and remembering them costs bounded memory."""

from __future__ import annotations

import re
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocket_parallel.service.model import AttemptNumbers, ServiceModel, answer_to

# The patterns answer_to used before it read prompts with str.split: the oracle of what it answers.
_OLD_TRANSLATE = re.compile(r"^\s*translate(?:\s+(?:this|it))?\s+(?:in)?to\s+([^\n:]{1,40}?)\s*$", re.I)
_OLD_SUMMARIZE = re.compile(r"^\s*summari[sz]e\b", re.I)
# Reading a 1 MB prompt takes about 10 ms; the quadratic patterns took hours. A CPU budget
# 50 times the expected cost is no timing claim: it only tells linear from quadratic.
CPU_BUDGET = 0.5
MEGABYTE = 1_000_000


def old_answer_to(prompt: str) -> str:
    """What answer_to answered before, but for one quirk: "Translate to  : text" answered "[] text"."""
    from pocket_parallel._format import clip

    instruction, colon, body = prompt.partition(":")
    body = body.strip()
    if colon and body:
        translate = _OLD_TRANSLATE.match(instruction)
        if translate and translate.group(1).strip():  # a language of spaces only is no language
            return f"[{translate.group(1).strip()}] {body}"
        if _OLD_SUMMARIZE.match(instruction):
            return f"Summary ({len(body.split())} words): {clip(body, 48)}"
    return f"Answer to: {clip(prompt, 60)}"


# Prompts built from the pieces the patterns look for, so that most of them come close to matching.
_PIECES = st.sampled_from([
    "translate", "Translate", "TRANSLATE", "this", "it", "to", "into", "in", "Summarize", "summarise",
    "summarized", "summarize_", "French", "Old French", "x", "y" * 19, " ", "  ", "\t", "\n", ":", "\u00a0", "é", "_",
])
_PROMPTS = st.lists(_PIECES, max_size=14).map("".join)
_SPACE = st.text(" \t\n\u00a0", max_size=3)
# Instructions of the shape the patterns look for, with languages around the 40-character limit.
_INSTRUCTIONS = st.tuples(
    _SPACE, st.sampled_from(["translate", "Translate", "translat"]), _SPACE,
    st.sampled_from(["", "this", "it", "IT"]), _SPACE, st.sampled_from(["to", "into", "onto", "in to"]), _SPACE,
    st.text("ab \t\n", min_size=0, max_size=44), _SPACE, st.sampled_from([": text", ":", ": ", "text"]),
).map("".join)


@given(_PROMPTS)
@settings(max_examples=3000, deadline=None)
def test_answers_as_the_old_patterns_did(prompt):
    assert answer_to(prompt) == old_answer_to(prompt)


@given(_INSTRUCTIONS)
@settings(max_examples=3000, deadline=None)
def test_answers_translations_as_the_old_patterns_did(prompt):
    assert answer_to(prompt) == old_answer_to(prompt)


@given(st.text(max_size=80))
@settings(max_examples=500, deadline=None)
def test_answers_any_text_as_the_old_patterns_did(prompt):
    assert answer_to(prompt) == old_answer_to(prompt)


def test_the_usual_prompts_keep_their_answers():
    assert answer_to("Translate to French: cat") == "[French] cat"
    assert answer_to("translate   this  into  Old   French  : le chat") == "[Old   French] le chat"
    assert answer_to("Summarize: one two three") == "Summary (3 words): one two three"
    assert answer_to("Summarized: one two") == "Answer to: Summarized: one two"
    assert answer_to("Translate to " + "x" * 41 + ": a").startswith("Answer to: ")


def _spaces_around(word: str, size: int) -> str:
    half = (size - len(word)) // 2
    return " " * half + word + " " * half


# Each attack is a 1 MB prompt aimed at one way the old patterns backtracked.
ATTACKS = {
    "spaces before and after the language": "translate to" + _spaces_around("y", MEGABYTE) + "z: body",
    "spaces after translate": "translate" + " " * MEGABYTE + "x: body",
    "spaces after this": "translate this" + " " * MEGABYTE + "x: body",
    "spaces before summarize": " " * MEGABYTE + "summarizes: body",
    "one-letter words": "translate to " + "a " * (MEGABYTE // 2) + ": body",
    "one-letter words to summarize": "Summarize: " + "a " * (MEGABYTE // 2),
    "no colon": "translate to " + " \t" * (MEGABYTE // 2),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_megabyte_prompt_is_read_in_linear_time(attack):
    prompt = ATTACKS[attack]
    model = ServiceModel(latency=1.0, jitter=0.3, failure_rate=0.2, stall_rate=0.1, overload_rate=0.1)
    start = time.process_time()
    answer_to(prompt)
    model.tokens_for(prompt)
    model.latency_for(prompt, 2), model.fails(prompt), model.stalls(prompt), model.overloaded(prompt)
    assert time.process_time() - start < CPU_BUDGET


@given(st.lists(st.sampled_from(["translate", "to", "this", " ", "  ", "\n", "x", "y"]), min_size=1, max_size=6),
       st.integers(min_value=1, max_value=20_000))
@settings(max_examples=40, deadline=None)
def test_any_repeated_pattern_is_read_in_linear_time(pattern, repeats):
    prompt = "translate to " + "".join(pattern) * repeats + "z: body"
    start = time.process_time()
    answer_to(prompt)
    assert time.process_time() - start < CPU_BUDGET


def test_failed_prompts_are_remembered_by_digest_not_by_text():
    attempts = AttemptNumbers()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            prompt = f"{i:07d}" + "x" * MEGABYTE  # 1,000 unique 1 MB prompts, each refused once
            attempts.next(prompt)
            attempts.settled(prompt, 1, "rate_limited")
            del prompt
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(attempts) == 1000
    assert kept < 500_000  # a few hundred bytes per prompt, not a megabyte
    assert attempts.next(f"{999:07d}" + "x" * MEGABYTE) == 2


def test_the_counts_are_bounded_and_the_oldest_is_forgotten_first():
    attempts = AttemptNumbers(max_prompts=3)
    for prompt in ("a", "b", "c"):
        attempts.settled(prompt, 1, "error")
    attempts.settled("a", 2, "error")  # "a" changed last: "b" is now the oldest
    attempts.settled("d", 1, "error")
    assert len(attempts) == 3
    assert [attempts.next(p) for p in "abcd"] == [3, 1, 2, 2]


@pytest.mark.parametrize("bad", [0, -1, 2.5, None])
def test_the_bound_is_checked(bad):
    with pytest.raises(ValueError, match="max_prompts"):
        AttemptNumbers(max_prompts=bad)
