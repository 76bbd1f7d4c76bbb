"""Write files that appear whole or not at all: a temporary file, then one atomic rename.

Writing straight into ``translation_spanish.txt`` leaves a half-written file behind when the
run is interrupted or fails mid-write, and a reader (another task, another program) can
see it half-done. Writing to a temporary file in the same folder and then renaming it over
the target with ``os.replace`` avoids both: the rename is atomic, so the path holds either
the old content or the complete new content, never a mixture.

:func:`write_atomic_async` does the same from async code without blocking the event loop
(the chapter's example reaches for ``aiofiles``, and forgets to import it; a worker thread
through ``asyncio.to_thread`` needs no extra package).
"""

from __future__ import annotations

import asyncio
import codecs
import os
import tempfile
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]
_NEW_FILE_MODE = 0o644  # what a plain open() gives under the usual umask of 022


def write_atomic(path: PathLike, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` (text or bytes) to ``path`` so that the file appears whole or not at all.

    The folder must exist. The content goes to a hidden temporary file beside ``path``,
    is flushed to disk, and is then renamed over ``path`` in one step. If anything fails
    before the rename, the temporary file is removed and ``path`` is left as it was.
    Returns the path written, as a ``pathlib.Path``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path; got {type(path).__name__}")
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"encoding must name a text encoding such as 'utf-8'; got {encoding!r}") from None
    if isinstance(data, str):
        payload = data.encode(encoding)
    elif isinstance(data, (bytes, bytearray)):
        payload = bytes(data)
    else:
        raise TypeError(f"data must be str or bytes; got {type(data).__name__}")
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"path's folder does not exist: {str(folder)!r}")
    try:
        mode = target.stat().st_mode & 0o777  # keep the permissions of the file it replaces
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _sync_folder(folder)
    return target


def _sync_folder(folder: Path) -> None:
    """Flush the rename itself to disk where the system allows it (POSIX); best effort."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


async def write_atomic_async(path: PathLike, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """:func:`write_atomic` from async code: runs in a worker thread, so the event loop keeps going.

    Cancelling the caller does not stop a write already handed to the thread: it finishes
    (whole) in the background. Either way the file is never seen half-written.
    """
    return await asyncio.to_thread(write_atomic, path, data, encoding=encoding)
