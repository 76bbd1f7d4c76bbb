"""Exercise 4 (checks/flows.py): the race fixed without losing speed, or the check says what is wrong.

Each wrong answer below is the racy flow "fixed" the way students try: a fixed key moved into a
container (a dict, a list, an object) that every sub-flow shares, a global, sub-flows made to
take turns. Every one of them fails on each of 50 seeds, and the solution passes on the same 50.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types

import pytest
from pocketflow import AsyncBatchFlow, AsyncNode, AsyncParallelBatchFlow

from pocket_parallel import BoundedParallelBatchFlow, call_llm_async
from pocket_parallel.checks import check_safe_flow

from .notebook_code import (
    EX4,
    REPEATS,
    assert_fails,
    assert_fails_on_every_seed,
    assert_passes_on_every_seed,
    quiet,
    solution,
    stub,
)


def flow_of(summarize: type, translate: type, batch: type) -> AsyncParallelBatchFlow:
    first = summarize()
    first >> translate()
    return batch(start=first)


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


class AllDocuments(AsyncParallelBatchFlow):
    """Creates the containers in ``setup`` once, before the sub-flows start."""

    async def prep_async(self, shared):
        shared["summaries"], shared["results"] = {}, {}
        self.setup(shared)
        return [{"doc_id": doc_id} for doc_id in shared["documents"]]

    def setup(self, shared):
        pass


def with_scratch(make_scratch, keep, find, name, translate_base=None):
    """A flow that keeps the summary in ``shared["scratch"]``, made by ``make_scratch()`` in the parent."""
    summarize = type("Summarize", (Summarize,), {"keep": lambda self, shared, s: keep(shared["scratch"], s)})
    translate = type("Translate", (translate_base or Translate,), {"find": lambda self, shared: find(shared["scratch"])})
    batch = type("AllDocuments", (AllDocuments,), {"setup": lambda self, shared: shared.__setitem__("scratch", make_scratch())})

    def build():
        return flow_of(summarize, translate, batch)

    build.__name__ = name
    return build


@dataclasses.dataclass
class Scratch:
    summary: str = ""


build_nested_dict_key = with_scratch(dict, lambda box, s: box.__setitem__("summary", s), lambda box: box["summary"],
                                     "build_nested_dict_key")
build_nested_list_slot = with_scratch(lambda: [None], lambda box, s: box.__setitem__(0, s), lambda box: box[0],
                                      "build_nested_list_slot")
build_shared_list_append = with_scratch(list, lambda box, s: box.append(s), lambda box: box[-1],
                                        "build_shared_list_append")
build_namespace_attribute = with_scratch(types.SimpleNamespace, lambda box, s: setattr(box, "summary", s),
                                         lambda box: box.summary, "build_namespace_attribute")
build_dataclass_attribute = with_scratch(Scratch, lambda box, s: setattr(box, "summary", s), lambda box: box.summary,
                                         "build_dataclass_attribute")
GLOBAL_SCRATCH: dict[str, str] = {}


class GlobalSummarize(Summarize):
    def keep(self, shared, summary):
        GLOBAL_SCRATCH["summary"] = summary


class GlobalTranslate(Translate):
    def find(self, shared):
        return GLOBAL_SCRATCH["summary"]


def build_global_variable():
    """The summary moved out of shared into a module-level dict: no detector sees it, the results do."""
    return flow_of(GlobalSummarize, GlobalTranslate, AllDocuments)


class ClassAttributeSummarize(Summarize):
    latest = ""

    def keep(self, shared, summary):
        ClassAttributeSummarize.latest = summary


class ClassAttributeTranslate(Translate):
    def find(self, shared):
        return ClassAttributeSummarize.latest


def build_class_attribute():
    return flow_of(ClassAttributeSummarize, ClassAttributeTranslate, AllDocuments)


class PrepResTranslate(Translate):
    """Reads the fixed key at once in prep_async and uses prep_res afterwards: right this time, still a race."""

    def find(self, shared):
        return shared["summary"]

    async def post_async(self, shared, prep_res, french):
        shared["results"][self.params["doc_id"]] = {"summary": prep_res, "french": french}


class FixedKeySummarize(Summarize):
    def keep(self, shared, summary):
        shared["summary"] = summary


def build_fixed_key_read_once():
    return flow_of(FixedKeySummarize, PrepResTranslate, AllDocuments)


build_nested_key_read_once = with_scratch(dict, lambda box, s: box.__setitem__("summary", s),
                                          lambda box: box["summary"], "build_nested_key_read_once", PrepResTranslate)


def build_sequential_flow():
    """The racy nodes, made safe by running the sub-flows one after another."""

    class OneAfterAnother(AsyncBatchFlow):
        async def prep_async(self, shared):
            shared["results"] = {}
            return [{"doc_id": doc_id} for doc_id in shared["documents"]]

    summarize = solution(EX4, "Summarize")()
    summarize >> solution(EX4, "Translate")()
    return OneAfterAnother(start=summarize)


def build_locked_flow():
    """The racy flow with a lock held across each whole sub-flow: safe, and serial."""

    class Locked(AsyncParallelBatchFlow):
        async def prep_async(self, shared):
            shared["results"] = {}
            self.lock = asyncio.Lock()
            return [{"doc_id": doc_id} for doc_id in shared["documents"]]

        async def _orch_async(self, shared, params=None):
            async with self.lock:
                return await super()._orch_async(shared, params)

    summarize = solution(EX4, "Summarize")()
    summarize >> solution(EX4, "Translate")()
    return Locked(start=summarize)


def build_containers_in_subflows():
    """Per-item keys, but every sub-flow creates the shared dict it files into, wiping the others'."""

    class SummarizeAndCreate(solution(EX4, "SafeSummarize")):
        async def post_async(self, shared, prep_res, summary):
            shared["summaries"] = {}
            shared["summaries"][self.params["doc_id"]] = summary

    class ResultsOnly(AsyncParallelBatchFlow):
        async def prep_async(self, shared):
            shared["results"] = {}
            return [{"doc_id": doc_id} for doc_id in shared["documents"]]

    summarize = SummarizeAndCreate()
    summarize >> solution(EX4, "SafeTranslate")()
    return ResultsOnly(start=summarize)


