"""The service model: answer lengths, max_tokens, extended thinking, and latency from ttft and tpot."""

from __future__ import annotations

import asyncio
import hashlib
import math
import statistics
from statistics import NormalDist

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.service.answers import FILLER, cut, fit, lengthen, reply, stop_at
from pocket_parallel.service.model import ServiceModel, answer_to, estimate_tokens
from pocket_parallel.service.provider import CallRequest, ModelBehaviour, SimulatedProvider
from pocket_parallel.service.settings import ServiceSettings
from pocket_parallel.service.timing import BATCH_SLOWDOWN, Timing, time_per_token

PROMPTS = [f"Summarize: document {i} of 50" for i in range(1, 51)]


@pytest.mark.parametrize("tokens", [1, 5, 13, 100, 4_096])
def test_an_answer_is_filled_out_to_exactly_its_drawn_length_so_text_and_usage_agree(tokens):
    text = "[French] bonjour"  # 4 tokens of its own
    longer = lengthen(text, tokens)
    assert estimate_tokens(longer) == max(tokens, 4) and longer.startswith(text)
    assert not longer.endswith(" ")
    assert estimate_tokens(fit("a thought", tokens)) == tokens
    if tokens > 4:
        assert FILLER.split()[0] in longer


def test_answer_lengths_are_seeded_per_prompt_in_their_range_and_never_below_the_answers_own():
    model = ServiceModel(0.5, seed=3, answer_tokens=(100, 400))
    lengths = [model.answer_length(p) for p in PROMPTS]
    assert all(100 <= n <= 400 for n in lengths) and len(set(lengths)) > 30
    assert lengths == [ServiceModel(0.5, seed=3, answer_tokens=(100, 400)).answer_length(p) for p in PROMPTS]
    assert lengths != [ServiceModel(0.5, seed=4, answer_tokens=(100, 400)).answer_length(p) for p in PROMPTS]
    long_prompt = "Summarize: " + "word " * 400
    assert ServiceModel(0.5, answer_tokens=(1, 2)).answer_length(long_prompt) == estimate_tokens(answer_to(long_prompt))
    behaviour = ModelBehaviour(model)
    assert all(estimate_tokens(behaviour.answer_for(p)) == n for p, n in zip(PROMPTS, lengths))
    assert ServiceModel(0.5).answer_length(PROMPTS[0]) == estimate_tokens(answer_to(PROMPTS[0]))


def test_max_tokens_cuts_the_answer_with_the_stop_reason_max_tokens():
    answer = lengthen("Answer to: x", 50)
    whole, cut_short = reply(answer), reply(answer, max_tokens=20)
    assert (whole.stop_reason, whole.finish_reason, whole.output_tokens) == ("end", "stop", 50)
    assert (cut_short.stop_reason, cut_short.finish_reason, cut_short.output_tokens) == ("max_tokens", "length", 20)
    assert cut_short.text == cut(answer, 20) == answer[:80]
    assert reply(answer, max_tokens=50).stop_reason == "end"


def test_thinking_comes_first_is_charged_as_output_and_leaves_the_rest_of_max_tokens_to_the_text():
    thinking, answer = fit("Thinking about: x", 300), lengthen("Answer to: x", 100)
    both = reply(answer, thinking, max_tokens=1_000)
    assert (both.thinking_tokens, both.text_tokens, both.output_tokens, both.stop_reason) == (300, 100, 400, "end")
    squeezed = reply(answer, thinking, max_tokens=350)
    assert (squeezed.thinking_tokens, squeezed.text_tokens, squeezed.stop_reason) == (300, 50, "max_tokens")
    only_thought = reply(answer, thinking, max_tokens=200)
    assert (only_thought.thinking_tokens, only_thought.text, only_thought.stop_reason) == (200, "", "max_tokens")


def test_a_stop_sequence_ends_the_text_where_generation_would_meet_it():
    assert stop_at("one two three", ("three", "two")) == ("one ", "two")
    assert stop_at("abcdef", ("bcdef", "cd")) == ("ab", "cd")  # "cd" is complete first
    assert stop_at("abcdef", ("ef", "def")) == ("abc", "def")  # complete together: the longer
    assert stop_at("abc", ("x",)) == ("abc", None) and stop_at("abc", ()) == ("abc", None)


def test_a_stop_sequence_within_max_tokens_ends_the_answer_and_thinking_is_never_stopped():
    thinking, answer = fit("Thinking about: END", 20), "[French] bonjour END and more words"
    stopped = reply(answer, thinking, max_tokens=100, stop_sequences=("END", "never"))
    assert (stopped.text, stopped.stop_reason, stopped.stop_sequence) == ("[French] bonjour ", "stop_sequence", "END")
    assert (stopped.thinking, stopped.text_tokens, stopped.output_tokens) == (thinking, 5, 25)
    assert stopped.finish_reason == "stop"
    # "END" would end at character 20 of the text, past the 4 tokens (16 characters) left: max_tokens comes first.
    cut_first = reply(answer, thinking, max_tokens=24, stop_sequences=("END",))
    assert (cut_first.text, cut_first.stop_reason, cut_first.stop_sequence) == ("[French] bonjour", "max_tokens", None)
    assert reply(answer, thinking, max_tokens=25, stop_sequences=("END",)).stop_reason == "stop_sequence"
    provider = SimulatedProvider(ServiceSettings(seed=2))
    request = CallRequest("Translate to German: good morning", max_tokens=50, stop_sequences=("morning",))
    assert provider.reply_for(request).text == "[German] good "
    with pytest.raises(TypeError, match="stop_sequences must be a tuple of non-empty strings"):
        CallRequest("x", stop_sequences=("",))


