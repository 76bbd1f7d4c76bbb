"""A journal that cannot be used fails at open, before any call is paid, with one error class; a disk that fills mid-batch loses no answer.

The failures are real: a read-only mount or bind mount, a tmpfs that is full, a page of the
file overwritten. Mounting needs root (the tests run as root, so file modes would not bind);
without it these tests are skipped.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pocket_parallel import SimulatedLLM, run
from pocket_parallel.journal import Journal, JournalError
from tests.support import AskNode, prompts


def _mount(*arguments: str) -> None:
    subprocess.run(["mount", *arguments], check=True, capture_output=True)


@contextmanager
def small_disk(folder: Path, kilobytes: int) -> Iterator[Path]:
    """A tmpfs of ``kilobytes`` mounted at ``folder`` (skips the test where mounting is not allowed)."""
    folder.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder))
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {error}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def fill(folder: Path) -> Path:
    """Fill the disk holding ``folder`` to the last byte; returns the file that fills it."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:  # no space left for this size: try smaller pieces
                pass
    finally:
        os.close(descriptor)
    return filler


NODE = f"{AskNode.__module__}.{AskNode.__qualname__}"  # the identity AskNode's journal gets


def a_journal(path: Path, rows: int = 3) -> Path:
    with Journal(path, NODE) as journal:
        for i in range(rows):
            journal.record_result(f"k{i}", f"answer {i} " * 20)
    return path


def refused(path: Path, kind: str) -> JournalError:
    with pytest.raises(JournalError) as raised:
        Journal(path, NODE)
    error = raised.value
    assert error.kind == kind and error.path == path and str(path) in str(error)
    return error


def test_a_read_only_mount_is_found_at_open(tmp_path):
    with small_disk(tmp_path / "disk", 1024) as disk:
        existing = a_journal(disk / "journal.sqlite")
        _mount("-o", "remount,ro", str(disk))
        assert "make it writable" in str(refused(existing, "read_only"))
        refused(disk / "new.sqlite", "read_only")


def test_a_read_only_file_is_found_at_open_before_any_call_is_paid(tmp_path):
    path = a_journal(tmp_path / "journal.sqlite")
    if os.geteuid() != 0:
        pytest.skip("cannot mount here (needs root)")
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,ro,bind", str(path))
        refused(path, "read_only")
        llm = SimulatedLLM(latency=1.0)
        with pytest.raises(JournalError, match="read-only"):
            run(AskNode(llm, journal=path).run_async({"prompts": prompts(5)}), clock="virtual")
        assert llm.stats.calls == 0
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def test_a_damaged_page_is_found_at_open(tmp_path):
    path = a_journal(tmp_path / "journal.sqlite", rows=200)
    size = path.stat().st_size
    assert size > 4 * 4096 and not Path(f"{path}-wal").exists()  # the rows are in the file itself
    with open(path, "r+b") as file:
        file.seek(3 * 4096)
        file.write(os.urandom(4096))
    error = refused(path, "corrupt")
    assert "move it aside" in str(error)


def test_a_file_that_is_not_sqlite_is_refused_with_the_same_class(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"not a database at all, but long enough to look like a file header" * 10)
    refused(path, "not_a_journal")


def test_a_full_disk_is_found_at_open(tmp_path):
    with small_disk(tmp_path / "disk", 256) as disk:
        existing = a_journal(disk / "journal.sqlite")
        fill(disk)
        assert "free some space" in str(refused(disk / "new.sqlite", "disk_full"))
        refused(existing, "disk_full")


def test_a_disk_that_fills_during_a_batch_keeps_every_answer_and_says_which_were_not_saved(tmp_path):
    items = prompts(30)
    with small_disk(tmp_path / "disk", 2048) as disk:
        path = disk / "journal.sqlite"
        llm = SimulatedLLM(latency=1.0)

        class Filling(AskNode):  # the disk fills after the eleventh answer of the first run
            async def exec_async(self, prompt):
                answer = await self.llm(prompt)
                if prompt == items[10] and not (disk / "filler").exists() and len(llm.trace) <= len(items):
                    fill(disk)
                return answer * 50

        node = Filling(llm, max_concurrency=1, journal=path)
        shared = {"prompts": items}
        with pytest.warns(RuntimeWarning, match=r"were not saved in the journal: the disk holding journal .* is full"):
            run(node.run_async(shared), clock="virtual")
        assert shared["answers"] == [SimulatedLLM().answer_for(p) * 50 for p in items]  # every answer kept
        not_saved = node.outcomes.not_saved
        assert not_saved and set(not_saved) <= set(items[10:]) and "not saved in the journal" in repr(node.outcomes)
        (disk / "filler").unlink()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run(Filling(llm, max_concurrency=1, journal=path).run_async({"prompts": items}), clock="virtual")
    assert {record.prompt for record in llm.trace[len(items):]} == set(not_saved)  # only those were paid again
