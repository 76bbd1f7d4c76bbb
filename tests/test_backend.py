"""The LLM backend protocol and the chapter's call_llm_async / call_llm."""


from __future__ import annotations

import pytest

from pocket_parallel import SimulatedLLM, call_llm, call_llm_async, get_default_llm, run, set_default_llm


def test_module_level_helpers_use_the_replaceable_default():
    mine = SimulatedLLM(latency=0.01)
    previous = set_default_llm(mine)
    try:
        assert get_default_llm() is mine
        assert run(call_llm_async("Summarize: chapter six"), clock="virtual").startswith("Summary")
        assert call_llm("Translate to German: tree") == "[German] tree"
        assert mine.stats.calls == 2
    finally:
        set_default_llm(previous)
    with pytest.raises(TypeError, match="llm"):
        set_default_llm("not an llm")  # type: ignore[arg-type]


def test_any_async_callable_can_stand_behind_call_llm_async():
    from pocket_parallel.backends.protocol import LLMBackend, is_backend

    async def shouting(prompt: str) -> str:
        return prompt.upper()

    class Echo:
        async def __call__(self, prompt: str) -> str:
            return f"echo: {prompt}"

    previous = set_default_llm(shouting)
    try:
        assert run(call_llm_async("hi"), clock="virtual") == "HI"
        set_default_llm(Echo())
        assert run(call_llm_async("hi"), clock="virtual") == "echo: hi"
        with pytest.raises(TypeError, match="no blocking call"):
            call_llm("hi")
    finally:
        set_default_llm(previous)
    assert isinstance(Echo(), LLMBackend) and is_backend(SimulatedLLM()) and not is_backend(Echo)


@pytest.mark.parametrize("bad", [None, "gpt", lambda prompt: prompt, SimulatedLLM, 42])
def test_set_default_llm_refuses_what_is_not_a_backend(bad):
    with pytest.raises(TypeError, match="llm must be an LLM backend"):
        set_default_llm(bad)