def test_a_thinking_block_has_a_seeded_length_within_its_budget():
    provider = SimulatedProvider(ServiceSettings(seed=2))
    lengths = []
    for prompt in PROMPTS:
        answered = provider.reply_for(CallRequest(prompt, max_tokens=20_000, thinking_budget=10_000))
        assert answered.thinking is not None and answered.thinking.startswith("Thinking about: Summarize")
        assert 2_500 <= answered.thinking_tokens <= 10_000
        assert answered.text == answer_to(prompt)
        lengths.append(answered.thinking_tokens)
    assert len(set(lengths)) > 40
    assert provider.reply_for(CallRequest(PROMPTS[0])).thinking is None


def test_latency_is_ttft_plus_tokens_times_tpot_slower_in_a_batch():
    model = ServiceModel(None, ttft=0.5, tpot=0.01, answer_tokens=(100, 400))
    for prompt in PROMPTS[:5]:
        tokens = model.answer_length(prompt)
        assert model.latency_for(prompt) == round(0.5 + tokens * 0.01, 6)
        timing = model.timing_for(prompt, 1, tokens, batch=8)
        assert timing.first_token == 0.5
        assert timing.per_token == pytest.approx(0.01 * (1 + BATCH_SLOWDOWN * 7))
        assert timing.total == round(0.5 + tokens * 0.01 * 1.7, 6)
        assert timing.token_at(1) == 0.5 and timing.token_at(tokens) < timing.total
    assert time_per_token(0.02, 1) == 0.02


def test_jitter_scales_the_whole_schedule_with_the_same_log_normal_draw_keeping_the_mean():
    model = ServiceModel(None, jitter=0.3, seed=1, ttft=1.0, tpot=0.0)  # every call's mean is 1 s
    draws = [model.latency_for(p, attempt) for p in PROMPTS for attempt in (1, 2, 3, 4)]
    assert statistics.fmean(draws) == pytest.approx(1.0, rel=0.1)
    assert statistics.pstdev(draws) == pytest.approx(0.3, rel=0.25)
    plain = ServiceModel(1.0, jitter=0.3, seed=1)  # the same draw as a plain latency of 1 s
    assert [model.latency_for(p) for p in PROMPTS] == [plain.latency_for(p) for p in PROMPTS]
    timing = ServiceModel(None, jitter=0.3, seed=1, ttft=0.5, tpot=0.01).timing_for(PROMPTS[0], 1, 100)
    assert timing.total == pytest.approx(timing.first_token * 3, rel=1e-5)  # ttft and tokens scaled alike


def test_without_ttft_and_tpot_latency_is_exactly_what_it_always_was():
    # The draw of the original model (before ttft and tpot): exp(mu + sigma z), mu = log L - sigma^2 / 2.
    def original(latency: float, jitter: float, seed: int, prompt: str, attempt: int) -> float:
        digest = hashlib.blake2b(f"{seed}\x1f{attempt}\x1f{prompt}".encode(), digest_size=16).digest()
        u = (int.from_bytes(digest[:8], "big") + 0.5) / 2**64
        sigma = math.sqrt(math.log1p(jitter**2))
        return max(round(math.exp(math.log(latency) - sigma**2 / 2 + sigma * NormalDist().inv_cdf(u)), 6), 1e-6)

    llm = SimulatedLLM(latency=0.7, jitter=0.4, seed=9)
    assert [llm.latency_for(p, a) for p in PROMPTS for a in (1, 2)] == [
        original(0.7, 0.4, 9, p, a) for p in PROMPTS for a in (1, 2)]
    assert Timing.at_once(0.7) == Timing(0.7, 0.0, 0.7)

    async def one_call() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await llm(PROMPTS[3])
        return loop.time() - start

    assert run(one_call(), clock="virtual") == pytest.approx(original(0.7, 0.4, 9, PROMPTS[3], 1), abs=1e-9)


def test_an_explicit_latency_overrides_a_profiles_ttft_and_tpot_and_sets_the_mean_total():
    settings = ServiceSettings(profile="openai", latency=2.0)
    assert (settings.latency, settings.ttft, settings.tpot) == (2.0, None, None)
    assert settings.requests_per_minute == 500  # the rest of the profile stays
    assert ServiceSettings(profile="openai").latency is None
    model = settings.service_model()
    assert statistics.fmean(model.latency_for(p) for p in PROMPTS) == pytest.approx(2.0, rel=0.15)
