"""Exercise 4 (checks/flows.py): the race fixed without losing speed, or the check says what is wrong.

Each wrong answer below is the racy flow "fixed" the way students try: a fixed key moved into a
container, a global, a default argument, a plain object, an attribute the nodes share; the input
used as scratch; sub-flows made to take turns, or limited. Races the detector cannot see are
judged by behaviour: delays at every step, two flows at once with the same ids. Each wrong answer
is rejected on each of 50 seeds (in one subprocess), and the solution passes the same 50.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types

import pytest
from pocketflow import AsyncBatchFlow, AsyncNode, AsyncParallelBatchFlow

from pocket_parallel import BoundedParallelBatchFlow, call_llm_async
from pocket_parallel.checks import check_safe_flow
from pocket_parallel.checks import flows
from pocket_parallel.checks.flows import EXERCISE_4

from .notebook_code import (
    EX4,
    answer_cell,
    assert_fails,
    assert_fails_on_every_seed,
    assert_passes_on_every_seed,
    kept,
    quiet,
    solution,
    stub,
)


class Summarize(AsyncNode):
    """Summarizes this sub-flow's document and keeps the summary wherever ``keep`` puts it."""

    async def prep_async(self, shared):
        return shared["documents"][self.params["doc_id"]]

    async def exec_async(self, text):
        return await call_llm_async(f"Summarize: {text}")

    async def post_async(self, shared, prep_res, summary):
        self.keep(shared, summary)

    def keep(self, shared, summary):
        shared["summaries"][self.params["doc_id"]] = summary


class Translate(AsyncNode):
    """Translates the summary it finds wherever ``find`` looks, and files the result by id."""

    async def prep_async(self, shared):
        return self.find(shared)

    async def exec_async(self, summary):
        return await call_llm_async(f"Translate to French: {summary}")

    async def post_async(self, shared, prep_res, french):
        shared["results"][self.params["doc_id"]] = {"summary": self.find(shared), "french": french}

    def find(self, shared):
        return shared["summaries"][self.params["doc_id"]]


class ReadOnceTranslate(Translate):
    """Reads the summary once, in prep_async, and uses prep_res afterwards."""

    async def post_async(self, shared, prep_res, french):
        shared["results"][self.params["doc_id"]] = {"summary": prep_res, "french": french}


class AllDocuments(AsyncParallelBatchFlow):
    """Creates the containers once, before the sub-flows start (``setup`` adds what a variant needs)."""

    async def prep_async(self, shared):
        shared["summaries"], shared["results"] = {}, {}
        self.setup(shared)
        return [{"doc_id": doc_id} for doc_id in shared["documents"]]

    def setup(self, shared):
        pass


def flow_of(summarize, translate, batch=AllDocuments):
    """The batch flow ``batch`` over a ``summarize >> translate`` chain, freshly built."""
    first = summarize()
    first >> translate()
    return batch(start=first)


def build_per_item_nested_keys():
    """Right: the solution's keys, written out."""
    return flow_of(Summarize, Translate)


# -- places every sub-flow shares ------------------------------------------------------------------------


class NestedKeySummarize(Summarize):
    def keep(self, shared, summary):
        shared["scratch"]["summary"] = summary


class NestedKeyTranslate(Translate):
    def find(self, shared):
        return shared["scratch"]["summary"]


class WithScratch(AllDocuments):
    def setup(self, shared):
        shared["scratch"] = {}


def build_nested_dict_key():
    return flow_of(NestedKeySummarize, NestedKeyTranslate, WithScratch)


class NestedKeyReadOnce(NestedKeyTranslate, ReadOnceTranslate):
    pass


def build_nested_key_read_once():
    return flow_of(NestedKeySummarize, NestedKeyReadOnce, WithScratch)


class FixedKeySummarize(Summarize):
    def keep(self, shared, summary):
        shared["summary"] = summary


class FixedKeyReadOnce(ReadOnceTranslate):
    def find(self, shared):
        return shared["summary"]


def build_fixed_key_read_once():
    """Reads the fixed key at once in prep_async and uses prep_res afterwards: right when nothing
    runs in between, still a race."""
    first = FixedKeySummarize()
    first >> FixedKeyReadOnce()
    return AllDocuments(start=first)


GLOBAL_SCRATCH = {}


class GlobalSummarize(Summarize):
    def keep(self, shared, summary):
        GLOBAL_SCRATCH["summary"] = summary


class GlobalTranslate(Translate):
    def find(self, shared):
        return GLOBAL_SCRATCH["summary"]


def build_global_variable():
    """The summary moved out of shared into a module-level dict: no detector sees it, the results do."""
    return flow_of(GlobalSummarize, GlobalTranslate)


SUMMARIES_BY_ID = {}


