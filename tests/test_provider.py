"""What each limit is charged, the same in SimulatedLLM and the server; profiles; settings declared once."""

from __future__ import annotations

import asyncio
import inspect
import math

import pytest

from pocket_parallel import RateLimitError, SimulatedLLM, run
from pocket_parallel.server import LocalServer, ServerSettings
from pocket_parallel.server.service import ChatService, Refused, ServiceRequest
from pocket_parallel.service.model import estimate_tokens
from pocket_parallel.service.profiles import PROFILES
from pocket_parallel.service.provider import DEFAULT_MAX_TOKENS, CallRequest, SimulatedProvider
from pocket_parallel.service.settings import FROM_PROFILE, SETTINGS, ServiceSettings

PROMPT = "Summarize: the quick brown fox jumps over the lazy dog"
SYSTEM = "You are a careful assistant. " * 40  # 280 tokens


def test_without_a_profile_tokens_per_minute_charges_the_prompt_plus_the_answer_as_always():
    provider = SimulatedProvider(ServiceSettings(tokens_per_minute=10_000))
    charge = provider.charge(CallRequest(PROMPT, input_tokens=estimate_tokens(SYSTEM) + estimate_tokens(PROMPT)))
    assert charge.tokens == provider.behaviour.tokens_for(PROMPT) == SimulatedLLM().tokens_for(PROMPT)
    assert provider.charge(CallRequest(PROMPT, max_tokens=5)).tokens == charge.tokens  # max_tokens plays no part


def test_with_a_profile_tokens_per_minute_counts_every_message_plus_max_tokens_or_its_default():
    provider = SimulatedProvider(ServiceSettings(profile="openai"))
    inputs = estimate_tokens(SYSTEM) + estimate_tokens(PROMPT)
    assert provider.charge(CallRequest(PROMPT, input_tokens=inputs, max_tokens=300)).tokens == inputs + 300
    assert provider.charge(CallRequest(PROMPT, input_tokens=inputs)).tokens == inputs + DEFAULT_MAX_TOKENS == inputs + 4_096


def test_input_and_output_budgets_follow_anthropics_rule_with_or_without_a_profile():
    for profile in (None, "openai", "anthropic"):
        provider = SimulatedProvider(ServiceSettings(profile=profile, input_tokens_per_minute=50_000,
                                                     output_tokens_per_minute=20_000))
        charge = provider.charge(CallRequest(PROMPT, input_tokens=321, max_tokens=700))
        assert (charge.input_tokens, charge.output_tokens) == (321, 700)
        assert provider.charge(CallRequest(PROMPT)).output_tokens == DEFAULT_MAX_TOKENS