def limited(limit: int):
    """The safe nodes under a BoundedParallelBatchFlow with a limit: no race, and slower than need be."""
    batch = type("AllDocuments", (BoundedParallelBatchFlow, AllDocuments), {})

    def build_limited_flow():
        first = Summarize()
        first >> Translate()
        return batch(start=first, max_concurrency=limit)

    return build_limited_flow


# -- right answers written differently --------------------------------------------------------------


class TopLevelKeySummarize(Summarize):
    def keep(self, shared, summary):
        shared[f"summary:{self.params['doc_id']}"] = summary


class TopLevelKeyTranslate(Translate):
    def find(self, shared):
        return shared[f"summary:{self.params['doc_id']}"]


def build_per_item_top_level_keys():
    return flow_of(TopLevelKeySummarize, TopLevelKeyTranslate, AllDocuments)


def build_per_item_nested_keys():
    return flow_of(Summarize, Translate, AllDocuments)


class SetdefaultSummarize(Summarize):
    def keep(self, shared, summary):
        shared.setdefault("drafts", {})[self.params["doc_id"]] = summary


class SetdefaultTranslate(Translate):
    def find(self, shared):
        return shared["drafts"][self.params["doc_id"]]


def build_setdefault_container():
    """The first sub-flow creates the dict; the others find it there. No await between: safe."""
    return flow_of(SetdefaultSummarize, SetdefaultTranslate, AllDocuments)


# -- the tests ----------------------------------------------------------------------------------------


def test_ex4_solution_passes_every_time():
    for _ in range(REPEATS):
        result = quiet(check_safe_flow, solution(EX4, "build_safe_flow"))
        assert result.passed, result.message


@pytest.mark.parametrize("answer", [build_per_item_top_level_keys, build_per_item_nested_keys,
                                    build_setdefault_container])
def test_ex4_other_right_answers_pass(answer):
    assert_passes_on_every_seed(check_safe_flow, answer)


@pytest.mark.parametrize("answer, keywords", [
    ("racy", ("both wrote shared['summary']", "self.params")),
    (build_sequential_flow, ("one after another", "the longest summarize-then-translate chain")),
    (build_locked_flow, ("one after another", "a lock")),
    (build_containers_in_subflows, ("both wrote shared['summaries']", "prep_async")),
    (build_nested_dict_key, ("both wrote shared['scratch']['summary']", "as shared as a top-level key")),
    (build_nested_list_slot, ("both wrote shared['scratch'][0]",)),
    (build_shared_list_append, ("both wrote shared['scratch']",)),
    (build_namespace_attribute, ("both wrote shared['scratch'].summary",)),
    (build_dataclass_attribute, ("both wrote shared['scratch'].summary",)),
    (build_global_variable, ("It holds the summary of document", "a global variable")),
    (build_class_attribute, ("It holds the summary of document", "a class attribute")),
    (build_fixed_key_read_once, ("both wrote shared['summary']", "happened to come out right")),
    (build_nested_key_read_once, ("both wrote shared['scratch']['summary']", "happened to come out right")),
    (limited(2), ("longer than the longest chain", "max_concurrency")),
], ids=["the racy flow", "AsyncBatchFlow", "a lock", "containers made in each sub-flow", "a key in a shared dict",
        "a slot in a shared list", "a shared list appended to", "a SimpleNamespace attribute",
        "a dataclass attribute", "a global variable", "a class attribute", "a fixed key read once",
        "a nested key read once",
        "a limit on the flow"])
def test_ex4_wrong_answers_fail_with_the_right_message(answer, keywords):
    answer = solution(EX4, "build_racy_flow") if answer == "racy" else answer
    assert_fails(check_safe_flow, answer, *keywords)


def test_ex4_solution_passes_and_wrong_answers_fail_on_every_seed():
    assert_passes_on_every_seed(check_safe_flow, solution(EX4, "build_safe_flow"))
    wrong = [solution(EX4, "build_racy_flow"), build_sequential_flow, build_locked_flow, build_containers_in_subflows,
             build_nested_dict_key, build_nested_list_slot, build_shared_list_append, build_namespace_attribute,
             build_dataclass_attribute, build_nested_key_read_once, build_global_variable, build_class_attribute,
             build_fixed_key_read_once, *(limited(limit) for limit in range(1, 6))]
    for answer in wrong:
        assert_fails_on_every_seed(check_safe_flow, answer)


def test_ex4_stub_is_not_attempted():
    assert quiet(check_safe_flow, stub(EX4, "build_safe_flow")).status == "not attempted"


def test_ex4_wants_a_builder_function():
    with pytest.raises(TypeError, match="build_flow must be a function that returns a new flow"):
        check_safe_flow(solution(EX4, "build_safe_flow")())