class GlobalByIdSummarize(Summarize):
    def keep(self, shared, summary):
        SUMMARIES_BY_ID[self.params["doc_id"]] = summary


class GlobalByIdTranslate(Translate):
    def find(self, shared):
        return SUMMARIES_BY_ID[self.params["doc_id"]]


def build_global_by_id():
    """A module-level dict keyed by document id: right for one flow at a time, wrong for two at once."""
    return flow_of(GlobalByIdSummarize, GlobalByIdTranslate)


def remember(doc_id, summary=None, store={}):  # noqa: B006 - the mistake under test
    """A default argument as a memory: one dict for every call, of every flow."""
    if summary is not None:
        store[doc_id] = summary
    return store[doc_id]


class DefaultArgumentSummarize(Summarize):
    def keep(self, shared, summary):
        remember(self.params["doc_id"], summary)


class DefaultArgumentTranslate(Translate):
    def find(self, shared):
        return remember(self.params["doc_id"])


def build_default_argument():
    return flow_of(DefaultArgumentSummarize, DefaultArgumentTranslate)


class ClassAttributeSummarize(Summarize):
    latest = ""

    def keep(self, shared, summary):
        ClassAttributeSummarize.latest = summary


class ClassAttributeTranslate(Translate):
    def find(self, shared):
        return ClassAttributeSummarize.latest


def build_class_attribute():
    return flow_of(ClassAttributeSummarize, ClassAttributeTranslate)


class Box:
    """A plain object: the race detector looks into dicts, lists and dataclasses, not into this."""


class BoxSummarize(Summarize):
    def keep(self, shared, summary):
        shared["box"].summary = summary


class BoxReadOnce(ReadOnceTranslate):
    def find(self, shared):
        return shared["box"].summary


class WithBox(AllDocuments):
    def setup(self, shared):
        shared["box"] = Box()


def build_plain_object():
    """A plain object inside shared, read once right after the summary is filed."""
    return flow_of(BoxSummarize, BoxReadOnce, WithBox)


class MemoSummarize(Summarize):
    def __init__(self, memo):
        super().__init__()
        self.memo = memo

    def keep(self, shared, summary):
        self.memo["summary"] = summary


class MemoTranslate(ReadOnceTranslate):
    def __init__(self, memo):
        super().__init__()
        self.memo = memo

    def find(self, shared):
        return self.memo["summary"]


def build_node_attribute():
    """A dict both nodes keep as an attribute: PocketFlow copies the nodes for each sub-flow, not the dict."""
    memo = {}
    first = MemoSummarize(memo)
    first >> MemoTranslate(memo)
    return AllDocuments(start=first)


@dataclasses.dataclass
class Scratch:
    summary: str = ""


class DataclassSummarize(Summarize):
    def keep(self, shared, summary):
        shared["scratch"].summary = summary


class DataclassTranslate(Translate):
    def find(self, shared):
        return shared["scratch"].summary


class WithDataclass(AllDocuments):
    def setup(self, shared):
        shared["scratch"] = Scratch()


def build_dataclass_attribute():
    return flow_of(DataclassSummarize, DataclassTranslate, WithDataclass)


class NamespaceSummarize(DataclassSummarize):
    pass


class WithNamespace(AllDocuments):
    def setup(self, shared):
        shared["scratch"] = types.SimpleNamespace(summary="")


def build_namespace_attribute():
    return flow_of(NamespaceSummarize, DataclassTranslate, WithNamespace)


class InputScratchSummarize(Summarize):
    def keep(self, shared, summary):
        shared["documents"][self.params["doc_id"]] = summary


class InputScratchTranslate(Translate):
    def find(self, shared):
        return shared["documents"][self.params["doc_id"]]


def build_input_as_scratch():
    """Each summary written over its own document: per-item keys, no race, and the input is gone."""
    return flow_of(InputScratchSummarize, InputScratchTranslate)


class ContainersInSubflows(Summarize):
    async def post_async(self, shared, prep_res, summary):
        shared["summaries"] = {}
        shared["summaries"][self.params["doc_id"]] = summary


class ResultsOnly(AsyncParallelBatchFlow):
    async def prep_async(self, shared):
        shared["results"] = {}
        return [{"doc_id": doc_id} for doc_id in shared["documents"]]


def build_containers_in_subflows():
    """Per-item keys, but every sub-flow creates the shared dict it files into, wiping the others'."""
    return flow_of(ContainersInSubflows, Translate, ResultsOnly)


# -- sub-flows that take turns ------------------------------------------------------------------------------


class OneAfterAnother(AsyncBatchFlow):
    async def prep_async(self, shared):
        shared["summaries"], shared["results"] = {}, {}
        return [{"doc_id": doc_id} for doc_id in shared["documents"]]


