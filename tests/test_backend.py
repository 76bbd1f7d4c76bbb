"""The LLM backend protocol and the chapter's call_llm_async / call_llm."""


from __future__ import annotations

import pytest

from pocket_parallel import (
    SimulatedLLM,
    call_llm,
    call_llm_async,
    get_default_llm,
    run,
    set_default_llm,
)


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
