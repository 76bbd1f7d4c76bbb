"""What every check shares (checks/_feedback.py, _display.py, _quiet.py): how a result shows itself,
silence on stderr, and no hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import re
import warnings

import pytest
from IPython.core.formatters import DisplayFormatter
from pocketflow import AsyncParallelBatchNode

from pocket_parallel import call_llm_async
from pocket_parallel.checks import CheckResult, check_limited_translator, check_parallel_summarizer
from pocket_parallel.checks._display import WIDTH, escape_markdown, sentence_case, wrap
from pocket_parallel.checks._feedback import run_check
from pocket_parallel.checks._quiet import quiet as quiet_block

from .notebook_code import EX1, EX2, quiet, solution, stub


@functools.lru_cache(maxsize=1)
def _results() -> list[CheckResult]:
    return [
        quiet(check_parallel_summarizer, solution(EX1, "ParallelSummarizer"), seed=3),
        quiet(check_limited_translator, solution(EX2, "ChapterTranslator"), seed=1),
        quiet(check_parallel_summarizer, stub(EX1, "ParallelSummarizer"), seed=3),
    ]


def test_a_result_shows_a_verdict_line_then_its_explanation():
    passed, failed, stubbed = _results()
    assert str(passed).splitlines()[0] == "Passed · Exercise 1"
    assert str(failed).splitlines()[0] == "Not yet · Exercise 2"
    assert str(stubbed).splitlines()[0] == "Not attempted yet · Exercise 1"
    # The seed that replays a failure gets a paragraph of its own; the message keeps it too.
    assert str(failed).endswith("\n\nTo replay this exact workload, pass seed=1 to the check.")
    assert failed.message.endswith("(To replay this exact workload, pass seed=1 to the check.)")
    assert failed.seed == 1 and passed.seed is None
    assert (passed.verdict, failed.verdict, stubbed.verdict) == ("Passed", "Not yet", "Not attempted yet")


def test_plain_text_is_wrapped_between_words_and_says_exactly_the_message():
    for result in _results():
        text = str(result)
        lines = text.splitlines()
        assert all(len(line) <= WIDTH or " " not in line for line in lines), text
        assert len(lines) > 3  # wrapped, not one long line
        # Joined back, the paragraphs are the message word for word: no word was cut in two.
        body = " ".join(" ".join(text.split("\n\n")[1:]).split())
        message = " ".join(result.message.split(": ", 1)[1].split())
        assert body == message.replace(" (To replay", " To replay").removesuffix(".)") + ("." if result.seed else "")


def test_in_a_notebook_a_result_shows_once_as_markdown_and_wrapped_text():
    failed = _results()[1]
    data, _ = DisplayFormatter().format(failed)
    assert set(data) == {"text/plain", "text/markdown"}
    assert data["text/plain"] == str(failed)  # not the repr: nbval compares this, a terminal shows it
    markdown = data["text/markdown"]
    assert markdown.startswith("**Not yet** · Exercise 2\n\n")
    assert r"\_run\_async" in markdown and "_run_async" not in markdown.replace(r"\_", "")
    assert repr(failed) == "CheckResult('Exercise 2', status='failed')"


def test_markdown_escapes_every_markup_character():
    assert escape_markdown("shared['a'] *x* _y_ `z` <b> #1 a|b ~c~ &amp;") == (
        r"shared\['a'\] \*x\* \_y\_ \`z\` \<b\> \#1 a\|b \~c\~ \&amp;")


def test_sentence_case_leaves_code_alone():
    assert sentence_case("at most C = 2 calls") == "At most C = 2 calls"
    assert sentence_case("shared['results'] has no entry") == "shared['results'] has no entry"
    assert sentence_case("predict_makespan(...) raised") == "predict_makespan(...) raised"
    assert sentence_case("simulate built a node", "simulate") == "simulate built a node"


def test_wrap_keeps_long_words_whole_and_refuses_a_silly_width():
    long = "x" * 120
    assert wrap(f"a {long} b", 40) == f"a\n{long}\nb"
    with pytest.raises(ValueError, match="width must be at least 20 columns; got 5"):
        wrap("text", 5)


class NeverAwaited(AsyncParallelBatchNode):
    """Forgets the await: Python warns 'coroutine ... was never awaited'."""

    async def prep_async(self, shared):
        return shared["documents"]

    async def exec_async(self, document):
        return call_llm_async(f"Summarize: {document}")

    async def post_async(self, shared, prep_res, exec_res_list):
        shared["summaries"] = exec_res_list


class LeavesAFailedTask(NeverAwaited):
    """Starts a task that fails and is never awaited (asyncio logs 'Task exception was never
    retrieved'), and forgets to store the summaries."""

    async def exec_async(self, document):
        async def boom():
            raise RuntimeError("nobody waits for me")

        asyncio.ensure_future(boom())
        return await call_llm_async(f"Summarize: {document}")

    async def post_async(self, shared, prep_res, exec_res_list):
        pass


class WritesToStderr(LeavesAFailedTask):
    async def exec_async(self, document):
        import sys

        print("debugging", file=sys.stderr)
        return await call_llm_async(f"Summarize: {document}")


@pytest.mark.parametrize("answer, note", [
    (NeverAwaited, "RuntimeWarning: coroutine 'call_llm_async' was never awaited"),
    (LeavesAFailedTask, "Task exception was never retrieved"),
    (WritesToStderr, "debugging"),
], ids=["a warning", "an asyncio log record", "stderr"])
def test_nothing_reaches_stderr_and_what_python_said_is_in_the_message(answer, note):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped the check would fail this test
        result = quiet(check_parallel_summarizer, answer)  # quiet() fails on any stderr output
    assert result.status == "failed"
    assert f"Python also reported: {note}" in result.message
    assert not re.search(r"0x[0-9a-f]{6,}", result.message)  # no memory address: notebooks must regenerate


def test_a_passing_check_is_not_told_about_warnings():
    def body(rng):
        warnings.warn("something", RuntimeWarning)
        return "all good."

    result = run_check("Exercise 0", body, seed=1)
    assert result.passed and result.message == "Passed: All good."


def test_quiet_restores_stderr_and_the_asyncio_logger():
    import logging
    import sys

    logger = logging.getLogger("asyncio")
    before = (sys.stderr, logger.handlers[:], logger.propagate)
    with quiet_block() as noise:
        print("to stderr", file=sys.stderr)
        logger.error("logged")
    assert (sys.stderr, logger.handlers, logger.propagate) == before
    assert noise.notes == ["logged", "to stderr"]


class Spinner(AsyncParallelBatchNode):
    """Keeps the loop busy without ever letting virtual time move."""

    async def prep_async(self, shared):
        return shared["documents"]

    async def exec_async(self, document):
        while True:
            await asyncio.sleep(0)


class Stuck(AsyncParallelBatchNode):
    """Never gives the loop back at all: only ending its process stops it."""

    async def prep_async(self, shared):
        while True:
            pass


def test_a_busy_loop_on_the_virtual_clock_is_cut_off(monkeypatch):
    from pocket_parallel.checks import _feedback

    monkeypatch.setattr(_feedback, "WALL_LIMIT", 0.5)  # sent to the judge, and from it to the answer's process
    result = quiet(check_parallel_summarizer, Spinner)
    assert result.status == "failed"
    assert "still running after 0.5 s of real time" in result.message
    assert "asyncio.sleep(0)" in result.message


def test_code_that_never_returns_to_the_loop_is_stopped_with_its_process(monkeypatch):
    from pocket_parallel.checks import _feedback
    from pocket_parallel.checks.nodes import EXERCISE_1

    monkeypatch.setattr(_feedback, "WALL_LIMIT", 0.5)
    [result] = EXERCISE_1.on_seeds(Stuck, [1], {"slack": 1.0})
    assert result.status == "failed"
    assert "so the check stopped it" in result.message


def test_a_check_prints_nothing():
    with contextlib.redirect_stdout(io.StringIO()) as out:
        check_parallel_summarizer(solution(EX1, "SequentialSummarizer"), seed=11)
    assert out.getvalue() == ""