def build_sequential_flow():
    return flow_of(Summarize, Translate, OneAfterAnother)


class Locked(AllDocuments):
    async def prep_async(self, shared):
        self.lock = asyncio.Lock()
        return await super().prep_async(shared)

    async def _orch_async(self, shared, params=None):
        async with self.lock:
            return await super()._orch_async(shared, params)


def build_locked_flow():
    return flow_of(Summarize, Translate, Locked)


class LimitedDocuments(BoundedParallelBatchFlow, AllDocuments):
    max_concurrency = 30


def build_limited_flow():
    """A limit on the flow larger than the batches used to be (8): the large batches show it."""
    return flow_of(Summarize, Translate, LimitedDocuments)


# -- calls outside the per-item step ------------------------------------------------------------------------


class SummarizeInPrep(Summarize):
    """The call made in prep_async, with a retry of its own: PocketFlow's retries never see it."""

    async def prep_async(self, shared):
        text = shared["documents"][self.params["doc_id"]]
        try:
            return await call_llm_async(f"Summarize: {text}")
        except Exception:
            return await call_llm_async(f"Summarize: {text}")

    async def exec_async(self, summary):
        return summary


def build_calls_in_prep():
    return flow_of(SummarizeInPrep, Translate)


# A cell that patches the check's judge in the kernel, then gives the racy flow.
PATCHING_CELL = '''
import pocket_parallel.checks.flows as judge

judge._wrong_results = lambda *args, **kwargs: []
judge._race_message = lambda *args, **kwargs: ""
judge.check_races_async = None


def build_safe_flow():
    return build_racy_flow()
'''


def test_ex4_solution_passes_on_every_seed():
    assert_passes_on_every_seed(EXERCISE_4, solution(EX4, "build_safe_flow"))


def test_ex4_other_right_answers_pass():
    assert_passes_on_every_seed(EXERCISE_4, build_per_item_nested_keys, seeds=range(10))


EX4_WRONG = {
    "the racy flow": ("racy", ("both wrote shared['summary']", "self.params")),
    "AsyncBatchFlow": (build_sequential_flow, ("one after another", "the longest summarize-then-translate chain")),
    "a lock": (build_locked_flow, ("one after another", "a lock")),
    "a limit of 30 on the flow": (build_limited_flow, ("longer than the longest chain", "max_concurrency")),
    "containers made in each sub-flow": (build_containers_in_subflows, ("raised KeyError", "replaces a dict")),
    "a key in a shared dict": (build_nested_dict_key, ("both wrote shared['scratch']['summary']",)),
    "a nested key read once": (build_nested_key_read_once, ("shared['scratch']['summary']",)),
    "a fixed key read once": (build_fixed_key_read_once, ("both wrote shared['summary']",)),
    "a dataclass attribute": (build_dataclass_attribute, ("shared['scratch'].summary",)),
    "a SimpleNamespace attribute": (build_namespace_attribute, ("shared['scratch'].summary",)),
    "a global variable": (build_global_variable, ("It holds the summary of document",)),
    "a global keyed by id": (build_global_by_id, ("of the other flow", "Two flows ran at once")),
    "a default argument": (build_default_argument, ("of the other flow",)),
    "a class attribute": (build_class_attribute, ("It holds the summary of document",)),
    "a plain object in shared": (build_plain_object, ("It holds the summary of document",)),
    "an attribute the nodes share": (build_node_attribute, ("It holds the summary of document",)),
    "the input used as scratch": (build_input_as_scratch, ("shared['documents'] did not end as it began",)),
    "calls in prep_async": (build_calls_in_prep, ("outside PocketFlow's per-item step", "prep_async")),
    "a cell that patches the check": ("patching", ("both wrote shared['summary']",)),
}


def _ex4(answer):
    if answer == "racy":
        return solution(EX4, "build_racy_flow")
    if answer == "patching":
        return answer_cell(EX4, PATCHING_CELL, "build_safe_flow")
    return answer


@pytest.mark.parametrize("case", list(EX4_WRONG))
def test_ex4_wrong_answer_fails_on_every_seed(case):
    answer, keywords = EX4_WRONG[case]
    with kept(flows):  # a patching cell patches this very process: put the module back afterwards
        assert_fails_on_every_seed(EXERCISE_4, _ex4(answer), *keywords)


def test_ex4_wrong_answers_fail_fresh_workloads_quietly():
    assert_fails(check_safe_flow, build_class_attribute, "It holds the summary of document")


def test_ex4_stub_is_not_attempted():
    assert quiet(check_safe_flow, stub(EX4, "build_safe_flow")).status == "not attempted"


def test_ex4_wants_a_builder_function():
    with pytest.raises(TypeError, match="build_flow must be a function that returns a new flow"):
        check_safe_flow(solution(EX4, "build_safe_flow")())
