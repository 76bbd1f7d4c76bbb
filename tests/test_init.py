"""The package's public face: small, typed, everything it names importable, nothing heavy on import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pocket_parallel

ROOT = Path(__file__).resolve().parent.parent


def test_the_top_level_holds_at_most_34_names_and_each_is_there():
    # What the notebooks teach: round 3 added the teaching submodules' strays (AskEach, the two
    # references, write_atomic), the GIL lesson's measures and AnthropicLLM. Anything more goes
    # into a teaching submodule (docs/architecture.md).
    assert len(pocket_parallel.__all__) <= 34
    assert len(set(pocket_parallel.__all__)) == len(pocket_parallel.__all__)
    for name in pocket_parallel.__all__:
        assert getattr(pocket_parallel, name) is not None, name


def test_leftover_re_exports_and_async_twins_stay_in_their_modules():
    for name in ("compare_async", "measure_throughput_async", "check_races_async", "gather_outcomes", "Outcomes",
                 "CallRecord", "busiest_window", "estimate_tokens", "ThroughputPoint", "ideal_makespan"):
        assert name not in pocket_parallel.__all__
    from pocket_parallel.collect import gather_outcomes  # noqa: F401
    from pocket_parallel.outcomes import Failure

    assert pocket_parallel.Failure is Failure  # from its home, outcomes
    from pocket_parallel.experiment import compare_async  # noqa: F401


def test_the_package_ships_its_type_information():
    assert (ROOT / "pocket_parallel" / "py.typed").is_file()


def test_importing_the_package_loads_no_plotting_widgets_or_http_client():
    code = ("import sys, pocket_parallel; "
            "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'PIL', 'openai', 'anthropic', 'distributed') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
