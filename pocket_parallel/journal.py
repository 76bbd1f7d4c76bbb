"""A durable record of finished batch items, so a re-run pays only for what is missing.

A batch that crashes at minute 18 of 19 has already paid for most of its calls. A
:class:`Journal` writes each item's outcome to a SQLite file the moment it arrives (one
small transaction per item), so after a crash, a kernel restart or a ``kill -9`` a re-run
can ask :meth:`Journal.answered` which items are done and send only the rest::

    with Journal("summaries.sqlite", identity="myproject.Summarize") as journal:
        keys = [journal.key_of(text) for text in texts]
        done = journal.answered(keys)                      # key -> stored result
        for position, (key, text) in enumerate(zip(keys, texts)):
            if key not in done:
                journal.record_result(key, summarize(text), position=position)

**What a committed write survives.** The file runs in SQLite's WAL mode with
``synchronous=NORMAL``: once ``record_result`` or ``record_failure`` returns, the row is in
the write-ahead log in the operating system's hands, so it survives the end of the process
however it ends (an exception, a kernel restart, ``SIGKILL``). It does not necessarily
survive a power cut or an operating-system crash: the rows written since the last
checkpoint may then be lost, but the file is never left corrupt. WAL needs memory shared
between processes on one machine, so keep the journal on a local disk, not a network share.

**When the file cannot be used** (another workload's journal, a file that is not one, a
read-only file or disk, a damaged page, a full disk), :class:`Journal` raises
:class:`JournalError`, naming the file and what to do, and its ``kind`` says which. Opening
finds all but the last before any call is paid: it checks that the file is a sound journal
of this workload and writes to it once. A disk that fills during a batch is found at the
write that fails; the batch keeps its answers (see the nodes' ``journal``).

**Several writers.** Any number of threads (through one :class:`Journal`, which serializes
them) and processes (each with its own) may write one journal at once: SQLite's lock lets
one write at a time and the others wait for it (a busy timeout) instead of failing with
"database is locked".

**Keys.** An item's key is a string that names it in every process and every Python run:
by default :func:`item_key`, a hash of the item's type and value; or what the ``key``
function you give returns. **Results** come back exactly as they went in: a value that
JSON holds exactly is stored as JSON, anything else with ``pickle``. Only open journals
that you or your own programs wrote: reading a pickled value can run any code its writer
chose, so a stranger's journal is as dangerous as a stranger's script.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, Union

from ._format import error_type_name
from ._validate import check_int
from .files import write_atomic
from .redaction import redact, safe_repr, safe_str

PathLike = Union[str, "os.PathLike[str]"]

_FORMAT_VERSION = 1
# SQLite's header field for "which application's file is this" (offset 68): "PPjn".
_APPLICATION_ID = 0x50506A6E
_SQLITE_MAGIC = b"SQLite format 3\x00"
# How long a writer waits for another to finish before giving up. Writes hold the lock
# only for one small transaction, so this is reached only when something is badly stuck.
_BUSY_TIMEOUT = 30.0
# Fixed rather than pickle.HIGHEST_PROTOCOL, so a newer Python writes what an older one reads.
_PICKLE_PROTOCOL = 5
# SQLite builds before 3.32 allow at most 999 parameters in one statement.
_KEYS_PER_QUERY = 500
_KEY_PERSON = b"pp-item-key-v1"  # tags the hash, so a change of encoding changes every key
_SEQUENCE_TAGS: dict[type, bytes] = {tuple: b"t", list: b"l", set: b"S", frozenset: b"z"}

_SCHEMA = """
CREATE TABLE journal_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE journal_rows (
    key           TEXT PRIMARY KEY,
    position      INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    codec         TEXT CHECK (codec IN ('json', 'pickle')),
    value         BLOB,
    error_type    TEXT,
    error_message TEXT,
    attempts      INTEGER,
    written_at    REAL NOT NULL
);
CREATE INDEX journal_rows_position ON journal_rows (position);
"""

# A result replaces a failure but never another result: once a key is answered, every
# reader (this run, a re-run racing it in another process) sees the same answer.
_UPSERT_RESULT = """
INSERT INTO journal_rows (key, position, status, codec, value, written_at)
VALUES (?, ?, 'ok', ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    position = COALESCE(excluded.position, position), status = 'ok', codec = excluded.codec,
    value = excluded.value, error_type = NULL, error_message = NULL, attempts = NULL,
    written_at = excluded.written_at
WHERE status = 'failed'
"""

# A failure only ever replaces an older failure: it never hides a result.
_UPSERT_FAILURE = """
INSERT INTO journal_rows (key, position, status, error_type, error_message, attempts, written_at)
VALUES (?, ?, 'failed', ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    position = COALESCE(excluded.position, position), error_type = excluded.error_type,
    error_message = excluded.error_message, attempts = excluded.attempts,
    written_at = excluded.written_at
WHERE status = 'failed'
"""


class JournalError(Exception):
    """The journal file cannot be used; the message names it and says what to do.

    ``kind`` says why: ``"mismatch"`` (a journal of another workload, see
    :class:`JournalMismatchError`), ``"not_a_journal"`` (not SQLite, another program's
    database, or a newer format), ``"read_only"`` (a read-only file or file system),
    ``"corrupt"`` (a damaged page), ``"disk_full"``, or ``"unusable"`` (anything else SQLite
    refuses). ``path`` is the file.
    """

    def __init__(self, path: Path, kind: str, message: str) -> None:
        super().__init__(message)
        self.path, self.kind = path, kind


class JournalMismatchError(JournalError, ValueError):
    """The journal file was written by another workload (another identity) than the one opening it."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(path, "mismatch", message)


@dataclass(frozen=True)
class RecordedFailure:
    """An item that failed in an earlier run: it is not done, and a re-run should retry it.

    ``error_type`` is the exception's class (``"module.Class"``, or just the name for a
    built-in), ``message`` its text, ``attempts`` how many attempts that run made, and
    ``written_at`` when it was recorded (seconds since the epoch).
    """

    error_type: str
    message: str
    attempts: int
    written_at: float


class Journal:
    """A SQLite file recording, per item key, the item's result or its failure.

    ``path`` is the journal file: it is created (with its schema) if it does not exist,
    and its folder must exist. ``identity`` names the workload writing it, such as the
    node class's qualified name plus a label of yours (``"myproject.Summarize:v2"``); a
    journal written under another identity is refused with :class:`JournalMismatchError`
    rather than mixing two workloads' results. ``key`` turns an item into its key (a
    non-empty ``str`` that must be the same in every run); None uses :func:`item_key`.
    A file that cannot be used raises :class:`JournalError`, at once if opening can tell.

    Write with :meth:`record_result` and :meth:`record_failure` as items finish; read
    with :meth:`answered` (the results to reuse), :meth:`failed` (the failures to retry),
    :meth:`counts` and :meth:`export_jsonl`. Every method may be called from any thread.
    Each write is one small SQLite transaction done in the calling thread, so an event
    loop may call them directly; a call waits only while another process holds the write
    lock. Close the journal with :meth:`close` or a ``with`` block.
    """

    def __init__(self, path: PathLike, identity: str, *, key: Callable[[Any], str] | None = None) -> None:
        self._path = _check_path(path)
        self._identity = _check_identity(identity)
        if key is not None and not callable(key):
            raise TypeError(
                f"key must be a function from an item to its key (a str), or None for item_key; "
                f"got {type(key).__name__}"
            )
        self._key = key
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = _open(self._path, self._identity)

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._path

    @property
    def identity(self) -> str:
        """The workload this journal belongs to."""
        return self._identity

    def key_of(self, item: Any) -> str:
        """The key of ``item``: the ``key`` function's answer if one was given, else :func:`item_key`."""
        if self._key is None:
            return item_key(item)
        value = self._key(item)
        if not isinstance(value, str) or not value:
            raise TypeError(f"key must return a non-empty str for each item; for {safe_repr(item, 60)} it returned "
                            f"{safe_repr(value, 60)}")
        return value

    def answered(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: result}`` for each of ``keys`` that has a result; keys never answered, or failed, are absent.

        A pickled result whose class Python cannot find now (a class defined in a notebook
        cell not run yet, say) raises ValueError naming the key: define or import it first.
        """
        found: dict[str, Any] = {}
        for key, codec, value in self._select("key, codec, value", "status = 'ok'", keys):
            found[key] = _decode(key, codec, value)
        return found

    def answered_items(self, items: Sequence[Any]) -> dict[int, Any]:
        """``{position: result}`` for each of ``items`` that has a result (see :meth:`answered`)."""
        keys = [self.key_of(item) for item in items]
        answered = self.answered(keys)
        return {i: answered[key] for i, key in enumerate(keys) if key in answered}

    def failed(self, keys: Iterable[str]) -> dict[str, RecordedFailure]:
        """``{key: RecordedFailure}`` for each of ``keys`` whose latest record is a failure (to be retried)."""
        columns = "key, error_type, error_message, attempts, written_at"
        return {
            key: RecordedFailure(error_type, message, attempts, written_at)
            for key, error_type, message, attempts, written_at in self._select(columns, "status = 'failed'", keys)
        }

    def record_result(self, key: str, value: Any, *, position: int | None = None) -> bool:
        """Record ``value`` as the result of ``key``, durably, before returning.

        ``position`` is the item's index in its batch (an integer >= 0, or None), used to
        export in input order. A result replaces an earlier failure of the same key, but
        an answered key keeps its first result: returns True if ``value`` was stored,
        False if the key already had a result (from another process, say), which stays.
        """
        key = _check_key(key)
        position = _check_position(position)
        codec, payload = _encode(key, value)
        return self._write(_UPSERT_RESULT, (key, position, codec, payload, time.time()))

    def record_failure(self, key: str, error: BaseException, attempts: int, *, position: int | None = None) -> bool:
        """Record that ``key`` failed with ``error`` after ``attempts`` attempts (an integer >= 1).

        A failure is not done: :meth:`answered` leaves it out and :meth:`failed` lists it,
        so a re-run retries it. It replaces an earlier failure of the same key but never a
        result. Returns True if recorded, False if the key already had a result.
        """
        key = _check_key(key)
        if not isinstance(error, BaseException):
            raise TypeError(f"error must be the exception the item failed with; got {type(error).__name__}")
        attempts = check_int("attempts", attempts, low=1)
        position = _check_position(position)
        message = _storable_text(redact(safe_str(error)))
        row = (key, position, error_type_name(error), message, attempts, time.time())
        return self._write(_UPSERT_FAILURE, row)

    def counts(self) -> dict[str, int]:
        """How many keys are answered and how many failed: ``{"ok": ..., "failed": ...}``."""
        with self._lock, _sqlite_errors(self._path):
            rows = self._live().execute("SELECT status, COUNT(*) FROM journal_rows GROUP BY status").fetchall()
        found = dict(rows)
        return {"ok": found.get("ok", 0), "failed": found.get("failed", 0)}

    def export_jsonl(self, target: PathLike | TextIO) -> int:
        """Write every row to ``target`` (a file path or a text stream) as JSON Lines; return how many.

        Rows come in input order (by ``position``; rows without one last, in the order
        they were first written). Each line has ``key``, ``position``, ``status`` (``"ok"``
        or ``"failed"``), ``codec``, ``value``, ``error_type``, ``error_message``,
        ``attempts`` (of a failure) and ``written_at`` (ISO 8601, UTC). A value stored as
        JSON appears as itself; a pickled value (``codec`` ``"pickle"``) as its ``repr``.
        A path is written whole or not at all.
        """
        if isinstance(target, (str, os.PathLike)):
            destination = _check_export_path(target)
            lines = list(self._export_lines())
            write_atomic(destination, "".join(lines))
            return len(lines)
        if not callable(getattr(target, "write", None)):
            raise TypeError(f"target must be a file path or a text stream with .write; got {type(target).__name__}")
        count = 0
        for line in self._export_lines():
            target.write(line)
            count += 1
        return count

    def close(self) -> None:
        """Close the connection to the file (calling it again does nothing)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._connection is None else ""
        return f"<Journal {str(self._path)!r} identity={self._identity!r}{state}>"

    def _live(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError(f"journal {str(self._path)!r} is closed")
        return self._connection

    def _write(self, statement: str, row: tuple[Any, ...]) -> bool:
        with self._lock, _sqlite_errors(self._path):
            # Autocommit: each statement is its own transaction, committed before it returns.
            cursor = self._live().execute(statement, row)
            return cursor.rowcount > 0

    def _select(self, columns: str, condition: str, keys: Iterable[str]) -> list[tuple[Any, ...]]:
        if isinstance(keys, str) or not isinstance(keys, Iterable):
            raise TypeError(f"keys must be an iterable of keys (str), such as a list; got {type(keys).__name__}")
        wanted = list(dict.fromkeys(_check_key(key) for key in keys))
        rows: list[tuple[Any, ...]] = []
        with self._lock, _sqlite_errors(self._path):
            connection = self._live()
            for start in range(0, len(wanted), _KEYS_PER_QUERY):
                chunk = wanted[start : start + _KEYS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT {columns} FROM journal_rows WHERE {condition} AND key IN ({marks})"
                rows.extend(connection.execute(query, chunk).fetchall())
        return rows

    def _export_lines(self) -> Iterator[str]:
        query = (
            "SELECT key, position, status, codec, value, error_type, error_message, attempts, written_at "
            "FROM journal_rows ORDER BY position IS NULL, position, rowid"
        )
        with self._lock, _sqlite_errors(self._path):
            rows = self._live().execute(query).fetchall()
        for key, position, status, codec, value, error_type, message, attempts, written_at in rows:
            shown = None
            if codec == "json":
                shown = json.loads(value)
            elif codec == "pickle":
                try:
                    shown = safe_repr(_decode(key, codec, value))
                except ValueError as error:
                    shown = f"<{error}>"
            record = {
                "key": key,
                "position": position,
                "status": status,
                "codec": codec,
                "value": shown,
                "error_type": error_type,
                "error_message": message,
                "attempts": attempts,
                "written_at": datetime.fromtimestamp(written_at, timezone.utc).isoformat(),
            }
            yield _json_text(record) + "\n"


def item_key(item: Any) -> str:
    """The default key of ``item``: a hash of its type and value, the same in every process and run.

    Accepts ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None`` and ``tuple``,
    ``list``, ``dict``, ``set`` and ``frozenset`` of those, nested to any depth (exact
    types: subclasses such as enums or named tuples are refused). Equal values of one
    type share a key, whatever a dict's or set's order; values of different types never
    do: ``1``, ``1.0``, ``True`` and ``"1"`` are four keys, as are ``(1,)`` and ``[1]``.
    Anything else raises TypeError: give the journal a ``key`` function instead. Returns
    32 hexadecimal digits (a 128-bit BLAKE2b hash).
    """
    return hashlib.blake2b(_canonical(item, item, set()), digest_size=16, person=_KEY_PERSON).hexdigest()


def _canonical(value: Any, item: Any, open_containers: set[int]) -> bytes:
    """An unambiguous byte encoding: a type tag, then a length or count, then the content."""
    kind = type(value)
    if value is None:
        return b"N"
    if kind is bool:
        return b"T" if value else b"F"
    if kind is int:
        return _tagged(b"i", hex(value).encode("ascii"))  # hex: no digit limit, unlike str()
    if kind is float:
        return _tagged(b"f", value.hex().encode("ascii"))  # exact, and keeps -0.0 apart from 0.0
    if kind is str:
        return _tagged(b"s", value.encode("utf-8", "surrogatepass"))
    if kind is bytes:
        return _tagged(b"b", value)
    if kind in (tuple, list, dict, set, frozenset):
        if id(value) in open_containers:
            raise TypeError(f"item_key cannot hash an item that contains itself: {safe_repr(item, 60)}; give a key function")
        open_containers.add(id(value))
        try:
            if kind is dict:
                entries = sorted(
                    _canonical(k, item, open_containers) + _canonical(v, item, open_containers)
                    for k, v in value.items()
                )
                return _tagged(b"d", b"".join(entries), count=len(entries))
            parts = [_canonical(element, item, open_containers) for element in value]
            if kind in (set, frozenset):
                parts.sort()
            return _tagged(_SEQUENCE_TAGS[kind], b"".join(parts), count=len(parts))
        finally:
            open_containers.discard(id(value))
    where = "" if value is item else f" inside {safe_repr(item, 60)}"
    raise TypeError(
        f"item_key cannot hash a {kind.__qualname__}{where}: it hashes only str, bytes, int, float, bool, "
        f"None and tuples, lists, dicts, sets and frozensets of them. Pass key=..., a function that "
        f"returns a str naming the item the same way in every run (for example key=lambda doc: doc.id)"
    )


def _tagged(tag: bytes, content: bytes, *, count: int | None = None) -> bytes:
    size = len(content) if count is None else count
    return tag + str(size).encode("ascii") + b":" + content


def _encode(key: str, value: Any) -> tuple[str, str | bytes]:
    """("json", text) if JSON gives back exactly ``value``, else ("pickle", bytes)."""
    if _json_exact(value, set()):
        try:
            return "json", _json_text(value, separators=(",", ":"))
        except ValueError:  # an int with more digits than Python converts to text
            pass
    try:
        return "pickle", pickle.dumps(value, protocol=_PICKLE_PROTOCOL)
    except Exception as error:
        raise TypeError(
            f"the result for key {key!r} can be stored neither as JSON nor with pickle: "
            f"{type(error).__name__}: {error}"
        ) from error


def _json_exact(value: Any, open_containers: set[int]) -> bool:
    """True if ``json.loads(json.dumps(value))`` gives back ``value`` with every type unchanged."""
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return True
    if kind is float:
        return math.isfinite(value)  # JSON has no NaN or infinity
    if kind not in (list, dict) or id(value) in open_containers:
        return False
    open_containers.add(id(value))
    try:
        if kind is list:
            return all(_json_exact(element, open_containers) for element in value)
        return all(type(k) is str and _json_exact(v, open_containers) for k, v in value.items())
    finally:
        open_containers.discard(id(value))


def _json_text(value: Any, separators: tuple[str, str] | None = None) -> str:
    """JSON text, with non-ASCII characters as themselves where UTF-8 can hold them."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=separators)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only an escape keeps it
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=separators)
    return text


def _storable_text(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _decode(key: str, codec: str, payload: Any) -> Any:
    if codec == "json":
        return json.loads(payload)
    try:
        return pickle.loads(payload)
    except Exception as error:
        raise ValueError(
            f"the stored result for key {key!r} cannot be unpickled ({type(error).__name__}: {error}); "
            f"define or import its class first"
        ) from error


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"key must be a non-empty str (from item_key or journal.key_of); got {key!r}")
    return key


def _check_position(position: Any) -> int | None:
    return None if position is None else check_int("position", position, low=0)


def _check_identity(identity: Any) -> str:
    if not isinstance(identity, str) or not identity.strip():
        raise ValueError(
            f"identity must be a non-empty str naming the workload, such as 'myproject.Summarize'; got {identity!r}"
        )
    return identity


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise TypeError(f"path must be a str or a path to the journal file; got {type(path).__name__}")
    text = os.fspath(path)
    if text in ("", ":memory:"):
        raise ValueError(f"path must name a file on disk (an in-memory journal would keep nothing); got {text!r}")
    target = Path(text)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"path's folder does not exist: {str(target.parent)!r} (path={text!r})")
    if target.is_dir():
        raise IsADirectoryError(f"path must be a journal file, not a folder: {text!r}")
    if target.exists():
        with open(target, "rb") as file:
            start = file.read(len(_SQLITE_MAGIC))
        if not _SQLITE_MAGIC.startswith(start):  # empty, or being created by another process: fine
            raise _not_a_journal(target, "is not a SQLite database")
    return target


def _check_export_path(target: PathLike) -> Path:
    text = os.fspath(target)
    if not isinstance(text, str) or not text:
        raise ValueError(f"target must name a file or be a text stream; got {target!r}")
    destination = Path(text)
    if not destination.parent.is_dir():
        raise FileNotFoundError(f"target's folder does not exist: {str(destination.parent)!r} (target={text!r})")
    if destination.is_dir():
        raise IsADirectoryError(f"target must be a file, not a folder: {text!r}")
    return destination


def _open(path: Path, identity: str) -> sqlite3.Connection:
    """Connect with the busy timeout, check the file is ours (or new), set WAL, then create or check the schema."""
    # check_same_thread=False: notebooks run batches on a worker thread; Journal's lock
    # lets one thread at a time use the connection.
    with _sqlite_errors(path):
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        with _sqlite_errors(path):
            new = _is_new(connection, path)  # refuses another program's file before anything is written to it
            if not new:  # a damaged page is found now, before any call is paid, not half-way through a batch
                problem = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
                if problem != "ok":
                    raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")
            mode = _switch_to_wal(connection)
            if mode != "wal":
                raise JournalError(path, "unusable", f"journal {str(path)!r}: SQLite could not use WAL mode there "
                                   f"(it kept {mode!r}); put the journal on a local disk")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("BEGIN IMMEDIATE")  # one process at a time creates or checks the schema
            if _is_new(connection, path):
                _create(connection, identity)
            else:
                _check_identity_of(connection, path, identity)
            # One write now, so that a read-only file or disk is found before any call is paid.
            connection.execute(_NOTE_OPENED, (datetime.now(timezone.utc).isoformat(),))
            connection.execute("COMMIT")
    except BaseException:
        connection.close()  # also rolls back a schema half-made
        raise
    return connection


_NOTE_OPENED = """
INSERT INTO journal_meta VALUES ('last_opened', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value
"""
# SQLite's primary result codes (its extended codes keep them in the low byte).
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 8, 10, 11, 13, 14, 26
# A full disk shows as an I/O error when SQLite cannot even make its shared-memory file:
# below this many free bytes (a few pages), that is what it was.
_ROOM_NEEDED = 64 * 1024


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's errors into a :class:`JournalError` that names the file and says what to do."""
    try:
        yield
    except sqlite3.Error as error:
        raise _journal_error(path, error) from None


def _journal_error(path: Path, error: sqlite3.Error) -> JournalError:
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11 and newer
    said = str(error)
    primary = code & 0xFF if isinstance(code, int) else None
    name = str(path)
    if primary == _SQLITE_NOTADB or "not a database" in said:
        return _not_a_journal(path, "is not a SQLite database")
    if primary == _SQLITE_CORRUPT or "malformed" in said:
        return JournalError(path, "corrupt", f"journal {name!r} is damaged (SQLite: {said}): move it aside and start "
                            "a new journal; sqlite3's .recover command may save its rows")
    if primary == _SQLITE_FULL or "disk is full" in said or (primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN)
                                                              and _free_bytes(path.parent) < _ROOM_NEEDED):
        return JournalError(path, "disk_full", f"the disk holding journal {name!r} is full (SQLite: {said}): free "
                            "some space, or give the journal a path on another disk")
    read_only = not os.access(path if path.exists() else path.parent, os.W_OK)
    if primary == _SQLITE_READONLY or "readonly" in said or (primary == _SQLITE_CANTOPEN and read_only):
        return JournalError(path, "read_only", f"journal {name!r} cannot be written: the file or its file system "
                            f"is read-only (SQLite: {said}); make it writable, or give the journal another path")
    return JournalError(path, "unusable", f"journal {name!r} cannot be used (SQLite: {said}); check the file and "
                        "its folder, or give the journal another path")


def _free_bytes(folder: Path) -> float:
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return math.inf
    return stats.f_bavail * stats.f_frsize


def _not_a_journal(path: Path, what: str) -> JournalError:
    return JournalError(path, "not_a_journal", f"path is not a journal: {str(path)!r} {what}; give the journal a "
                        "path of its own")


def _switch_to_wal(connection: sqlite3.Connection) -> str:
    """Set WAL mode (kept in the file, so only its first opener really switches); return the mode now in force.

    Switching needs the file to itself, and SQLite refuses at once, without waiting the
    busy timeout, when another process is switching or creating it at the same moment
    (waiting there could deadlock). So here we wait and try again ourselves.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT
    pause = 0.001
    while True:
        try:
            mode: str = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            return mode
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _is_new(connection: sqlite3.Connection, path: Path) -> bool:
    """True for an empty database; False for a journal of our format; else raise ValueError."""
    # One statement, so one snapshot: read apart, another process could create the
    # schema in between and the file would look like another program's.
    application_id, tables, version = connection.execute(
        "SELECT (SELECT application_id FROM pragma_application_id()), "
        "(SELECT COUNT(*) FROM sqlite_master), (SELECT user_version FROM pragma_user_version())"
    ).fetchone()
    if application_id == 0 and tables == 0:
        return True
    if application_id != _APPLICATION_ID:
        raise _not_a_journal(path, "is a SQLite database of another program")
    if version != _FORMAT_VERSION:
        raise _not_a_journal(path, f"is a journal of format version {version}, and this pocket_parallel reads "
                             f"version {_FORMAT_VERSION}")
    return False


def _create(connection: sqlite3.Connection, identity: str) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    connection.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
    connection.execute(f"PRAGMA user_version = {_FORMAT_VERSION}")
    connection.execute("INSERT INTO journal_meta VALUES ('identity', ?)", (identity,))


def _check_identity_of(connection: sqlite3.Connection, path: Path, identity: str) -> None:
    row = connection.execute("SELECT value FROM journal_meta WHERE name = 'identity'").fetchone()
    if row is None:
        raise _not_a_journal(path, "has no identity record")
    if row[0] != identity:
        raise JournalMismatchError(
            path, f"journal {str(path)!r} was written with identity {row[0]!r}, not {identity!r}: give "
            f"this workload its own path (or delete the file to start over)"
        )
