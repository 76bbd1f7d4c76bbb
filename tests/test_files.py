"""write_atomic: a file appears whole or not at all, from sync and async code."""

from __future__ import annotations

import asyncio
import os
import stat
import time

import pytest

from pocket_parallel import run, write_atomic_async
from pocket_parallel.files import write_atomic


def leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def test_writes_text_and_bytes_and_replaces_whole(tmp_path):
    target = tmp_path / "translation_spanish.txt"
    assert write_atomic(target, "[Spanish] Hola") == target
    assert target.read_text(encoding="utf-8") == "[Spanish] Hola"
    write_atomic(str(target), "ünïcode".encode("utf-8"))
    assert target.read_text(encoding="utf-8") == "ünïcode"
    assert leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "summary.txt"
    target.write_text("the old, complete summary")

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "the new summary " * 1000)
    assert target.read_text() == "the old, complete summary"
    assert leftovers(tmp_path) == []


def test_an_interrupted_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "new.txt"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "text")
    assert not target.exists() and leftovers(tmp_path) == []


def test_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "script.sh"
    target.write_text("old")
    target.chmod(0o750)
    write_atomic(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    fresh = write_atomic(tmp_path / "fresh.txt", "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644


def test_async_writes_do_not_block_the_loop(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def slow_disk(descriptor):
        time.sleep(0.1)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", slow_disk)

    async def save_while_counting():
        ticks = 0

        async def heartbeat():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        beat = asyncio.ensure_future(heartbeat())
        await asyncio.sleep(0)
        before = ticks
        paths = await asyncio.gather(*(write_atomic_async(tmp_path / f"t{i}.txt", f"text {i}") for i in range(4)))
        beat.cancel()
        return paths, ticks - before

    paths, ticks = run(save_while_counting(), clock="real")
    assert [p.read_text() for p in paths] == [f"text {i}" for i in range(4)]
    assert ticks >= 5  # the loop kept running while the slow writes went on in threads
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda d: write_atomic(42, "x"), TypeError, "path"),
        (lambda d: write_atomic(d / "a.txt", 42), TypeError, "data"),
        (lambda d: write_atomic(d / "missing" / "a.txt", "x"), FileNotFoundError, "folder"),
        (lambda d: write_atomic(d / "a.txt", "x", encoding="klingon"), ValueError, "encoding"),
    ],
)
def test_bad_arguments_are_named(tmp_path, call, error, name):
    with pytest.raises(error, match=name):
        call(tmp_path)
