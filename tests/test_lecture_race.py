"""The live race: both sides started together on the real clock, the same calls, a Comparison at the end."""

from __future__ import annotations

import asyncio

import pytest

from pocket_parallel import run
from pocket_parallel.lecture.race import Race, RaceSettings


@pytest.mark.parametrize(("settings", "message"), [
    ({"items": 0}, r"items must be an integer in \[1, 50\]; got 0"),
    ({"items": 51}, r"items must be an integer in \[1, 50\]; got 51"),
    ({"items": 12.0}, r"items must be an integer in \[1, 50\]; got 12.0"),
    ({"latency": 0.0}, r"latency must be a finite number in \[0.05, 2\]; got 0.0"),
    ({"latency": "0.4"}, r"latency must be a finite number in \[0.05, 2\]; got '0.4'"),
    ({"jitter": 1.5}, r"jitter must be a finite number in \[0, 1\]; got 1.5"),
    ({"max_concurrency": 0}, r"max_concurrency must be an integer >= 1, or None for no limit; got 0"),
    ({"max_concurrency": 51}, r"max_concurrency must be an integer in \[1, 50\]; got 51"),
    ({"seed": -1}, r"seed must be an integer >= 0; got -1"),
])
def test_bad_settings_are_refused_naming_the_parameter_and_its_range(settings, message):
    with pytest.raises(ValueError, match=message):
        RaceSettings(**settings)


def test_a_race_needs_race_settings():
    with pytest.raises(TypeError, match="settings must be a RaceSettings; got dict"):
        Race({"items": 3})  # type: ignore[arg-type]


def test_the_workload_has_no_failures_and_the_estimate_adds_its_latencies():
    settings = RaceSettings(items=5, latency=0.2, jitter=0.3, seed=4)
    workload = settings.workload
    assert (workload.items, workload.latency, workload.jitter, workload.failure_rate, workload.seed) == (5, 0.2, 0.3, 0.0, 4)
    latencies = [workload.model.latency_for(p) for p in workload.prompts()]
    assert settings.sequential_estimate == pytest.approx(sum(latencies))
    assert len(set(latencies)) > 1  # jitter spreads them


def test_both_sides_run_the_same_calls_and_the_result_is_measured_on_the_real_clock():
    settings = RaceSettings(items=4, latency=0.05, jitter=0.3, max_concurrency=2, seed=1)
    race = Race(settings)
    result = run(race.run(), clock="real")
    model = settings.workload.model
    assert result.clock == "real" and result.max_concurrency == 2 and result.items == 4
    for trace in (result.sequential_trace, result.trace):
        assert sorted(r.prompt for r in trace) == sorted(settings.workload.prompts())
        assert all(r.outcome == "ok" and r.duration >= model.latency_for(r.prompt) - 1e-6 for r in trace)
    latencies = sorted(model.latency_for(p) for p in settings.workload.prompts())
    assert result.sequential_time >= sum(latencies) - 1e-6
    assert result.parallel_time >= result.lower_bound - 1e-9
    assert result.peak_in_flight == 2
    assert len(result.results) == 4 and not result.failures
    assert race.finished == {"sequential": result.sequential_time, "parallel": result.parallel_time}
    assert race.progress() == (4, 4)


def test_the_two_sides_run_at_the_same_time():
    # With no limit the parallel side needs about one call's time, the sequential side four:
    # when the parallel side is done, the sequential side must still be running.
    settings = RaceSettings(items=4, latency=0.1, jitter=0.0)
    race = Race(settings)
    seen: dict[str, tuple[int, int]] = {}

    async def watch() -> None:
        runner = asyncio.ensure_future(race.run())
        while "parallel" not in race.finished:
            await asyncio.sleep(0.005)
        seen["when parallel was done"] = race.progress()
        await runner

    run(watch(), clock="real")
    sequential_done, parallel_done = seen["when parallel was done"]
    assert parallel_done == 4 and sequential_done < 4
    assert race.finished["parallel"] < race.finished["sequential"]


def test_a_race_runs_once_and_only_on_the_real_clock():
    race = Race(RaceSettings(items=1, latency=0.05))
    run(race.run(), clock="real")
    with pytest.raises(RuntimeError, match="a Race runs once"):
        run(race.run(), clock="real")
    with pytest.raises(RuntimeError, match="real clock"):
        run(Race(RaceSettings(items=1, latency=0.05)).run(), clock="virtual")