def test_an_openai_profile_refuses_a_burst_under_the_minutes_budget_and_a_max_tokens_that_fits_passes():
    async def burst(llm: SimulatedLLM, max_tokens: int | None) -> list[object]:
        calls = [llm.complete(f"Summarize: {i}", max_tokens=max_tokens) for i in range(20)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    # 200,000 tokens a minute enforced per second: a bucket of 3,333. Without max_tokens each call reserves 4,096.
    big = run(burst(SimulatedLLM(profile="openai"), None), clock="virtual")
    refused = [r for r in big if isinstance(r, RateLimitError)]
    assert len(refused) == 19 and {r.limit for r in refused} == {"tokens_per_minute"}
    assert refused[0].refusal.requested == estimate_tokens("Summarize: 1") + 4_096
    small = run(burst(SimulatedLLM(profile="openai"), 400), clock="virtual")
    assert sum(isinstance(r, RateLimitError) for r in small) == 12  # 8 of about 413 tokens fit in 3,333
    # Without a profile the same limit lets a whole minute through at once, as always.
    plain = run(burst(SimulatedLLM(tokens_per_minute=200_000), None), clock="virtual")
    assert not any(isinstance(r, Exception) for r in plain)


def test_an_output_reservation_comes_back_when_the_answer_ends():
    llm = SimulatedLLM(latency=1.0, output_tokens_per_minute=1_000)

    async def scenario() -> tuple[object, object, object]:
        first = asyncio.ensure_future(llm.complete("Summarize: a", max_tokens=600))
        await asyncio.sleep(0)
        second = await asyncio.gather(llm.complete("Summarize: b", max_tokens=600), return_exceptions=True)
        await first  # its answer used a handful of tokens: the rest of its 600 come back at 1 s
        third = await llm.complete("Summarize: c", max_tokens=600)
        return first.result(), second[0], third

    first, second, third = run(scenario(), clock="virtual")
    assert isinstance(second, RateLimitError) and second.limit == "output_tokens_per_minute"
    assert second.retry_after == pytest.approx(12.0)  # 200 tokens missing, at 1,000 a minute, had nothing come back
    assert first.text and third.text and llm.stats.ok == 2


def test_simulated_llm_and_the_server_admit_and_refuse_alike():
    settings = dict(ttft=0.2, tpot=0.01, jitter=0.3, seed=4, answer_tokens=(20, 200), requests_per_minute=150,
                    tokens_per_minute=20_000, input_tokens_per_minute=9_000, output_tokens_per_minute=15_000,
                    quantum=1.0, profile="openai")
    arrivals = [(round(i * 0.13, 6), f"Translate to French: line {i}", 100 + 37 * (i % 9)) for i in range(120)]

    async def in_process() -> list[tuple[str, float]]:
        llm = SimulatedLLM(**settings)
        return await _drive(arrivals, lambda p, m: llm.complete(p, max_tokens=m), RateLimitError,
                            lambda e: (e.limit, e.retry_after))

    async def server() -> list[tuple[str, float]]:
        service = ChatService(ServerSettings(**settings))

        async def ask(prompt: str, max_tokens: int) -> object:
            async with service.call(ServiceRequest(prompt, max_tokens=max_tokens)) as call:
                return await call.finish()

        return await _drive(arrivals, ask, Refused, lambda e: (e.refusal.limit, e.refusal.retry_after))

    local, remote = run(in_process(), clock="virtual"), run(server(), clock="virtual")
    assert local == remote
    outcomes = [outcome for outcome, _ in local]
    assert outcomes.count("ok") > 20 and len(set(outcomes)) >= 3, set(outcomes)  # answers and refusals of two kinds


async def _drive(arrivals, ask, refusal, describe) -> list[tuple[str, float]]:
    async def one(at: float, prompt: str, max_tokens: int) -> tuple[str, float]:
        await asyncio.sleep(at)
        try:
            reply = await ask(prompt, max_tokens)
        except refusal as error:
            return describe(error)
        return "ok", reply.output_tokens

    return list(await asyncio.gather(*(one(*arrival) for arrival in arrivals)))


# -- profiles and the settings every simulated service takes ---------------------------------------


def test_each_profile_sets_its_documented_defaults_and_any_setting_overrides_them():
    openai, anthropic, hosted = (ServiceSettings(profile=name) for name in ("openai", "anthropic", "self-hosted"))
    assert (openai.quantum, openai.requests_per_minute, openai.tokens_per_minute) == (1.0, 500, 200_000)
    assert openai.charges_max_tokens and not ServiceSettings().charges_max_tokens
    assert (anthropic.input_tokens_per_minute, anthropic.output_tokens_per_minute, anthropic.tokens_per_minute) == (
        30_000, 8_000, None)
    assert (hosted.slots, hosted.requests_per_minute, hosted.quantum) == (8, None, 60.0)
    for name, values in PROFILES.items():
        settings = ServiceSettings(profile=name)
        assert all(getattr(settings, key) == value for key, value in values.items())
    assert ServiceSettings(profile="openai", requests_per_minute=None).requests_per_minute is None
    assert ServiceSettings(profile="openai", quantum=60).quantum == 60
    assert ServiceSettings(profile="openai", algorithm="sliding_window").quantum == 60  # a window counts minutes
    assert ServiceSettings(profile="self-hosted", slots=None).slots is None


def test_without_a_profile_nothing_changes():
    plain = ServiceSettings()
    assert (plain.latency, plain.jitter, plain.quantum, plain.slots, plain.ttft, plain.answer_tokens) == (
        1.0, 0.0, 60.0, None, None, None)
    assert ServerSettings().latency == 0.5 and SimulatedLLM().latency == 1.0
    assert repr(SimulatedLLM(latency=0.4, jitter=0.5, seed=1)) == "SimulatedLLM(latency=0.4, jitter=0.5, seed=1, failure_rate=0)"


def test_simulated_llm_local_server_and_server_settings_take_the_same_settings_declared_once():
    llm = inspect.signature(SimulatedLLM)
    server = inspect.signature(LocalServer)
    assert list(llm.parameters) == list(SETTINGS)
    assert list(server.parameters) == [*SETTINGS, "host", "port", "model", "allow_origins"]  # its own keyword last
    assert [p.name for p in llm.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD] == [
        "latency", "jitter", "seed", "failure_rate"]
    assert llm.parameters["requests_per_minute"].default is FROM_PROFILE
    with LocalServer(profile="anthropic", latency=0.01) as running:
        assert running.settings == ServerSettings(profile="anthropic", latency=0.01)
        assert running.stats().requests == 0
    assert SimulatedLLM(0.3, 0.1, 5, 0.2, profile="openai").settings == ServiceSettings(0.3, 0.1, 5, 0.2, profile="openai")


@pytest.mark.parametrize("kwargs, named", [
    ({"quantum": 0}, "quantum"), ({"quantum": 90}, "quantum"), ({"slots": 0}, "slots"), ({"slots": 2.5}, "slots"),
    ({"ttft": -1, "tpot": 0.1}, "ttft"), ({"ttft": 0.1, "tpot": 61}, "tpot"), ({"ttft": 0.1}, "tpot"),
    ({"ttft": 0, "tpot": 0}, "ttft"), ({"latency": 1.0, "tpot": 0.1, "ttft": 0.1}, "latency"),
    ({"answer_tokens": (0, 5)}, "answer_tokens"), ({"answer_tokens": 100}, "answer_tokens"),
    ({"input_tokens_per_minute": 0}, "input_tokens_per_minute"), ({"output_tokens_per_minute": -3}, "output_tokens_per_minute"),
    ({"profile": "azure"}, "profile"), ({"profile": "openai", "tpot": 0}, None),
])
def test_bad_values_of_every_new_setting_are_refused_naming_it(kwargs, named):
    for make in (SimulatedLLM, LocalServer, ServerSettings):
        if named is None:
            make(**kwargs)  # a valid combination
            continue
        with pytest.raises(ValueError, match=named):
            make(**kwargs)


def test_unknown_or_too_many_settings_are_refused_naming_the_owner():
    with pytest.raises(TypeError, match="SimulatedLLM got an unexpected setting 'rpm'"):
        SimulatedLLM(rpm=60)
    with pytest.raises(TypeError, match="LocalServer takes at most 4 settings by position"):
        LocalServer(0.5, 0.0, 0, 0.0, 0.0)
    with pytest.raises(ValueError, match="max_tokens"):
        CallRequest("x", max_tokens=0)
    with pytest.raises(ValueError, match=r"thinking_budget must be an integer in \[1, 1000000\]"):
        CallRequest("x", thinking_budget=10**12)  # a reply is built in memory: output stays bounded
    assert math.isclose(SimulatedLLM(profile="openai").latency, 0.5 + 250 * 0.01)
