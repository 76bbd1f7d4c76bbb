"""The saved outputs show what their prose teaches: each measured lesson's effect, from a quiet machine.

GitHub, nbviewer and Binder show the stored outputs as they are, so an output made on a busy
machine can contradict its own lesson (threads faster than processes on CPU work, a second worker
adding nothing). These tests read the stored outputs of every notebook that measures on the real
clock and assert the effect its prose states; ``make notebooks`` refuses a busy machine and
records the load average in each notebook's metadata, which the first test reads.

They test the outputs, not the code: after ``make notebooks --busy-ok`` they are expected to fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {path.name.split("_", 1)[0]: path for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))}
#: An output that blames the machine instead of showing the lesson.
EXCUSES = ("other programs", "machine's load", "too busy", "had a core only", "busy machine", "machine was busy",
           "load changed")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def outputs(path: Path) -> str:
    """Every text output of a notebook, cell after cell."""
    texts = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(_text(output.get("text", "")))
            elif output.get("output_type") in ("execute_result", "display_data"):
                texts.append(_text(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def number(pattern: str, text: str) -> float:
    """The number the pattern's group captures; fails, naming the pattern, when the output lacks it."""
    found = re.search(pattern, text)
    assert found, f"no output matches {pattern!r}"
    return float(found.group(1).replace(",", ""))


def measured_on_the_real_clock(path: Path) -> bool:
    text = outputs(path)
    return "(wall clock)" in text or "(this run)" in text


REAL_CLOCK = [name for name, path in NOTEBOOKS.items() if measured_on_the_real_clock(path)]


@pytest.mark.parametrize("name", REAL_CLOCK)
def test_real_clock_outputs_were_made_on_a_quiet_machine(name: str):
    record = json.loads(NOTEBOOKS[name].read_text(encoding="utf-8"))["metadata"].get("pocket_parallel", {}).get("executed")
    assert record, f"notebook {name}: no load recorded; re-execute it with make notebooks"
    assert record["quiet"], (f"notebook {name}: its outputs were made with a load average of "
                             f"{record['load_average_1min_before']} on {record['usable_cores']} cores")


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_no_saved_output_excuses_itself_with_the_machines_load(name: str):
    text = outputs(NOTEBOOKS[name]).lower()
    found = [phrase for phrase in EXCUSES if phrase in text]
    assert not found, f"notebook {name} blames the machine in its outputs: {found}"


def test_01_waiting_together_takes_one_call_not_eight():
    text = outputs(NOTEBOOKS["01"])
    sequential = number(r"one by one : ([\d.]+) s \(wall clock\)", text)
    parallel = number(r"all at once: ([\d.]+) s \(wall clock\)", text)
    assert 1.55 <= sequential <= 1.8 and 0.19 <= parallel <= 0.25, "the prose says about 1.6 s and 0.2 s"


def test_05_processes_beat_threads_on_cpu_work_and_threads_take_turns():
    text = outputs(NOTEBOOKS["05"])
    threads = number(r"threads +([\d.]+) s \(wall clock\), computing", text)
    processes = number(r"processes +([\d.]+) s \(wall clock\), computing", text)
    assert threads / processes >= 1.3, f"processes {threads / processes:.2f}x as fast as threads, not 1.3x or more"
    assert number(r"threads +[\d.]+ s \(wall clock\), computing on at most (\d+) core", text) == 1
    assert number(r"processes +[\d.]+ s \(wall clock\), computing on at most (\d+) core", text) >= 2
    assert "CPU-bound: it kept the processor busy" in text and "I/O-bound: it waited" in text
    assert "about as long as one call: asyncio, threads" in text
    assert number(r"ThreadedSummarize +([\d.]+) s", text) < 1.5 * 0.2 <= number(r"BlockingSummarize +([\d.]+) s", text)


def test_07_the_parallel_translation_lands_just_above_the_longest_call():
    text = outputs(NOTEBOOKS["07"])
    assert number(r"speedup +([\d.]+)x \(wall clock\)", text) >= 4.5, "the prose says a speedup near 5.4x"
    assert number(r"parallel run over the longest call: (-?\d+) ms", text) <= 15, "the prose says a few milliseconds"


def test_07b_a_kill_costs_at_most_the_calls_in_flight():
    text = outputs(NOTEBOOKS["07b"])
    for claim in ("exit status -9 (killed by SIGKILL)", "every answer in the journal had arrived: True",
                  "calls lost in flight at most C = 8: True", "exactly the items the journal lacked, each once: True",
                  "paid twice at most C = 8: True", "equal the clean run's, byte for byte: True"):
        assert claim in text


def test_08_http_adds_to_the_schedule_streaming_brings_the_first_token_sooner_and_retries_multiply():
    text = outputs(NOTEBOOKS["08"])
    for api in ("openai", "anthropic"):
        run = number(rf"{api}: ([\d.]+) s \(wall clock\) against", text)
        planned = number(rf"{api}: [\d.]+ s \(wall clock\) against an in-order schedule of ([\d.]+) s", text)
        assert planned <= run <= planned * 1.2, f"{api}: the prose says the run lands above its schedule by HTTP's cost"
        assert f"of {planned:.2f} s; 12 requests, 0 refused, at most 4 at once" in text
    first = number(r"the first token at ([\d.]+) s \(wall clock\)", text)
    whole = number(r"the whole answer at ([\d.]+) s \(wall clock\)", text)
    assert first * 2 <= whole, "the prose says the first words arrive well before the end"
    slowest = number(r"whole answers from [\d.]+ s to ([\d.]+) s", text)
    assert number(r"the batch's makespan: ([\d.]+) s", text) == slowest, "streamed or not, the slowest answer ends it"
    assert re.findall(r"(\d+) requests for 2 node attempts", text) == ["6", "6", "2"]


def test_09_the_processor_sets_the_pace_and_a_second_worker_helps_as_the_prose_says():
    text = outputs(NOTEBOOKS["09"])
    assert "the processor's work alone lasted longer than the calls' wait" in text
    one, two = number(r"1 worker: ([\d.]+) s \(wall clock\)", text), number(r"2 workers: ([\d.]+) s \(wall clock\)", text)
    assert one / two >= 1.4, f"the second worker gave {one / two:.2f}x; the prose says 1.4x or more on 2 cores"
    assert ": NO" not in text, "a claim printed as yes/NO came out NO"
