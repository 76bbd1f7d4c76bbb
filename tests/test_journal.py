"""Journal: finished items kept in SQLite, so a re-run after a crash pays only for what is missing."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import OrderedDict, namedtuple
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocket_parallel import run
from pocket_parallel.journal import Journal, JournalError, JournalMismatchError, RecordedFailure, item_key

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 120  # seconds; a child still running then is killed and the test fails


@dataclass(frozen=True)
class Summary:
    title: str
    words: int


def same(a, b) -> bool:
    """Equal *and* of the same types all the way down (1 == 1.0 == True would hide a lossy codec)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(k1, k2) and same(a[k1], b[k2]) for k1, k2 in zip(a, b))
    return a == b


def run_child(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


# Values JSON holds exactly, and values it would change (so they must go through pickle).
JSON_VALUES = {
    "text": "[Spanish] Hola, ¿qué tal? 你好 \U0001f600",
    "empty": "",
    "lone_surrogate": "\ud800 half a pair",
    "int": 12,
    "huge_int": 2**200,
    "float": 0.1,
    "negative_zero": -0.0,
    "tiny": 5e-324,
    "true": True,
    "none": None,
    "nested": {"answer": ["a", 1, 2.5, None, False, {"deep": []}], "": {}},
}
PICKLE_VALUES = {
    "tuple": ("answer", 3),
    "int_keys": {1: "one", 2: "two"},
    "set": {1, 2, 3},
    "bytes": b"\x00\xff",
    "nan": float("nan"),
    "infinity": float("inf"),
    "dataclass": Summary("Parallel calls", 42),
    "fraction": Fraction(1, 3),
    "list_with_tuple": [1, (2, 3)],
    "ordered_dict": OrderedDict(a=1),
}


def test_results_come_back_exactly_through_json_or_pickle(tmp_path):
    path = tmp_path / "journal.sqlite"
    values = {**JSON_VALUES, **PICKLE_VALUES}
    with Journal(path, "test.Summarize") as journal:
        for position, (key, value) in enumerate(values.items()):
            assert journal.record_result(key, value, position=position) is True
    with Journal(path, "test.Summarize") as reopened:  # a new connection: nothing cached in Python
        answered = reopened.answered(list(values) + ["never-seen"])
        stream = io.StringIO()
        reopened.export_jsonl(stream)
        reopened.export_jsonl(tmp_path / "export.jsonl")  # UTF-8 on disk, whatever the values hold
    assert (tmp_path / "export.jsonl").read_text(encoding="utf-8") == stream.getvalue()
    assert set(answered) == set(values)
    for key, value in values.items():
        assert same(answered[key], value), (key, answered[key], value)
    codecs = {row["key"]: row["codec"] for row in map(json.loads, stream.getvalue().splitlines())}
    assert codecs == {**dict.fromkeys(JSON_VALUES, "json"), **dict.fromkeys(PICKLE_VALUES, "pickle")}


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
any_scalars = json_scalars | st.binary() | st.floats()
any_values = st.recursive(
    any_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=4)
    | st.frozensets(json_scalars | st.binary(), max_size=4),  # NaN in a set: equal to no copy of itself
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(value=any_values)
def test_any_value_comes_back_exactly(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("values") / "journal.sqlite"
    with Journal(path, "test") as journal:
        journal.record_result("k", value)
        assert same(journal.answered(["k"])["k"], value)


def test_an_int_too_long_for_json_text_still_comes_back(tmp_path):
    value = -(10**5000) + 7  # Python refuses to turn ints of over 4300 digits into text by default
    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        journal.record_result("k", [value])
        assert journal.answered(["k"]) == {"k": [value]}


class Gone:
    """A result class that will have disappeared when the journal is read (a cell not re-run)."""

    def __init__(self, text: str) -> None:
        self.text = text


def test_a_result_whose_class_is_gone_is_reported_by_key(tmp_path, monkeypatch):
    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        journal.record_result("k", Gone("summary"))
        journal.record_result("fine", "still readable")
        monkeypatch.delattr(sys.modules[__name__], "Gone")
        with pytest.raises(ValueError, match="result for key 'k' cannot be unpickled.*Gone.*define or import"):
            journal.answered(["k", "fine"])
        assert journal.answered(["fine"]) == {"fine": "still readable"}
        stream = io.StringIO()
        assert journal.export_jsonl(stream) == 2  # the export still lists the row, saying why it has no value
        assert "cannot be unpickled" in json.loads(stream.getvalue().splitlines()[0])["value"]


def test_a_value_that_cannot_be_stored_is_refused_and_nothing_is_written(tmp_path):
    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        with pytest.raises(TypeError, match="result for key 'k'.*neither as JSON nor with pickle"):
            journal.record_result("k", lambda: None)
        assert journal.counts() == {"ok": 0, "failed": 0}


def test_failures_are_kept_but_not_done(tmp_path):
    path = tmp_path / "journal.sqlite"
    with Journal(path, "test") as journal:
        journal.record_result("good", "answer")
        assert journal.record_failure("bad", TimeoutError("no answer in 30 s"), 3, position=1) is True
        journal.record_failure("odd", UnicodeError("half a pair: \udc80"), 1)
    with Journal(path, "test") as journal:
        assert journal.answered(["good", "bad"]) == {"good": "answer"}
        failed = journal.failed(["good", "bad", "unknown"])
        assert list(failed) == ["bad"]
        assert isinstance(failed["bad"], RecordedFailure)
        assert (failed["bad"].error_type, failed["bad"].message, failed["bad"].attempts) == (
            "TimeoutError",
            "no answer in 30 s",
            3,
        )
        assert journal.failed(["odd"])["odd"].message == "half a pair: \\udc80"  # escaped, not lost
        assert journal.counts() == {"ok": 1, "failed": 2}


def test_error_types_outside_builtins_keep_their_module(tmp_path):
    from pocket_parallel import TransientLLMError

    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        journal.record_failure("k", TransientLLMError("Summarize: a", attempt=2), 2)
        failure = journal.failed(["k"])["k"]
        assert failure.error_type == "pocket_parallel.backends.simulated.TransientLLMError"
        assert failure.message == "transient failure on attempt 2 for prompt 'Summarize: a'"


def test_a_result_replaces_a_failure_and_a_failure_never_replaces_a_result(tmp_path):
    path = tmp_path / "journal.sqlite"
    # Two connections to one file, as a re-run and a racing process would have.
    with Journal(path, "test") as first, Journal(path, "test") as second:
        first.record_failure("a", RuntimeError("first try"), 2)
        assert second.record_failure("a", RuntimeError("second try"), 4) is True  # failure over failure
        assert first.failed(["a"])["a"].message == "second try"
        assert second.record_result("a", "answer") is True
        assert first.answered(["a"]) == {"a": "answer"} and first.failed(["a"]) == {}
        assert first.record_failure("a", RuntimeError("late failure"), 1) is False
        assert second.answered(["a"]) == {"a": "answer"} and second.failed(["a"]) == {}
        assert first.counts() == {"ok": 1, "failed": 0}


def test_an_answered_key_keeps_its_first_result(tmp_path):
    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        assert journal.record_result("a", "first answer", position=0) is True
        assert journal.record_result("a", "second answer", position=0) is False
        assert journal.answered(["a"]) == {"a": "first answer"}


def test_a_rerun_pays_only_for_what_is_missing_and_ends_like_an_uninterrupted_run(tmp_path):
    items = [f"Summarize: text {i}" for i in range(30)] + [("pair", i) for i in range(10)]
    paid: list[object] = []

    def summarize(item):
        paid.append(item)
        if item == "Summarize: text 7" and len(paid) < 20:
            raise ConnectionError("connection reset")  # fails in the first run only
        return {"summary": str(item).upper()} if isinstance(item, str) else (item, len(paid))

    def batch(crash_after: int | None) -> list[object]:
        with Journal(tmp_path / "batch.sqlite", "test.batch") as journal:
            keys = [journal.key_of(item) for item in items]
            results = journal.answered(keys)
            for position, (key, item) in enumerate(zip(keys, items)):
                if key in results:
                    continue
                if position == crash_after:
                    raise KeyboardInterrupt  # the kernel is stopped mid-batch
                try:
                    results[key] = summarize(item)
                except ConnectionError as error:
                    journal.record_failure(key, error, 1, position=position)
                    continue
                journal.record_result(key, results[key], position=position)
            return [results.get(key) for key in keys]

    with pytest.raises(KeyboardInterrupt):
        batch(crash_after=25)
    assert len(paid) == 25
    second = batch(crash_after=None)  # retries item 7 (it failed) and pays for 25..39
    assert paid[25:] == ["Summarize: text 7"] + items[25:]
    paid_before = len(paid)
    third = batch(crash_after=None)
    assert len(paid) == paid_before  # everything answered: nothing paid twice
    assert same(third, second)
    expected_strings = [{"summary": item.upper()} for item in items[:30]]
    assert same(second[:30], expected_strings)
    assert [result[0] for result in second[30:]] == items[30:]


# --- keys ---------------------------------------------------------------------------------

KEYED_ITEMS = [
    "Translate to Spanish: Hello",
    "",
    "\ud800 lone surrogate",
    b"bytes",
    0,
    -(2**100),
    10**5000,
    1.5,
    -0.0,
    float("inf"),
    True,
    None,
    (1, "a", (2.0, None)),
    [1, [2, [3]]],
    {"b": 2, "a": [1, {"c": None}]},
    {3, 1, 2},
    frozenset({"x", "y"}),
    {"params": {"doc": "a.txt", "language": "Spanish"}},
]

KEY_CHILD = """
import json, pickle, sys
from pocket_parallel.journal import item_key
items = pickle.loads(bytes.fromhex(sys.argv[1]))
print(json.dumps([item_key(item) for item in items]))
"""


def test_item_keys_are_the_same_in_other_processes_and_hash_seeds():
    here = [item_key(item) for item in KEYED_ITEMS]
    items = pickle.dumps(KEYED_ITEMS).hex()
    for seed in ("1", "2"):  # str and bytes hashes (and so set order) differ between these seeds
        child = run_child(KEY_CHILD, items, env={"PYTHONHASHSEED": seed})
        assert child.returncode == 0, child.stderr
        assert json.loads(child.stdout) == here
    assert len(set(here)) == len(here)
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in here)


def test_equal_items_share_a_key_whatever_their_order():
    assert item_key({"a": 1, "b": [2, 3]}) == item_key({"b": [2, 3], "a": 1})
    assert item_key({3, 2, 1}) == item_key(set([1, 2, 3]))
    assert item_key(frozenset({"x", ("y", 1)})) == item_key(frozenset({("y", 1), "x"}))
    assert item_key("Hello") == item_key("".join(["Hel", "lo"]))
    assert item_key(float("nan")) == item_key(float("nan"))


LOOK_ALIKES = [
    1, 1.0, True, "1", b"1", (1,), [1], {1}, frozenset({1}), {1: None}, {"1": None},
    0, 0.0, -0.0, False, None, "None", "", b"", (), [], {}, set(), frozenset(),
    ("a", "b"), ("ab",), ["a", "b"], [["a"], "b"], ["a", ["b"]], ("a", ("b",)),
    {"a": 1}, {"a": "1"}, {"a": True}, [("a", 1)], (("a", 1),), {("a", 1)},
    "s1:a", ["s1:a"], "l1:s1:a", [[]], [[], []], [[[]]], ("",), ("", ""),
    {"a": [], "b": []}, {"a": [], "b": [[]]}, {"ab": []},
]  # fmt: skip


def test_type_tagged_look_alikes_never_share_a_key():
    keys = [item_key(item) for item in LOOK_ALIKES]
    clashes = [
        (LOOK_ALIKES[i], LOOK_ALIKES[j])
        for i in range(len(keys))
        for j in range(i + 1, len(keys))
        if keys[i] == keys[j]
    ]
    assert clashes == []


hashable_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
keyable = st.recursive(
    hashable_scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.tuples(inner, inner)
    | st.dictionaries(hashable_scalars, inner, max_size=3)
    | st.frozensets(hashable_scalars, max_size=3)
    | st.sets(hashable_scalars, max_size=3),
    max_leaves=8,
)


def same_item(a, b) -> bool:
    """Strict equality for items, where dicts and sets compare regardless of order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same_item(x, y) for y in b) for x in a)
    if isinstance(a, dict):
        return len(a) == len(b) and all(any(same_item(k, j) and same_item(v, b[j]) for j in b) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_item(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@settings(max_examples=300, deadline=None)
@given(a=keyable, b=keyable)
def test_two_items_share_a_key_exactly_when_they_are_the_same(a, b):
    assert (item_key(a) == item_key(b)) == same_item(a, b)
    assert item_key(a) == item_key(_rebuilt(a))


def _rebuilt(value):
    """An equal copy built afresh: new containers, dicts and sets filled in reverse order."""
    if isinstance(value, dict):
        return dict(reversed([(_rebuilt(k), _rebuilt(v)) for k, v in value.items()]))
    if isinstance(value, (set, frozenset)):
        return type(value)(reversed([_rebuilt(x) for x in value]))
    if isinstance(value, (list, tuple)):
        return type(value)(_rebuilt(x) for x in value)
    return value


Point = namedtuple("Point", "x y")


class Document:
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.parametrize(
    "item, named",
    [
        (Document("a.txt"), "Document"),
        (["ok", Document("b.txt")], "Document inside"),
        ({"doc": object()}, "object inside"),
        ({Document("c.txt"): 1}, "Document inside"),
        (Point(1, 2), "Point"),
        (bytearray(b"x"), "bytearray"),
        (Fraction(1, 2), "Fraction"),
    ],
)
def test_items_without_a_canonical_form_ask_for_a_key_function(item, named):
    with pytest.raises(TypeError, match=f"cannot hash a {named}.*key="):
        item_key(item)


def test_an_item_that_contains_itself_asks_for_a_key_function():
    loop: list[object] = ["a"]
    loop.append(loop)
    with pytest.raises(TypeError, match="contains itself.*key function"):
        item_key(loop)


def test_a_key_function_names_items_that_have_no_canonical_form(tmp_path):
    docs = [Document("a.txt"), Document("b.txt")]
    with Journal(tmp_path / "journal.sqlite", "test", key=lambda doc: doc.name) as journal:
        assert [journal.key_of(doc) for doc in docs] == ["a.txt", "b.txt"]
        journal.record_result(journal.key_of(docs[0]), "summary of a")
        assert journal.answered([journal.key_of(Document("a.txt"))]) == {"a.txt": "summary of a"}
    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        assert journal.key_of("a.txt") == item_key("a.txt")  # no key function: the content hash
    with Journal(tmp_path / "other.sqlite", "test", key=lambda doc: len(doc.name)) as journal:
        with pytest.raises(TypeError, match="key must return a non-empty str.*returned 5"):
            journal.key_of(docs[0])
    with pytest.raises(TypeError, match="key must be a function"):
        Journal(tmp_path / "third.sqlite", "test", key="name")


# --- identity and bad input ---------------------------------------------------------------


def test_a_journal_of_another_workload_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "journal.sqlite"
    with Journal(path, "myproject.Summarize:v1") as journal:
        journal.record_result("a", "summary")
    with pytest.raises(JournalMismatchError) as raised:
        Journal(path, "myproject.Translate")
    message = str(raised.value)
    assert "'myproject.Summarize:v1'" in message and "'myproject.Translate'" in message and str(path) in message
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, JournalError)
    assert raised.value.kind == "mismatch" and raised.value.path == path
    with Journal(path, "myproject.Summarize:v1") as journal:
        assert journal.answered(["a"]) == {"a": "summary"}


@pytest.mark.parametrize("identity", ["", "   ", None, 3])
def test_identity_must_be_a_non_empty_str(tmp_path, identity):
    with pytest.raises(ValueError, match="identity must be a non-empty str"):
        Journal(tmp_path / "journal.sqlite", identity)
    assert not (tmp_path / "journal.sqlite").exists()


def _text_file(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("these are my notes, not a journal\n")
    return path


def _other_sqlite(folder: Path) -> Path:
    path = folder / "app.db"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE users (name TEXT)")
    connection.close()
    return path


def _future_journal(folder: Path) -> Path:
    path = folder / "future.sqlite"
    Journal(path, "test").close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    return path


@pytest.mark.parametrize(
    "make_path, error, message",
    [
        (lambda d: d / "missing" / "journal.sqlite", FileNotFoundError, "path's folder does not exist"),
        (lambda d: d, IsADirectoryError, "path must be a journal file, not a folder"),
        (_text_file, JournalError, "path is not a journal: .* is not a SQLite database; give the journal a path"),
        (_other_sqlite, JournalError, "path is not a journal: .* SQLite database of another program"),
        (_future_journal, JournalError, "path .* is a journal of format version 99, and .* reads version 1"),
        (lambda d: ":memory:", ValueError, "path must name a file on disk"),
        (lambda d: "", ValueError, "path must name a file on disk"),
        (lambda d: 42, TypeError, "path must be a str or a path"),
        (lambda d: os.fsencode(d / "j.sqlite"), TypeError, "path must be a str or a path"),
    ],
)
def test_bad_paths_are_refused_with_a_clear_message(tmp_path, make_path, error, message):
    path = make_path(tmp_path)
    before = Path(path).read_bytes() if isinstance(path, Path) and path.is_file() else None
    with pytest.raises(error, match=message):
        Journal(path, "test")
    if before is not None:
        assert Path(path).read_bytes() == before  # refused files are not touched


def test_an_empty_file_becomes_a_journal(tmp_path):
    path = tmp_path / "journal.sqlite"
    path.touch()  # made by a tool, or by another process that is creating the journal right now
    with Journal(path, "test") as journal:
        journal.record_result("a", 1)
    with Journal(path, "test") as journal:
        assert journal.answered(["a"]) == {"a": 1}


def test_bad_arguments_name_their_parameter(tmp_path):
    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        with pytest.raises(TypeError, match="key must be a non-empty str"):
            journal.record_result(3, "x")
        with pytest.raises(TypeError, match="key must be a non-empty str"):
            journal.record_failure("", RuntimeError(), 1)
        for position in (-1, 1.0, True, "0"):
            with pytest.raises(ValueError, match=r"position must be an integer >= 0"):
                journal.record_result("k", "x", position=position)
        for attempts in (0, 2.0, None):
            with pytest.raises(ValueError, match=r"attempts must be an integer >= 1"):
                journal.record_failure("k", RuntimeError(), attempts)
        with pytest.raises(TypeError, match="error must be the exception"):
            journal.record_failure("k", "it broke", 1)
        with pytest.raises(TypeError, match="keys must be an iterable of keys"):
            journal.answered("abc")
        with pytest.raises(TypeError, match="key must be a non-empty str"):
            journal.failed([1, 2])
        with pytest.raises(TypeError, match="target must be a file path or a text stream"):
            journal.export_jsonl(42)
        with pytest.raises(FileNotFoundError, match="target's folder does not exist"):
            journal.export_jsonl(tmp_path / "missing" / "out.jsonl")
        with pytest.raises(IsADirectoryError, match="target must be a file"):
            journal.export_jsonl(tmp_path)
        assert journal.counts() == {"ok": 0, "failed": 0}


def test_close_closes_the_connection_and_further_use_is_refused(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, "test")
    journal.record_result("a", 1)
    assert Path(f"{path}-wal").exists()
    journal.close()
    # SQLite removes the write-ahead log when the last connection to the file closes.
    assert not Path(f"{path}-wal").exists()
    journal.close()  # again: nothing happens
    for use in (lambda: journal.record_result("b", 2), lambda: journal.answered(["a"]), journal.counts):
        with pytest.raises(ValueError, match="is closed"):
            use()
    assert "closed" in repr(journal)


# --- threads, event loops, processes -------------------------------------------------------


def test_one_journal_used_from_many_threads_at_once(tmp_path):
    path = tmp_path / "journal.sqlite"
    with Journal(path, "test") as journal:  # created here, used only by the pool's threads

        def write(worker: int) -> None:
            for i in range(200):
                journal.record_result(f"{worker}-{i}", [worker, i], position=worker * 200 + i)
                assert journal.answered([f"{worker}-{i}"]) == {f"{worker}-{i}": [worker, i]}

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(8)))
        assert journal.counts() == {"ok": 1600, "failed": 0}


def test_used_from_an_event_loop_on_a_worker_thread(tmp_path):
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, "test")

    async def batch() -> list[str]:
        assert threading.current_thread() is not threading.main_thread()

        async def one(i: int) -> str:
            await asyncio.sleep(0.001 * (i % 5))
            answer = f"answer {i}"
            journal.record_result(journal.key_of(i), answer, position=i)
            return answer

        return await asyncio.gather(*(one(i) for i in range(50)))

    async def from_a_running_loop() -> list[str]:
        return run(batch())  # a loop is running here, so run() uses a worker thread, as in a notebook

    try:
        answers = asyncio.run(from_a_running_loop())
        assert journal.answered([journal.key_of(i) for i in range(50)]) == {
            journal.key_of(i): answers[i] for i in range(50)
        }
    finally:
        journal.close()


WRITER_CHILD = """
import json, sys, time
from pocket_parallel.journal import Journal
path, name, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
while time.time() < start_at:  # both writers start together, on a journal that does not exist yet
    time.sleep(0.001)
began = time.perf_counter()
with Journal(path, "test.concurrent") as journal:
    for i in range(count):
        journal.record_result(f"{name}-{i}", {"writer": name, "i": i}, position=i)
        if i % 100 == 0:
            journal.record_failure(f"shared-{i}", RuntimeError(name), 1)
            journal.record_result(f"shared-{i}", i)
print(json.dumps({"rows": count, "seconds": time.perf_counter() - began}))
"""


def test_two_processes_write_one_journal_at_once(tmp_path):
    import time

    path = tmp_path / "journal.sqlite"
    count = 2000
    start_at = time.time() + 1.0
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_CHILD, str(path), name, str(count), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in ("a", "b")
    ]
    outputs = []
    try:
        for writer in writers:
            outputs.append(writer.communicate(timeout=CHILD_TIMEOUT))
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.communicate()
    for writer, (out, err) in zip(writers, outputs):
        assert writer.returncode == 0 and err == "", err
        assert "locked" not in err
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
    with Journal(path, "test.concurrent") as journal:
        keys = [f"{name}-{i}" for name in ("a", "b") for i in range(count)]
        answered = journal.answered(keys)
        assert answered == {f"{name}-{i}": {"writer": name, "i": i} for name in ("a", "b") for i in range(count)}
        shared = [f"shared-{i}" for i in range(0, count, 100)]
        # Each writer failed then answered every shared key: whatever the interleaving, a
        # failure never hid an answer.
        assert journal.answered(shared) == {key: int(key.split("-")[1]) for key in shared}
        assert journal.counts() == {"ok": 2 * count + len(shared), "failed": 0}


CREATOR_CHILD = """
import sys, time
from pocket_parallel.journal import Journal
folder, name, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
while time.time() < start_at:
    time.sleep(0.001)
for n in range(count):  # the other process opens the same new files in the same order
    with Journal(f"{folder}/journal-{n}.sqlite", "test.create") as journal:
        journal.record_result(name, n)
"""


def test_two_processes_creating_the_same_journals_at_once(tmp_path):
    import time

    count = 50
    start_at = time.time() + 1.0
    creators = [
        subprocess.Popen(
            [sys.executable, "-c", CREATOR_CHILD, str(tmp_path), name, str(count), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in ("a", "b")
    ]
    try:
        errors = [creator.communicate(timeout=CHILD_TIMEOUT)[1] for creator in creators]
    finally:
        for creator in creators:
            if creator.poll() is None:
                creator.kill()
                creator.communicate()
    assert [creator.returncode for creator in creators] == [0, 0], errors
    for n in range(count):
        with Journal(tmp_path / f"journal-{n}.sqlite", "test.create") as journal:
            assert journal.answered(["a", "b"]) == {"a": n, "b": n}


CRASH_CHILD = """
import sys
from pocket_parallel.journal import Journal
journal = Journal(sys.argv[1], "test.crash")
for i in range(10**7):
    journal.record_result(f"item-{i}", ["answer", i, "x" * (i % 50)], position=i)
    print(i, flush=True)  # printed only after the row is committed
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_rows_committed_before_a_kill_survive_it(tmp_path):
    path = tmp_path / "journal.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    watchdog = threading.Timer(CHILD_TIMEOUT, child.kill)  # never wait forever on a stuck child
    watchdog.start()
    try:
        confirmed = []
        while len(confirmed) < 500:
            line = child.stdout.readline()
            assert line, f"the writer stopped early: {child.stderr.read()}"
            confirmed.append(int(line))
        child.send_signal(signal.SIGKILL)  # mid-write: no clean-up, no close
        out, err = child.communicate()
        confirmed += [int(line) for line in out.splitlines()]
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert Path(f"{path}-wal").exists()  # killed with its log open: the next opener recovers it
    with Journal(path, "test.crash") as journal:
        answered = journal.answered(f"item-{i}" for i in confirmed)
        assert answered == {f"item-{i}": ["answer", i, "x" * (i % 50)] for i in confirmed}
        assert journal.counts()["ok"] >= len(confirmed)
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


# --- export ---------------------------------------------------------------------------------


def test_export_writes_every_row_as_json_in_input_order(tmp_path):
    path = tmp_path / "journal.sqlite"
    order = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4]
    with Journal(path, "test") as journal:
        for position in order:  # finishing out of order, as parallel items do
            if position == 3:
                journal.record_failure(f"k{position}", ValueError("bad \"input\"\n"), 2, position=position)
            elif position == 6:
                journal.record_result(f"k{position}", ("a", "tuple"), position=position)
            else:
                journal.record_result(f"k{position}", {"n": position, "text": "ünï"}, position=position)
        journal.record_result("no-position", "last")
        stream = io.StringIO()
        assert journal.export_jsonl(stream) == 11
        out = tmp_path / "export.jsonl"
        assert journal.export_jsonl(out) == 11
        assert journal.export_jsonl(str(out)) == 11  # replaces the file whole
    assert out.read_text(encoding="utf-8") == stream.getvalue()
    lines = stream.getvalue().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["key"] for row in rows] == [f"k{i}" for i in range(10)] + ["no-position"]
    assert [row["position"] for row in rows] == list(range(10)) + [None]
    assert rows[0]["value"] == {"n": 0, "text": "ünï"} and rows[0]["status"] == "ok"
    assert rows[3]["status"] == "failed" and rows[3]["value"] is None
    assert (rows[3]["error_type"], rows[3]["error_message"], rows[3]["attempts"]) == ("ValueError", 'bad "input"\n', 2)
    assert (rows[6]["codec"], rows[6]["value"]) == ("pickle", "('a', 'tuple')")
    assert all(row["written_at"].endswith("+00:00") for row in rows)
    assert set(rows[0]) == {
        "key", "position", "status", "codec", "value", "error_type", "error_message", "attempts", "written_at",
    }  # fmt: skip


def test_export_of_an_empty_journal_writes_nothing(tmp_path):
    with Journal(tmp_path / "journal.sqlite", "test") as journal:
        stream = io.StringIO()
        assert journal.export_jsonl(stream) == 0
        assert stream.getvalue() == ""


def test_answered_items_are_found_by_position(tmp_path):
    with Journal(tmp_path / "j.sqlite", "answered-items") as journal:
        journal.record_result(journal.key_of("b"), "B")
        journal.record_result(journal.key_of("d"), "D")
        assert journal.answered_items(["a", "b", "c", "d", "b"]) == {1: "B", 3: "D", 4: "B"}
        assert journal.answered_items([]) == {}
