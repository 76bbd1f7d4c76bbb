"""Finding processes a test started and left behind (Linux ``/proc``; elsewhere nothing is found).

A server or a kernel started for a test is tied to a temporary folder: it runs in it, or its
command line names it (a kernel's connection file lives in the test's Jupyter runtime folder).
Tests list such processes after stopping what they started, fail if any is left, and then kill
them so that one failure does not leak into the next test.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

PROC = Path("/proc")


def processes_using(folder: Path) -> dict[int, str]:
    """{pid: description} of the processes whose working folder or command line lies in ``folder``."""
    folder = Path(folder).resolve()
    found: dict[int, str] = {}
    if not PROC.is_dir():
        return found
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if str(folder) in command or cwd == str(folder) or cwd.startswith(f"{folder}{os.sep}"):
            found[int(entry.name)] = f"pid {entry.name} in {cwd}: {command[:200]}"
    return found


def _live_processes() -> dict[int, tuple[int, int, str]]:
    """{pid: (parent pid, process group, command line)} of every live (not zombie) process we may read."""
    found: dict[int, tuple[int, int, str]] = {}
    if not PROC.is_dir():
        return found
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        state, parent, group = stat[stat.rfind(")") + 2:].split()[:3]
        if state != "Z":
            found[int(entry.name)] = (int(parent), int(group), command[:200])
    return found


def process_group(pgid: int) -> dict[int, str]:
    """{pid: command line} of the live (not zombie) processes in process group ``pgid``."""
    return {pid: command for pid, (_, group, command) in _live_processes().items() if group == pgid}


def multiprocessing_helpers() -> set[int | None]:
    """multiprocessing's fork server and resource tracker: started once, by design they live as long as this process."""
    from multiprocessing import forkserver, resource_tracker

    return {getattr(forkserver._forkserver, "_forkserver_pid", None),
            getattr(resource_tracker._resource_tracker, "_pid", None)}


def kill(pids: dict[int, str] | list[int]) -> None:
    """SIGKILL each of ``pids``, ignoring those already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def descendants(pid: int | None = None) -> dict[int, str]:
    """{pid: command line} of the live (not zombie) processes descended from ``pid`` (default: this one)."""
    table = _live_processes()
    found: dict[int, str] = {}
    frontier = [os.getpid() if pid is None else pid]
    while frontier:
        current = frontier.pop()
        for child, (parent, _, command) in table.items():
            if parent == current and child not in found:
                found[child] = command
                frontier.append(child)
    return found


def open_sockets() -> set[str]:
    """The sockets this process holds open (their ``socket:[inode]`` names; Linux only)."""
    fds = PROC / "self" / "fd"
    found = set()
    if not fds.is_dir():
        return found
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found
